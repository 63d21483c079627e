"""The files shipped in ``weights/``: two MNIST models and 2,000 held-out digits (see ``weights/README.md``)."""
from importlib.resources import files

import numpy as np

MODELS = ("mnist_mlp", "mnist_cnn")
DEFAULT_MODEL = "mnist_mlp"


def model_path(name=DEFAULT_MODEL):
    """Path of a shipped model file by name (``"mnist_mlp"`` or ``"mnist_cnn"``)."""
    if name not in MODELS:
        raise ValueError(f"unknown shipped model {name!r}: expected one of {MODELS}")
    return files("lrpref.weights").joinpath(f"{name}.h5")


def mnist_sample(dtype="float64"):
    """The 2,000 held-out MNIST digits as network input.

    Returns
    -------
    x : array of shape (2000, 1, 28, 28)
        Pixels scaled to [-1, 1] (``v / 127.5 - 1``).
    y : array of 2000 ints
        The labels.
    """
    with np.load(files("lrpref.weights").joinpath("mnist_sample.npz")) as f:
        return (f["x"].astype(dtype) / 127.5 - 1.0)[:, None], f["y"]
