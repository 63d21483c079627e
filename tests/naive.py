"""Formula-literal slow twins of lrpref's layers and rules, used only by the tests.

Layers become explicit matrices built by index loops (no im2col, no strided slices): a linear layer maps a
flattened sample ``a`` (I,) to ``M @ a + b`` with ``M`` of shape (J, I). Rules are the per-neuron formulas of
their papers, written on those matrices for one sample at a time, with contributions ``z_ij = a_i w_ij``.
Nothing here imports lrpref's layer or rule code.
"""
import itertools

import numpy as np


# -- layers as matrices -------------------------------------------------------------------------------------------

def out_size(n, k, s, before, after):
    return (n + before + after - k) // s + 1


def conv_matrix(weight, stride, padding, in_shape):
    """``M[(o, y, x), (c, h, w)] = W[o, c, i, j]`` where ``h = y*sh + i - top``, ``w = x*sw + j - left``."""
    n_out, n_in, kh, kw = weight.shape
    _, height, width = in_shape
    (sh, sw), (top, bottom, left, right) = stride, padding
    oh, ow = out_size(height, kh, sh, top, bottom), out_size(width, kw, sw, left, right)
    m = np.zeros((n_out, oh, ow, n_in, height, width))
    connected = np.zeros(m.shape, dtype=bool)
    for o, y, x, c, i, j in itertools.product(range(n_out), range(oh), range(ow), range(n_in), range(kh), range(kw)):
        h, w = y * sh + i - top, x * sw + j - left
        if 0 <= h < height and 0 <= w < width:
            m[o, y, x, c, h, w] += weight[o, c, i, j]
            connected[o, y, x, c, h, w] = True
    size_out, size_in = n_out * oh * ow, n_in * height * width
    return m.reshape(size_out, size_in), connected.reshape(size_out, size_in), (n_out, oh, ow)


def conv_bias(bias, out_shape):
    return np.repeat(bias, out_shape[1] * out_shape[2])


def window_members(in_shape, kernel, stride, padding):
    """For every output (c, y, x): the flat input indices of its window inside the image, and the window size."""
    channels, height, width = in_shape
    (kh, kw), (sh, sw), (top, bottom, left, right) = kernel, stride, padding
    oh, ow = out_size(height, kh, sh, top, bottom), out_size(width, kw, sw, left, right)
    windows = []
    for c, y, x in itertools.product(range(channels), range(oh), range(ow)):
        members = [c * height * width + h * width + w
                   for i, j in itertools.product(range(kh), range(kw))
                   for h, w in [(y * sh + i - top, x * sw + j - left)]
                   if 0 <= h < height and 0 <= w < width]
        windows.append(members)
    return windows, (channels, oh, ow)


def avgpool_matrix(in_shape, kernel, stride, padding, count_include_pad=True):
    windows, out_shape = window_members(in_shape, kernel, stride, padding)
    m = np.zeros((len(windows), int(np.prod(in_shape))))
    for j, members in enumerate(windows):
        m[j, members] = 1.0 / (kernel[0] * kernel[1] if count_include_pad else len(members))
    return m, out_shape


def adaptive_matrix(in_shape, output_size):
    """PyTorch's adaptive average pool: rows ``floor(i H / h)`` to ``ceil((i + 1) H / h)``."""
    channels, height, width = in_shape
    oh, ow = output_size
    m = np.zeros((channels, oh, ow, channels, height, width))
    for c, y, x in itertools.product(range(channels), range(oh), range(ow)):
        r0, r1 = int(np.floor(y * height / oh)), int(np.ceil((y + 1) * height / oh))
        c0, c1 = int(np.floor(x * width / ow)), int(np.ceil((x + 1) * width / ow))
        m[c, y, x, c, r0:r1, c0:c1] = 1.0 / ((r1 - r0) * (c1 - c0))
    return m.reshape(channels * oh * ow, -1), (channels, oh, ow)


def maxpool_forward(a, in_shape, kernel, stride, padding):
    windows, out_shape = window_members(in_shape, kernel, stride, padding)
    return np.array([a[members].max() for members in windows]), windows, out_shape


# -- the stabilizer, from its fields --------------------------------------------------------------------------

def stabilize(z, stabilizer, z_batch=None):
    """``z + direction * (epsilon * scale + offset)``; ``z_batch`` is the whole batch's z for ``relative="batch"``."""
    scale = 1.0
    if stabilizer.relative == "batch":
        scale = np.sqrt(np.mean(np.asarray(z_batch) ** 2))
    elif stabilizer.relative == "sample":
        scale = np.sqrt(np.mean(z ** 2))
    step = stabilizer.epsilon * scale + stabilizer.offset
    direction = np.where(z >= 0, 1.0, -1.0) if stabilizer.sign_aware else 1.0
    return z + direction * step


# -- rules, per sample ---------------------------------------------------------------------------------------------

def rule_general(a, M, b, R, rho, stabilizer, z_batch=None, ones_input=False):
    """The tutorial's general rule ``R_i = sum_j a_i rho(w_ij) / incr(sum_0,i a_i rho(w_ij)) R_j``.

    Returns ``(R_in, R_bias)`` with ``R_bias = sum_j rho(b_j) / incr(z_j) R_j``.
    """
    a = np.ones_like(a) if ones_input else a
    z_ij = a[None, :] * rho(M)
    rb = np.zeros(M.shape[0]) if b is None else rho(b)
    z_j = stabilize(z_ij.sum(axis=1) + rb, stabilizer, z_batch)
    return (z_ij / z_j[:, None] * R[:, None]).sum(axis=0), (rb / z_j * R).sum()


def rule_alpha_beta(a, M, b, R, alpha, beta, stabilizer):
    """Bach et al. 2015: ``R_i = sum_j (alpha z+_ij / z+_j - beta z-_ij / z-_j) R_j``, ``z+_ij = max(0, a_i w_ij)``."""
    z = a[None, :] * M
    b = np.zeros(M.shape[0]) if b is None else b
    zp, zn = np.maximum(z, 0), np.minimum(z, 0)
    dp = stabilize(zp.sum(axis=1) + np.maximum(b, 0), stabilizer)
    dn = stabilize(zn.sum(axis=1) + np.minimum(b, 0), stabilizer)
    R_in = (alpha * zp / dp[:, None] - beta * zn / dn[:, None]) * R[:, None]
    R_bias = (alpha * np.maximum(b, 0) / dp - beta * np.minimum(b, 0) / dn) * R
    return R_in.sum(axis=0), R_bias.sum()


def rule_generalized_gamma(a, M, b, b_mask, R, gamma, stabilizer):
    """Per output j with ``z_j = sum_i a_i w_ij + b_j`` (``b_mask``: the bias deciding the branch):

    ``z_j > 0``: ``q_ij = z_ij + gamma max(0, z_ij)``, ``R_i = sum_j q_ij / incr(sum_i q_ij + b_j + gamma b+_j) R_j``;
    ``z_j < 0``: the same with ``min``; ``z_j = 0``: nothing.
    """
    z = a[None, :] * M
    bias = np.zeros(M.shape[0]) if b is None else b
    z_j = z.sum(axis=1) + (np.zeros(M.shape[0]) if b_mask is None else b_mask)
    R_in, R_bias = np.zeros(M.shape[1]), 0.0
    for j in range(M.shape[0]):
        part = np.maximum if z_j[j] > 0 else np.minimum
        if z_j[j] == 0:
            continue
        q = z[j] + gamma * part(z[j], 0)
        qb = bias[j] + gamma * part(bias[j], 0)
        d = stabilize(np.array([q.sum() + qb]), stabilizer)[0]
        R_in += q / d * R[j]
        R_bias += qb / d * R[j]
    return R_in, R_bias


def rule_zbox(a, M, R, low, high, stabilizer):
    """``R_i = sum_j (a_i w_ij - l_i w+_ij - h_i w-_ij) / z_j R_j``."""
    z = a[None, :] * M - low[None, :] * np.maximum(M, 0) - high[None, :] * np.minimum(M, 0)
    z_j = stabilize(z.sum(axis=1), stabilizer)
    return (z / z_j[:, None] * R[:, None]).sum(axis=0)


def rule_flat(connected, R, stabilizer):
    """``R_i = sum_j [i feeds j] / incr(fan-in of j) R_j``."""
    ones = connected.astype(float)
    return (ones / stabilize(ones.sum(axis=1), stabilizer)[:, None] * R[:, None]).sum(axis=0)


def rule_winner_take_all(a, windows, R, first=False):
    """All of R_j to the maxima of window j, split equally among ties (or only to the first, in row-major order)."""
    R_in = np.zeros_like(a)
    for j, members in enumerate(windows):
        values = a[members]
        winners = [m for m, v in zip(members, values) if v == values.max()]
        winners = winners[:1] if first else winners
        for m in winners:
            R_in[m] += R[j] / len(winners)
    return R_in


def rule_proportional_split(h_main, h_skip, R, stabilizer):
    z = stabilize(h_main + h_skip, stabilizer)
    return h_main * R / z, h_skip * R / z


# -- the LRP Toolbox 1.3.1's rules, as its modules write them (python/modules/*.py, read, not copied) ------------

TOOLBOX_VARIANTS = ("simple", "epsilon", "alphabeta", "flat", "ww")


def toolbox_sign(z):
    """The Toolbox's ``(z >= 0) * 2 - 1``: the sign with sign(0) = +1."""
    return (z >= 0) * 2.0 - 1.0


def toolbox_weighted(variant, param, a, M, b, R, connected):
    """``Linear``/``Convolution._<variant>_lrp`` for one sample, with contributions ``z_ij = a_i w_ij``:

    simple/epsilon: ``R_i = sum_j z_ij / (Y_j + e sign(Y_j)) R_j`` (e = 1e-16 / epsilon); flat: ``1 / fan-in`` over
    the ``connected`` inputs;
    ww: ``w_ij^2 / sum_i w_ij^2`` (no bias, no stabilizer); alphabeta (beta = 1 - alpha):
    ``Zsp = sum z+_ij + b+ + 1e-16``, ``Zsn = Y - Zsp - 1e-16``,
    ``R_i = sum_j (alpha z+_ij / Zsp + beta z-_ij / Zsn) R_j``.
    """
    z = a[None, :] * M
    y = z.sum(axis=1) + b
    if variant in ("simple", "epsilon"):
        e = 1e-16 if variant == "simple" else param
        return (z / (y + e * toolbox_sign(y))[:, None] * R[:, None]).sum(axis=0)
    if variant in ("flat", "ww"):
        q = connected.astype(float) if variant == "flat" else M ** 2
        return (q / q.sum(axis=1)[:, None] * R[:, None]).sum(axis=0)
    alpha, beta = param, 1.0 - param
    zp = z * (z > 0)
    zsp = zp.sum(axis=1) + b * (b > 0) + 1e-16
    R_in = alpha * (zp / zsp[:, None] * R[:, None]).sum(axis=0)
    if beta != 0:
        zsn = y - zsp - 1e-16
        R_in = R_in + beta * ((z - zp) / zsn[:, None] * R[:, None]).sum(axis=0)
    return R_in


def toolbox_sumpool(variant, param, a, windows, R):
    """``SumPool._<variant>_lrp`` for one sample, on the window sums ``Zs_k = sum_{i in k} a_i``:

    simple/epsilon: ``R_i = sum_k a_i / (Zs_k + e sign(Zs_k)) R_k`` (e = 1e-12 / epsilon); flat/ww: ``R_k / n_k``
    to each of the n_k inputs; alphabeta: ``alpha a+_i / (Zs+_k + 1e-16) R_k + beta a-_i / (Zs_k - Zs+_k - 2e-16) R_k``
    with the beta term linear in R (the Toolbox's ``_alphabeta_lrp_slow``; its fast version multiplies it by R
    once more).
    """
    R_in = np.zeros_like(a)
    for k, members in enumerate(windows):
        x = a[members]
        if variant in ("simple", "epsilon"):
            zs = x.sum()
            R_in[members] += x / (zs + (1e-12 if variant == "simple" else param) * toolbox_sign(zs)) * R[k]
        elif variant in ("flat", "ww"):
            R_in[members] += R[k] / len(members)
        else:
            alpha, beta = param, 1.0 - param
            xp_ = x * (x > 0)
            zsp = xp_.sum() + 1e-16
            R_in[members] += alpha * xp_ / zsp * R[k] + beta * (x - xp_) / (x.sum() - zsp - 1e-16) * R[k]
    return R_in


def toolbox_maxpool(variant, a, windows, R):
    """``MaxPool._<variant>_lrp``: flat/ww spread ``R_k`` evenly over window k; every other variant gives it to
    the window's maxima, split equally among ties."""
    if variant in ("flat", "ww"):
        return toolbox_sumpool("flat", None, a, windows, R)
    return rule_winner_take_all(a, windows, R)
