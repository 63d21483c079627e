"""The LRP loop end to end: output relevance, targets, graphs, the tutorial's procedures, bad input.

Tolerances: two float64 computations of one explanation (another formula, batch size or merged BatchNorm) differ
by float64 rounding. On the shipped networks and noisy digits that is at most precision.MNIST_FLOAT64 (1.3e-12,
from their measured conditioning, checked below); the random small networks here are as well conditioned, and
a pre-activation or pooled value within float64 rounding of a tie has probability about 1e-14 for continuous
random inputs. The tolerances of 1e-10 leave a margin of 100 over that; exact ones (init, targets) are exact.
"""
import importlib

import numpy as np
import pytest

import precision
from cases import relative_error
from lrpref import Composite, Network, Node, Sequential, backend, composites, data, explain, layers, load, rules
from lrpref import models as lrpref_models
from lrpref.composites import Kind
from lrpref.network import fold_batchnorm

COMPOSITE_NAMES = sorted(composites.COMPOSITES)


@pytest.fixture(scope="module")
def mnist():
    """Digits without the exact ties of their constant background (see precision.noisy_digits): comparisons of
    two float64 computations (batch against single sample, two formulas) then see the same max-pool winners."""
    return precision.noisy_digits(12)


@pytest.fixture(scope="module")
def cnn():
    return load(data.model_path("mnist_cnn"), dtype="float64")


@pytest.fixture(scope="module")
def mlp():
    return load(data.model_path("mnist_mlp"), dtype="float64")


def host(x):
    return backend.to_host(x)


def residual_net(rng):
    """conv - relu - [conv - relu - conv] + skip - relu - flatten - dense: a tensor read by two layers."""
    def conv(c_in, c_out):
        return layers.Conv2d(rng.normal(size=(c_out, c_in, 3, 3)) / 3, rng.normal(size=c_out) * 0.1, padding=1)
    nodes = [Node("stem", conv(2, 3), ("input",)), Node("stem_relu", layers.ReLU(), ("stem",)),
             Node("a", conv(3, 3), ("stem_relu",)), Node("a_relu", layers.ReLU(), ("a",)),
             Node("b", conv(3, 3), ("a_relu",)), Node("add", layers.Add(), ("b", "stem_relu")),
             Node("relu", layers.ReLU(), ("add",)), Node("flatten", layers.Flatten(), ("relu",)),
             Node("fc", layers.Dense(rng.normal(size=(4, 3 * 5 * 5)) / 8, rng.normal(size=4)), ("flatten",))]
    return Network(nodes, input_shape=(2, 5, 5))


# -- the tutorial's own procedures ----------------------------------------------------------------------------

def tutorial_mnist_numpy(W, B, X, T):
    """The tutorial's NumPy code for its MNIST part, as `montavon_and_toolbox.md` §1.2 restates it.

    W[l] has the tutorial's layout (in, out); T are the labels; the output layer has a ReLU as in the tutorial.
    """
    L = len(W)
    A = [X] + [None] * L
    for l in range(L):
        A[l + 1] = np.maximum(0, A[l].dot(W[l]) + B[l])
    R = [None] * L + [A[L] * (T[:, None] == np.arange(10))]

    def rho(w, l):
        return w + [None, 0.1, 0.0, 0.0][l] * np.maximum(0, w)

    def incr(z, l):
        return z + [None, 0.0, 0.1, 0.0][l] * (z ** 2).mean() ** .5 + 1e-9

    for l in range(1, L)[::-1]:
        w, b = rho(W[l], l), rho(B[l], l)
        z = incr(A[l].dot(w) + b, l)   # step 1
        s = R[l + 1] / z               # step 2
        c = s.dot(w.T)                 # step 3
        R[l] = A[l] * c                # step 4
    w = W[0]
    wp, wm = np.maximum(0, w), np.minimum(0, w)
    lb, hb = A[0] * 0 - 1, A[0] * 0 + 1
    z = A[0].dot(w) - lb.dot(wp) - hb.dot(wm) + 1e-9
    s = R[1] / z
    c, cp, cm = s.dot(w.T), s.dot(wp.T), s.dot(wm.T)
    R[0] = A[0] * c - lb * cp - hb * cm
    return R


def test_tutorial_mnist_equals_the_tutorial_code(mlp, mnist):
    x, y = mnist
    dense = [layer for layer in mlp.layers if isinstance(layer, layers.Dense)]
    W, B = [host(d.weight).T for d in dense], [host(d.bias) for d in dense]
    R = tutorial_mnist_numpy(W, B, x.reshape(12, 784), y)
    logits = host(mlp.forward(x))
    assert (logits[np.arange(12), y] > 0).all()   # then the tutorial's ReLU on the output changes nothing
    e = explain(mlp, x, target=y, composite="tutorial_mnist")
    assert relative_error(e.relevance.reshape(12, 784), R[0]) < 1e-10
    dense_inputs = [i for i, layer in enumerate(mlp.layers) if isinstance(layer, layers.Dense)]
    for l, i in enumerate(dense_inputs):
        assert relative_error(e.layers[i], R[l]) < 1e-10


def test_tutorial_convention_shares_statistics_across_the_batch_and_zennit_does_not(mlp, mnist):
    x, y = mnist
    for composite, batch_dependent in (("tutorial_mnist", True), ("epsilon_gamma_box", False)):
        whole = host(explain(mlp, x, target=y, composite=composite, epsilon=0.5).relevance)
        alone = host(explain(mlp, x[3:4], target=y[3:4], composite=composite, epsilon=0.5).relevance)
        assert (relative_error(alone, whole[3:4]) > 1e-6) == batch_dependent


# -- output relevance and targets -------------------------------------------------------------------------------

def test_init_options(cnn, mnist):
    x, _ = mnist
    logits = host(cnn.forward(x))
    target = np.arange(12) % 10
    onehot = np.eye(10)[target]
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    for init, expected in (("logit", onehot * logits), ("one", onehot), ("softmax", onehot * probabilities)):
        e = explain(cnn, x, target=target, composite="epsilon_plus", init=init)
        assert relative_error(e.init, expected) < 1e-14 and np.array_equal(e.target, target)
    e = explain(cnn, x, composite="epsilon_plus", init=np.arange(10.0))
    assert np.array_equal(host(e.init), np.tile(np.arange(10.0), (12, 1))) and e.target is None


def test_target_none_is_the_prediction_and_scalars_broadcast(cnn, mnist):
    x, _ = mnist
    e = explain(cnn, x, composite="epsilon_plus")
    assert np.array_equal(e.target, host(cnn.forward(x)).argmax(axis=1))
    assert np.array_equal(explain(cnn, x, target=np.int64(3), composite="epsilon_plus").target, np.full(12, 3))


@pytest.mark.parametrize("composite", ["epsilon_gamma_box", "epsilon_plus_flat", "epsilon_alpha2_beta1", "wsquare"])
def test_explanation_is_linear_in_the_output_relevance(cnn, mnist, rng, composite):
    x, _ = mnist
    R1, R2 = rng.normal(size=(2, 12, 10))
    def relevance(init):
        return host(explain(cnn, x, composite=composite, init=init).relevance)
    assert relative_error(relevance(R1 - 2 * R2), relevance(R1) - 2 * relevance(R2)) < 1e-10


@pytest.mark.parametrize("composite", [c for c in COMPOSITE_NAMES if not c.startswith(("tutorial", "otsuki"))])
def test_zennit_convention_explains_each_sample_independently_of_its_batch(cnn, mnist, composite):
    x, _ = mnist
    whole = host(explain(cnn, x, target=2, composite=composite).relevance)
    alone = host(explain(cnn, x[5:6], target=2, composite=composite).relevance)
    assert relative_error(alone, whole[5:6]) < precision.MNIST_FLOAT64   # other blocking, same choices


# -- graphs, the report, dtypes -----------------------------------------------------------------------------

def test_relevance_of_a_tensor_read_twice_is_summed_and_the_report_adds_up(rng):
    net = residual_net(rng)
    x = rng.uniform(-1, 1, size=(3, 2, 5, 5))
    e = explain(net, x, composite="epsilon_plus")
    names = net.names
    # stem_relu is read by "a" and by "add" (the skip): the relevance there is the sum of what both hand back
    a, add = names.index("a"), names.index("add")
    rule_a = e.rules[a]
    R_from_a, _ = rule_a.relprop(net["a"], net.activations(x)["stem_relu"], e.layers[names.index("a_relu")])
    (_, R_skip), _ = e.rules[add].relprop(net["add"], tuple(net.activations(x)[n] for n in ("b", "stem_relu")),
                                           e.layers[names.index("relu")])
    assert relative_error(e.layers[a], R_from_a + R_skip) < 1e-12
    assert isinstance(e.layers[add], tuple) and e.layers[add][1] is e.layers[a]
    report = e.conservation()
    absorbed = (report.bias + report.stabilizer).sum(axis=0)
    assert np.allclose(report.total_out - report.total_in, absorbed, rtol=1e-10, atol=1e-12)
    assert np.allclose(report.out[-1], host(e.init).sum(axis=1)) and np.allclose(report.into[0], report.total_in)


def test_batchnorm_is_folded_as_zennit_does(rng):
    """epsilon_gamma_box on conv + BatchNorm equals the same composite on the conv with the BatchNorm merged by hand."""
    w, b = rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3)
    gamma, beta, mean, var = rng.uniform(0.5, 2, 3), rng.normal(size=3), rng.normal(size=3), rng.uniform(0.5, 2, 3)
    dense = layers.Dense(rng.normal(size=(4, 3 * 16)))
    scale = gamma / np.sqrt(var + 1e-5)
    conv = layers.Conv2d(rng.normal(size=(3, 3, 3, 3)), padding=1)   # on the host: each network puts it on its backend
    with_bn = Sequential([layers.Conv2d(w, b, padding=1), layers.BatchNorm2d(gamma, beta, mean, var), layers.ReLU(),
                          conv, layers.ReLU(), layers.Flatten(), dense])
    merged = Sequential([layers.Conv2d(w * scale[:, None, None, None], (b - mean) * scale + beta, padding=1),
                         layers.ReLU(), conv, layers.ReLU(), layers.Flatten(), dense])
    x = rng.uniform(-1, 1, size=(2, 2, 4, 4))
    e1 = explain(with_bn, x, target=1, low=-1.0, high=1.0)
    e2 = explain(merged, x, target=1, low=-1.0, high=1.0)
    assert relative_error(e1.relevance, e2.relevance) < 1e-10


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_is_kept_through_the_whole_pipeline(dtype, mnist):
    x, _ = mnist
    for name in ("mnist_mlp", "mnist_cnn"):
        net = load(data.model_path(name), dtype=dtype)
        for composite in ("epsilon_gamma_box", "tutorial_mnist", "epsilon_alpha2_beta1_flat"):
            e = explain(net, x.astype(np.float64), composite=composite, init="softmax")
            arrays = [e.relevance, e.output, e.init] + [v for item in e.layers for v in
                                                        (item if isinstance(item, tuple) else (item,))]
            assert {str(a.dtype) for a in arrays} == {dtype}


def test_mnist_explanations_are_as_well_conditioned_as_the_tolerances_assume(mnist):
    """precision.MNIST_CONDITION, from which the float64 tolerances of this file and test_contrastive.py come, is
    the largest measured conditioning of the shipped networks' explanations of these digits."""
    x, y = mnist
    for name, names in (("mnist_mlp", ["tutorial_mnist"]),
                        ("mnist_cnn", [c for c in COMPOSITE_NAMES if not c.startswith(("otsuki", "tutorial_vgg"))])):
        for composite in names:
            def run(net, inputs):
                return explain(net, inputs, target=y, composite=composite).relevance
            condition = precision.sensitivity(lambda: load(data.model_path(name), dtype="float64"), x, run, draws=2)
            assert condition.max() <= precision.MNIST_CONDITION, (name, composite, condition)


def test_float32_explanations_are_close_to_float64():
    """float32 against float64 where both made the same discrete choices, within the first-order bound from
    the case's conditioning (tests/precision.py). The digits get a little noise: their constant background
    gives pooling windows whose entries are equal in exact arithmetic, so their winners, and with them the
    relevance, depend on the BLAS kernel's summation order in either precision."""
    x, _ = precision.noisy_digits(16)   # exactly representable in float32: the comparison sees arithmetic only
    for name in ("mnist_mlp", "mnist_cnn"):
        net32, net64 = load(data.model_path(name), dtype="float32"), load(data.model_path(name), dtype="float64")
        # near-ties within float32 rounding (relative 1e-7) among a noisy digit's ~3,000 pooled and ReLU'd
        # values occur in about 1 sample in 1,000, so 12 of 16 agreeing holds on any CPU
        same = precision.same_choices(net32, x.astype(np.float32), net64, x)
        assert same.sum() >= 12, f"{name}: only {same.sum()} of 16 samples made the same choices in both precisions"
        for composite in ("epsilon_gamma_box", "epsilon_plus", "tutorial_mnist", "lrp0"):
            def run(net, inputs):
                return explain(net, inputs, target=3, composite=composite).relevance
            condition = precision.sensitivity(lambda: load(data.model_path(name), dtype="float64"), x, run)
            error = precision.per_sample_error(run(net32, x.astype(np.float32)), run(net64, x))
            bound = precision.float32_bound(net64, condition)
            compared = same & np.isfinite(bound)
            assert compared.sum() >= 12, f"{name} {composite}: only {compared.sum()} samples are smooth in both"
            assert (error[compared] <= bound[compared]).all(), (name, composite, error[compared], bound[compared])


# -- composites ---------------------------------------------------------------------------------------------

def test_composite_describes_its_rules(cnn):
    text = composites.get("epsilon_gamma_box", net=cnn).describe(cnn)
    assert "ZBox(low=-1.0, high=1.0" in text.splitlines()[2]
    assert "Gamma(gamma=0.25" in text and "WinnerTakeAll" in text and "Epsilon(epsilon=z ± 1e-06" in text


def test_bounds_come_from_the_network_unless_given(cnn):
    assert composites.get("epsilon_gamma_box", net=cnn).rules(cnn)[0].low == -1.0
    assert composites.get("epsilon_gamma_box", net=cnn, low=-2.0, high=2.0).rules(cnn)[0].low == -2.0


def test_layer_matching_no_entry_is_an_error(cnn, mnist):
    partial = Composite([(Kind(layers.Conv2d, layers.Dense), rules.LRP0())], name="partial")
    with pytest.raises(ValueError, match=r"layer 1 \('1', ReLU\(\)\) matches no entry of composite 'partial'"):
        explain(cnn, mnist[0], composite=partial)


def test_composite_entries_must_be_selector_and_rule():
    with pytest.raises(TypeError, match="composite entries must be \\(Selector, Rule\\) pairs, got"):
        Composite([(Kind(layers.Dense), "epsilon")])


def test_rule_on_the_wrong_kind_of_layer_is_an_error(cnn, mnist):
    wrong = Composite([(Kind(layers.Layer), rules.Gamma())], name="wrong")
    with pytest.raises(ValueError, match=r"gives layer 1 .* the rule Gamma.*which applies to Dense, Conv2d"):
        explain(cnn, mnist[0], composite=wrong)


@pytest.mark.parametrize("kwargs, message", [
    (dict(composite="lrp_magic"), "unknown composite 'lrp_magic'"),
    (dict(composite="gamma", epsilon=0.1), r"takes \['gamma', .*unknown parameter\(s\) \['epsilon'\]"),
    (dict(composite="gamma", gamma=-1.0), "gamma must be a number >= 0"),
    (dict(composite="alpha_beta", alpha=2.0, beta=2.0), "alpha - beta must equal 1"),
    (dict(composite="epsilon_gamma_box", low=1.0, high=-1.0), "low <= high"),
    (dict(composite="epsilon_plus", maxpool="median"), "maxpool must be one of"),
    (dict(composite="epsilon_plus", convention="keras"), "unknown convention 'keras'"),
    (dict(composite="tutorial_mnist", convention="zennit"), r"unknown parameter\(s\) \['convention'\]"),
    (dict(init="logits"), "unknown init 'logits'"),
    (dict(init=np.ones(9)), r"init array must have the output's shape \(2, 10\) or \(10,\)"),
    (dict(init=np.ones(10), target=1), "pass target=None"),
    (dict(target=10), "out of range: the network has 10 classes"),
    (dict(target=-1), "out of range"),
    (dict(target=1.5), "target must be a class index or one per sample"),
    (dict(target=[1, 2, 3]), "target must be a class index or one per sample"),
])
def test_bad_arguments_give_clear_errors(cnn, mnist, kwargs, message):
    with pytest.raises(ValueError, match=message):
        explain(cnn, mnist[0][:2], **kwargs)


def test_missing_bounds_are_named(rng):
    net = Sequential([layers.Conv2d(rng.normal(size=(2, 1, 3, 3))), layers.Flatten(), layers.Dense(np.ones((2, 8)))])
    with pytest.raises(ValueError, match="needs low, high .*the network records none"):
        explain(net, rng.normal(size=(1, 1, 4, 3)))


@pytest.mark.parametrize("x, message", [
    (np.zeros((28, 28)), r"expected an input of shape \(N, 1, 28, 28\) .*got shape \(28, 28\)"),
    (np.zeros((1, 28, 28)), r"for one sample use x\[None\]"),
    (np.zeros((2, 3, 28, 28)), r"expected an input of shape \(N, 1, 28, 28\), got shape \(2, 3, 28, 28\)"),
    (np.zeros((2, 28, 28, 1)), r"channels-last \(NHWC\)"),
    (np.zeros((0, 1, 28, 28)), "the input batch is empty"),
    (np.full((1, 1, 28, 28), np.nan), "NaN or Inf"),
    (np.full((1, 1, 28, 28), np.inf), "NaN or Inf"),
])
def test_bad_input_is_caught_at_the_boundary(cnn, x, message):
    with pytest.raises(ValueError, match=message):
        explain(cnn, x)


def test_a_zero_denominator_is_reported_not_returned_as_nan():
    """The first hidden unit has z = 0 and gets relevance 0 from above: 0 / 0 without a stabilizer."""
    net = Sequential([layers.Dense(np.array([[1.0, -1.0], [0.5, 0.5]])), layers.ReLU(), layers.Dense(np.ones((1, 2)))])
    with pytest.raises(FloatingPointError, match=r"NaN or Inf at the input of layer 0 \('0'\)"):
        explain(net, np.array([[1.0, 1.0]]), target=0, composite="lrp0", stabilizer=0.0)


def test_gamma_leaves_out_only_branches_whose_relevance_is_zero():
    """A sign-splitting rule leaves out the branch of negative outputs where only ReLUs read the output, seen
    through the identity BatchNorms that fold_batchnorm leaves. On ResNet18 under epsilon_gamma_box those are the
    first convolutions of its 8 basic blocks (conv -> bn -> relu; the second ones feed an addition, the projections
    an addition, the stem gets zB), and there the relevance at negative outputs is exactly zero in the explanation:
    nothing is lost by leaving the branch out."""
    explain_module = importlib.import_module("lrpref.explain")   # the attribute lrpref.explain is the function
    net = lrpref_models.build("resnet18", dtype="float64", backend="numpy")
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64))
    model = fold_batchnorm(net)
    acts = model.activations(x)
    facts = explain_module._sign_facts(model, composites.get("epsilon_gamma_box", net=net).rules(model), acts)
    follows = [model.nodes[i].name for i, fact in facts.items() if fact["relu_follows"]]
    assert sorted(follows) == sorted(f"layer{s}.{b}.conv1" for s in range(1, 5) for b in range(2))
    e = explain(net, x)
    for name in follows:
        negative = acts[name] < 0
        assert negative.any() and (e.tensors[name][negative] == 0).all()
