"""CLRP and SGLRP equal their definitions, built from plain explain calls with explicit output relevances."""
import copy

import numpy as np
import pytest

import lrpref
import precision
from lrpref import contrastive, data, layers
from lrpref.backend import to_host
from lrpref.network import Network, Node

# Float64 rounding: each explanation is within precision.MNIST_FLOAT64 (1.3e-12 of its largest entry) of the same
# explanation summed in another order (another batch size: the one batched pass stacks the batch twice); the maps
# compared subtract explanations up to 6.4 times their own largest entry (measured: CLRP variant 1, paper
# convention, on these digits), so 1e-10 holds with a margin of 10 on any CPU.
TOL = 1e-10


@pytest.fixture(scope="module")
def net():
    return lrpref.load(data.model_path("mnist_cnn"), dtype="float64")


@pytest.fixture(scope="module")
def digits():
    """Digits without exact max-pool ties (precision.noisy_digits): another batch size keeps every winner."""
    return precision.noisy_digits(5)


def relative(a, b):
    a, b = to_host(a), to_host(b)   # the network may live on CuPy (LRPREF_BACKEND=cupy): compare on the host
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def explain_from(net, x, init, composite="clrp_paper"):
    return to_host(lrpref.explain(net, x, composite=composite, init=init).relevance)


def onehot(target, classes=10):
    return np.eye(classes)[target]


def test_clrp1_paper(net, digits):
    x, y = digits
    z = to_host(net.forward(x))
    z_t = z[np.arange(5), y][:, None]
    R = explain_from(net, x, onehot(y) * z_t)
    R_dual = explain_from(net, x, (1 - onehot(y)) * z_t / 9)
    result = contrastive.clrp(net, x, y, variant=1)
    assert relative(result.relevance, np.maximum(R - R_dual, 0)) < TOL
    assert relative(result.primary.relevance, R) < TOL and relative(result.dual.relevance, R_dual) < TOL
    assert np.array_equal(result.target, y)


def test_clrp2_paper_is_the_network_with_the_target_row_negated(net, digits):
    """The definition negates only the target's row of the last layer, one network per sample; lrpref negates
    the whole layer once, which gives the same maps."""
    x, y = digits
    z = to_host(net.forward(x))
    result = contrastive.clrp(net, x, y, variant=2)
    for n in range(5):
        dual_net = copy.deepcopy(net)
        last = dual_net.nodes[-1].layer
        last.weight[y[n]] *= -1
        last.bias[y[n]] *= -1
        start = onehot(y[n:n + 1]) * z[n, y[n]]
        expected = np.maximum(explain_from(net, x[n:n + 1], start) - explain_from(dual_net, x[n:n + 1], start), 0)
        assert relative(result.relevance[n:n + 1], expected) < TOL


@pytest.mark.parametrize("variant", [1, 2])
def test_clrp_official(net, digits, variant):
    x, y = digits
    z = to_host(net.forward(x))
    result = contrastive.clrp(net, x, y, variant=variant, convention="official")
    R, R_dual = to_host(result.primary.relevance), to_host(result.dual.relevance)
    # elementwise float64 formulas on the same logits (allclose's atol 1e-8 covers logits of another batch size)
    assert np.allclose(to_host(result.primary.init), onehot(y) * np.abs(z[np.arange(5), y])[:, None], rtol=1e-15)
    if variant == 1:
        assert np.allclose(to_host(result.dual.init), (1 - onehot(y)) * np.abs(z), rtol=1e-15)
    normalised = [M / M.reshape(5, -1).sum(axis=1)[:, None, None, None] for M in (R, R_dual)]
    for M in normalised:
        assert np.allclose(M.reshape(5, -1).sum(axis=1), 1.0, rtol=1e-12)   # each sums to 1: 784 terms' rounding
    assert relative(result.relevance, np.maximum(normalised[0] - normalised[1], 0)) < TOL


def softmax_gradient_by_differences(z, t, h=1e-6):
    """d softmax(z)_t / d z_n by central differences: an independent check of SGLRP's starting vector."""
    def p_t(v):
        e = np.exp(v - v.max())
        return e[t] / e.sum()
    return np.array([(p_t(z + h * np.eye(len(z))[n]) - p_t(z - h * np.eye(len(z))[n])) / (2 * h) for n in range(len(z))])


def test_sglrp(net, digits):
    x, y = digits
    z = to_host(net.forward(x))
    r = contrastive.softmax_gradient(z, y)
    assert np.allclose(r.sum(axis=1), 0, atol=1e-15)   # 10 terms of size <= 1/4: a few float64 roundings
    # central differences: truncation h^2 ~ 1e-12, rounding 2^-53 / h ~ 1e-10 (atol), and rtol 1e-7 is far above
    moderate = np.random.default_rng(0).normal(size=(5, 10))   # unsaturated, where differences are accurate
    for n, m in enumerate(moderate):
        assert np.allclose(contrastive.softmax_gradient(m[None], [n])[0], softmax_gradient_by_differences(m, n),
                           rtol=1e-7, atol=1e-10)
    one_pass = contrastive.sglrp(net, x, y)
    assert relative(one_pass.relevance, explain_from(net, x, r)) < TOL and one_pass.dual is None
    scaled = contrastive.sglrp(net, x, y, mode="scaled")
    R_t, R_d = explain_from(net, x, np.maximum(r, 0)), explain_from(net, x, -np.minimum(r, 0))
    ratio = R_t.reshape(5, -1).sum(axis=1) / R_d.reshape(5, -1).sum(axis=1)
    assert relative(scaled.relevance, R_t - R_d * ratio[:, None, None, None]) < TOL


@pytest.mark.parametrize("composite", ["clrp_paper", "epsilon_plus", "tutorial_mnist"])
def test_one_batched_pass_equals_two_passes(net, digits, composite):
    """Variant 1's target and dual come from one pass over the batch stacked twice; for fixed activations LRP is
    linear in the output relevance, and stacking leaves even the tutorial's batch RMS unchanged."""
    x, y = digits
    result = contrastive.clrp(net, x, y, variant=1, composite=composite)
    assert relative(result.primary.relevance, explain_from(net, x, result.primary.init, composite)) < TOL
    assert relative(result.dual.relevance, explain_from(net, x, result.dual.init, composite)) < TOL


def test_contrastive_maps_discriminate(net, digits):
    """CLRP keeps what speaks for the target more than for the others: it is non-negative and, unlike plain
    LRP, differs between two targets much more than their LRP maps do."""
    x, _ = digits
    lrp = [explain_from(net, x[:1], onehot([k]) * to_host(net.forward(x[:1]))[0, k]) for k in (3, 5)]
    clrp = [contrastive.clrp(net, x[:1], [k]).relevance for k in (3, 5)]
    assert (clrp[0] >= 0).all()
    def cosine(a, b):
        return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))
    assert cosine(*clrp) < cosine(*lrp)


def test_bad_input(net, digits):
    x, y = digits
    single = Network([Node("flat", layers.Flatten(), ("input",)), Node("out", layers.Dense(np.ones((1, 784))), ("flat",))],
                     input_shape=(1, 28, 28), meta={"input_low": -1.0, "input_high": 1.0})
    with pytest.raises(ValueError, match="need a network with several class outputs"):
        contrastive.clrp(single, x, 0)
    with pytest.raises(ValueError, match="out of range"):
        contrastive.clrp(net, x, 10)
    with pytest.raises(ValueError, match="variant must be 1 or 2, got 3"):
        contrastive.clrp(net, x, y, variant=3)
    with pytest.raises(ValueError, match="unknown convention 'gu'"):
        contrastive.clrp(net, x, y, convention="gu")
    with pytest.raises(ValueError, match="unknown mode 'twice'"):
        contrastive.sglrp(net, x, y, mode="twice")


def test_a_dual_summing_to_zero_gives_a_zero_map_not_nan():
    """Two classes, the other's logit exactly 0: the official dual starts from |0| and its map sums to 0."""
    weight = np.zeros((2, 4))
    weight[0] = 1.0
    net = lrpref.Sequential([layers.Dense(weight)], meta={"input_low": -1.0, "input_high": 1.0})
    x = np.array([[0.5, 0.2, 0.1, 0.3]])
    result = contrastive.clrp(net, x, 0, convention="official", composite="zplus")
    assert np.isfinite(to_host(result.relevance)).all() and np.allclose(to_host(result.relevance), x / x.sum())


def test_clrp2_vanishes_under_rules_linear_in_the_weights(net, digits):
    """With epsilon (or LRP-0) on the last layer, negating the target's row negates z_t and the weights alike:
    s = z_t / (-z_t) = -1 and c = (-w_t)(-1) = w_t, so the dual map equals the target map and CLRP2 is 0.
    (This is why the paper uses z-plus, for which w+ and (-w)+ differ.)"""
    x, y = digits
    result = contrastive.clrp(net, x, y, variant=2, composite="epsilon_plus")
    # negation is exact in floating point: the dual pass rounds exactly as the primary one, on any CPU
    assert relative(result.dual.relevance, result.primary.relevance) < 1e-12
    assert np.abs(to_host(result.relevance)).max() <= 1e-12 * np.abs(to_host(result.primary.relevance)).max()
