"""The ``toolbox`` convention reproduces the LRP Toolbox 1.3.1.

1. Its own outputs (shared/peer-references/lrp-toolbox-1.3.1/toolbox_references.h5, its code run unchanged in
   float64; see that folder's README): four CNNs, two seeds, inputs of both signs and non-negative, seven rules,
   the relevance at every module's input. lrpref rebuilds each network from the file's layout and must agree at
   every layer within 1e-12 relative (``max |lrpref - Toolbox| / max |Toolbox|`` per layer).
   Why 1e-12 holds on any CPU/BLAS: both sides evaluate the same formulas in float64 on sums of at most 216
   terms, in different orders; rounding differences of about 1e-16 relative are amplified only where a
   denominator is small against the sums it is made of. The worst such place is alpha-beta's negative
   denominator, which the Toolbox computes as ``Y - Zsp - 1e-16`` (cancelling where z- is small against z+)
   and lrpref as the sum of the negative contributions ``- 2e-16``: alphabeta_2 reaches 1.8e-13 (5.2e-13 with
   Zennit's ``- 1e-16``); every other rule stays below 5e-15 (``benchmarks/toolbox_errors.py``).
2. Other geometries (kernels 5x5 and 2x3, strides 2, overlapping max and sum pools, a sum pool on inputs of both
   signs): the whole network against tests/naive.py's formula-literal twins of the Toolbox's rules, every layer.
3. The Toolbox's SumPool beta bug (quadratic in R) is not copied.
"""
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

import lrpref
import naive
from cases import relative_error
from lrpref import Network, layers, toolbox
from lrpref.backend import to_host

FILE = Path(__file__).resolve().parents[2] / "shared" / "peer-references" / "lrp-toolbox-1.3.1" / \
    "toolbox_references.h5"
needs_file = pytest.mark.skipif(not FILE.is_file(), reason=f"the LRP Toolbox's reference outputs are not at {FILE} "
                                                           "(they are read from shared/, never copied into the repo)")
TOL = 1e-12

# Toolbox rule (the file's name; lrp_var, param) -> lrpref composite and its parameters
RULES = {
    "simple": ("simple", None, "lrp0", {}),
    "epsilon_0.01": ("epsilon", 0.01, "epsilon", {"epsilon": 0.01}),
    "epsilon_1": ("epsilon", 1.0, "epsilon", {"epsilon": 1.0}),
    "alphabeta_1": ("alphabeta", 1.0, "alpha_beta", {"alpha": 1.0, "beta": 0.0}),
    "alphabeta_2": ("alphabeta", 2.0, "alpha_beta", {"alpha": 2.0, "beta": 1.0}),
    "flat": ("flat", None, "flat", {}),
    "ww": ("ww", None, "wsquare", {}),
}
CASES = [(net, f"seed{seed}_{inputs}") for net in ("A_max_sum", "B_sum", "C_nopool", "D_max")
         for seed in (10, 11) for inputs in ("mixed", "nonneg")]


def explain(net, x, init, rule):
    _, _, composite, params = RULES[rule]
    return lrpref.explain(net, x, composite=composite, init=init, convention="toolbox", **params)


def toolbox_layout(e, spec, i):
    """lrpref's relevance of module i's input in the Toolbox's layout: NHWC maps, (h, w, c) after ``flat``."""
    R = e.layers[i]
    if R.ndim == 4:
        return R.transpose(0, 2, 3, 1)
    if i > 0 and spec[i - 1][0] == "flat":
        return e.layers[i - 1].transpose(0, 2, 3, 1).reshape(R.shape)
    return R


def read_case(f, net_name, case):
    """The stored group, the Toolbox's module list, the lrpref network and the input (NCHW)."""
    g = f[net_name][case]
    spec = json.loads(g.attrs["layers"])
    params = {int(i): (g["params"][i]["W"][()], g["params"][i]["B"][()]) for i in g["params"]}
    net = toolbox.network(spec, params, json.loads(g.attrs["input_shape_hwc"]))
    return g, spec, net, g["x"][()].transpose(0, 3, 1, 2)


@needs_file
@pytest.mark.parametrize("net_name, case", CASES)
def test_reproduces_the_toolbox_at_every_layer(net_name, case):
    with h5py.File(FILE) as f:
        g, spec, net, x = read_case(f, net_name, case)
        output = net.forward(x)
        assert relative_error(output, g["output"][()]) < TOL     # the layout is read right
        assert np.array_equal(to_host(output.argmax(axis=1)), g["target"][()])
        for rule in RULES:
            assert json.loads(g["relevance"][rule].attrs["param"]) == RULES[rule][1]
            e = explain(net, x, g["init"][()], rule)
            for i in range(len(spec)):
                error = relative_error(toolbox_layout(e, spec, i), g["relevance"][rule][str(i)][()])
                assert error < TOL, f"{net_name}/{case}, {rule}: module {i} ({spec[i][0]}), relative error {error:.2e}"


@needs_file
def test_the_stored_sum_pools_never_see_negative_inputs():
    """The README's claim that the stored cases do not reach the Toolbox's SumPool beta bug (quadratic in R on
    inputs of both signs): every sum pool's input is non-negative, so lrpref's fix is not what they check."""
    with h5py.File(FILE) as f:
        for net_name, case in CASES:
            g, spec, net, x = read_case(f, net_name, case)
            acts = net.activations(x)
            for i, node in enumerate(net.nodes):
                if isinstance(node.layer, layers.SumPool2d):
                    assert acts[node.inputs[0]].min() >= 0


# -- other geometries, against the formula-literal twins -------------------------------------------------------

GEOMETRIES = {   # Toolbox-style networks: name -> (layers, input (H, W, C))
    "conv5x5s2-max3s2-conv2x2-sum2s1": ([["conv", 5, 5, 2, 3, 2], ["relu"], ["max", 3, 2], ["conv", 2, 2, 3, 4, 1],
                                          ["relu"], ["sum", 2, 1], ["flat"], ["lin", 4]], (21, 21, 2)),
    "conv2x3-max2s1-sum3s2": ([["conv", 2, 3, 2, 4, 1], ["relu"], ["max", 2, 1], ["sum", 3, 2], ["flat"], ["lin", 6],
                               ["relu"], ["lin", 3]], (12, 12, 2)),
    "sum-on-the-input": ([["sum", 2, 2], ["conv", 3, 3, 2, 3, 1], ["relu"], ["flat"], ["lin", 3]], (10, 10, 2)),
}


def toolbox_params(spec, hwc, rng):
    """Random parameters in the Toolbox's layout, ``(h, w, in, out)`` kernels and ``(in, out)`` linear weights;
    a Linear's fan-in is read from the network up to it."""
    params = {}
    for i, (kind, *args) in enumerate(spec):
        if kind == "conv":
            params[i] = rng.normal(size=args[:4]) / np.sqrt(np.prod(args[:3])), rng.normal(size=args[3]) * 0.1
        elif kind == "lin":
            below = toolbox.network(spec[:i], params, hwc).forward(np.zeros((1, hwc[2], hwc[0], hwc[1])))
            params[i] = rng.normal(size=(below.size, args[0])) / np.sqrt(below.size), rng.normal(size=args[0]) * 0.1
    return params


def twin_relevances(net, x, init, variant, param):
    """The relevance of every layer's input from tests/naive.py's Toolbox rules, one sample at a time (on the
    host: the network may live on CuPy)."""
    net = Network(net.nodes, net.input_shape, net.meta).to("numpy")
    per_layer = [[] for _ in net.layers]
    for n in range(x.shape[0]):
        a, steps = x[n], []
        for layer in net.layers:
            shape, flat = a.shape, a.ravel()
            if isinstance(layer, layers.Conv2d):
                M, connected, out_shape = naive.conv_matrix(layer.weight, layer.stride, layer.padding, shape)
                b = naive.conv_bias(layer.bias, out_shape)
                y, op = M @ flat + b, ("weighted", M, b, connected)
            elif isinstance(layer, layers.Dense):
                M, connected, out_shape = layer.weight, np.ones(layer.weight.shape, bool), layer.bias.shape
                y, op = M @ flat + layer.bias, ("weighted", M, layer.bias, connected)
            elif isinstance(layer, (layers.MaxPool2d, layers.SumPool2d)):
                windows, out_shape = naive.window_members(shape, layer.kernel_size, layer.stride, layer.padding)
                sums = np.array([flat[m].sum() for m in windows]) / np.sqrt(len(windows[0]))
                y = np.array([flat[m].max() for m in windows]) if isinstance(layer, layers.MaxPool2d) else sums
                op = ("max" if isinstance(layer, layers.MaxPool2d) else "sum", windows)
            else:   # ReLU keeps the shape, Flatten flattens
                y, op = np.maximum(flat, 0) if isinstance(layer, layers.ReLU) else flat, ("pass",)
                out_shape = shape if isinstance(layer, layers.ReLU) else flat.shape
            steps.append((a, op))
            a = y.reshape(out_shape)
        R = init[n]
        for i in reversed(range(len(net.layers))):
            a, op = steps[i]
            flat, flat_R = a.ravel(), R.ravel()
            if op[0] == "weighted":
                R_in = naive.toolbox_weighted(variant, param, flat, op[1], op[2], flat_R, op[3])
            elif op[0] == "max":
                R_in = naive.toolbox_maxpool(variant, flat, op[1], flat_R)
            elif op[0] == "sum":
                R_in = naive.toolbox_sumpool(variant, param, flat, op[1], flat_R)
            else:
                R_in = flat_R
            R = R_in.reshape(a.shape)
            per_layer[i].append(R)
    return [np.stack(r) for r in per_layer]


@pytest.mark.parametrize("inputs", ["mixed", "nonneg"])
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_other_geometries_equal_the_toolbox_formulas(rng, geometry, rule, inputs):
    spec, hwc = GEOMETRIES[geometry]
    params = toolbox_params(spec, hwc, rng)
    net = toolbox.network(spec, params, hwc)
    x = rng.uniform(-1 if inputs == "mixed" else 0, 1, size=(4, hwc[2], hwc[0], hwc[1]))
    x = np.round(x, 1)   # rounding makes tied maxima in the max pools
    output = to_host(net.forward(x))   # the seed is built on the host (the network may live on CuPy)
    init = np.zeros_like(output)
    init[np.arange(4), output.argmax(axis=1)] = output.max(axis=1)   # the Toolbox demos' ypred * mask
    e = explain(net, x, init, rule)
    twins = twin_relevances(net, x, init, *RULES[rule][:2])
    for i, twin in enumerate(twins):
        error = relative_error(e.layers[i], twin)
        assert error < TOL, f"{geometry}, {rule}, {inputs}: layer {i} ({net.layers[i]!r}), relative error {error:.2e}"


# -- the bug not copied, the layer, the builder ----------------------------------------------------------------

def test_sum_pool_alpha_beta_is_linear_in_the_relevance(rng):
    """The Toolbox's ``SumPool._alphabeta_lrp`` scales its beta term by R twice on inputs of both signs; lrpref's
    rule is linear in R (and equals the Toolbox's ``_alphabeta_lrp_slow`` formula: the geometry tests above)."""
    pool, a = layers.SumPool2d(2), rng.uniform(-1, 1, size=(3, 2, 6, 6))
    R = rng.normal(size=(3, 2, 3, 3))
    rule = toolbox.SumPoolAlphaBeta(2.0, 1.0)
    R_in, _ = rule.relprop(pool, a, R)
    R_in3, _ = rule.relprop(pool, a, 3.0 * R)
    assert relative_error(R_in3, 3.0 * R_in) < 1e-15
    assert (a < 0).any() and np.abs(R_in[a < 0]).max() > 0   # the beta term is reached


def test_sum_pool_is_the_window_sum_over_the_square_root_of_its_size(rng, tmp_path):
    x = rng.normal(size=(2, 3, 7, 7))
    pool = layers.SumPool2d(3, 2)
    windows, out_shape = naive.window_members((3, 7, 7), (3, 3), (2, 2), (0, 0, 0, 0))
    expected = np.stack([[x[n].ravel()[m].sum() / 3.0 for m in windows] for n in range(2)]).reshape((2,) + out_shape)
    assert relative_error(pool.forward(x), expected) < 1e-15
    net = lrpref.Sequential([pool, layers.Flatten()], input_shape=(3, 7, 7))
    lrpref.save(net, tmp_path / "net.h5")
    assert relative_error(lrpref.load(tmp_path / "net.h5", dtype="float64").forward(x), net.forward(x)) == 0


@pytest.mark.parametrize("spec, params, message", [
    ([["pool", 2, 2]], {}, "unknown kind 'pool'"),
    ([["conv", 3, 3, 2, 4, 1]], {0: (np.zeros((3, 3, 4, 2)), np.zeros(4))}, r"expected \(3, 3, 2, 4\)"),
    ([["flat"], ["lin", 2]], {1: (np.zeros((50, 2)), np.zeros(2))}, r"expected \(32, 2\)"),
])
def test_network_names_what_it_expected(spec, params, message):
    with pytest.raises(ValueError, match=message):
        toolbox.network(spec, params, (4, 4, 2))


def test_the_convention_gives_pools_the_rule_of_the_variant():
    net = toolbox.network([["conv", 1, 1, 1, 1, 1], ["relu"], ["max", 2, 2], ["sum", 2, 2], ["flat"], ["lin", 2]],
                          {0: (np.ones((1, 1, 1, 1)), np.zeros(1)), 5: (np.ones((1, 2)), np.zeros(2))}, (4, 4, 1))
    expected = {"lrp0": ("WinnerTakeAll", "SumPoolEpsilon"), "epsilon": ("WinnerTakeAll", "SumPoolEpsilon"),
                "alpha_beta": ("WinnerTakeAll", "SumPoolAlphaBeta"), "zplus": ("WinnerTakeAll", "SumPoolAlphaBeta"),
                "flat": ("PoolFlat", "PoolFlat"), "wsquare": ("PoolFlat", "PoolFlat")}
    for composite, (max_rule, sum_rule) in expected.items():
        chosen = lrpref.composites.get(composite, convention="toolbox").rules(net)
        assert (type(chosen[2]).__name__, type(chosen[3]).__name__) == (max_rule, sum_rule)
    assert str(lrpref.composites.get("lrp0", convention="toolbox").rules(net)[3].epsilon) == "z ± 1e-12"
    assert lrpref.composites.get("wsquare", convention="toolbox").rules(net)[0].zero_bias   # the Toolbox's ww
