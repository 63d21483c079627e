"""Every rule on every layer kind: the fast path equals the formula-literal twin of tests/naive.py.

float64, relative error below 1e-10 (``max |fast - twin| / max |twin|`` over a batch), for the relevance of the
input and for the relevance the bias neuron keeps.

Why 1e-10 holds on any CPU: the cases are small (sums of at most 36 terms of size about 1), so the fast path's
BLAS sums and the twin's differ by about 1e-15 relative; the rules' denominators divide that by |z| / (size of
its terms), which would have to fall below 1e-5 to reach the tolerance. The only discrete choices are the
stabilizer's sign and the positive/negative split, both on continuous random data: a z within float64 rounding
of 0 has probability about 1e-15 per neuron. Max pools compare their inputs as given, without arithmetic, so
both sides pick the same winners, ties included.
"""
import numpy as np
import pytest

import naive
from cases import POOL_GEOMETRIES, batch, on, pool_cases, relative_error, weighted_cases
from lrpref import backend, layers, rules
from lrpref.conventions import TUTORIAL
from lrpref.stabilizer import Stabilizer

TOL = 1e-10
CASES = weighted_cases(np.random.default_rng(1))


def identity(p):
    return p


def bias_of(case, rule):
    return None if getattr(rule, "zero_bias", False) else case.b


def general_twin(rho, stabilizer_of, ones_input=False):
    def twin(case, rule, a, R, n):
        b = bias_of(case, rule)
        z_batch = a @ rho(case.M).T + (0.0 if b is None else rho(b))
        return naive.rule_general(a[n], case.M, b, R[n], rho, stabilizer_of(rule), z_batch, ones_input)
    return twin


def bounds(case, kind, rng):
    """zB bounds as a scalar, per channel (per feature for Dense) or per pixel, and flattened per input."""
    channels = case.in_shape[0]
    per_input = int(np.prod(case.in_shape))
    if kind == "scalar":
        return -1.5, 2.0, np.full(per_input, -1.5), np.full(per_input, 2.0)
    if kind == "channel":
        low, high = -1 - rng.uniform(size=channels), 1 + rng.uniform(size=channels)
        repeat = per_input // channels
        return low, high, np.repeat(low, repeat), np.repeat(high, repeat)
    low, high = -1 - rng.uniform(size=case.in_shape), 1 + rng.uniform(size=case.in_shape)
    return low, high, low.ravel(), high.ravel()


def zbox(kind):
    def make(case, rng):
        low, high, flat_low, flat_high = bounds(case, kind, rng)
        rule = rules.ZBox(low, high, stabilizer=1e-6)
        rule.flat_bounds = flat_low, flat_high
        return rule

    def twin(case, rule, a, R, n):
        return naive.rule_zbox(a[n], case.M, R[n], *rule.flat_bounds, rule.stabilizer), 0.0
    return make, twin


def gamma_twin(case, rule, a, R, n):
    return naive.rule_generalized_gamma(a[n], case.M, bias_of(case, rule), case.b, R[n], rule.gamma, rule.stabilizer)


def alpha_beta_twin(case, rule, a, R, n):
    return naive.rule_alpha_beta(a[n], case.M, bias_of(case, rule), R[n], rule.alpha, rule.beta, rule.stabilizer)


def flat_twin(case, rule, a, R, n):
    return naive.rule_flat(case.connected, R[n], rule.stabilizer), 0.0


def rho_gamma(gamma):
    return lambda p: p + gamma * np.maximum(p, 0)


WEIGHTED_RULES = {
    "lrp0": (lambda c, r: rules.LRP0(), general_twin(identity, lambda r: r.stabilizer)),
    "epsilon": (lambda c, r: rules.Epsilon(0.5), general_twin(identity, lambda r: r.epsilon)),
    "epsilon-zero-bias": (lambda c, r: rules.Epsilon(0.1, zero_bias=True), general_twin(identity, lambda r: r.epsilon)),
    "epsilon-tutorial": (lambda c, r: rules.Epsilon(TUTORIAL.epsilon(0.25)), general_twin(identity, lambda r: r.epsilon)),
    "epsilon-per-sample": (lambda c, r: rules.Epsilon(Stabilizer(0.1, relative="sample")),
                           general_twin(identity, lambda r: r.epsilon)),
    "original-gamma": (lambda c, r: rules.OriginalGamma(0.25, TUTORIAL.stabilizer()),
                       general_twin(rho_gamma(0.25), lambda r: r.stabilizer)),
    "gamma": (lambda c, r: rules.Gamma(0.25), gamma_twin),
    "gamma-zero-bias": (lambda c, r: rules.Gamma(0.5, zero_bias=True), gamma_twin),
    "zplus": (lambda c, r: rules.ZPlus(), alpha_beta_twin),
    "zplus-zero-bias": (lambda c, r: rules.ZPlus(zero_bias=True), alpha_beta_twin),
    "alpha2-beta1": (lambda c, r: rules.AlphaBeta(2, 1), alpha_beta_twin),
    "alpha3-beta2-zero-bias": (lambda c, r: rules.AlphaBeta(3, 2, zero_bias=True), alpha_beta_twin),
    "zbox-scalar": zbox("scalar"),
    "zbox-channel": zbox("channel"),
    "zbox-pixel": zbox("pixel"),
    "flat": (lambda c, r: rules.Flat(), flat_twin),
    "wsquare": (lambda c, r: rules.WSquare(), general_twin(np.square, lambda r: r.stabilizer, ones_input=True)),
    "wsquare-zero-bias": (lambda c, r: rules.WSquare(zero_bias=True),
                          general_twin(np.square, lambda r: r.stabilizer, ones_input=True)),
}


def check(xp, case, rule, twin, a, R):
    """The rule equals its twin, computing step 1 itself and taking the forward output (as ``explain`` does)."""
    layer = on(xp, case.layer)
    n = a.shape[0]
    flat_a, flat_R = a.reshape(n, -1), R.reshape(n, -1)
    expected = [twin(case, rule, flat_a, flat_R, k) for k in range(n)]
    for out in (None, layer.forward(xp.asarray(a))):
        R_in, R_bias = rule.relprop(layer, xp.asarray(a), xp.asarray(R), out=out)
        assert R_in.shape == a.shape
        assert relative_error(backend.to_host(R_in).reshape(n, -1), np.stack([e[0] for e in expected])) < TOL
        bias = np.zeros(n) if R_bias is None else backend.to_host(R_bias)
        twin_bias = np.array([e[1] for e in expected])
        assert np.abs(bias - twin_bias).max() <= TOL * max(np.abs(twin_bias).max(), np.abs(expected[0][0]).max())


@pytest.mark.parametrize("inputs", ["mixed", "relu", "relu-and-relu-relevance"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
@pytest.mark.parametrize("rule_id", WEIGHTED_RULES)
def test_weighted_rule_equals_formula(xp, rng, rule_id, case, inputs):
    """``relu-and-relu-relevance``: relevance zero wherever the layer's output is not positive, as under a ReLU,
    where gamma skips its branch for negative outputs."""
    make, twin = WEIGHTED_RULES[rule_id]
    a = batch(rng, case.in_shape, positive=inputs != "mixed")
    R = rng.normal(size=(a.shape[0],) + case.out_shape)
    if inputs == "relu-and-relu-relevance":
        R = R * (backend.to_host(case.layer.forward(a)) > 0)
    check(xp, case, make(case, rng), twin, a, R)


@pytest.mark.parametrize("case", pool_cases(), ids=lambda c: c.id)
def test_norm_on_average_pools_equals_formula(xp, rng, case):
    rule = rules.Norm(1e-6)
    a = batch(rng, case.in_shape, positive=True)
    R = rng.normal(size=(3,) + case.out_shape)
    check(xp, case, rule, general_twin(identity, lambda r: r.stabilizer), a, R)


@pytest.mark.parametrize("geometry", POOL_GEOMETRIES, ids=str)
def test_maxpool_rules_equal_formula(xp, rng, geometry):
    kernel, stride, padding, hw = geometry
    layer = layers.MaxPool2d(kernel, stride, padding)
    a = np.round(batch(rng, (2,) + hw, positive=True), 1)   # ReLU zeros and rounding give tied maxima
    _, windows, out_shape = naive.maxpool_forward(a[0].ravel(), (2,) + hw, kernel, stride, padding)
    R = rng.normal(size=(3,) + out_shape)

    for ties in ("split", "first"):
        R_in, _ = rules.WinnerTakeAll(ties).relprop(layer, xp.asarray(a), xp.asarray(R))
        twin = [naive.rule_winner_take_all(a[n].ravel(), windows, R[n].ravel(), ties == "first") for n in range(3)]
        assert relative_error(backend.to_host(R_in).reshape(3, -1), np.stack(twin)) < TOL

    M, _ = naive.avgpool_matrix((2,) + hw, kernel, stride, padding)
    R_in, _ = rules.AverageMaxPool(1e-6).relprop(layer, xp.asarray(a), xp.asarray(R))
    twin = [naive.rule_general(a[n].ravel(), M, None, R[n].ravel(), identity, Stabilizer(1e-6))[0] for n in range(3)]
    assert relative_error(backend.to_host(R_in).reshape(3, -1), np.stack(twin)) < TOL


@pytest.mark.parametrize("ties, expected", [("split", [[1.0, 1.0], [0.0, 1.0]]), ("first", [[3.0, 0.0], [0.0, 0.0]])])
def test_winner_take_all_ties(xp, ties, expected):
    """Three tied maxima: split equally (LRP Toolbox), or all to the first (PyTorch's max-pool gradient)."""
    a = np.array([[[[1.0, 1.0], [0.5, 1.0]]]])
    R_in, _ = rules.WinnerTakeAll(ties).relprop(layers.MaxPool2d(2), xp.asarray(a), xp.asarray(np.full((1, 1, 1, 1), 3.0)))
    assert np.array_equal(backend.to_host(R_in), [[expected]])


def test_proportional_split_equals_formula(xp, rng):
    main, skip, R = rng.normal(size=(3, 2, 4, 4)), rng.normal(size=(3, 2, 4, 4)), rng.normal(size=(3, 2, 4, 4))
    (R_main, R_skip), _ = rules.ProportionalSplit(1e-6).relprop(layers.Add(), (xp.asarray(main), xp.asarray(skip)),
                                                               xp.asarray(R))
    twin_main, twin_skip = naive.rule_proportional_split(main, skip, R, Stabilizer(1e-6))
    assert relative_error(R_main, twin_main) < TOL and relative_error(R_skip, twin_skip) < TOL


@pytest.mark.parametrize("layer", [layers.ReLU(), layers.Dropout(0.5), layers.BatchNorm2d(*np.ones((4, 2)))])
def test_pass_hands_relevance_through_unchanged(xp, rng, layer):
    R = rng.normal(size=(3, 2, 4, 4))
    R_in, bias = rules.Pass().relprop(layer, xp.asarray(rng.normal(size=R.shape)), xp.asarray(R))
    assert np.array_equal(backend.to_host(R_in), R) and bias is None


def test_zbox_gives_non_negative_relevance_inside_the_box(xp, rng):
    """Montavon et al. 2017: for l <= x <= h every term (x - l) w+ + (x - h) w- is >= 0, so R >= 0 maps to R >= 0."""
    case = CASES[2]
    a = batch(rng, case.in_shape)
    R_in, _ = rules.ZBox(-1.0, 1.0).relprop(on(xp, case.layer), xp.asarray(a),
                                            xp.asarray(rng.uniform(size=(3,) + case.out_shape)))
    assert backend.to_host(R_in).min() >= 0


@pytest.mark.parametrize("make, message", [
    (lambda: rules.Gamma(gamma=-0.1), "gamma must be a number >= 0"),
    (lambda: rules.OriginalGamma(gamma="a"), r"gamma must be a real number, got .a. \(str\)"),
    (lambda: rules.AlphaBeta(alpha=2, beta=0.5), "alpha - beta must equal 1"),
    (lambda: rules.AlphaBeta(alpha=0.5, beta=-0.5), "beta must be a number >= 0"),
    (lambda: rules.ZBox(low=1.0, high=-1.0), "low <= high"),
    (lambda: rules.ZBox(low=np.zeros(3), high=np.ones(2)), "incompatible shapes"),
    (lambda: rules.ZBox(high=1.0), "needs the input bounds"),
    (lambda: rules.Epsilon(epsilon=-1e-6), "epsilon must be a number >= 0"),
    (lambda: Stabilizer(1e-6, relative="global"), "relative must be one of"),
    (lambda: rules.WinnerTakeAll("random"), "ties must be 'split' or 'first'"),
])
def test_rules_reject_parameters_out_of_domain(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_zbox_rejects_bounds_that_do_not_fit_the_input(rng):
    case = CASES[1]
    with pytest.raises(ValueError, match="does not fit an input"):
        rules.ZBox(np.zeros(5), np.ones(5)).relprop(case.layer, batch(rng, case.in_shape), np.ones((3,) + case.out_shape))
