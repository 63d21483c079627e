"""Layers: NCHW activations, PyTorch weight layouts.

Every layer has ``forward``. The linear layers (Dense, Conv2d and the average pools) also expose what the
LRP rules need:

``linear(x, w, b)``
    the layer's affine map evaluated with *given* parameters (the rules pass rho(w), rho(b));
``transpose(s, w, shape)``
    the adjoint (transpose) of ``x -> linear(x, w, 0)``, for an input of ``shape``: step 3 of LRP;
``bias_relevance(s, b)``
    ``sum_k b_k s_k`` per sample: what a bias neuron keeps of the relevance.

Layers that only move values (ReLU, Dropout, BatchNorm2d, Flatten, ZeroPad2d) expose ``pass_back(R, shape)``,
which hands each output's relevance back to the input position it came from.

Padding is ``p``, ``(ph, pw)`` or ``(top, bottom, left, right)``.
"""
import copy
import math

import numpy as np

from .backend import array_module, constant, to_host
from .checks import boolean, finite, number, real_array
from .windows import blocks, col2im, crop, im2col, offsets, output_size, pad, padding4, pair, scratch


class Layer:
    """Base class of all layers.

    Attributes
    ----------
    n_inputs : int
        Number of input tensors (2 for :class:`Add`).
    array_names : tuple of str
        Names of the attributes that hold arrays (parameters and statistics).
    weight, bias : array or None
        ``None`` for layers without parameters.
    passes_through : bool
        Whether the output equals the input (:class:`Dropout` at inference, the BatchNorm that
        :func:`~lrpref.network.fold_batchnorm` leaves); :func:`lrpref.explain` looks through such layers.
    """

    n_inputs = 1
    array_names = ()
    weight = None
    bias = None
    passes_through = False

    def forward(self, x):
        raise NotImplementedError

    def pass_back(self, R, shape):
        """Relevance of an elementwise layer: each output's relevance goes to the input it was computed from."""
        return R

    def bias_relevance(self, s, b):
        return None

    def config(self):
        """Hyper-parameters, as keyword arguments of the constructor (saved as HDF5 attributes)."""
        return {}

    def arrays(self):
        """Arrays, as keyword arguments of the constructor (saved as HDF5 datasets)."""
        return {name: getattr(self, name) for name in self.array_names}

    def map_arrays(self, fn):
        """A copy of the layer with ``fn`` applied to every array (used to move or cast a network)."""
        layer = copy.copy(self)
        for name, array in self.arrays().items():
            setattr(layer, name, fn(array))
        return layer

    def __repr__(self):
        return type(self).__name__ + "(" + ", ".join(f"{k}={v}" for k, v in self.config().items()) + ")"


def _param(value, what, ndim, like=None):
    """A float array with ``ndim`` non-empty axes and finite entries (on the array module of ``value``;
    ``like`` fixes dtype)."""
    array = real_array(value, what)
    array = array_module(array).asarray(array)
    if like is not None:
        array = array.astype(like.dtype, copy=False)
    elif array.dtype.kind != "f":
        array = array.astype(np.float64)
    if array.ndim != ndim or 0 in array.shape:
        raise ValueError(f"{what} must have {ndim} non-empty axes, got an array of shape {tuple(array.shape)}")
    return finite(array, what)


def _bias(bias, weight):
    """The bias as an array of shape (out,); ``None`` means zeros."""
    if bias is None:
        return array_module(weight).zeros(weight.shape[0], dtype=weight.dtype)
    bias = _param(bias, "bias", 1, like=weight)
    if bias.shape[0] != weight.shape[0]:
        raise ValueError(f"bias must have shape ({weight.shape[0]},) to match the weight, got {tuple(bias.shape)}")
    return bias


def _geometry(kernel, stride, padding):
    """``"3x3, stride 2, padding 1"``, leaving out stride 1 and no padding."""
    text = f"{kernel[0]}x{kernel[1]}"
    if stride != (1, 1):
        text += f", stride {stride[0] if stride[0] == stride[1] else stride}"
    if any(padding):
        text += f", padding {padding[0] if len(set(padding)) == 1 else padding}"
    return text


def check_shape(x, ndim, axis, size, layer):
    """Raise a clear error unless ``x`` has ``ndim`` axes and ``size`` entries on ``axis``."""
    if x.ndim != ndim or (size is not None and x.shape[axis] != size):
        axes = {2: "(N, features)", 4: "(N, channels, height, width)"}[ndim]
        if isinstance(layer, Dense):
            axes = "(N, features) or 4 axes (N, features, height, width)"
        want = f"{ndim} axes {axes}" + ("" if size is None else f" with {size} on axis {axis}")
        raise ValueError(f"{layer!r} expects an input of {want}, got shape {tuple(x.shape)}")


class Dense(Layer):
    """Fully connected layer ``y = x W^T + b``.

    On an input of shape (N, in) as usual; on a feature map (N, in, H, W) it acts on the channels of every
    position (Keras' Dense on a 4-D tensor, a 1x1 convolution).

    Parameters
    ----------
    weight : array of shape (out, in)
        PyTorch layout.
    bias : array of shape (out,) or None
        ``None`` means zeros.
    """

    array_names = ("weight", "bias")

    def __init__(self, weight, bias=None):
        self.weight = _param(weight, "Dense weight", 2)
        self.bias = _bias(bias, self.weight)

    def forward(self, x):
        check_shape(x, 2 if x.ndim == 2 else 4, 1, self.weight.shape[1], self)
        return self.linear(x, self.weight, self.bias)

    def linear(self, x, w, b=None):
        if x.ndim == 2:   # one product per sample, so that a sample's numbers do not depend on the batch (BLAS
            z = (x[:, None, :] @ w.T)[:, 0]   # may sum a (N, in) x (in, out) product differently for another N)
            return z if b is None else z + b
        z = (w @ x.reshape(x.shape[0], x.shape[1], x.shape[2] * x.shape[3])).reshape((x.shape[0], w.shape[0]) + x.shape[2:])
        return z if b is None else z + b[:, None, None]

    def transpose(self, s, w, shape):
        if s.ndim == 2:
            return (s[:, None, :] @ w)[:, 0]   # per sample, as linear
        return (w.T @ s.reshape(s.shape[0], s.shape[1], -1)).reshape(shape)

    def bias_relevance(self, s, b):
        if b is None:
            return None
        return ((s if s.ndim == 2 else s.sum(axis=(2, 3))) * b).sum(axis=1)   # per sample, as linear

    def __repr__(self):
        return f"Dense({self.weight.shape[1]}->{self.weight.shape[0]})"


class Conv2d(Layer):
    """2-D convolution (cross-correlation, as PyTorch), computed as im2col plus one matrix product.

    Parameters
    ----------
    weight : array of shape (out_channels, in_channels, kh, kw)
    bias : array of shape (out_channels,) or None
    stride : int or pair
    padding : int, pair or (top, bottom, left, right)
        Zero padding; asymmetric padding (as Keras "same" with even kernels) is allowed.
    """

    array_names = ("weight", "bias")

    def __init__(self, weight, bias=None, stride=1, padding=0):
        self.weight = _param(weight, "Conv2d weight", 4)
        self.bias = _bias(bias, self.weight)
        self.stride = pair(stride, "stride")
        self.padding = padding4(padding)

    @property
    def kernel_size(self):
        return tuple(self.weight.shape[2:])

    def config(self):
        return {"stride": self.stride, "padding": self.padding}

    def forward(self, x):
        check_shape(x, 4, 1, self.weight.shape[1], self)
        return self.linear(x, self.weight, self.bias)

    def linear(self, x, w, b=None):
        (oh, ow), w2 = output_size(x.shape[2:], self.kernel_size, self.stride, self.padding), w.reshape(w.shape[0], -1)
        xpad = pad(x, self.padding)
        z = array_module(x).empty((x.shape[0], w.shape[0], oh, ow), dtype=np.result_type(x.dtype, w.dtype))
        for n, rows in blocks(x.shape[0], oh, w2.shape[1] * ow * x.itemsize):   # one block for most layers
            cols = im2col(xpad[n], self.kernel_size, self.stride, rows, ow)
            z[n, :, rows] = (w2 @ cols).reshape(cols.shape[0], w.shape[0], -1, ow)
        if b is not None:
            z += b[:, None, None]
        return z

    def transpose(self, s, w, shape):
        (oh, ow), w2 = s.shape[2:], w.reshape(w.shape[0], -1)
        top, bottom, left, right = self.padding
        xp = array_module(s)
        xpad = xp.zeros(shape[:2] + (shape[2] + top + bottom, shape[3] + left + right),
                        dtype=np.result_type(s.dtype, w.dtype))
        for n, rows in blocks(shape[0], oh, w2.shape[1] * ow * s.itemsize):
            s_block = s[n, :, rows].reshape(s[n].shape[0], w.shape[0], -1)
            cols = scratch(xp, (s_block.shape[0], w2.shape[1], s_block.shape[2]), xpad.dtype)
            xp.matmul(w2.T, s_block, out=cols)
            col2im(cols, xpad[n], self.kernel_size, self.stride, rows, ow)
        return crop(xpad, self.padding)

    def bias_relevance(self, s, b):
        return None if b is None else (s.sum(axis=(2, 3)) * b).sum(axis=1)   # per sample, as Dense

    def __repr__(self):
        o, i = self.weight.shape[:2]
        return f"Conv2d({i}->{o}, {_geometry(self.kernel_size, self.stride, self.padding)})"


class _Pool2d(Layer):
    """Shared geometry of the windowed pools."""

    def __init__(self, kernel_size, stride=None, padding=0):
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else pair(stride, "stride")
        self.padding = padding4(padding)
        (kh, kw), (top, bottom, left, right) = self.kernel_size, self.padding
        if max(top, bottom) >= kh or max(left, right) >= kw:
            raise ValueError(f"{type(self).__name__} padding must be smaller than the kernel on each side "
                             f"(a window of padding alone has no value), got padding {self.padding} for kernel "
                             f"{self.kernel_size}")

    def config(self):
        return {"kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding}

    def __repr__(self):
        return f"{type(self).__name__}({_geometry(self.kernel_size, self.stride, self.padding)})"

    def _offsets(self, shape):
        size = output_size(shape[2:], self.kernel_size, self.stride, self.padding)
        return offsets(self.kernel_size, self.stride, size)

    def window_sum(self, x):
        """``sum_j x_j`` over the window of every output, every weight 1 (zero padding adds nothing)."""
        xpad = pad(x, self.padding)
        return sum(xpad[:, :, rows, cols] for _, _, rows, cols in self._offsets(x.shape))

    def spread(self, s, shape):
        """``c_j = sum_k [j in window k] s_k``: the adjoint of :meth:`window_sum`, for an input of ``shape``."""
        c = pad(array_module(s).zeros(shape, dtype=s.dtype), self.padding)
        for _, _, rows, cols in self._offsets(shape):
            c[:, :, rows, cols] += s
        return crop(c, self.padding)


class MaxPool2d(_Pool2d):
    """Max pooling (padding counts as -inf, as in PyTorch).

    For winner-take-all relevance it exposes the window maxima as a 0/1 linear map:
    :meth:`count_maxima` (z_j = number of inputs attaining max_j) and :meth:`transpose_maxima`.
    """

    def forward(self, x):
        check_shape(x, 4, 1, None, self)
        xpad = pad(x, self.padding, -np.inf)
        y = None
        for _, _, rows, cols in self._offsets(x.shape):
            window = xpad[:, :, rows, cols]
            y = window if y is None else array_module(x).maximum(y, window)
        return y

    def _maxima(self, x, y, first_only):
        """Yield ``(rows, cols, mask)`` per kernel offset: which window elements attain the window's maximum.

        With ``first_only`` only the first of them in row-major window order, as PyTorch's gradient chooses.
        """
        xpad = pad(x, self.padding, -np.inf)
        taken = array_module(x).zeros(y.shape, dtype=bool)
        for _, _, rows, cols in self._offsets(x.shape):
            mask = xpad[:, :, rows, cols] == y
            if first_only:
                mask &= ~taken
                taken |= mask
            yield rows, cols, mask

    def count_maxima(self, x, y, first_only=False):
        """``z_j = sum_i [x_i = y_j]`` over the window of output j (1 with ``first_only``)."""
        z = array_module(x).zeros_like(y)
        for _, _, mask in self._maxima(x, y, first_only):
            z += mask
        return z

    def transpose_maxima(self, s, x, y, first_only=False):
        """``c_i = sum_j [x_i = y_j] s_j``: the adjoint of the 0/1 map of window maxima."""
        c = pad(array_module(x).zeros_like(x), self.padding)
        for rows, cols, mask in self._maxima(x, y, first_only):
            c[:, :, rows, cols] += mask * s
        return crop(c, self.padding)

    def as_average(self):
        """The average pool with the same windows (the tutorial's backward treatment of max pooling)."""
        return AvgPool2d(self.kernel_size, self.stride, self.padding)


class AvgPool2d(_Pool2d):
    """Average pooling, a linear map without parameters.

    Parameters
    ----------
    count_include_pad : bool
        Divide by the full window size (PyTorch's default) or only by the inputs inside the image (Keras).
    """

    def __init__(self, kernel_size, stride=None, padding=0, count_include_pad=True):
        super().__init__(kernel_size, stride, padding)
        self.count_include_pad = boolean(count_include_pad, "AvgPool2d count_include_pad")

    def config(self):
        return {**super().config(), "count_include_pad": self.count_include_pad}

    def forward(self, x):
        check_shape(x, 4, 1, None, self)
        return self.linear(x)

    def _divisor(self, shape, xp, dtype):
        """The window size, or with ``count_include_pad=False`` the number of inputs inside each window."""
        if self.count_include_pad:
            return float(self.kernel_size[0] * self.kernel_size[1])
        return self.window_sum(xp.ones((1, 1) + tuple(shape[2:]), dtype=dtype))

    def linear(self, x, w=None, b=None):
        return self.window_sum(x) / self._divisor(x.shape, array_module(x), x.dtype)

    def transpose(self, s, w, shape):
        return self.spread(s / self._divisor(shape, array_module(s), s.dtype), shape)


class SumPool2d(AvgPool2d):
    """The LRP Toolbox's ``SumPool``: ``y = sum(window) / sqrt(kh * kw)``, i.e. ``sqrt(kh * kw)`` times the average.

    The Toolbox scales the window sum "to keep the output well conditioned" (``python/modules/sumpool.py``,
    1.3.1); its LRP rules divide the scale out again and act on the plain window sum (see
    :mod:`lrpref.toolbox`). Zero padding counts in the window as in PyTorch's average pool (the Toolbox has none).
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__(kernel_size, stride, padding)

    def config(self):
        return _Pool2d.config(self)

    def _divisor(self, shape, xp, dtype):
        return math.sqrt(self.kernel_size[0] * self.kernel_size[1])


class AdaptiveAvgPool2d(Layer):
    """Adaptive average pooling to ``output_size`` (PyTorch's windows: rows floor(i*H/h) .. ceil((i+1)*H/h)).

    The pool is separable: ``y = P_h x P_w^T`` with averaging matrices ``P_h`` (h, H) and ``P_w`` (w, W).
    ``output_size=1`` is global average pooling.
    """

    def __init__(self, output_size):
        self.output_size = pair(output_size, "output_size")

    def config(self):
        return {"output_size": self.output_size}

    def _matrices(self, shape, xp, dtype):
        mats = []
        for n_in, n_out in zip(shape[2:], self.output_size):
            m = np.zeros((n_out, n_in))
            for i in range(n_out):
                start, stop = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
                m[i, start:stop] = 1.0 / (stop - start)
            mats.append(constant(m, xp, dtype))   # uploaded once per size, not per call
        return mats

    def forward(self, x):
        check_shape(x, 4, 1, None, self)
        return self.linear(x)

    def linear(self, x, w=None, b=None):
        ph, pw = self._matrices(x.shape, array_module(x), x.dtype)
        return ph @ x @ pw.T

    def transpose(self, s, w, shape):
        ph, pw = self._matrices(shape, array_module(s), s.dtype)
        return ph.T @ s @ pw

    def pass_back(self, R, shape):
        if tuple(R.shape) != tuple(shape):
            raise ValueError(
                f"{self!r} passes relevance through only where it is the identity (output size = input size); "
                f"here it maps {tuple(shape[2:])} to {tuple(R.shape[2:])}"
            )
        return R


class Flatten(Layer):
    """Flatten everything but the batch axis (C-order, so NCHW flattens as PyTorch does)."""

    def forward(self, x):
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))   # -1 is ambiguous for an empty batch

    def pass_back(self, R, shape):
        return R.reshape(shape)


class ReLU(Layer):
    """Rectified linear unit ``max(0, x)``."""

    def forward(self, x):
        return array_module(x).maximum(x, 0)


class Dropout(Layer):
    """Dropout at inference: the identity. ``p`` is kept for the record."""

    passes_through = True

    def __init__(self, p=0.5):
        self.p = number(p, "Dropout p", low=0.0, high=1.0)

    def config(self):
        return {"p": self.p}

    def forward(self, x):
        return x


class BatchNorm2d(Layer):
    """Batch normalisation at inference on axis 1: ``(x - mean) / sqrt(var + eps) * weight + bias``.

    Where it follows a Conv2d or Dense, :func:`lrpref.network.fold_batchnorm` merges it into that layer.
    """

    array_names = ("weight", "bias", "running_mean", "running_var")

    def __init__(self, weight, bias, running_mean, running_var, eps=1e-5):
        self.weight = _param(weight, "BatchNorm2d weight", 1)
        self.bias, self.running_mean, self.running_var = (
            _param(v, f"BatchNorm2d {n}", 1, like=self.weight)
            for n, v in (("bias", bias), ("running_mean", running_mean), ("running_var", running_var))
        )
        if not self.weight.shape == self.bias.shape == self.running_mean.shape == self.running_var.shape:
            raise ValueError("BatchNorm2d weight, bias, running_mean and running_var must have the same shape, got "
                             + ", ".join(str(tuple(a.shape)) for a in self.arrays().values()))
        self.eps = number(eps, "BatchNorm2d eps", low=0.0)
        smallest = float(to_host(self.running_var.min()))
        if smallest < 0 or smallest + self.eps <= 0:
            raise ValueError(f"BatchNorm2d running_var must be >= 0 and running_var + eps > 0 (a variance), got "
                             f"a smallest running_var of {smallest:g} with eps {self.eps:g}")

    @classmethod
    def identity(cls, channels, xp, dtype):
        """The BatchNorm that changes nothing (weight 1, bias 0, mean 0, var 1, eps 0), which
        :func:`~lrpref.network.fold_batchnorm` leaves where it merged one; made without the checks (and their
        device synchronisations), as its values are known."""
        layer = cls.__new__(cls)
        layer.weight, layer.running_var = xp.ones(channels, dtype), xp.ones(channels, dtype)
        layer.bias, layer.running_mean = xp.zeros(channels, dtype), xp.zeros(channels, dtype)
        layer.eps = 0.0
        layer.passes_through = True
        return layer

    def config(self):
        return {"eps": self.eps}

    def scale(self):
        """``weight / sqrt(running_var + eps)``, the per-channel factor."""
        return self.weight / array_module(self.weight).sqrt(self.running_var + self.eps)

    def forward(self, x):
        check_shape(x, 2 if x.ndim == 2 else 4, 1, self.weight.shape[0], self)
        axes = (-1,) + (1,) * (x.ndim - 2)
        return (x - self.running_mean.reshape(axes)) * self.scale().reshape(axes) + self.bias.reshape(axes)

    def __repr__(self):
        return f"BatchNorm2d({self.weight.shape[0]}, eps={self.eps})"


class ZeroPad2d(Layer):
    """Zero padding of height and width by ``(top, bottom, left, right)``."""

    def __init__(self, padding):
        self.padding = padding4(padding)

    def config(self):
        return {"padding": self.padding}

    def forward(self, x):
        check_shape(x, 4, 1, None, self)
        return pad(x, self.padding)

    def pass_back(self, R, shape):
        return crop(R, self.padding)


class Add(Layer):
    """Elementwise sum of two inputs (the residual addition ``y = h_main + h_skip``)."""

    n_inputs = 2

    def forward(self, main, skip):
        if main.shape != skip.shape:
            raise ValueError(f"Add expects two inputs of the same shape, got {tuple(main.shape)} and {tuple(skip.shape)}")
        return main + skip


LAYERS = {cls.__name__: cls for cls in (
    Dense, Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Flatten, ReLU, Dropout, BatchNorm2d, ZeroPad2d, Add,
    SumPool2d,
)}
