"""Hostile inputs, parameters and arrays: every value means what it says, or is refused naming what was expected
and what came. Property-based over values of every kind (lrpref.checks is the one helper per kind)."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lrpref import (checks, composites, contrastive, data, evaluation, explain, heatmap, load, models, plots,
                    reference, rules)
from lrpref.backend import to_host
from lrpref.stabilizer import Stabilizer

ANY_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10), st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-10, 10).map(np.float32), st.integers(-10, 10).map(np.int64), st.booleans().map(np.bool_),
    st.complex_numbers(max_magnitude=10), st.text(max_size=3), st.lists(st.floats(-1, 1), max_size=2))


def is_real_number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


@given(ANY_VALUE)
def test_numbers_are_real_finite_and_in_range_or_refused(value):
    if is_real_number(value) and math.isfinite(value) and value >= 0:
        assert checks.number(value, "gamma", low=0.0) == float(value)
        assert rules.Gamma(gamma=value).gamma == float(value)
        return
    with pytest.raises((TypeError, ValueError)) as err:
        rules.Gamma(gamma=value)
    expected = ("must be a real number, got" if not is_real_number(value) else
                "must be a finite number, got" if not math.isfinite(value) else "must be a number >= 0, got")
    assert str(err.value).startswith(f"gamma {expected}"), err.value


@given(ANY_VALUE)
def test_booleans_are_booleans_or_refused(value):
    if isinstance(value, (bool, np.bool_)):
        assert rules.Epsilon(zero_bias=value).zero_bias is bool(value)
        return
    with pytest.raises(TypeError, match=r"Epsilon zero_bias must be True or False, got .* \(\w+\)"):
        rules.Epsilon(zero_bias=value)


@given(ANY_VALUE)
def test_stabilizers_take_numbers_of_every_kind(value):
    if is_real_number(value) and math.isfinite(value) and value >= 0:
        assert Stabilizer.ensure(value).epsilon == float(value)
        return
    with pytest.raises((TypeError, ValueError), match="stabilizer"):
        Stabilizer.ensure(value)


@pytest.mark.parametrize("value, message", [
    ("False", r"zero_bias must be True or False, got 'False' \(str\)"),
    (1, r"zero_bias must be True or False, got 1 \(int\)"),
])
def test_a_composite_passes_zero_bias_on_checked(value, message):
    with pytest.raises(TypeError, match=message):
        composites.get("epsilon", zero_bias=value)


@pytest.mark.parametrize("params, message", [
    ({"gamma": float("nan")}, "gamma must be a finite number, got nan"),
    ({"low": -np.inf}, "the zB bound low must be finite numbers, found 1 NaN or Inf"),
    ({"high": np.array([1.0, np.nan])}, "the zB bound high must be finite numbers, found 1 NaN or Inf"),
    ({"low": "a"}, "the zB bound low must be an array of real numbers, got dtype <U1"),
    ({"epsilon": float("inf")}, "epsilon must be a finite number, got inf"),
])
def test_non_finite_rule_parameters_are_refused(params, message):
    with pytest.raises((TypeError, ValueError), match=message):
        composites.get("epsilon_gamma_box", **{"low": -1.0, "high": 1.0, **params})


@pytest.fixture(scope="module")
def mnist():
    net = load(data.model_path("mnist_mlp"), dtype="float64")
    x, _ = data.mnist_sample()
    return net, x[:2]


def test_numpy_scalars_mean_the_same_as_python_numbers(mnist):
    net, x = mnist
    plain = explain(net, x, composite="epsilon_gamma_box", gamma=0.5, epsilon=0.25, zero_bias=True)
    numpy = explain(net, x, composite="epsilon_gamma_box", gamma=np.float32(0.5), epsilon=np.float64(0.25),
                    zero_bias=np.bool_(True))
    # 0.5 and 0.25 are exact in float32; compared on the host (the network may live on CuPy: LRPREF_BACKEND=cupy)
    assert np.array_equal(to_host(plain.relevance), to_host(numpy.relevance))


@pytest.mark.parametrize("make, message", [
    (lambda x: x + 1j, "the input must be real numbers, got complex values"),
    (lambda x: x.astype(object), "the input must be an array of real numbers, got dtype object"),
    (lambda x: np.full(x.shape, "1"), "the input must be an array of real numbers, got dtype <U1"),
])
def test_inputs_that_are_not_real_numbers_are_refused(mnist, make, message):
    net, x = mnist
    with pytest.raises(TypeError, match=message):
        explain(net, make(x))


def test_a_complex_init_is_refused(mnist):
    net, x = mnist
    with pytest.raises(TypeError, match="the init array must be real numbers, got complex values"):
        explain(net, x, init=np.ones((2, 10)) * (1 + 1j))


@pytest.mark.parametrize("call, message", [
    (lambda images, maps: evaluation.relevance_mass_accuracy(np.full_like(maps, np.nan), maps > 0),
     r"maps must be finite numbers, found 1568 NaN or Inf value\(s\)"),
    (lambda images, maps: evaluation.check(images, np.where(maps > 0, np.inf, maps)), "maps must be finite numbers"),
    (lambda images, maps: evaluation.check(np.where(images > 0.5, np.nan, images)), "images must be finite numbers"),
    (lambda images, maps: evaluation.check(images, labels=np.array([0.5, 1.0])),
     "labels must be integers \\(class indices\\), got dtype float64"),
    (lambda images, maps: evaluation.pixel_flipping(None, images, maps, np.array([0, 1]), patch=0),
     "patch must be an integer >= 1, got 0"),
    (lambda images, maps: evaluation.insertion_deletion(None, images, maps, np.array([0, 1]), step=-3),
     "step must be an integer >= 1, got -3"),
])
def test_metrics_refuse_non_finite_maps_and_bad_settings(call, message):
    images = np.random.default_rng(0).uniform(size=(2, 1, 28, 28))
    maps = images[:, 0] - 0.5
    with pytest.raises((TypeError, ValueError), match=message):
        call(images, maps)


def test_contrastive_methods_check_their_own_arguments(mnist):
    net, x = mnist
    with pytest.raises(TypeError, match=r"variant must be an integer, got True \(bool\)"):
        contrastive.clrp(net, x, variant=True)   # True == 1: it was taken as variant 1
    with pytest.raises(ValueError, match="contrastive methods choose the output relevance \\(init\\) themselves; "
                                         "got init='one'"):
        contrastive.sglrp(net, x, init="one")


@pytest.mark.parametrize("call, message", [
    (lambda maps: evaluation.heat_quantization(maps, 1), "levels must be an integer >= 2, got 1"),
    (lambda maps: evaluation.heat_quantization(maps, 2.5), r"levels must be an integer, got 2.5 \(float\)"),
    (lambda maps: evaluation.heat_quantization(np.full_like(maps, np.nan)), "maps must be finite numbers, found 1568"),
    (lambda maps: evaluation.auc([0.5]), r"the curve must be a 1-D array of at least 2 points, got shape \(1,\)"),
    (lambda maps: evaluation.relevance_mass_accuracy(maps, np.full(maps.shape, 0.3)),
     "masks must hold only 0/1 or False/True, got 1568 other value\\(s\\), e.g. 0.3"),
    (lambda maps: evaluation.relevance_mass_accuracy(maps, np.full(maps.shape, np.nan)), "e.g. nan"),
])
def test_metric_helpers_refuse_values_without_a_meaning(call, message):
    maps = np.random.default_rng(0).uniform(size=(2, 28, 28)) - 0.5
    with pytest.raises((TypeError, ValueError), match=message):
        call(maps)


def test_label_probabilities_refuse_labels_that_are_no_class(mnist):
    """A label of -1 was read as the last class (NumPy's negative index), 10 as an IndexError."""
    net, x = mnist
    images = (x + 1) / 2
    for labels, message in ((np.array([7, -1]), "labels must be class indices 0..9 of this network, got values in "
                                                "-1..7"),
                            (np.array([7, 10]), "got values in 7..10"),
                            (np.array([7.0, 2.0]), "labels must be integers \\(class indices\\), got dtype float64")):
        with pytest.raises((TypeError, ValueError), match=message):
            evaluation.label_probability(net, images, labels)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        evaluation.label_probability(net, images, np.array([7, 2]), batch_size=0)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got -1"):
        evaluation.evaluate(net, images, batch_size=-1, progress=False)
    with pytest.raises(ValueError, match="names must name every image: got 1 names for 2 images"):
        evaluation.evaluate(net, images, names=["a"], progress=False)


@pytest.mark.parametrize("call, message", [
    (lambda: heatmap.relevance_rgb(np.full((4, 4), np.nan)), "the relevance map must be finite numbers, found 16"),
    (lambda: heatmap.relevance_rgb(np.where(np.eye(4) > 0, np.inf, 0.1)), "found 4 NaN or Inf"),
    (lambda: heatmap.relevance_rgb(np.eye(4), scale=-1.0), "the colour scale must be a number >= 0, got -1"),
    (lambda: heatmap.relevance_rgb(np.eye(4), scale=float("nan")), "the colour scale must be a finite number, got nan"),
    (lambda: heatmap.relevance_rgb(np.ones((3, 4, 4))),
     r"must be 2-D \(height, width\) and non-empty, got shape \(3, 4, 4\)"),
    (lambda: heatmap.save_panels("p.png", [np.zeros((4, 4, 3))]),
     r"panels must be uint8 images \(H, W\) or \(H, W, 3\), got dtype float64 and shape \(4, 4, 3\)"),
    (lambda: heatmap.save_panels("p.png", [np.zeros((4, 4, 3), np.uint8)], zoom=0),
     "zoom must be an integer >= 1, got 0"),
    (lambda: heatmap.save_panels("p.png", [np.zeros((4, 4, 3), np.uint8)] * 2, captions=["a"]),
     r"captions must give one per panel: \[2\] panels per row, got \[1\]"),
    (lambda: heatmap.save_panels("p.png", []), "nothing to draw: expected at least one panel in every row"),
    (lambda: heatmap.tutorial_scale(np.zeros((0, 4))), r"the relevance is empty \(shape \(0, 4\)\)"),
])
def test_heatmaps_refuse_maps_and_panels_without_colours(tmp_path, monkeypatch, call, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises((TypeError, ValueError), match=message):
        call()
    assert list(tmp_path.iterdir()) == []


def test_a_finite_input_too_large_for_the_dtype_is_named(mnist):
    """1e300 becomes inf in float32: the input was finite, so "contains NaN or Inf" would mislead."""
    _, x = mnist
    net32 = load(data.model_path("mnist_mlp"))
    with pytest.raises(ValueError, match=r"the input holds values too large for the network's dtype float32 \(largest "
                                         r"magnitude 1e\+300\); scale it, or use float64"):
        explain(net32, x * 1e300)
    with pytest.raises(TypeError, match=r"net must be an lrpref Network .*, got str"):
        explain("mnist_mlp", x)


def test_reference_checks_and_exports_refuse_empty_or_bad_settings(tmp_path):
    with pytest.raises(ValueError, match="networks must name at least one of .* got none"):
        reference.export(tmp_path / "r.h5", [], progress=False)   # it wrote a file of 0 cases
    assert list(tmp_path.iterdir()) == []
    once = reference.export(tmp_path / "once.h5", ["mlp"], progress=False)   # HDF5's "name already exists" before
    assert reference.export(tmp_path / "twice.h5", ["mlp", "mlp"], progress=False) == once
    assert reference.check(tmp_path / "once.h5", tmp_path / "twice.h5", tolerance=0.0).ok
    for tolerance, message in (("a", r"tolerance must be a real number, got 'a' \(str\)"),
                               (float("nan"), "tolerance must be a finite number, got nan"),
                               (-1.0, "tolerance must be a number >= 0, got -1")):
        with pytest.raises((TypeError, ValueError), match=message):
            reference.check(tmp_path / "r.h5", {}, tolerance=tolerance)


def test_the_conservation_report_names_a_sample_outside_the_batch(mnist):
    """sample=-1 was reported as "sample -1" (NumPy's last), 2 and 1.5 were IndexErrors."""
    net, x = mnist
    report = explain(net, x).conservation()
    for sample, message in ((-1, "sample must be an integer >= 0, got -1"),
                            (2, r"sample must be the index of a sample of the batch, 0..1, got 2"),
                            (1.5, r"sample must be an integer, got 1.5 \(float\)")):
        with pytest.raises((TypeError, ValueError), match=message):
            report.table(sample=sample)
    assert report.table(sample=np.int64(1)) == report.table(sample=1)


def test_the_shipped_digits_refuse_settings_without_a_meaning():
    """dtype="int8" wrapped pixel 200 round to -56 before scaling (and other integer dtypes were ignored); digits
    of one class made make_pairs draw forever."""
    with pytest.raises(TypeError, match="dtype must be a floating-point type \\(float32, float64\\), got int8"):
        data.mnist_sample("int8")
    with pytest.raises(ValueError, match=r"n \(the number of canvases\) must be an integer >= 1, got -1"):
        data.mnist_pairs(-1)
    with pytest.raises(ValueError, match=r"distinct canvases need digits of at least two classes, got only \[3\]"):
        data.make_pairs(np.zeros((4, 28, 28)), np.full(4, 3), 2)
    x32, _ = data.mnist_sample("float32")
    with np.load(data.WEIGHTS / "mnist_sample.npz") as f:   # independent: the stored pixels, scaled here
        assert np.allclose(x32[:5, 0], f["x"][:5] / 127.5 - 1, rtol=0, atol=1e-7)


@pytest.mark.parametrize("call, message", [
    (lambda: plots.line_plot("p.png", [("a", [0, 1, 2], [0.0, np.nan, 1.0])]),
     r"the y values of 'a' must be finite numbers, found 1 NaN or Inf value\(s\), the first at index \(1,\)"),
    (lambda: plots.line_plot("p.png", [("a", [0, 1], [0.0])]),   # was drawn cut to the shorter
     r"series 'a' needs as many x as y values, at least one, got shapes \(2,\) and \(1,\)"),
    (lambda: plots.line_plot("p.png", []), r"nothing to plot: expected at least one \(label, xs, ys\) series"),
    (lambda: plots.line_plot("p.png", [("a", [0, 1], [0.0, 1.0])], size=(0, 0)),
     "the plot size must be an integer >= 200, got 0"),
    (lambda: heatmap.gray_rgb(np.zeros((2, 2)), 0, 0), "the gray range needs low < high, got low=0, high=0"),
    (lambda: models.resnet18(dtype="int32"), r"dtype must be one of \('float32', 'float64'\), got 'int32'"),
    (lambda: models.resnet18(weights=data.model_path("mnist_cnn")),
     r"mnist_cnn.h5 records no architecture \(meta 'architecture'\), so it is not 'resnet18'"),
])
def test_plots_and_model_builders_refuse_what_they_cannot_mean(tmp_path, monkeypatch, call, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises((TypeError, ValueError), match=message):
        call()
    assert list(tmp_path.iterdir()) == []


def test_masks_are_checked_before_any_explanation(mnist, monkeypatch):
    """0/255 masks are refused by evaluate before its minutes of work, not after (the check is the metric's own)."""
    net, x = mnist
    monkeypatch.setattr(evaluation, "preprocessing_of", lambda net: pytest.fail("the images were explained"))
    with pytest.raises(ValueError, match=r"masks must hold only 0/1 or False/True, got 1568 other value\(s\), e.g. 255"):
        evaluation.evaluate(net, (x + 1) / 2, masks=np.full((2, 28, 28), 255, np.uint8), progress=False)
