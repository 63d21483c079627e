"""The tutorials run, so that they cannot go stale (each asserts its own claims)."""
import subprocess
import sys
from pathlib import Path

import pytest

TUTORIALS = sorted((Path(__file__).resolve().parents[1] / "tutorials").glob("*/tutorial.py"))


@pytest.mark.parametrize("script", TUTORIALS, ids=lambda p: p.parent.name)
def test_tutorial_runs(script, tmp_path):
    result = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.glob("*.png")), "the tutorial wrote no heatmap"


def test_there_is_a_tutorial():
    assert [p.parent.name for p in TUTORIALS][:1] == ["01_mnist"]
