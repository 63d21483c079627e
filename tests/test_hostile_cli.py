"""Hostile inputs, command line: every user error is one ``lrpref: error: ...`` line naming what was expected and
what came, with exit status 2, and bad options are refused before any work."""
import time

import h5py
import numpy as np
import pytest
from PIL import Image

from lrpref import data
from lrpref.cli import main


def error_line(capsys, *argv):
    """Run ``lrpref argv`` expecting a user error: its one stderr line (exit status 2, nothing on stdout), given
    within seconds (refused before the heavy work). The parser's errors end in SystemExit, the others in main's
    return value."""
    start = time.perf_counter()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as stop:
        code = stop.code
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("lrpref: error: "), (code, err)
    assert out == "" and time.perf_counter() - start < 20
    return lines[0]


@pytest.mark.parametrize("argv, message", [
    (("evaluate", "--limit", "-1995"), "argument --limit: expected a number >= 1, got -1995"),
    (("evaluate", "--steps", "0"), "argument --steps: expected a number >= 1, got 0"),
    (("evaluate", "--quantize", "1"), "argument --quantize: expected a number >= 2, got 1"),
    (("evaluate", "--batch-size", "2.5"), "argument --batch-size: expected an integer, got '2.5'"),
    (("bench", "--repeats", "0"), "argument --repeats: expected a number >= 1, got 0"),
    (("bench", "--size", "8"), "argument --size: expected a number >= 32, got 8"),
    (("explain", "--gamma", "nan"), "argument --gamma: expected a finite number, got 'nan'"),
    (("explain", "--epsilon", "inf"), "argument --epsilon: expected a finite number, got 'inf'"),
    (("explain", "--target", "-1"), "argument --target: expected a number >= 0, got -1"),
    (("reference", "check", "a.h5", "b.h5", "--tolerance", "0"), "argument --tolerance: expected a number > 0, got 0"),
    (("explain", "--composite", "magic"), "argument --composite: invalid choice: 'magic'"),
])
def test_bad_options_are_refused_by_the_parser(capsys, argv, message):
    assert message in error_line(capsys, *argv)


def digit(path, index=0):
    x, _ = data.mnist_sample()
    Image.fromarray(np.rint((x[index, 0] + 1) * 127.5).astype(np.uint8)).save(path)
    return path


def test_outputs_are_checked_before_any_work(tmp_path, capsys):
    line = error_line(capsys, "explain", "--output", tmp_path / "heatmap.xyz")
    assert "expected an image file name (.png, .jpg, ...), got suffix '.xyz'" in line
    line = error_line(capsys, "explain", "--output", tmp_path / "nowhere" / "h.png")
    assert line.endswith("nowhere does not exist")
    line = error_line(capsys, "explain", "--output", tmp_path)
    assert "it is a folder" in line
    (tmp_path / "file").write_text("x")
    line = error_line(capsys, "evaluate", "--output-dir", tmp_path / "file")
    assert "is a file; expected a folder" in line
    line = error_line(capsys, "reference", "export", tmp_path / "nowhere" / "r.h5")
    assert "does not exist" in line


def test_reference_check_fails_when_no_case_is_answered(tmp_path, capsys):
    suite, theirs = tmp_path / "suite.h5", tmp_path / "theirs.h5"
    for path in (suite, theirs):
        with h5py.File(path, "w") as f:
            f.attrs.update(format="lrpref-reference", format_version=1)
            f.create_group("networks/mlp/cases/lrp0" if path == suite else "networks")
    line = error_line(capsys, "reference", "check", suite, theirs)
    assert "theirs.h5 answers none of the reference's 1 cases" in line


def test_evaluate_reports_bad_files_in_one_line(tmp_path, capsys):
    digit(tmp_path / "a.png")
    (tmp_path / "labels.csv").write_text("a.png,seven\n")
    line = error_line(capsys, "evaluate", "--images", tmp_path, "--labels", tmp_path / "labels.csv",
                      "--output-dir", tmp_path / "out")
    assert "labels.csv, line 1: expected 'file name,label' with a class index >= 0, got 'a.png,seven'" in line
    (tmp_path / "labels.csv").write_text("a.png,12\n")
    line = error_line(capsys, "evaluate", "--images", tmp_path, "--labels", tmp_path / "labels.csv",
                      "--output-dir", tmp_path / "out")
    assert "labels must be class indices 0..9 of this network, got values in 12..12" in line
    np.savez(tmp_path / "data.npz", images=np.zeros((1, 1, 28, 28)))
    line = error_line(capsys, "evaluate", "--images", tmp_path / "data.npz", "--output-dir", tmp_path / "out")
    assert "data.npz has no dataset 'x' (the images); it has ['images']" in line
    np.savez(tmp_path / "data.npz", x=np.full((1, 1, 28, 28), np.nan))
    line = error_line(capsys, "evaluate", "--images", tmp_path / "data.npz", "--output-dir", tmp_path / "out")
    assert "images must be finite numbers, found 784 NaN or Inf value(s)" in line


def test_a_damaged_model_is_one_line(tmp_path, capsys):
    data_bytes = bytearray(data.model_path("mnist_cnn").read_bytes())
    data_bytes[len(data_bytes) // 2:len(data_bytes) // 2 + 4096] = bytes(4096)
    (tmp_path / "bad.h5").write_bytes(bytes(data_bytes))
    line = error_line(capsys, "explain", "--model", tmp_path / "bad.h5", "--output", tmp_path / "h.png")
    assert "bad.h5: the file is damaged (HDF5 says:" in line


@pytest.mark.parametrize("argv, message", [
    (("explain", "--limit", "5"), "--limit applies only with --images (dataset mode)"),
    (("explain", "--output-dir", "out", "--save-relevance"), "--output-dir, --save-relevance apply only with --images"),
    (("explain", "--workers", "2"), "--workers applies only with --images"),
    (("explain", "--images", "d", "--batch-size", "-1"), "argument --batch-size: expected a number >= 1, got -1"),
    (("explain", "--images", "d", "--limit", "0"), "argument --limit: expected a number >= 1, got 0"),
    (("evaluate", "--workers", "0"), "argument --workers: expected a number >= 1, got 0"),
])
def test_dataset_options_are_refused_where_they_would_be_ignored(tmp_path, monkeypatch, capsys, argv, message):
    """These options were ignored without --images (exit 0); --batch-size -1 explained no image, with exit 0."""
    monkeypatch.chdir(tmp_path)
    assert message in error_line(capsys, *argv)
    assert list(tmp_path.iterdir()) == []


def test_labels_and_stores_that_cannot_be_used_are_one_line(tmp_path, capsys):
    digit(tmp_path / "a.png")
    (tmp_path / "labels.csv").write_text("a.png,7\n")
    line = error_line(capsys, "evaluate", "--labels", tmp_path / "labels.csv", "--output-dir", tmp_path / "out")
    assert "labels (a CSV) go with a folder of images; the shipped digits have their own" in line   # were ignored
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "results.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    line = error_line(capsys, "evaluate", "--limit", "2", "--output-dir", tmp_path / "out")
    assert f"{tmp_path / 'out' / 'results.h5'} cannot be resumed from: Unable to" in line
    line = error_line(capsys, "reference", "check", tmp_path / "labels.csv", tmp_path)
    assert line.endswith(f"{tmp_path} is a folder; expected a file to check (HDF5)")
    line = error_line(capsys, "explain", "--model", tmp_path, "--output", tmp_path / "h.png")
    assert line.endswith(f"{tmp_path} is a folder; expected a model file (HDF5)")


@pytest.mark.parametrize("argv, message", [
    (("--method", "clrp1", "--init", "softmax"), "--init applies only with --method lrp, got --method clrp1"),
    (("--sglrp-mode", "scaled"), "--sglrp-mode applies only with --method sglrp, got --method lrp"),
    (("--method", "sglrp", "--clrp-convention", "official"),
     "--clrp-convention applies only with --method clrp1 or clrp2, got --method sglrp"),
    (("--images", "d", "--output-dir", "o", "--clrp-convention", "official"), "--clrp-convention applies only"),
])
def test_method_options_are_refused_where_the_method_ignores_them(tmp_path, monkeypatch, capsys, argv, message):
    """A contrastive method chose its own output relevance and LRP no convention or mode: exit 0, option unused."""
    monkeypatch.chdir(tmp_path)
    assert message in error_line(capsys, "explain", *argv)
    assert list(tmp_path.iterdir()) == []


def test_single_input_options_are_refused_in_dataset_mode(tmp_path, monkeypatch, capsys):
    """--output, --report and --show-rules were ignored with --images (exit 0)."""
    monkeypatch.chdir(tmp_path)
    line = error_line(capsys, "explain", "--images", "d", "--output-dir", "o", "--output", "h.png", "--report")
    assert "--output, --report apply to one input; with --images the heatmaps go to --output-dir" in line
    assert list(tmp_path.iterdir()) == []
