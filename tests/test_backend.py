"""The array-module choice is explicit; asking for CuPy without it fails clearly, before any work."""
import os
import subprocess
import sys

import numpy as np
import pytest

import precision
from conftest import HAS_GPU
from lrpref import Sequential, backend, data, layers, load


def test_numpy_is_the_default(monkeypatch):
    monkeypatch.delenv(backend.ENV_VAR, raising=False)
    assert backend.resolve() is np and backend.resolve("numpy") is np


def test_environment_variable_selects_the_backend(monkeypatch):
    monkeypatch.setenv(backend.ENV_VAR, "numpy")
    assert backend.resolve() is np
    monkeypatch.setenv(backend.ENV_VAR, "tpu")
    with pytest.raises(ValueError, match="unknown environment variable LRPREF_BACKEND 'tpu'"):
        backend.resolve()
    with pytest.raises(ValueError, match=r"unknown backend 'gpu': expected one of \('numpy', 'cupy'\)"):
        backend.resolve("gpu")


NO_CUPY = """
import os, pytest
from lrpref import backend, data, load
with pytest.raises(RuntimeError, match="the 'cupy' backend was requested"):
    backend.resolve("cupy")
net = load(data.model_path("mnist_mlp"))
with pytest.raises(RuntimeError, match="the 'cupy' backend was requested"):
    net.to("cupy")
os.environ[backend.ENV_VAR] = "cupy"
with pytest.raises(RuntimeError, match="the 'cupy' backend was requested"):
    load(data.model_path("mnist_mlp"))
"""


@pytest.mark.skipif(HAS_GPU, reason="this machine has CuPy and a CUDA device, so asking for CuPy succeeds")
def test_asking_for_cupy_without_it_fails_before_any_work():
    """In a fresh interpreter without the tests' CuPy stand-in on its path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", backend.ENV_VAR)}
    result = subprocess.run([sys.executable, "-c", NO_CUPY], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr


def test_installed_cupy_is_not_used_unless_asked(monkeypatch):
    monkeypatch.delenv(backend.ENV_VAR, raising=False)
    net = Sequential([layers.Dense(np.ones((2, 3)))])
    assert net.xp is np and isinstance(net.forward(np.ones((1, 3))), np.ndarray)


def test_engine_modules_do_not_import_cupy():
    """backend.py is the only module that knows about CuPy."""
    import pathlib
    import re
    import lrpref
    uses = re.compile(r"\bimport cupy\b|\bfrom cupy\b|\bcupy\.")
    offenders = [p.name for p in pathlib.Path(lrpref.__file__).parent.glob("*.py")
                 if p.name != "backend.py" and uses.search(p.read_text())]
    assert offenders == []


def test_lrpref_never_imports_the_frameworks_it_reads():
    """torch, keras, zennit and captum are test dependencies only (the scripts in weights/ use torch)."""
    import pathlib
    import re
    import lrpref
    uses = re.compile(r"^\s*(import|from)\s+(torch|keras|tensorflow|torchvision|zennit|captum)\b", re.M)
    offenders = [str(p) for p in pathlib.Path(lrpref.__file__).parent.rglob("*.py") if uses.search(p.read_text())]
    assert offenders == []


def test_mixed_dtypes_are_refused():
    with pytest.raises(ValueError, match="share one backend and dtype"):
        Sequential([layers.Dense(np.ones((2, 3), np.float32)), layers.Dense(np.ones((2, 2)))])


def test_cupy_equals_numpy():
    """CuPy (the real one on a GPU machine, else the stand-in) against NumPy, in float64, where both made the
    same discrete choices; noisy digits have no exact max-pool ties for cuBLAS and OpenBLAS to break
    differently. 1e-10 is 75 times the float64 difference of two summation orders on these networks
    (precision.MNIST_FLOAT64)."""
    import lrpref
    x, _ = precision.noisy_digits(8)
    for name in ("mnist_mlp", "mnist_cnn"):
        host_net = load(data.model_path(name), dtype="float64", backend="numpy")
        gpu_net = load(data.model_path(name), dtype="float64", backend="cupy")
        same = precision.same_choices(host_net, x, gpu_net, backend.resolve("cupy").asarray(x))
        assert same.sum() >= 1
        for composite in ("epsilon_gamma_box", "tutorial_mnist", "epsilon_alpha2_beta1_flat"):
            r_host = lrpref.explain(host_net, x, composite=composite).relevance
            r_gpu = lrpref.explain(gpu_net, backend.resolve("cupy").asarray(x), composite=composite).relevance
            assert isinstance(r_gpu, backend.resolve("cupy").ndarray)
            assert (precision.per_sample_error(r_gpu, r_host)[same] <= 1e-10).all()
