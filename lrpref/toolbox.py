"""The LRP Toolbox 1.3.1 (Lapuschkin et al., JMLR 2016): its pool rules, its alpha-beta denominators, its layout.

The Toolbox's ``Sequential.lrp(R, lrp_var, param)`` gives every module the same variant, and each module
applies it its own way (``python/modules/*.py`` at ``sebastian-lapuschkin/lrp_toolbox`` 1c9efda; read, not
copied). On Linear and Convolution the variants are lrpref's rules with Toolbox numbers (see
:data:`lrpref.conventions.TOOLBOX`); the pools need rules of their own, defined here:

- ``simple``: on a ``SumPool`` (:class:`~lrpref.layers.SumPool2d`) :class:`SumPoolEpsilon` with ``1e-12`` on the
  window sum; on a ``MaxPool`` winner-take-all, ties split equally;
- ``epsilon``: :class:`SumPoolEpsilon` with epsilon on the window sum; winner-take-all;
- ``alphabeta``: :class:`SumPoolAlphaBeta` (``z+ + 1e-16``, ``z- - 2e-16``); winner-take-all;
- ``flat`` and ``ww``: :class:`PoolFlat` on both, each window's relevance spread evenly over its inputs.

Every weight of a sum pool's window is 1 in these rules: the Toolbox divides its forward scale
``1 / sqrt(kh * kw)`` out again before it stabilises, so its stabilizers act on the plain window sum.

A Toolbox bug not copied: on inputs of both signs, its ``SumPool._alphabeta_lrp`` computes the beta term
as ``beta * Zn * (R / Zsn) * R``, quadratic in R. :class:`SumPoolAlphaBeta` uses ``beta * Zn / Zsn * R``,
the rule its docstring cites (Bach et al. 2015, Eq. 60) and its own ``_alphabeta_lrp_slow``. Pool inputs
after a ReLU are non-negative, where the beta term is 0 and both agree.

:func:`network` builds an lrpref network from a Toolbox network's description (NHWC maps, kernels
``(h, w, in, out)``, linear weights ``(in, out)``, flattening in ``(h, w, c)`` order).
"""
from dataclasses import dataclass

import numpy as np

from .backend import array_module
from .layers import AvgPool2d, Conv2d, Dense, Flatten, MaxPool2d, ReLU, SumPool2d
from .network import Sequential
from .rules import Rule, negative, positive
from .stabilizer import Stabilizer

SUMPOOL_STABILIZER = 1e-12   # the Toolbox's SumPool._simple_lrp: ``Zs + 1e-12 * sign(Zs)``


@dataclass(frozen=True)
class AlphaBetaStabilizer(Stabilizer):
    """The Toolbox's alpha-beta denominators: ``z + epsilon`` where ``z >= 0``, ``z - negative`` where ``z < 0``.

    The Toolbox adds ``1e-16`` to ``z+`` and computes ``z-`` as ``Y - (z+ + 1e-16) - 1e-16``, which is
    ``z- - 2e-16`` up to the rounding of that difference (``Linear``/``Convolution``/``SumPool._alphabeta_lrp``).
    ``z+ >= 0`` and ``z- <= 0`` always; a ``z-`` of exactly 0 gets ``+epsilon``, where every numerator is 0.
    """

    epsilon: float = 1e-16
    negative: float = 2e-16

    def __call__(self, z):
        return array_module(z).where(z >= 0, z + self.epsilon, z - self.negative)

    def __str__(self):
        return f"z+ + {self.epsilon:g}, z- - {self.negative:g}"


@dataclass
class SumPoolEpsilon(Rule):
    """The Toolbox's ``simple`` and ``epsilon`` on a pool: ``R_j = sum_k a_j / (sum_{i in k} a_i + e sign) R_k``.

    Every weight of window k is 1, so the stabilizer acts on the window sum (``SumPool._simple_lrp``: ``1e-12``;
    ``_epsilon_lrp``: epsilon). The sign is taken with ``sign(0) = +1``.
    """

    layer_types = (AvgPool2d,)
    epsilon: Stabilizer = SUMPOOL_STABILIZER

    def relprop(self, layer, a, R, out=None):
        z = self.epsilon(layer.window_sum(a))    # step 1: z_k = sum of window k + e sign
        s = R / z                                 # step 2: s_k = R_k / z_k
        c = layer.spread(s, a.shape)              # step 3: c_j = sum of s_k over the windows j is in
        return a * c, None                        # step 4: R_j = a_j c_j


@dataclass
class SumPoolAlphaBeta(Rule):
    """Alpha-beta on a pool, every weight 1: ``R_j = sum_k (alpha a+_j / z+_k - beta a-_j / z-_k) R_k``.

    ``z+_k`` and ``z-_k`` are the sums of the positive and negative inputs of window k, stabilised as the Toolbox
    does (:class:`AlphaBetaStabilizer`). Without its quadratic beta term (see the module docstring).
    """

    layer_types = (AvgPool2d,)
    alpha: float = 2.0
    beta: float = 1.0
    stabilizer: Stabilizer = AlphaBetaStabilizer()

    def __post_init__(self):
        super().__post_init__()
        if abs(self.alpha - self.beta - 1.0) > 1e-12:
            raise ValueError(f"alpha - beta must equal 1, got alpha={self.alpha:g}, beta={self.beta:g}")

    def relprop(self, layer, a, R, out=None):
        a_pos, a_neg = positive(a), negative(a)
        z_pos = self.stabilizer(layer.window_sum(a_pos))       # step 1: z+_k, z-_k
        z_neg = self.stabilizer(layer.window_sum(a_neg))
        s_pos, s_neg = self.alpha * R / z_pos, -self.beta * R / z_neg       # step 2
        c_pos, c_neg = layer.spread(s_pos, a.shape), layer.spread(s_neg, a.shape)   # step 3
        return a_pos * c_pos + a_neg * c_neg, None             # step 4


@dataclass
class PoolFlat(Rule):
    """The Toolbox's ``flat`` and ``ww`` on pools: each window's relevance spread evenly over its inputs.

    ``R_j = sum_k [j in window k] / n_k R_k`` with ``n_k`` the number of inputs of window k (inside the image):
    the flat rule with every weight and input 1 (``MaxPool._flat_lrp``, ``SumPool._flat_lrp``; ``_ww_lrp`` is
    ``_flat_lrp`` there).
    """

    layer_types = (MaxPool2d, AvgPool2d)

    def relprop(self, layer, a, R, out=None):
        ones = array_module(a).ones_like(a)
        z = layer.window_sum(ones)        # step 1: z_k = number of inputs of window k
        s = R / z                         # step 2
        c = layer.spread(s, a.shape)      # step 3
        return ones * c, None             # step 4: R_j = 1 * c_j


# -- the Toolbox's networks -------------------------------------------------------------------------------------

KINDS = ("conv", "relu", "max", "sum", "flat", "lin")
ARGUMENTS = {"conv": "kh, kw, cin, cout, stride", "relu": "", "max": "k, stride", "sum": "k, stride", "flat": "",
             "lin": "n_out"}   # what follows each kind in its entry of ``layers``


def network(layers, params, input_shape_hwc):
    """An lrpref network (NCHW) equal to a Toolbox ``Sequential``.

    Parameters
    ----------
    layers : list
        One entry per Toolbox module: ``["conv", kh, kw, cin, cout, stride]`` (valid padding), ``["relu"]``,
        ``["max", k, stride]``, ``["sum", k, stride]``, ``["flat"]``, ``["lin", n_out]``.
    params : mapping
        ``params[i] = (W, B)`` for module i: kernels ``(kh, kw, cin, cout)``, linear weights ``(in, out)``.
    input_shape_hwc : (H, W, C)

    Returns
    -------
    Network
        Module i of the Toolbox is layer i; inputs and relevances of maps are NCHW (``x.transpose(0, 3, 1, 2)``).
        A Linear after ``flat`` gets its rows reordered from the Toolbox's ``(h, w, c)`` flattening to ``(c, h, w)``.
    """
    if len(input_shape_hwc) != 3:
        raise ValueError(f"input_shape_hwc must be (H, W, C), got {tuple(input_shape_hwc)}")
    height, width, channels = input_shape_hwc
    shape, stack = (1, channels, height, width), []   # the shape of module i's input (one sample)
    for i, (kind, *args) in enumerate(layers):
        if kind not in KINDS:
            raise ValueError(f"Toolbox module {i}: unknown kind {kind!r}, expected one of {KINDS}")
        wanted = ARGUMENTS[kind].split(", ") if ARGUMENTS[kind] else []
        if len(args) != len(wanted):
            raise ValueError(f"Toolbox module {i}: expected [{', '.join([repr(kind)] + wanted)}], got "
                             f"{[kind] + list(args)}")
        if kind in ("conv", "lin"):
            try:
                W, B = (np.asarray(p, dtype=np.float64) for p in params[i])
            except (KeyError, IndexError):
                raise ValueError(f"Toolbox module {i} ({kind}): params has no entry {i}, expected (W, B)") from None
            expected = tuple(args[:4]) if kind == "conv" else (int(np.prod(shape[1:])), args[0])
            if W.shape != expected:
                raise ValueError(f"Toolbox module {i} ({kind}): weights of shape {W.shape}, expected {expected}")
        if kind == "conv":
            layer = Conv2d(W.transpose(3, 2, 0, 1), B, stride=args[4])
        elif kind == "lin":
            if len(shape) == 4:   # after "flat": the Toolbox's rows are (h, w, c), lrpref's (c, h, w)
                W = W.reshape(shape[2], shape[3], shape[1], -1).transpose(2, 0, 1, 3).reshape(W.shape)
            layer = Dense(W.T, B)
        elif kind in ("max", "sum"):
            layer = (MaxPool2d if kind == "max" else SumPool2d)(args[0], args[1])
        else:
            layer = ReLU() if kind == "relu" else Flatten()
        if kind == "lin":
            shape = (1, args[0])
        elif kind != "flat":   # after "flat" the map's shape is kept: the next Linear reorders its rows by it
            shape = layer.forward(np.zeros(shape)).shape
        stack.append(layer)
    return Sequential(stack, input_shape=(channels, height, width))
