"""Evaluation metrics on cases whose answers are known in closed form, and the command line."""
import csv

import numpy as np
import pytest

import lrpref
from lrpref import data, evaluation, layers
from lrpref.cli import main


# The closed forms below against lrpref's float64 sums of at most 100 terms of size at most 1 and a softmax:
# float64 rounding, about 1e-14, on any CPU (no discrete choice: the pixel order comes from the maps' distinct
# values, or from ties that the code groups exactly).
FLOAT64 = 1e-12


def mean_network(c=4.0, size=10):
    """A network on 1 x size x size images in [0, 1] (mnist preprocessing: 2 x - 1) whose class-0 logit is
    ``c * mean(x)`` and class-1 logit 0: the probability of class 0 is ``sigmoid(c * mean(x))``."""
    n = size * size
    weight = np.zeros((2, n))
    weight[0] = c / (2 * n)
    bias = np.array([c / 2, 0.0])
    return lrpref.Sequential([layers.Flatten(), layers.Dense(weight, bias)], input_shape=(1, size, size),
                             meta={"preprocessing": "mnist"})


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def twin_heat_quantization(attention, q_level=8):
    """The LRP-for-ResNet code's loop (visualize.apply_heat_quantization), restated."""
    attention = attention.copy()
    bins = np.linspace(attention.min(), attention.max(), q_level)
    for i in range(q_level - 1):
        attention[(attention >= bins[i]) & (attention < bins[i + 1])] = bins[i]
    return attention


def test_heat_quantization(rng):
    maps = rng.lognormal(sigma=1.5, size=(4, 20, 20))
    maps[1] = 3.0   # a constant map stays as it is
    q = evaluation.heat_quantization(maps)
    for m, qm in zip(maps, q):
        assert np.array_equal(qm, twin_heat_quantization(m))
        assert len(np.unique(qm)) <= 8 and qm.min() == m.min() and qm.max() == m.max()
        order = np.argsort(m, axis=None)
        assert (np.diff(qm.ravel()[order]) >= 0).all()


def test_auc_is_the_trapezoid_on_unit_steps():
    assert evaluation.auc(np.linspace(0, 1, 101)) == pytest.approx(0.5, abs=1e-15)
    assert evaluation.auc([0.3] * 11) == pytest.approx(0.3)
    assert evaluation.auc([0, 1]) == 0.5


def test_insertion_deletion_in_closed_form(rng):
    """All-ones 10x10 image, a map with distinct values, 10 pixels per step: step i keeps (or deletes) the
    min(10 (i + 1), 99) + 1 top pixels, so the probability is sigmoid(4 * share of ones)."""
    net = mean_network()
    images = np.ones((2, 1, 10, 10))
    maps = rng.permutation(200).reshape(2, 10, 10).astype(float)
    result = evaluation.insertion_deletion(net, images, maps, np.zeros(2, int), step=10)
    kept = np.minimum(10 * np.arange(1, 11), 99) + 1
    assert np.allclose(result.fraction, kept / 100)
    assert np.allclose(result.insertion, sigmoid(4 * kept / 100), rtol=FLOAT64)
    assert np.allclose(result.deletion, sigmoid(4 * (100 - kept) / 100), rtol=FLOAT64)
    expected = (sigmoid(4 * kept / 100).sum() - sigmoid(0.44) / 2 - sigmoid(4.0) / 2) / 9
    assert np.allclose(result.insertion_auc, expected, rtol=FLOAT64)
    assert np.allclose(result.id_score, result.insertion_auc - result.deletion_auc)


def test_insertion_of_ties_goes_together():
    """Equal values are inserted at once: a map of two levels inserts 50 pixels, then all."""
    net = mean_network()
    maps = np.zeros((1, 10, 10))
    maps[0, :5] = 1.0
    result = evaluation.insertion_deletion(net, np.ones((1, 1, 10, 10)), maps, [0], step=10)
    shares = np.where(np.minimum(10 * np.arange(1, 11), 99) < 50, 0.5, 1.0)
    assert np.allclose(result.insertion[0], sigmoid(4 * shares), rtol=FLOAT64)


def test_pixel_flipping_in_closed_form(rng):
    """Black 2x2 regions over an all-ones 10x10 image: after k regions the share of ones is 1 - 4k / 100."""
    net = mean_network()
    maps = rng.normal(size=(1, 10, 10))
    result = evaluation.pixel_flipping(net, np.ones((1, 1, 10, 10)), maps, [0], patch=2, steps=25, baseline="black")
    expected = sigmoid(4 * (1 - 4 * np.arange(26) / 100))
    assert np.allclose(result.curves[0], expected, rtol=FLOAT64)
    assert result.aopc[0] == pytest.approx((expected[0] - expected).mean(), rel=FLOAT64)


def test_pixel_flipping_follows_the_relevance():
    """MoRF removes the most relevant region first: with the relevance on the bright pixels, the score falls fastest."""
    net = mean_network()
    image = np.zeros((1, 1, 10, 10))
    image[0, 0, :4, :4] = 1.0
    good = evaluation.pixel_flipping(net, image, image[:, 0], [0], patch=2, steps=10, baseline="black")
    bad = evaluation.pixel_flipping(net, image, -image[:, 0], [0], patch=2, steps=10, baseline="black")
    assert good.aopc[0] > bad.aopc[0]


def test_relevance_mass_accuracy():
    maps = np.array([[[1.0, 3.0], [-2.0, 0.0]], [[-1.0, -1.0], [0.0, 0.0]]])
    masks = np.array([[[True, False], [True, False]], [[True, True], [False, False]]])
    assert np.allclose(evaluation.relevance_mass_accuracy(maps, masks), [0.25, 0.0])


def test_bad_input_is_named():
    net = mean_network()
    with pytest.raises(ValueError, match=r"images must lie in \[0, 1\]"):
        evaluation.insertion_deletion(net, 2 * np.ones((1, 1, 10, 10)), np.zeros((1, 10, 10)), [0])
    with pytest.raises(ValueError, match=r"maps must have shape \(1, 10, 10\)"):
        evaluation.insertion_deletion(net, np.ones((1, 1, 10, 10)), np.zeros((1, 8, 8)), [0])
    with pytest.raises(ValueError, match=r"images must have shape \(N, C, H, W\)"):
        evaluation.insertion_deletion(net, np.ones((10, 10)), np.zeros((10, 10)), [0])
    with pytest.raises(ValueError, match=r"masks must have shape \(1, 10, 10\)"):
        evaluation.evaluate(net, np.ones((1, 1, 10, 10)), composite="lrp0", masks=np.ones((1, 5, 5), bool))
    with pytest.raises(ValueError, match="patches of 12x12 do not fit images of 10x10"):
        evaluation.pixel_flipping(net, np.ones((1, 1, 10, 10)), np.zeros((1, 10, 10)), [0], patch=12)
    with pytest.raises(ValueError, match=r"labels must have shape \(1,\)"):
        evaluation.insertion_deletion(net, np.ones((1, 1, 10, 10)), np.zeros((1, 10, 10)), [0, 1])


def test_evaluate_writes_a_table_and_curves(tmp_path):
    net = lrpref.load(data.model_path("mnist_cnn"))
    x, y = data.mnist_sample()
    masks = x[:6, 0] > 0
    result = evaluation.evaluate(net, (x[:6] + 1) / 2, y[:6], composite="epsilon_plus", masks=masks,
                                 output=tmp_path, progress=False)
    with open(tmp_path / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["label"] for r in rows] == [str(v) for v in y[:6]] and len(rows[0]) == 8
    assert (tmp_path / "insertion_deletion.png").exists() and (tmp_path / "morf.png").exists()
    summary = result["summary"]
    assert summary["insertion_auc"] > summary["deletion_auc"] and 0 < summary["mass_accuracy"] <= 1


def test_command_line(tmp_path, capsys):
    code = main(["evaluate", "--limit", "4", "--composite", "epsilon_plus", "--output-dir", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 0 and "insertion_auc" in out and (tmp_path / "out" / "results.csv").exists()
    code = main(["evaluate", "--model", str(data.model_path("mnist_cnn")), "--images", str(tmp_path)])
    assert code == 2 and "no PNG or JPEG images" in capsys.readouterr().err
    from PIL import Image
    x, y = data.mnist_sample()
    folder = tmp_path / "digits"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.rint((x[i, 0] + 1) * 127.5).astype(np.uint8)).save(folder / f"d{i}.png")
    (tmp_path / "labels.csv").write_text("".join(f"d{i}.png,{y[i]}\n" for i in range(3)))
    code = main(["evaluate", "--images", str(folder), "--labels", str(tmp_path / "labels.csv"),
                 "--output-dir", str(tmp_path / "folder_out"), "--composite", "epsilon_plus"])
    with open(tmp_path / "folder_out" / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert code == 0 and [(r["image"], r["label"]) for r in rows] == [(f"d{i}.png", str(y[i])) for i in range(3)]
