"""``lrpref bench`` and the benchmark module: what it measures and how it reports (no timing is asserted)."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import HAS_GPU
from lrpref import benchmark, data, models
from lrpref.cli import main


def test_forward_gflop_counts_the_products():
    """Multiply-adds at 224 x 224 as torchvision's model documentation lists them ("GFLOPS", which counts
    multiply-adds): VGG16 15.47 G, ResNet50 4.09 G, ResNet18 1.81 G."""
    x = np.zeros((2, 3, 224, 224), np.float32)
    for model, gmacs in (("vgg16", 15.47), ("resnet50", 4.09), ("resnet18", 1.81)):
        assert benchmark.forward_gflop(models.build(model), x) == pytest.approx(2 * 2 * gmacs, abs=2 * 2 * 0.005)


def test_run_alternates_with_a_peer_and_reports_a_table():
    calls = []

    def peer(model, net, x, composite):
        def run():
            calls.append((model, x.shape, composite))
        return run
    rows = benchmark.run(["resnet18"], [1, 2], ["float32"], size=32, repeats=2, peer=peer, progress=False)
    assert [(r.model, r.batch, r.dtype) for r in rows] == [("resnet18", 1, "float32"), ("resnet18", 2, "float32")]
    assert len(calls) == 2 * 3 and calls[0] == ("resnet18", (1, 3, 32, 32), "epsilon_gamma_box")   # warm-up + 2
    row = rows[0]
    assert row.forward_ms > 0 and row.lrp_ms > 0 and row.peak_mb > 0 and row.peer_ms >= 0
    assert row.lrp_per_forward == row.lrp_ms / row.forward_ms and row.lrp_gflops == 3 * row.gflop / row.lrp_ms * 1e3
    text = benchmark.table(rows)
    assert text.splitlines()[0].split()[:6] == ["model", "batch", "dtype", "backend", "fwd", "ms"]
    assert "Zennit ms" in text and len(text.splitlines()) == 3


def test_bench_command(capsys):
    assert main(["bench", "--models", "resnet18", "--batches", "1", "--size", "32", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# ") and "matrix product GFLOP/s" in out and "resnet18" in out.splitlines()[-1]


@pytest.mark.skipif(HAS_GPU, reason="CuPy with a CUDA device is present: nothing to refuse")
def test_bench_refuses_cupy_without_cuda_before_any_work():
    """In a fresh interpreter without the tests' CuPy stand-in on its path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LRPREF_BACKEND")}
    result = subprocess.run([sys.executable, "-m", "lrpref.cli", "bench", "--backend", "cupy", "--models", "vgg16"],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 2 and "the 'cupy' backend was requested" in result.stderr


def test_unknown_models_are_refused():
    with pytest.raises(ValueError, match=r"unknown benchmark model\(s\) \['vgg11'\]"):
        benchmark.run(["vgg11"], progress=False)


def test_mnist_benchmark_script_times_every_shipped_model(tmp_path):
    """benchmarks/bench_mnist.py gives each shipped model its own input (the pairs CNN reads 28 x 56)."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_mnist.py"
    result = subprocess.run([sys.executable, str(script), "--batch", "2", "--repeat", "1"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[2:]]
    assert {row[0] for row in rows} == set(data.MODELS) and len(rows) == len(data.MODELS) * 2 * 3
