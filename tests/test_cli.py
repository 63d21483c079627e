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
    assert code == 0 and "wrote      heatmap.png" in out and "composite  tutorial_mnist" in out
    image = Image.open(tmp_path / "heatmap.png")
    assert image.mode == "RGB" and image.size == (2 * 28 * 8 + 3 * 8, 28 * 8 + 2 * 8 + 16)
    heat = np.asarray(image)[8:8 + 224, 8 + 224 + 8:8 + 224 + 8 + 224].astype(int)
    red = (heat[..., 0] - heat[..., 2] > 40).sum()
    assert red > 100   # positive relevance (red) dominates for the predicted class


def test_options_and_reports(tmp_path, capsys):
    code, out, _ = run(capsys, "explain", "--model", "mnist_cnn", "--sample", "7", "--composite", "epsilon_gamma_box",
                       "--gamma", "0.5", "--target", "4", "--init", "softmax", "--dtype", "float64", "--show-rules",
                       "--report", "--output", str(tmp_path / "h.png"))
    assert code == 0 and (tmp_path / "h.png").exists()
    assert "composite  epsilon_gamma_box with gamma=0.5" in out
    assert "target     4" in out and "Gamma(gamma=0.5" in out and "sum R out" in out and "ZBox(low=-1.0" in out


def test_image_input(tmp_path, capsys):
    x, y = data.mnist_sample()
    Image.fromarray(np.rint((x[11, 0] + 1) * 127.5).astype(np.uint8)).save(tmp_path / "digit.png")
    code, out, _ = run(capsys, "explain", "--image", str(tmp_path / "digit.png"), "--output", str(tmp_path / "h.png"))
    assert code == 0 and f"(predicted {y[11]})" in out


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


@pytest.mark.parametrize("method, panels", [("clrp1", 3), ("clrp2", 3), ("sglrp", 1)])
def test_contrastive_methods(tmp_path, capsys, method, panels):
    code, out, _ = run(capsys, "explain", "--model", "mnist_pairs_cnn", "--method", method, "--sample", "3",
                       "--output", str(tmp_path / "h.png"))
    assert code == 0 and "composite  clrp_paper" in out and "(label 3 and 7)" in out
    width = Image.open(tmp_path / "h.png").size[0]
    assert width == (panels + 1) * 56 * 8 + (panels + 2) * 8


def test_a_reader_that_leaves_early_gets_no_traceback(tmp_path):
    """``lrpref explain | head -0``: the pipe is closed before lrpref prints; it stops quietly with status 1."""
    process = subprocess.Popen([sys.executable, "-m", "lrpref.cli", "explain", "--output", str(tmp_path / "h.png")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait() == 1 and stderr == ""
