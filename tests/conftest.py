import os
import sys

import numpy as np
import pytest
from hypothesis import settings

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "weights"))   # the export script
os.environ["KERAS_BACKEND"] = "torch"   # the Keras tests run Keras 3 on PyTorch

try:   # Zennit imports torchvision; without a working one (the registry's does not run on CPU PyTorch), a shim
    import torchvision  # noqa: F401
except Exception:
    for name in [m for m in sys.modules if m.split(".")[0] == "torchvision"]:
        del sys.modules[name]
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "shims"))

from lrpref import backend  # noqa: E402

STANDIN = os.path.join(os.path.dirname(__file__), "standin")   # the strict CPU stand-in for CuPy


def _cuda_cupy():
    """Is the real CuPy installed and does it see a CUDA device?"""
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


HAS_GPU = _cuda_cupy()
if not HAS_GPU:   # the "cupy" backend runs on the stand-in (tests/standin/cupy), here and in subprocesses
    for name in [m for m in sys.modules if m.split(".")[0] == "cupy"]:
        del sys.modules[name]
    sys.path.insert(0, STANDIN)
    if os.environ.get(backend.ENV_VAR) == "cupy":
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [STANDIN, os.environ.get("PYTHONPATH")]))
# every backend-parametrized test runs on both; LRPREF_BACKEND=cupy (or numpy) runs the whole suite on one
BACKENDS = (os.environ[backend.ENV_VAR],) if os.environ.get(backend.ENV_VAR) else backend.BACKENDS

settings.register_profile("lrpref", deadline=None, max_examples=40, derandomize=True)
settings.load_profile("lrpref")


@pytest.fixture
def rng():
    return np.random.default_rng(0xDEADBEEF)


@pytest.fixture(scope="session", params=BACKENDS)
def xp(request):
    """The array module of a backend-parametrized test: NumPy, and CuPy (the stand-in without a GPU)."""
    return backend.resolve(request.param)
