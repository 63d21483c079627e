"""Sliding windows over NCHW arrays: padding, im2col and its adjoint col2im, in bounded blocks.

Convolution and pooling both visit a (kh, kw) window at every output position. Instead of a Python loop
over output positions, these helpers loop over the kh * kw *kernel offsets*: at offset (i, j) the window
element of every output position is one strided slice of the padded input. A convolution is then one
matrix product over the stacked slices (im2col), and the transpose of a convolution scatters a matrix
product back with the same slices (col2im).

Padding is always given as four integers ``(top, bottom, left, right)``.

The im2col columns, and the matrix product that col2im scatters back, are the largest arrays of a
convolution and live only for one matrix product. Inside :func:`reused_buffers` (every forward pass and
explanation) they are views of one scratch buffer, kept until the outermost block ends, instead of fresh
arrays: fresh memory costs a page fault on its first touch of every page, about a third of LRP's time on
VGG16 at batch 8 on a 2-core machine.
"""
import threading
from contextlib import contextmanager

import numpy as np

from .backend import array_module
from .checks import integer


def _integers(value, what, counts, low):
    """``value`` (one integer, or a sequence of one of ``counts`` lengths) as a tuple of integers >= ``low``;
    NumPy integers and integer-valued floats are accepted."""
    values = tuple(value) if isinstance(value, (tuple, list, np.ndarray)) else (value,)
    if len(values) not in counts:
        raise ValueError(f"{what} must be an integer or {' or '.join(map(str, counts[1:]))} of them, got {value!r}")
    try:
        return tuple(integer(v, what, low) for v in values)
    except TypeError:
        raise TypeError(f"{what} must be integers, got {value!r}") from None


def pair(value, what):
    """``k`` or ``(kh, kw)`` as a tuple of two positive integers."""
    values = _integers(value, what, (1, 2), 1)
    return values * 2 if len(values) == 1 else values


def padding4(value):
    """``p``, ``(ph, pw)`` or ``(top, bottom, left, right)`` as four non-negative integers."""
    values = _integers(value, "padding", (1, 2, 4), 0)
    if len(values) == 2:
        return values[0], values[0], values[1], values[1]
    return values * 4 if len(values) == 1 else values


def output_size(size, kernel, stride, padding):
    """Output height and width of a window operation on an input of ``size = (H, W)``."""
    (h, w), (kh, kw), (sh, sw), (top, bottom, left, right) = size, kernel, stride, padding
    out = ((h + top + bottom - kh) // sh + 1, (w + left + right - kw) // sw + 1)
    if min(out) < 1:
        raise ValueError(f"input of height x width {h}x{w} is smaller than the window {kh}x{kw} (padding {padding})")
    return out


def pad(x, padding, value=0.0):
    """Pad the last two axes of ``x`` by ``(top, bottom, left, right)`` with ``value``."""
    top, bottom, left, right = padding
    if not any(padding):
        return x
    xp = array_module(x)
    return xp.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


def crop(x, padding):
    """Remove ``(top, bottom, left, right)`` from the last two axes: the adjoint of zero padding."""
    top, bottom, left, right = padding
    return x[:, :, top:x.shape[2] - bottom, left:x.shape[3] - right]


def offsets(kernel, stride, out_size):
    """Yield ``(i, j, rows, cols)``: for kernel offset (i, j), the slices of the padded input it reads."""
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out_size
    for i in range(kh):
        for j in range(kw):
            yield i, j, slice(i, i + sh * (oh - 1) + 1, sh), slice(j, j + sw * (ow - 1) + 1, sw)


BUFFER_LIMIT = 1 << 30   # bytes; see set_buffer_limit


def set_buffer_limit(nbytes):
    """Bound every im2col buffer of a convolution to ``nbytes`` (default 1 GiB): larger batches are processed in
    blocks of samples, and a single sample whose buffer would still be larger in blocks of output rows.
    Returns the previous limit."""
    global BUFFER_LIMIT
    previous, BUFFER_LIMIT = BUFFER_LIMIT, integer(nbytes, "the buffer limit (bytes)", low=1)
    return previous


_workspace = threading.local()   # per thread: how deeply nested in reused_buffers, and the scratch buffers


@contextmanager
def reused_buffers():
    """Within this block, :func:`scratch` hands out views of one buffer per array module (grown to the
    largest request, so at most about the buffer limit) instead of new arrays; it is released when the
    outermost block ends. Blocks nest; each thread has its own buffers."""
    depth = getattr(_workspace, "depth", 0)
    if depth == 0:
        _workspace.buffers = {}   # array module name -> flat byte buffer
    _workspace.depth = depth + 1
    try:
        yield
    finally:
        _workspace.depth = depth
        if depth == 0:
            del _workspace.buffers


def scratch(xp, shape, dtype):
    """An uninitialised array of ``shape`` and ``dtype``, valid until the next call: inside
    :func:`reused_buffers` a view of the reused buffer, otherwise a new array."""
    if not getattr(_workspace, "depth", 0):
        return xp.empty(shape, dtype=dtype)
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    buffers = _workspace.buffers
    if xp.__name__ not in buffers or buffers[xp.__name__].size < nbytes:
        buffers.pop(xp.__name__, None)   # free the smaller buffer before allocating the larger one
        buffers[xp.__name__] = xp.empty(nbytes, dtype=np.uint8)
    return buffers[xp.__name__][:nbytes].view(dtype).reshape(shape)


def blocks(batch, out_rows, row_bytes):
    """Yield ``(samples, rows)`` slices covering ``batch`` samples x ``out_rows`` output rows such that the im2col
    buffer of a block (``row_bytes`` per output row of one sample) stays within the buffer limit, down to
    one output row of one sample."""
    sample_bytes = row_bytes * out_rows
    if sample_bytes <= BUFFER_LIMIT:
        step = BUFFER_LIMIT // sample_bytes
        for n in range(0, batch, step):
            yield slice(n, min(batch, n + step)), slice(0, out_rows)
        return
    step = max(1, BUFFER_LIMIT // row_bytes)
    for n in range(batch):
        for r in range(0, out_rows, step):
            yield slice(n, n + 1), slice(r, min(out_rows, r + step))


def band(xpad, kernel, stride, rows):
    """The rows of the padded input that output rows ``rows`` read (a view)."""
    return xpad[:, :, stride[0] * rows.start:stride[0] * (rows.stop - 1) + kernel[0]]


def im2col(xpad, kernel, stride, rows, out_width):
    """Stack the windows of output rows ``rows`` of the padded input ``xpad`` as columns.

    Returns
    -------
    cols : array of shape (N, C * kh * kw, R * Wo)
        ``cols[n, (c, i, j), (y, x)] = xpad[n, c, (rows.start + y) * sh + i, x * sw + j]``, R rows; a
        :func:`scratch` array, valid until the next im2col or transpose product.
    """
    n, c = xpad.shape[:2]
    size = (rows.stop - rows.start, out_width)
    source = band(xpad, kernel, stride, rows)
    if kernel == (1, 1):   # the input itself (no copy at stride 1)
        return source[:, :, ::stride[0], ::stride[1]].reshape(n, c, size[0] * size[1])
    cols = scratch(array_module(xpad), (n, c, kernel[0], kernel[1]) + size, xpad.dtype)
    for i, j, r, col in offsets(kernel, stride, size):
        cols[:, :, i, j] = source[:, :, r, col]
    return cols.reshape(n, c * kernel[0] * kernel[1], size[0] * size[1])


def col2im(cols, xpad, kernel, stride, rows, out_width):
    """The adjoint of :func:`im2col`: add every column entry to the position of ``xpad`` it was read from
    (in place)."""
    n, c = xpad.shape[:2]
    size = (rows.stop - rows.start, out_width)
    target = band(xpad, kernel, stride, rows)
    cols = cols.reshape((n, c, kernel[0], kernel[1]) + size)
    for i, j, r, col in offsets(kernel, stride, size):
        target[:, :, r, col] += cols[:, :, i, j]
