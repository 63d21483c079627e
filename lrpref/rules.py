"""LRP rules: how one layer hands the relevance of its output down to its input(s).

Every rule has ``relprop(layer, a, R, out=None) -> (R_in, R_bias)``:

- ``a``: the layer's input from the forward pass (a tuple for :class:`~lrpref.layers.Add`);
- ``R``: the relevance of the layer's output;
- ``out``: the layer's output from the forward pass, where the caller has it (``explain`` does); rules whose
  step 1 is the unmodified forward pass (LRP-0, epsilon, the branch choice of gamma, the max of a pool) take
  it instead of computing it again, and recompute it when it is ``None``;
- ``R_in``: the relevance of its input(s);
- ``R_bias``: per sample, the relevance kept by the bias neuron (``None`` where there is none), for the
  conservation report.

Each rule is the four steps of the Montavon tutorial (`montavon_and_toolbox.md` §1.2)::

    z = incr(forward with rho(w), rho(b))   # step 1
    s = R / z                               # step 2
    c = transpose(s) with rho(w)            # step 3
    R_in = a * c                            # step 4

Two families share their four lines:

- :class:`ZRule`, the tutorial's general rule ``R_j = sum_k a_j rho(w_jk) / incr(sum_0,j a_j rho(w_jk)) R_k``
  (the bias is the weight of a constant input 1), of which LRP-0, LRP-epsilon, the original LRP-gamma, flat,
  w-square and Norm are choices of ``rho``, ``incr`` and the input;
- :class:`SignSplitRule`, the rules that split inputs and weights by sign as Zennit 1.0 does
  (`peer_libraries.md` §1.3 and (b)): z-plus, alpha-beta and the generalized gamma. Each is a list of
  branches ``(w_pos, w_neg, b, R_branch)``: positive inputs meet ``w_pos``, negative inputs ``w_neg``.

Notation: ``x+ = max(x, 0)``, ``x- = min(x, 0)``. Numbers given as ``stabilizer`` or ``epsilon`` are Zennit's
sign-aware ``z + e * sign(z)``; see :mod:`lrpref.stabilizer` for the other conventions.
"""
from dataclasses import dataclass, field, fields

import numpy as np

from .backend import array_module, constant, to_host
from .checks import boolean, finite, number, real_array
from .layers import AdaptiveAvgPool2d, Add, AvgPool2d, BatchNorm2d, Conv2d, Dense, Dropout, Flatten, MaxPool2d, \
    ReLU, ZeroPad2d
from .stabilizer import Stabilizer
from .windows import output_size

WEIGHTED = (Dense, Conv2d)
POOLS = (AvgPool2d, AdaptiveAvgPool2d)


def positive(x):
    return array_module(x).maximum(x, 0)


def negative(x):
    return array_module(x).minimum(x, 0)


class Rule:
    """Base class of the rules. ``layer_types`` lists the layer classes a rule can be applied to."""

    layer_types = ()

    def __post_init__(self):
        for name in ("stabilizer", "epsilon"):
            if hasattr(self, name):
                setattr(self, name, Stabilizer.ensure(getattr(self, name)))
        for name in ("gamma", "alpha", "beta"):
            if hasattr(self, name):
                setattr(self, name, number(getattr(self, name), name, low=0.0))
        for f in fields(self):
            if f.type is bool:
                setattr(self, f.name, boolean(getattr(self, f.name), f"{type(self).__name__} {f.name}"))

    def relprop(self, layer, a, R, out=None):
        raise NotImplementedError

    def bias(self, layer):
        """The layer's bias, or ``None`` where the rule was asked to ignore it (Zennit's ``zero_params='bias'``)."""
        return None if getattr(self, "zero_bias", False) else layer.bias

    def __str__(self):
        params = ", ".join(f"{f.name}={_show(getattr(self, f.name))}" for f in fields(self))
        return f"{type(self).__name__}({params})"


def _show(value):
    shape = getattr(value, "shape", ())
    return f"array{tuple(shape)}" if shape else str(value)


# ---------------------------------------------------------------------------------------------------------------
# The general rule of the tutorial: rho, incr and the input choose the rule.
# ---------------------------------------------------------------------------------------------------------------

class ZRule(Rule):
    """``R_j = sum_k a_j rho(w_jk) / incr(sum_0,j a_j rho(w_jk)) R_k`` (tutorial §1.2; Montavon et al. 2019)."""

    layer_types = WEIGHTED + POOLS

    def rho(self, p):
        """The weight transformation; the identity here."""
        return p

    def rho_bias(self, b):
        """The bias transformation: ``rho`` itself, unless a rule says otherwise."""
        return self.rho(b)

    def incr(self, z):
        return self.stabilizer(z)

    def activation(self, a):
        """The input the rule sees: the activation itself, or ones for the flat and w-square rules."""
        return a

    def plain(self):
        """Whether step 1's sum is the layer's own output (rho, bias and input unchanged)."""
        return False

    def relprop(self, layer, a, R, out=None):
        a = self.activation(a)
        w, b = self.rho(layer.weight), self.bias(layer)
        b = None if b is None else self.rho_bias(b)
        forward = out if out is not None and self.plain() else layer.linear(a, w, b)
        z = self.incr(forward)                        # step 1: z_k = incr(sum_j a_j rho(w_jk) + rho(b_k))
        s = R / z                                     # step 2: s_k = R_k / z_k
        c = layer.transpose(s, w, a.shape)            # step 3: c_j = sum_k rho(w_jk) s_k
        return a * c, layer.bias_relevance(s, b)      # step 4: R_j = a_j c_j


@dataclass
class LRP0(ZRule):
    """LRP-0: ``R_j = sum_k a_j w_jk / (z_k + stabilizer) R_k`` (Bach et al. 2015).

    Conservative up to the stabilizer and the bias.
    """

    stabilizer: Stabilizer = 1e-6
    zero_bias: bool = False

    def plain(self):
        return not self.zero_bias


@dataclass
class Epsilon(ZRule):
    """LRP-epsilon: ``R_j = sum_k a_j w_jk / (z_k + epsilon sign(z_k)) R_k`` (Bach et al. 2015; Zennit ``Epsilon``).

    The epsilon term absorbs weak or contradictory relevance. In the tutorial convention it is
    ``epsilon * rms(z) + 1e-9``, see :mod:`lrpref.stabilizer`.
    """

    epsilon: Stabilizer = 1e-6
    zero_bias: bool = False

    def incr(self, z):
        return self.epsilon(z)

    def plain(self):
        return not self.zero_bias


@dataclass
class Norm(ZRule):
    """Proportional split through a layer without parameters (average pools): ``R_j = a_j / z_k * R_k * w_jk``.

    The averaging weights cancel between numerator and denominator (Zennit ``Norm``).
    """

    layer_types = POOLS
    stabilizer: Stabilizer = 1e-6

    def plain(self):
        return True


@dataclass
class OriginalGamma(ZRule):
    """LRP-gamma as in the tutorial: ``rho(w) = w + gamma w+`` on weights *and* bias, one formula for every output.

    Montavon et al. 2019; tutorial §1.2-1.3. Meant for non-negative inputs; for inputs of both signs and
    negative outputs see the generalized :class:`Gamma`. ``gamma_bias=False`` leaves the bias as it is
    (Captum's ``GammaRule``).
    """

    layer_types = WEIGHTED
    gamma: float = 0.25
    stabilizer: Stabilizer = 1e-6
    zero_bias: bool = False
    gamma_bias: bool = True

    def rho(self, p):
        return p + self.gamma * positive(p)

    def rho_bias(self, b):
        return self.rho(b) if self.gamma_bias else b


@dataclass
class Flat(ZRule):
    """Flat rule: every weight 1, every input 1, no bias: ``R_j = sum_k 1 / z_k R_k`` with z_k the fan-in of k.

    Lapuschkin et al. 2019; Zennit ``Flat`` (inputs inside zero padding do not count).
    """

    layer_types = WEIGHTED
    stabilizer: Stabilizer = 1e-6
    zero_bias = True

    def rho(self, p):
        return array_module(p).ones_like(p)

    def activation(self, a):
        return array_module(a).ones_like(a)


@dataclass
class WSquare(ZRule):
    """w-square rule: ``R_j = sum_k w_jk^2 / (sum_j w_jk^2 + b_k^2) R_k`` (Montavon et al. 2017; Zennit ``WSquare``)."""

    layer_types = WEIGHTED
    stabilizer: Stabilizer = 1e-6
    zero_bias: bool = False

    def rho(self, p):
        return p * p

    def activation(self, a):
        return array_module(a).ones_like(a)


@dataclass
class OriginalZPlus(ZRule):
    """z-plus as Montavon et al. 2017 write it for non-negative inputs: ``rho(w) = w+``, the bias unchanged.

    ``R_j = sum_k a_j w+_jk / incr(sum_j a_j w+_jk + b_k) R_k``; ``zero_bias`` drops the bias, ``ones_input``
    replaces the input by ones. This is the rule of the LRP-for-ResNet code (Otsuki et al. 2024), which
    applies it with ``ones_input`` to the first convolution and with ``zero_bias`` to the classifier. For
    inputs of both signs see the generalized :class:`ZPlus`.
    """

    layer_types = WEIGHTED
    stabilizer: Stabilizer = 1e-6
    zero_bias: bool = False
    ones_input: bool = False

    def rho(self, p):
        return positive(p)

    def rho_bias(self, b):
        return b

    def activation(self, a):
        return array_module(a).ones_like(a) if self.ones_input else a


@dataclass
class AverageMaxPool(Norm):
    """Max pooling treated as average pooling in the backward pass (tutorial §1.3).

    The forward pass keeps the maxima; relevance is split in proportion to the inputs of average-pool
    windows: the max pool's own windows, or ``kernel_size`` x ``kernel_size`` windows with that stride and
    no padding (the LRP-for-ResNet code uses 2 on torchvision's 3x3 stem pool).
    """

    layer_types = (MaxPool2d,)
    kernel_size: int = None

    def relprop(self, layer, a, R, out=None):   # ``out`` is the max pool's; the average pool's is recomputed
        pool = layer.as_average() if self.kernel_size is None else AvgPool2d(self.kernel_size)
        if output_size(a.shape[2:], pool.kernel_size, pool.stride, pool.padding) != tuple(R.shape[2:]):
            raise ValueError(
                f"average pooling {self.kernel_size}x{self.kernel_size} in place of {layer!r} gives another output "
                f"size than the max pool's {tuple(R.shape[2:])}; use the max pool's own windows (maxpool='average')"
            )
        return super().relprop(pool, a, R)


# ---------------------------------------------------------------------------------------------------------------
# Rules that split inputs and weights by sign (Zennit 1.0).
# ---------------------------------------------------------------------------------------------------------------

class SignSplitRule(Rule):
    """Base of z-plus, alpha-beta and the generalized gamma.

    A rule is a list of branches ``(rho_pos, rho_neg, b, R_branch)``. In each branch positive inputs ``a+``
    meet the weights ``rho_pos(w)`` and negative inputs ``a-`` meet ``rho_neg(w)``; the branch has its own bias
    and its own share of R. The branches are stacked as extra output channels, so that step 1 is one matrix
    product over all of them (two with negative inputs) and step 3 one transpose, which sums them. A branch
    whose share of R is zero everywhere is left out (under a ReLU, gamma's branch for negative outputs), and
    so are the terms of negative inputs where there are none. The stabilizer acts on each entry alone
    (a stabilizer relative to the RMS of z is refused: which z would it be?).
    """

    layer_types = WEIGHTED

    def __post_init__(self):
        super().__post_init__()
        if self.stabilizer.relative is not None:
            raise ValueError(f"{type(self).__name__} takes an absolute stabilizer, got one relative to rms(z)")

    def branches(self, layer, a, R, out, relu_follows=False):
        raise NotImplementedError

    def relprop(self, layer, a, R, out=None, mixed=None, relu_follows=False):
        """The four steps over the stacked branches.

        ``mixed``: whether ``a`` has negative entries (``None``: look; :func:`lrpref.explain` knows it from
        the forward pass, without a device synchronisation per layer). ``relu_follows``: the output is read
        only by ReLUs, so relevance at negative outputs is zero and branches that only carry it are left out.
        """
        xp, w = array_module(a), layer.weight
        mixed = bool((a < 0).any()) if mixed is None else mixed   # after a ReLU: no negative inputs, no terms
        a_pos, a_neg = (positive(a), negative(a)) if mixed else (a, None)
        parts = self.branches(layer, a, R, out, relu_follows)
        w_pos = _stack([rho_pos(w) for rho_pos, _, _, _ in parts], 0)
        w_neg = _stack([rho_neg(w) for _, rho_neg, _, _ in parts], 0) if mixed else None
        biases = [b for _, _, b, _ in parts]
        b = None if all(b is None for b in biases) else _stack([xp.zeros(w.shape[0], w.dtype) if b is None else b
                                                                 for b in biases], 0)
        R_parts = _stack([R_branch for _, _, _, R_branch in parts], 1)
        z = layer.linear(a_pos, w_pos, b) + (layer.linear(a_neg, w_neg) if mixed else 0.0)   # step 1
        s = R_parts / self.stabilizer(z)                                                     # step 2
        c_pos = layer.transpose(s, w_pos, a.shape)                                           # step 3
        c_neg = layer.transpose(s, w_neg, a.shape) if mixed else None
        R_in = a_pos * c_pos if c_neg is None else a_pos * c_pos + a_neg * c_neg            # step 4
        return R_in, layer.bias_relevance(s, b)


def _stack(arrays, axis):
    """The branches' arrays side by side along ``axis`` (the output channels); one array as it is."""
    return arrays[0] if len(arrays) == 1 else array_module(*arrays).concatenate(arrays, axis=axis)


def _part(p, sign):
    return None if p is None else (positive(p) if sign > 0 else negative(p))


@dataclass
class AlphaBeta(SignSplitRule):
    """Alpha-beta: ``R_j = sum_k (alpha z+_jk / z+_k - beta z-_jk / z-_k) R_k`` with ``alpha - beta = 1``.

    ``z+_k = sum(a+ w+) + sum(a- w-) + b+`` and ``z-_k = sum(a+ w-) + sum(a- w+) + b-`` (Bach et al. 2015;
    Zennit ``AlphaBeta``, the bias counted once per part). Both parts are computed for every output.
    ``full_bias`` puts the whole bias ``b = b+ + b-`` into both denominators, as iNNvestigate 1.0.9 does.
    """

    alpha: float = 2.0
    beta: float = 1.0
    stabilizer: Stabilizer = 1e-6
    zero_bias: bool = False
    full_bias: bool = False

    def __post_init__(self):
        super().__post_init__()
        if abs(self.alpha - self.beta - 1.0) > 1e-12:
            raise ValueError(f"alpha - beta must equal 1, got alpha={self.alpha:g}, beta={self.beta:g}")

    def branches(self, layer, a, R, out, relu_follows=False):
        b = self.bias(layer)
        b_pos, b_neg = (b, b) if self.full_bias else (_part(b, +1), _part(b, -1))
        parts = [(positive, negative, b_pos, self.alpha * R)]
        if self.beta:
            parts.append((negative, positive, b_neg, -self.beta * R))
        return parts


@dataclass
class ZPlus(AlphaBeta):
    """z-plus: alpha-beta with ``alpha=1, beta=0``: ``R_j = sum_k z+_jk / z+_k R_k`` (Montavon et al. 2017; Zennit ``ZPlus``)."""

    alpha: float = field(default=1.0, init=False)
    beta: float = field(default=0.0, init=False)


@dataclass
class Gamma(SignSplitRule):
    """Generalized LRP-gamma (Zennit ``Gamma``; Andeol et al. 2021).

    With ``P = w + gamma w+`` and ``N = w + gamma w-`` (and the bias transformed alike), outputs with ``z > 0``
    use ``d+ = P a+ + N a- + (b + gamma b+)``, outputs with ``z < 0`` use ``d- = N a+ + P a- + (b + gamma b-)``,
    outputs with ``z = 0`` get nothing; ``z`` is the layer's unmodified output. For ``a >= 0`` and ``z > 0``
    this is the tutorial's :class:`OriginalGamma`.
    """

    gamma: float = 0.25
    stabilizer: Stabilizer = 1e-6
    zero_bias: bool = False

    def up(self, p):
        """``P = p + gamma p+``."""
        return p + self.gamma * positive(p)

    def down(self, p):
        """``N = p + gamma p-``."""
        return p + self.gamma * negative(p)

    def branches(self, layer, a, R, out, relu_follows=False):
        b = self.bias(layer)
        z = out if out is not None else layer.linear(a, layer.weight, layer.bias)
        b_up, b_down = (None, None) if b is None else (self.up(b), self.down(b))
        up = (self.up, self.down, b_up, (z > 0) * R)
        # under a ReLU the relevance of outputs z < 0 is zero (their activation is): no branch for them
        return [up] if relu_follows else [up, (self.down, self.up, b_down, (z < 0) * R)]


# ---------------------------------------------------------------------------------------------------------------
# The input-layer box rule, pass-through, max pooling and residual additions.
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class ZBox(Rule):
    """zB (box) rule for inputs bounded by ``low <= x <= high`` (Montavon et al. 2017; tutorial §1.2).

    ``R_i = sum_j (x_i w_ij - l_i w+_ij - h_i w-_ij) / z_j R_j`` with ``z_j`` the sum over i of the numerator.
    The bias cancels (``b - b+ - b- = 0``) and is left out. ``low``/``high``: scalars, per channel ``(C,)``,
    per pixel ``(C, H, W)`` or per sample ``(N, C, H, W)`` (for a Dense layer: scalars or ``(D,)``).
    """

    layer_types = WEIGHTED
    low: object = None
    high: object = None
    stabilizer: Stabilizer = 1e-6

    def __post_init__(self):
        super().__post_init__()
        if self.low is None or self.high is None:
            raise ValueError("the zB rule needs the input bounds low and high")
        for name in ("low", "high"):
            finite(real_array(getattr(self, name), f"the zB bound {name}", host=True), f"the zB bound {name}")
        try:
            low, high = np.broadcast_arrays(to_host(self.low), to_host(self.high))
        except ValueError:
            raise ValueError(f"zB bounds low={_show(self.low)} and high={_show(self.high)} have incompatible shapes") from None
        if (low > high).any():
            raise ValueError(f"zB bounds need low <= high, got low={_show(self.low)}, high={_show(self.high)}")

    def bound(self, value, a):
        """``value`` broadcast to the shape of ``a`` (per channel for a 1-axis bound on images)."""
        xp = array_module(a)
        bound = value if array_module(value) is xp and hasattr(value, "shape") else constant(to_host(value), xp, a.dtype)
        bound = bound.astype(a.dtype, copy=False)
        if bound.ndim == 1 and a.ndim == 4:
            bound = bound.reshape(1, -1, 1, 1)
        try:
            return xp.broadcast_to(bound, a.shape)
        except ValueError:
            raise ValueError(
                f"zB bound of shape {tuple(bound.shape)} does not fit an input of shape {tuple(a.shape)}: "
                "expected a scalar, one value per channel, per pixel (C, H, W) or per sample"
            ) from None

    def relprop(self, layer, a, R, out=None):
        xp, w = array_module(a), layer.weight
        inputs = xp.concatenate([a, self.bound(self.low, a), self.bound(self.high, a)], axis=1)  # (a, l, h) ...
        v = xp.concatenate([w, -positive(w), -negative(w)], axis=1)   # ... meet (w, -w+, -w-) in one product
        z = self.stabilizer(layer.linear(inputs, v))       # step 1: z_j = sum_i x_i w_ij - l_i w+_ij - h_i w-_ij
        s = R / z                                          # step 2
        c = layer.transpose(s, v, inputs.shape)            # step 3: (c, -c+, -c-) stacked on axis 1
        terms = inputs * c                                 # step 4: x c - l c+ - h c-, the sum of the three
        return sum(xp.split(terms, 3, axis=1)), None


@dataclass
class Gradient(Rule):
    """The plain vector-Jacobian product of an average pool: ``R_in = P^T R`` (each input gets ``R / k`` of every
    window it is in), as autograd-based code does for layers without a rule (iNNvestigate's DeepTaylor)."""

    layer_types = POOLS

    def relprop(self, layer, a, R, out=None):
        return layer.transpose(R, None, a.shape), None


@dataclass
class Pass(Rule):
    """Relevance passes through unchanged (ReLU, Dropout, BatchNorm2d, Flatten, ZeroPad2d; Zennit ``Pass``).

    Layers that move values (Flatten, ZeroPad2d) hand each relevance back to where the value came from.
    """

    layer_types = (ReLU, Dropout, BatchNorm2d, Flatten, ZeroPad2d, AdaptiveAvgPool2d)

    def relprop(self, layer, a, R, out=None):
        return layer.pass_back(R, a.shape), None


@dataclass
class WinnerTakeAll(Rule):
    """Max pooling: all relevance of a window goes to its maximum.

    ``ties="split"``: tied maxima share it equally (the LRP Toolbox). ``ties="first"``: the first maximum in
    row-major window order takes it all, which is PyTorch's max-pool gradient and so Zennit's. As a four-step
    rule the weights are 1 on the winners and 0 elsewhere, and the input is 1.
    """

    layer_types = (MaxPool2d,)
    ties: str = "split"

    def __post_init__(self):
        if self.ties not in ("split", "first"):
            raise ValueError(f"ties must be 'split' or 'first', got {self.ties!r}")

    def relprop(self, layer, a, R, out=None):
        y, first = layer.forward(a) if out is None else out, self.ties == "first"
        z = layer.count_maxima(a, y, first)            # step 1: z_j = number of winners of window j
        s = R / z                                      # step 2
        c = layer.transpose_maxima(s, a, y, first)     # step 3: c_i = sum_j [a_i wins window j] s_j
        return c, None                                 # step 4: R_i = 1 * c_i


@dataclass
class RatioSplit(Rule):
    """Residual addition, Otsuki et al. 2024's ratio-based Relevance Splitting, conservative by construction:

    ``R_main = R |h_main| / (|h_main| + |h_skip|)``, ``R_skip = R |h_skip| / (|h_main| + |h_skip|)``; positions
    where both are 0 get 0 (the authors' code divides 0 by 0 there).
    """

    layer_types = (Add,)

    def relprop(self, layer, a, R, out=None):
        xp = array_module(R)
        main, skip = xp.abs(a[0]), xp.abs(a[1])
        z = main + skip                                   # step 1: the weights are |h|
        s = R / xp.where(z == 0, 1.0, z)                  # step 2 (z = 0 only where |h_main| = |h_skip| = 0)
        c = s                                             # step 3
        return (main * c, skip * c), None                 # step 4


@dataclass
class FixedSplit(Rule):
    """Residual addition with fixed shares: ``R_main = main * R``, ``R_skip = (1 - main) * R``.

    ``main=0.5`` is Otsuki et al. 2024's symmetric Relevance Splitting; ``main=1`` sends everything to the
    residual branch (their code's choice at identity shortcuts in the variants "latest" and "simple").
    """

    layer_types = (Add,)
    main: float = 0.5

    def __post_init__(self):
        if not 0.0 <= self.main <= 1.0:
            raise ValueError(f"the main branch's share must lie in [0, 1], got {self.main!r}")

    def relprop(self, layer, a, R, out=None):
        return (self.main * R, (1.0 - self.main) * R), None


@dataclass
class MaxPoolEpsilon(Rule):
    """The z-rule on a max pool, as Captum's EpsilonRule on MaxPool2d: ``z_j = incr(max_j)``, and each window's
    first maximum (PyTorch's gradient) gets ``a_i R_j / z_j``: winner-take-all up to the stabilizer."""

    layer_types = (MaxPool2d,)
    stabilizer: Stabilizer = 1e-9

    def relprop(self, layer, a, R, out=None):
        y = layer.forward(a) if out is None else out
        z = self.stabilizer(y)                                      # step 1: z_j = incr(max of window j)
        s = R / z                                                   # step 2
        c = layer.transpose_maxima(s, a, y, first_only=True)        # step 3: c_i = s_j for the first maximum
        return a * c, None                                          # step 4


@dataclass
class ProportionalSplit(Rule):
    """Residual addition ``y = h_main + h_skip``: ``R_main = h_main R / z``, ``R_skip = h_skip R / z``.

    ``z = incr(h_main + h_skip)``, signed: Zennit's ``Sum`` module with the ``Norm`` rule (its ResNet canonizer).
    """

    layer_types = (Add,)
    stabilizer: Stabilizer = 1e-6

    def relprop(self, layer, a, R, out=None):
        main, skip = a
        z = self.stabilizer(layer.forward(main, skip) if out is None else out)   # step 1: z = h_main + h_skip
        s = R / z                                        # step 2
        c = s                                            # step 3: the transpose of a sum hands s to each summand
        return (main * c, skip * c), None                # step 4
