"""The command line: the main job, its options and its errors."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from lrpref import data
from lrpref.cli import main


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_explains_itself():
    result = subprocess.run([sys.executable, "-m", "lrpref.cli", "explain", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for word in ("--composite", "epsilon_gamma_box", "tutorial_mnist", "--image", "--target", "--backend", "heatmap"):
        assert word in result.stdout


def test_no_arguments_explains_a_shipped_digit(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "explain")
    assert code == 0 and "wrote      heatmap.png" in out and "composite  tutorial_mnist (recorded by the model)" in out
    image = Image.open(tmp_path / "heatmap.png")
    assert image.mode == "RGB" and image.size == (2 * 28 * 8 + 3 * 8, 28 * 8 + 2 * 8 + 4 + 2 * 12)   # 2-line captions
    heat = np.asarray(image)[8:8 + 224, 8 + 224 + 8:8 + 224 + 8 + 224].astype(int)
    red = (heat[..., 0] - heat[..., 2] > 40).sum()
    assert red > 100   # positive relevance (red) dominates for the predicted class


def test_options_and_reports(tmp_path, capsys):
    code, out, _ = run(capsys, "explain", "--model", "mnist_cnn", "--sample", "7", "--composite", "epsilon_gamma_box",
                       "--gamma", "0.5", "--target", "4", "--init", "softmax", "--dtype", "float64", "--show-rules",
                       "--report", "--output", str(tmp_path / "h.png"))
    assert code == 0 and (tmp_path / "h.png").exists()
    assert "composite  epsilon_gamma_box (as given) with gamma=0.5" in out
    assert "target     4" in out and "Gamma(gamma=0.5" in out and "sum R out" in out and "ZBox(low=-1.0" in out


def test_image_input(tmp_path, capsys):
    x, y = data.mnist_sample()
    Image.fromarray(np.rint((x[11, 0] + 1) * 127.5).astype(np.uint8)).save(tmp_path / "digit.png")
    code, out, err = run(capsys, "explain", "--image", str(tmp_path / "digit.png"), "--output", str(tmp_path / "h.png"))
    assert code == 0 and f"(predicted {y[11]})" in out and err == ""   # a 28x28 gray digit needs no conversion


@pytest.mark.parametrize("args, message", [
    (("--model", "missing.h5"), "no such model file"),
    (("--target", "12"), "out of range"),
    (("--composite", "gamma", "--gamma", "-1"), "gamma must be a number >= 0"),
    (("--composite", "gamma", "--epsilon", "0.1"), "unknown parameter"),
    (("--sample", "5000"), "--sample must be in 0..1999"),
    (("--image", "missing.png"), "cannot read image"),
])
def test_errors_are_reported_clearly(tmp_path, capsys, args, message):
    code, _, err = run(capsys, "explain", "--output", str(tmp_path / "h.png"), *args)
    assert code == 2 and err.startswith("lrpref: error:") and message in err


def test_unknown_composite_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        main(["explain", "--composite", "magic"])
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("options, name, maps, init", [
    (("--method", "clrp1"), "CLRP1 paper", ["target", "dual", "CLRP1 paper"], "the target's logit"),
    (("--method", "clrp1", "--clrp-convention", "official"), "CLRP1 official", ["target", "dual", "CLRP1 official"],
     "|logit| at the target"),
    (("--method", "clrp2"), "CLRP2 paper", ["target", "dual", "CLRP2 paper"], "the target's logit"),
    (("--method", "sglrp"), "SGLRP one pass", ["SGLRP one pass"], "softmax gradient"),
    (("--method", "sglrp", "--sglrp-mode", "scaled"), "SGLRP scaled",
     ["positive part", "negative part", "SGLRP scaled"], "softmax gradient's positive part"),
])
def test_contrastive_methods_name_what_ran_and_write_the_promised_panels(tmp_path, capsys, options, name, maps, init):
    """The summary, the captions and the panels name the method run and its output relevance (the help promises
    the input, then the target's and the dual's maps where the method computes two, then the method's map)."""
    code, out, _ = run(capsys, "explain", "--model", "mnist_pairs_cnn", "--sample", "3", *options,
                       "--output", str(tmp_path / "h.png"))
    assert code == 0 and f"method     {name}\n" in out and "composite  clrp_paper" in out and "(label 3 and 7)" in out
    target = out.split("target     ")[1]
    assert f"({init}" in target.splitlines()[0] and "(logit)" not in out
    written = out.split("wrote      ")[1].strip().split(": ", 1)[1].split("; ")
    assert [caption.split(", class")[0] for caption in written] == ["input (3 and 7)"] + maps
    width = Image.open(tmp_path / "h.png").size[0]
    assert width == (len(maps) + 1) * 56 * 8 + (len(maps) + 2) * 8


def test_a_reader_that_leaves_early_gets_no_traceback(tmp_path):
    """``lrpref explain | head -0``: the pipe is closed before lrpref prints; it stops quietly with status 1."""
    process = subprocess.Popen([sys.executable, "-m", "lrpref.cli", "explain", "--output", str(tmp_path / "h.png")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait() == 1 and stderr == ""


def test_the_default_composite_is_the_one_the_model_records(tmp_path, capsys, monkeypatch):
    """A colour model that records no composite gets epsilon_gamma_box (its input range is known), not the MNIST
    MLP's tutorial_mnist; one that records a composite gets it."""
    import lrpref
    from lrpref import layers, preprocessing
    rng = np.random.default_rng(0)
    spec = preprocessing.get("torchvision")
    net = lrpref.Sequential([layers.Conv2d(rng.normal(size=(4, 3, 3, 3)), None, padding=1), layers.ReLU(),
                             layers.AdaptiveAvgPool2d(1), layers.Flatten(),
                             layers.Dense(rng.normal(size=(10, 4)), None)],
                            input_shape=(3, None, None),
                            meta={"preprocessing": "torchvision", "input_low": spec.low, "input_high": spec.high})
    lrpref.save(net, tmp_path / "colour.h5")
    Image.fromarray(rng.integers(0, 256, size=(240, 300, 3), dtype=np.uint8)).save(tmp_path / "photo.png")
    args = ("explain", "--model", str(tmp_path / "colour.h5"), "--image", str(tmp_path / "photo.png"),
            "--output", str(tmp_path / "h.png"))
    code, out, err = run(capsys, *args)
    assert code == 0 and "composite  epsilon_gamma_box (the model records no composite" in out and err == ""
    net.meta["composite"] = "epsilon_plus"
    lrpref.save(net, tmp_path / "colour.h5")
    code, out, _ = run(capsys, *args)
    assert code == 0 and "composite  epsilon_plus (recorded by the model)" in out


@pytest.mark.parametrize("model, warned", [("mnist_mlp", True), ("mnist_cnn", False)])
def test_a_rule_for_nonnegative_inputs_meeting_both_signs_is_warned_about(tmp_path, capsys, model, warned):
    """clrp_paper's z-plus (rho(w) = w+) on the MLP's first Dense layer reads pixels in [-1, 1]; on the CNN the first
    layer gets zB, and z-plus reads ReLU outputs only."""
    code, _, err = run(capsys, "explain", "--model", model, "--method", "clrp1", "--output", str(tmp_path / "h.png"))
    lines = err.splitlines()
    assert code == 0 and len(lines) == int(warned)
    if warned:
        assert lines[0].startswith("lrpref: warning: layer 1 (Dense) gets OriginalZPlus") and "[-1, " in lines[0]


def test_a_colour_photo_fed_to_the_mnist_model_is_warned_about(tmp_path, capsys):
    Image.fromarray(np.zeros((40, 50, 3), dtype=np.uint8)).save(tmp_path / "photo.png")
    code, _, err = run(capsys, "explain", "--image", str(tmp_path / "photo.png"), "--output", str(tmp_path / "h.png"))
    assert code == 0 and err.splitlines() == [
        "lrpref: warning: colour image converted to gray for a model trained on mnist images",
        "lrpref: warning: 50x40 image resized to 28x28 for a model trained on mnist images"]


def test_images_for_a_model_that_records_no_preprocessing_are_warned_about(tmp_path, capsys):
    """Such a model's images are read as MNIST's ([-1, 1]): a 28x28 model that wanted [0, 1] would get wrong
    inputs without a word. One image, and a folder in dataset mode, each warn once; the shipped digits do not."""
    import lrpref
    net = lrpref.load(data.model_path("mnist_cnn"))
    del net.meta["preprocessing"]   # its input range (zB's box) stays recorded
    lrpref.save(net, tmp_path / "cnn.h5")
    (tmp_path / "digits").mkdir()
    Image.fromarray(np.zeros((28, 28), dtype=np.uint8)).save(tmp_path / "digits" / "d.png")
    message = "lrpref: warning: the model records no preprocessing: its images are read as the shipped MNIST models"
    for args in (("--image", str(tmp_path / "digits" / "d.png"), "--output", str(tmp_path / "h.png")),
                 ("--images", str(tmp_path / "digits"), "--output-dir", str(tmp_path / "maps"))):
        code, _, err = run(capsys, "explain", "--model", str(tmp_path / "cnn.h5"), *args)
        assert code == 0 and [line for line in err.splitlines() if line.startswith(message)] == [err.splitlines()[0]]
    code, _, err = run(capsys, "explain", "--model", str(tmp_path / "cnn.h5"), "--output", str(tmp_path / "h2.png"))
    assert code == 0 and message not in err
    code, _, err = run(capsys, "explain", "--image", str(tmp_path / "digits" / "d.png"), "--output",
                       str(tmp_path / "h3.png"))
    assert code == 0 and message not in err   # the shipped model records mnist


def test_input_outside_the_recorded_range_is_warned_about(tmp_path, capsys):
    """A model that records [0, 1] but MNIST's preprocessing (which gives [-1, 1]) sees negative pixels."""
    import lrpref
    net = lrpref.load(data.model_path("mnist_cnn"))
    net.meta.update(input_low=0.0, input_high=1.0)
    lrpref.save(net, tmp_path / "cnn.h5")
    code, _, err = run(capsys, "explain", "--model", str(tmp_path / "cnn.h5"), "--output", str(tmp_path / "h.png"))
    assert code == 0 and len(err.splitlines()) == 1 and err.startswith("lrpref: warning: input spans [-1, ")
    assert "outside the range the network records [0, 1] (by up to 1)" in err   # the digit's background is -1
