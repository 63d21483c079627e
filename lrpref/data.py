"""The files shipped in ``weights/``: two MNIST models and 2,000 held-out digits (see ``weights/README.md``).

An installed lrpref has them in ``lrpref/weights/``; a source checkout in ``weights/`` next to ``lrpref/``.
"""
from pathlib import Path

import numpy as np

_HERE = Path(__file__).resolve().parent
WEIGHTS = _HERE / "weights" if (_HERE / "weights").is_dir() else _HERE.parent / "weights"
MODELS = ("mnist_mlp", "mnist_cnn")
DEFAULT_MODEL = "mnist_mlp"


def model_path(name=DEFAULT_MODEL):
    """Path of a shipped model file by name (``"mnist_mlp"`` or ``"mnist_cnn"``)."""
    if name not in MODELS:
        raise ValueError(f"unknown shipped model {name!r}: expected one of {MODELS}")
    return WEIGHTS / f"{name}.h5"


def mnist_sample(dtype="float64"):
    """The 2,000 held-out MNIST digits as network input.

    Returns
    -------
    x : array of shape (2000, 1, 28, 28)
        Pixels scaled to [-1, 1] (``v / 127.5 - 1``).
    y : array of 2000 ints
        The labels.
    """
    with np.load(WEIGHTS / "mnist_sample.npz") as f:
        return (f["x"].astype(dtype) / 127.5 - 1.0)[:, None], f["y"]
