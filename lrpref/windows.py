"""Sliding windows over NCHW arrays: padding, im2col and its adjoint col2im.

Convolution and pooling both visit a (kh, kw) window at every output position. Instead of a Python loop
over output positions, these helpers loop over the kh * kw *kernel offsets*: at offset (i, j) the window
element of every output position is one strided slice of the padded input. A convolution is then one
matrix product over the stacked slices (im2col), and the transpose of a convolution scatters a matrix
product back with the same slices (col2im).

Padding is always given as four integers ``(top, bottom, left, right)``.
"""
from .backend import array_module


def pair(value, what):
    """``k`` or ``(kh, kw)`` as a tuple of two positive integers."""
    values = (value, value) if isinstance(value, int) else tuple(value)
    if len(values) != 2 or not all(isinstance(v, int) and v > 0 for v in values):
        raise ValueError(f"{what} must be a positive integer or a pair of them, got {value!r}")
    return values


def padding4(value):
    """``p``, ``(ph, pw)`` or ``(top, bottom, left, right)`` as four non-negative integers."""
    if isinstance(value, int):
        values = (value,) * 4
    elif len(value) == 2:
        values = (value[0], value[0], value[1], value[1])
    else:
        values = tuple(value)
    if len(values) != 4 or not all(isinstance(v, int) and v >= 0 for v in values):
        raise ValueError(
            f"padding must be p, (ph, pw) or (top, bottom, left, right) of non-negative integers, got {value!r}"
        )
    return values


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


def im2col(x, kernel, stride, padding):
    """Stack every window of ``x`` as a column.

    Returns
    -------
    cols : array of shape (N, C * kh * kw, Ho * Wo)
        ``cols[n, (c, i, j), (y, x)] = x_padded[n, c, y * sh + i, x * sw + j]``.
    out_size : tuple
        ``(Ho, Wo)``.
    """
    n, c, h, w = x.shape
    out_size = output_size((h, w), kernel, stride, padding)
    xpad = pad(x, padding)
    cols = array_module(x).empty((n, c, kernel[0], kernel[1]) + out_size, dtype=x.dtype)
    for i, j, rows, columns in offsets(kernel, stride, out_size):
        cols[:, :, i, j] = xpad[:, :, rows, columns]
    return cols.reshape(n, c * kernel[0] * kernel[1], out_size[0] * out_size[1]), out_size


def col2im(cols, shape, kernel, stride, padding):
    """The adjoint of :func:`im2col`: add every column entry back to the input position it was read from.

    Parameters
    ----------
    cols : array of shape (N, C * kh * kw, Ho * Wo)
    shape : tuple
        ``(N, C, H, W)``, the shape of the input of :func:`im2col`.
    """
    n, c, h, w = shape
    top, bottom, left, right = padding
    out_size = output_size((h, w), kernel, stride, padding)
    cols = cols.reshape((n, c, kernel[0], kernel[1]) + out_size)
    xpad = array_module(cols).zeros((n, c, h + top + bottom, w + left + right), dtype=cols.dtype)
    for i, j, rows, columns in offsets(kernel, stride, out_size):
        xpad[:, :, rows, columns] += cols[:, :, i, j]
    return crop(xpad, padding)
