"""Residual networks: relevance splitting at the additions (Otsuki et al. 2024) and conservation through ResNet50.

Tolerances: the splits are elementwise float64 formulas (1e-14 and 1e-12: a few ulps). Conservation through a
whole ResNet compares sums within one computation: what the stabilizer 1e-12 absorbs (1e-12 / z per neuron,
with the z of z-plus on these inputs far above 1e-4) plus the rounding of sums of some 10^5 terms (about 1e-13);
summing in another order changes neither to first order, so 1e-8 holds on any CPU. No comparison here pits two
computations' discrete choices against each other.
"""
import numpy as np
import pytest

import lrpref
from lrpref import backend, layers, rules
from lrpref.composites import SKIP
from lrpref.models import torchvision as tvl


def split(rule, main, skip, R, xp):
    (R_main, R_skip), bias = rule.relprop(layers.Add(), (xp.asarray(main), xp.asarray(skip)), xp.asarray(R))
    assert bias is None
    return backend.to_host(R_main), backend.to_host(R_skip)


def test_ratio_split_identities(xp, rng):
    main, skip, R = rng.normal(size=(3, 2, 4, 5, 5))
    main[0, 0, 0], skip[0, 0, 0] = 0.0, 0.0   # both zero: no NaN, zeros
    R_main, R_skip = split(rules.RatioSplit(), main, skip, R, xp)
    both_zero = (main == 0) & (skip == 0)
    assert np.allclose((R_main + R_skip)[~both_zero], R[~both_zero], rtol=1e-14, atol=0)
    assert both_zero.sum() == 5 and not R_main[both_zero].any() and not R_skip[both_zero].any()
    assert np.allclose(R_main, R * np.abs(main) / np.where(both_zero, 1, np.abs(main) + np.abs(skip)), rtol=1e-14)
    assert (np.sign(R_main) * np.sign(R) >= 0).all() and (np.sign(R_skip) * np.sign(R) >= 0).all()


def test_fixed_splits(xp, rng):
    main, skip, R = rng.normal(size=(3, 2, 4, 3, 3))
    R_main, R_skip = split(rules.FixedSplit(0.5), main, skip, R, xp)
    assert np.array_equal(R_main, R / 2) and np.array_equal(R_skip, R / 2)
    R_main, R_skip = split(rules.FixedSplit(1.0), main, skip, R, xp)
    assert np.array_equal(R_main, R) and not R_skip.any()
    with pytest.raises(ValueError, match=r"share must lie in \[0, 1\]"):
        rules.FixedSplit(1.5)


def zero_bias_resnet(arch, seed=0, dtype="float64"):
    """A torchvision-layout ResNet with random BatchNorm scales and variances, its betas and means zero."""
    rng = np.random.default_rng(seed)
    base = tvl.random_init(seed, dtype)

    def param(name, shape, kind):
        if kind in ("bn_weight", "bn_running_var"):
            return rng.uniform(0.5, 1.5, shape).astype(dtype)
        return base(name, shape, kind)
    return tvl.build(arch, param)


@pytest.fixture(scope="module")
def resnet50():
    return zero_bias_resnet("resnet50")


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).normal(size=(2, 3, 128, 128))


@pytest.mark.parametrize("skip", sorted(SKIP))
def test_splits_conserve_relevance_through_resnet50(resnet50, images, skip):
    """With the stabilizer at 1e-12 and no biases, the relevance entering every residual block equals the
    output relevance (the softmax probability) to 1e-8; with max pooling averaged over its own windows the
    same holds at the pixels. (The authors' 2x2 average in place of the 3x3 stem pool can lose relevance
    where the 2x2 window is all zeros but the 3x3 maximum is not.)"""
    e = lrpref.explain(resnet50, images, composite="otsuki2024", skip=skip, stabilizer=1e-12)
    report = e.conservation()
    assert len(report.block_names) == 16
    assert np.allclose(report.block_in, report.total_out, rtol=1e-8, atol=0)
    e = lrpref.explain(resnet50, images, composite="otsuki2024", skip=skip, stabilizer=1e-12, maxpool="average")
    relevance, init = backend.to_host(e.relevance), backend.to_host(e.init)   # the net may live on CuPy
    assert np.allclose(relevance.reshape(2, -1).sum(axis=1), init.sum(axis=1), rtol=1e-8, atol=0)
    assert (e.relevance >= 0).all()


def test_otsuki2024_is_the_authors_pipeline(resnet50, images):
    e = lrpref.explain(resnet50, images, composite="otsuki2024", skip="latest")
    rule = dict(zip(e.names, e.rules))
    assert rule["conv1"] == rules.OriginalZPlus(rules.Stabilizer(1e-5, sign_aware=False), ones_input=True)
    assert rule["layer1.1.conv2"] == rules.OriginalZPlus(rules.Stabilizer(1e-5, sign_aware=False))
    assert rule["fc"].zero_bias and isinstance(rule["bn1"], rules.Pass)
    assert rule["layer1.0.add"] == rules.RatioSplit() and rule["layer1.1.add"] == rules.FixedSplit(1.0)
    assert rule["maxpool"] == rules.AverageMaxPool(rules.Stabilizer(1e-5, sign_aware=False), kernel_size=2)
    logits = backend.to_host(e.output)   # the network may live on CuPy (LRPREF_BACKEND=cupy): on the host
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    assert np.allclose(backend.to_host(e.init).sum(axis=1), p.max(axis=1), rtol=1e-14)   # the predicted class's probability
    # BatchNorm is not folded: the convolutions keep their own weights, the splits see the true branch outputs
    acts = resnet50.activations(images)
    main, skip = backend.to_host(acts["layer1.0.bn3"]), backend.to_host(acts["layer1.0.downsample.1"])
    R = backend.to_host(e.tensors["layer1.0.relu"])
    expected = R * np.abs(main) / (np.abs(main) + np.abs(skip))
    assert np.allclose(backend.to_host(e.tensors["layer1.0.bn3"]), expected, rtol=1e-12)


def test_first_layer_sees_ones(resnet50, images):
    """The authors replace the image by ones in the first layer: for the same relevance at conv1's output,
    the input relevance does not depend on the pixels."""
    rule = lrpref.composites.get("otsuki2024").rules(resnet50)[0]
    x = backend.asarray(images, resnet50.xp)   # on the network's backend (CuPy under LRPREF_BACKEND=cupy)
    R = backend.asarray(np.random.default_rng(2).uniform(size=resnet50[0].forward(x).shape), resnet50.xp)
    first, _ = rule.relprop(resnet50[0], x, R)
    second, _ = rule.relprop(resnet50[0], 3 * x + 1, R)
    assert np.array_equal(backend.to_host(first), backend.to_host(second))


def test_variants_and_bad_input(resnet50, images):
    with pytest.raises(ValueError, match="unknown skip 'both'"):
        lrpref.explain(resnet50, images, composite="otsuki2024", skip="both")
    net = lrpref.load(lrpref.data.model_path("mnist_cnn"))
    with pytest.raises(ValueError, match="'otsuki2024' needs a network with Add layers; this one has none"):
        lrpref.explain(net, lrpref.data.mnist_sample()[0][:1], composite="otsuki2024")
    maps = {skip: backend.to_host(lrpref.explain(resnet50, images[:1], composite="otsuki2024", skip=skip).relevance)
            for skip in SKIP}
    assert not np.allclose(maps["flows_skip"], maps["latest"]) and not np.allclose(maps["simple"], maps["latest"])


def test_block_plot(resnet50, images, tmp_path):
    e = lrpref.explain(resnet50, images, composite="otsuki2024")
    report = e.conservation()
    assert report.block_names[:2] == ["layer1.0.add", "layer1.1.add"] and report.block_in.shape == (16, 2)
    assert lrpref.network.residual_blocks(resnet50)[0] == ("layer1.0.add", "maxpool")
    report.plot_blocks(tmp_path / "blocks.png")
    from PIL import Image
    assert Image.open(tmp_path / "blocks.png").size == (640, 420)


def test_basic_blocks_too():
    net = zero_bias_resnet("resnet18")
    x = np.random.default_rng(3).normal(size=(1, 3, 96, 96))
    e = lrpref.explain(net, x, composite="otsuki2024", stabilizer=1e-12)
    assert np.allclose(e.conservation().block_in, backend.to_host(e.init).sum(), rtol=1e-8, atol=0)
