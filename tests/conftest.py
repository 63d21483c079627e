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

settings.register_profile("lrpref", deadline=None, max_examples=40, derandomize=True)
settings.load_profile("lrpref")


@pytest.fixture
def rng():
    return np.random.default_rng(0xDEADBEEF)


@pytest.fixture(scope="session")
def xp():
    """The array module the suite runs on: NumPy, or CuPy under LRPREF_BACKEND=cupy."""
    return backend.resolve(None)
