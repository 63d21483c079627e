"""Properties that must hold for any shapes and data (hypothesis).

Tolerances: both sides of every float64 identity here are sums of at most a few hundred terms of size about 1
(small random layers, inputs in [-1, 1]), so they differ by float64 rounding, about sqrt(n) * 1e-16 relative
to the terms; 1e-12 (adjoints), 1e-10 (conservation) and 1e-9 (linearity, where alpha and beta reach 3 and
the rules' denominators may be 100 times smaller than their terms) leave margins of at least 1,000 on any
CPU. No discrete choice differs between the two sides: both use the same activations. The float32 test has
its own bound from the measured condition (tests/precision.py).
"""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import precision
from cases import relative_error
from lrpref import backend, layers, rules
from lrpref.rules import negative, positive

seeds = st.integers(0, 2 ** 32 - 1)


@st.composite
def conv_layers(draw):
    """A random Conv2d and an input shape it accepts."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(4))
    h = draw(st.integers(max(1, kh - padding[0] - padding[1]), 9))
    w = draw(st.integers(max(1, kw - padding[2] - padding[3]), 9))
    c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(seeds))
    layer = layers.Conv2d(rng.normal(size=(c_out, c_in, kh, kw)), rng.normal(size=c_out), stride, padding)
    return layer, (2, c_in, h, w), rng


@st.composite
def pool_layers(draw):
    """A random AvgPool2d or AdaptiveAvgPool2d and an input shape it accepts."""
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    rng = np.random.default_rng(draw(seeds))
    if draw(st.booleans()):
        return layers.AdaptiveAvgPool2d((draw(st.integers(1, 8)), draw(st.integers(1, 8)))), (2, 2, h, w), rng
    kh, kw = draw(st.integers(1, h)), draw(st.integers(1, w))
    padding = (draw(st.integers(0, kh // 2)), draw(st.integers(0, kh // 2)),
               draw(st.integers(0, kw // 2)), draw(st.integers(0, kw // 2)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    return layers.AvgPool2d((kh, kw), stride, padding, count_include_pad=draw(st.booleans())), (2, 2, h, w), rng


def inner(x, y):
    return float((backend.to_host(x) * backend.to_host(y)).sum())


@given(conv_layers())
def test_conv_transpose_is_the_adjoint(case):
    """<W x, s> = <x, W^T s> for the linear part of a convolution, any stride and padding."""
    layer, shape, rng = case
    x = rng.normal(size=shape)
    z = layer.linear(x, layer.weight)
    s = rng.normal(size=z.shape)
    assert abs(inner(z, s) - inner(x, layer.transpose(s, layer.weight, x.shape))) <= 1e-12 * (1 + abs(inner(z, s)))


@given(pool_layers())
def test_pool_transpose_is_the_adjoint(case):
    layer, shape, rng = case
    x = rng.normal(size=shape)
    z = layer.linear(x)
    s = rng.normal(size=z.shape)
    assert abs(inner(z, s) - inner(x, layer.transpose(s, None, x.shape))) <= 1e-12 * (1 + abs(inner(z, s)))


@given(seeds, st.integers(1, 6), st.integers(1, 6))
def test_dense_transpose_is_the_adjoint(seed, n_in, n_out):
    rng = np.random.default_rng(seed)
    layer = layers.Dense(rng.normal(size=(n_out, n_in)))
    x, s = rng.normal(size=(3, n_in)), rng.normal(size=(3, n_out))
    assert abs(inner(layer.linear(x, layer.weight), s) - inner(x, layer.transpose(s, layer.weight, x.shape))) <= 1e-12 * (
        1 + abs(inner(layer.linear(x, layer.weight), s)))


def conserved_share(layer, rule, a):
    """For each output j, the part of R_j that reaches the inputs when the bias is zero: ``z_j / incr(z_j)``
    (``alpha z+_j / incr(z+_j) - beta z-_j / incr(z-_j)`` for alpha-beta). Conservation "up to the stabilizer"."""
    w = layer.weight
    if isinstance(rule, rules.AlphaBeta):
        z_pos = layer.linear(positive(a), positive(w)) + layer.linear(negative(a), negative(w))
        z_neg = layer.linear(positive(a), negative(w)) + layer.linear(negative(a), positive(w))
        return rule.alpha * z_pos / rule.stabilizer(z_pos) - rule.beta * z_neg / rule.stabilizer(z_neg)
    if isinstance(rule, rules.ZBox):
        z = layer.linear(a, w) - layer.linear(rule.bound(rule.low, a), positive(w)) \
            - layer.linear(rule.bound(rule.high, a), negative(w))
        return z / rule.stabilizer(z)
    z = layer.linear(a, w)
    return z / rule.stabilizer(z)


CONSERVATIVE = [rules.LRP0(1e-6, zero_bias=True), rules.ZPlus(zero_bias=True), rules.AlphaBeta(2, 1, zero_bias=True),
                rules.AlphaBeta(1.5, 0.5, zero_bias=True), rules.ZBox(-1.0, 1.0)]


@pytest.mark.parametrize("rule", CONSERVATIVE, ids=str)
@given(case=conv_layers(), positive_inputs=st.booleans())
def test_conservation_up_to_the_stabilizer(rule, case, positive_inputs):
    """Without bias, sum_i R_i = sum_j R_j * (what the rule's denominator keeps of R_j): exact for LRP-0, z-plus,
    alpha-beta (relevance is conserved where z+_j and z-_j are both non-zero and the stabilizer is small) and zB."""
    layer, shape, rng = case
    a = rng.uniform(-1, 1, size=shape)
    a = np.maximum(a, 0) if positive_inputs else a
    R = rng.uniform(0, 1, size=layer.forward(a).shape)
    R_in, _ = rule.relprop(layer, a, R)
    expected = (R * conserved_share(layer, rule, a)).reshape(2, -1).sum(axis=1)
    assert np.allclose(R_in.reshape(2, -1).sum(axis=1), expected, rtol=1e-10, atol=1e-10 * np.abs(R).sum())


@given(case=conv_layers())
def test_lrp0_conserves_when_denominators_are_large(case):
    """The same statement without algebra: with |z_j| >= 1e-2 for every output, the stabilizer 1e-9 moves the
    relevance sum by less than 1e-6 of sum |R|."""
    layer, shape, rng = case
    a = rng.uniform(-1, 1, size=shape)
    assume(np.abs(layer.linear(a, layer.weight)).min() >= 1e-2)
    R = rng.normal(size=layer.forward(a).shape)
    R_in, _ = rules.LRP0(1e-9, zero_bias=True).relprop(layer, a, R)
    assert abs(R_in.sum() - R.sum()) <= 1e-6 * np.abs(R).sum()


LINEAR_RULES = [rules.LRP0(), rules.Epsilon(0.3), rules.Gamma(0.25), rules.OriginalGamma(0.1), rules.ZPlus(),
                rules.AlphaBeta(2, 1), rules.ZBox(-1.0, 2.0), rules.Flat(), rules.WSquare()]


@pytest.mark.parametrize("rule", LINEAR_RULES, ids=str)
@given(case=conv_layers(), alpha=st.floats(-3, 3), beta=st.floats(-3, 3))
def test_relevance_is_linear_in_the_output_relevance(rule, case, alpha, beta):
    """For fixed activations every rule is linear in R: LRP(alpha R1 + beta R2) = alpha LRP(R1) + beta LRP(R2)."""
    layer, shape, rng = case
    a = rng.uniform(-1, 1, size=shape)
    R1, R2 = rng.normal(size=(2,) + layer.forward(a).shape)
    combined, _ = rule.relprop(layer, a, alpha * R1 + beta * R2)
    separate = alpha * rule.relprop(layer, a, R1)[0] + beta * rule.relprop(layer, a, R2)[0]
    assert np.abs(combined - separate).max() <= 1e-9 * (1 + np.abs(separate).max())


@pytest.mark.parametrize("rule", LINEAR_RULES, ids=str)
@given(case=conv_layers())
def test_float32_is_close_to_float64_and_stays_float32(rule, case):
    layer, shape, rng = case
    a = rng.uniform(0, 1, size=shape)
    R = rng.uniform(0, 1, size=layer.forward(a).shape)
    R64, _ = rule.relprop(layer, a, R)
    layer32 = layer.map_arrays(lambda v: v.astype(np.float32))
    R32, bias32 = rule.relprop(layer32, a.astype(np.float32), R.astype(np.float32))
    assert R32.dtype == np.float32 and (bias32 is None or bias32.dtype == np.float32)
    # first order: rounding a, R and the weights to float32 (relative u) and every dot product of at most
    # n = weight.size terms (relative lambda sqrt(n) u, tests/precision.py) move the result by at most that
    # times its condition, measured in float64. Layers whose plain outputs come near zero are left out: there
    # the stabilizer's sign can flip, a discrete choice. A wrong dtype or formula is off by far more.
    assume(np.abs(layer.linear(a, layer.weight)).min() > 1e-2)
    condition = precision.condition_number(lambda l, a_, R_: rule.relprop(l, a_, R_)[0], [layer, a, R])
    bound = (precision.UNIT_ROUNDOFF_32 + precision.dot_rounding(layer.weight.size)) * condition
    assert relative_error(R32, R64) <= bound, (relative_error(R32, R64), bound, condition)
