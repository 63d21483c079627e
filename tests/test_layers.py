"""Forward passes and copy maps against the naive matrices and index loops of tests/naive.py."""
import contextlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import naive
from cases import CONV_GEOMETRIES, POOL_GEOMETRIES, batch, conv_case, dense_case, on, pool_cases, relative_error
from lrpref import Sequential, backend, explain, fold_batchnorm, layers, set_buffer_limit, windows

# float64 rounding: the layers of cases.py are small (sums of at most 36 terms of size about 1), so lrpref's
# (im2col, BLAS) sums and the naive matrices' differ by about 1e-15 relative on any CPU; linear maps make no
# discrete choice. Elementwise formulas (BatchNorm folding) agree to a few ulps: 1e-15.
TOL = 1e-12


def flat(x):
    return backend.to_host(x).reshape(x.shape[0], -1)


@pytest.mark.parametrize("geometry", CONV_GEOMETRIES, ids=str)
def test_conv_forward_equals_matrix(rng, xp, geometry):
    case = conv_case(rng, geometry)
    x = batch(rng, case.in_shape)
    y = on(xp, case.layer).forward(xp.asarray(x))
    assert y.shape == (3,) + case.out_shape
    assert relative_error(flat(y), x.reshape(3, -1) @ case.M.T + case.b) < TOL


@pytest.mark.parametrize("reused", [False, True], ids=["fresh", "reused"])
@pytest.mark.parametrize("limit", ["whole", "samples", "rows"])
@pytest.mark.parametrize("geometry", CONV_GEOMETRIES, ids=str)
def test_conv_blocks_within_the_buffer_limit_equal_the_matrix(rng, xp, geometry, limit, reused):
    """With a small buffer limit, blocks of samples or of output rows (down to one row of one sample) give the
    forward map and its transpose of the matrix, with fresh im2col buffers or one reused scratch buffer."""
    case = conv_case(rng, geometry)
    x, s = batch(rng, case.in_shape), rng.normal(size=(3,) + case.out_shape)
    row = case.layer.weight[0].size * case.out_shape[2] * 8   # bytes of one output row's im2col, float64
    nbytes = {"whole": 1 << 30, "samples": 2 * row * case.out_shape[1], "rows": 1}[limit]
    expected_blocks = {"whole": 1, "samples": 2, "rows": 3 * case.out_shape[1]}[limit]
    previous = set_buffer_limit(nbytes)
    try:
        assert len(list(windows.blocks(3, case.out_shape[1], row))) == expected_blocks
        layer = on(xp, case.layer)
        with windows.reused_buffers() if reused else contextlib.nullcontext():
            y = layer.forward(xp.asarray(x))
            c = layer.transpose(xp.asarray(s), layer.weight, x.shape)
    finally:
        set_buffer_limit(previous)
    assert relative_error(flat(y), x.reshape(3, -1) @ case.M.T + case.b) < TOL
    assert relative_error(flat(c), s.reshape(3, -1) @ case.M) < TOL


def test_scratch_arrays_share_one_buffer_only_inside_reused_buffers(xp):
    assert not np.shares_memory(*(backend.to_host(windows.scratch(xp, (4, 5), np.float64)) for _ in "ab"))
    with windows.reused_buffers():
        first = windows.scratch(xp, (4, 5), np.float64)
        with windows.reused_buffers():   # nested: the same buffer
            second = windows.scratch(xp, (2, 3), np.float32)
        assert second.dtype == np.float32 and second.shape == (2, 3)
        assert xp.shares_memory(first, second) if xp is np else first.data.ptr == second.data.ptr
        third = windows.scratch(xp, (10, 10), np.float64)   # larger: a new buffer
        assert third.shape == (10, 10)
    assert not hasattr(windows._workspace, "buffers")   # released after the outermost block


def test_threads_explaining_at_once_do_not_share_scratch(rng):
    """Each thread has its own scratch buffer: explanations computed in parallel equal those computed alone."""
    net = Sequential([layers.Conv2d(rng.normal(size=(4, 2, 3, 3)), rng.normal(size=4), padding=1), layers.ReLU(),
                      layers.Conv2d(rng.normal(size=(3, 4, 3, 3)), None, stride=2), layers.Flatten(),
                      layers.Dense(rng.normal(size=(5, 3 * 7 * 7)), None)])
    inputs = [rng.normal(size=(2, 2, 16, 16)) for _ in range(8)]
    alone = [explain(net, x, composite="epsilon_plus").relevance for x in inputs]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda x: explain(net, x, composite="epsilon_plus").relevance, inputs * 4))
    assert all(np.array_equal(backend.to_host(t), backend.to_host(a)) for t, a in zip(together, alone * 4))


def test_the_buffer_limit_is_checked():
    with pytest.raises(ValueError, match=r"the buffer limit \(bytes\) must be an integer >= 1, got 0"):
        set_buffer_limit(0)


def test_dense_forward(rng, xp):
    case = dense_case(rng)
    x = batch(rng, case.in_shape)
    assert relative_error(on(xp, case.layer).forward(xp.asarray(x)), x @ case.M.T + case.b) < TOL


@pytest.mark.parametrize("case", pool_cases(), ids=lambda c: c.id)
def test_average_pools_equal_matrix(rng, xp, case):
    x = batch(rng, case.in_shape)
    y = case.layer.forward(xp.asarray(x))
    assert y.shape == (3,) + case.out_shape
    assert relative_error(flat(y), x.reshape(3, -1) @ case.M.T) < TOL


@pytest.mark.parametrize("geometry", POOL_GEOMETRIES, ids=str)
def test_maxpool_forward_and_ties(rng, xp, geometry):
    kernel, stride, padding, hw = geometry
    x = np.round(batch(rng, (2,) + hw), 1)          # rounding makes ties within windows
    layer = layers.MaxPool2d(kernel, stride, padding)
    y = layer.forward(xp.asarray(x))
    for n in range(3):
        expected, windows, out_shape = naive.maxpool_forward(x[n].ravel(), (2,) + hw, kernel, stride, padding)
        assert y.shape[1:] == out_shape
        assert np.array_equal(flat(y)[n], expected)
        counts = [sum(x[n].ravel()[m] == x[n].ravel()[m].max()) for m in windows]
        assert np.array_equal(flat(layer.count_maxima(xp.asarray(x), y))[n], counts)


def test_flatten_and_zeropad_pass_back_relevance_where_values_came_from(rng, xp):
    x = xp.asarray(batch(rng, (2, 4, 5)))
    pad = layers.ZeroPad2d((1, 0, 2, 1))
    y = pad.forward(x)
    assert y.shape == (3, 2, 5, 8)
    assert np.array_equal(backend.to_host(y[:, :, 1:, 2:7]), backend.to_host(x))
    assert np.array_equal(backend.to_host(pad.pass_back(y, x.shape)), backend.to_host(x))
    f = layers.Flatten()
    assert np.array_equal(backend.to_host(f.pass_back(f.forward(x), x.shape)), backend.to_host(x))


def test_batchnorm_forward_formula(rng, xp):
    w, b, mean, var = rng.uniform(0.5, 2, 4), rng.normal(size=4), rng.normal(size=4), rng.uniform(0.1, 2, 4)
    x = batch(rng, (4, 3, 3))
    bn = on(xp, layers.BatchNorm2d(w, b, mean, var, eps=1e-3))
    expected = (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-3) * w[:, None, None] + b[:, None, None]
    assert relative_error(bn.forward(xp.asarray(x)), expected) < TOL


def test_fold_batchnorm_keeps_output_and_matches_zennit_formula(rng, xp):
    conv = conv_case(rng, CONV_GEOMETRIES[1]).layer
    w, b, mean, var = rng.uniform(0.5, 2, 3), rng.normal(size=3), rng.normal(size=3), rng.uniform(0.1, 2, 3)
    dense_w = rng.normal(size=(4, 3 * 4 * 3))
    net = Sequential([conv, layers.BatchNorm2d(w, b, mean, var), layers.ReLU(), layers.Flatten(),
                      layers.Dense(dense_w), layers.BatchNorm2d(w[:3].repeat(2)[:4], b[:3].repeat(2)[:4],
                                                                mean[:3].repeat(2)[:4], var[:3].repeat(2)[:4])],
                     backend=backend.name(xp))
    folded = fold_batchnorm(net)
    x = batch(rng, (2, 7, 6))
    assert relative_error(folded.forward(x), net.forward(x)) < TOL   # a ReLU within 1e-16 of 0: probability ~1e-15
    scale = w / np.sqrt(var + 1e-5)
    assert relative_error(folded[0].weight, conv.weight * scale[:, None, None, None]) < 1e-15
    assert relative_error(folded[0].bias, (conv.bias - mean) * scale + b) < 1e-15
    h = rng.normal(size=(2, 3, 4, 4))
    assert np.array_equal(backend.to_host(folded[1].forward(xp.asarray(h))), h)   # the BatchNorm became the identity
    assert isinstance(folded[4], layers.Dense) and not np.array_equal(backend.to_host(folded[4].weight), dense_w)


def test_fold_batchnorm_leaves_shared_outputs_alone(rng):
    """A conv whose output feeds a BatchNorm and something else is not merged (the other reader would change)."""
    from lrpref import Network, Node
    conv = conv_case(rng, CONV_GEOMETRIES[0]).layer
    bn = layers.BatchNorm2d(np.full(3, 2.0), np.ones(3), np.zeros(3), np.ones(3))
    net = Network([Node("conv", conv, ("input",)), Node("bn", bn, ("conv",)), Node("add", layers.Add(), ("bn", "conv"))])
    folded = fold_batchnorm(net)   # net's layers: conv and bn, or their copies on CuPy (LRPREF_BACKEND=cupy)
    assert folded["conv"] is net["conv"] and folded["bn"] is net["bn"]


@pytest.mark.parametrize("make, x_shape, message", [
    (lambda: layers.Dense(np.ones((3, 4))), (2, 5), r"expects an input of 2 axes \(N, features\) or 4 axes .* with 4"),
    (lambda: layers.Conv2d(np.ones((3, 2, 3, 3))), (2, 3, 5, 5), "with 2 on axis 1"),
    (lambda: layers.MaxPool2d(2), (2, 4), "4 axes"),
    (lambda: layers.Conv2d(np.ones((3, 2, 5, 5))), (1, 2, 3, 3), "smaller than the window"),
])
def test_layers_reject_wrong_shapes(make, x_shape, message):
    with pytest.raises(ValueError, match=message):
        make().forward(np.ones(x_shape))


@pytest.mark.parametrize("make, message", [
    (lambda: layers.Dense(np.ones(3)), r"Dense weight must have 2 non-empty axes, got an array of shape \(3,\)"),
    (lambda: layers.Dense(np.ones((3, 4)), np.ones(4)), r"bias must have shape \(3,\)"),
    (lambda: layers.Conv2d(np.ones((3, 2, 3, 3)), stride=0), "stride must be an integer >= 1, got 0"),
    (lambda: layers.Conv2d(np.ones((3, 2, 3, 3)), padding=(1, 2, 3)), "padding must be"),
    (lambda: layers.BatchNorm2d(np.ones(3), np.ones(3), np.ones(2), np.ones(3)), "same shape"),
])
def test_layers_reject_bad_parameters(make, message):
    with pytest.raises(ValueError, match=message):
        make()
