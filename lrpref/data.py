"""The files shipped in ``weights/``: two MNIST models and 2,000 held-out digits (see ``weights/README.md``).

An installed lrpref has them in ``lrpref/weights/``; a source checkout in ``weights/`` next to ``lrpref/``.
"""
from pathlib import Path

import numpy as np

from .checks import integer

_HERE = Path(__file__).resolve().parent
WEIGHTS = _HERE / "weights" if (_HERE / "weights").is_dir() else _HERE.parent / "weights"
MODELS = ("mnist_mlp", "mnist_cnn", "mnist_pairs_cnn")
DEFAULT_MODEL = "mnist_mlp"


def model_path(name=DEFAULT_MODEL):
    """Path of a shipped model file by name (``"mnist_mlp"``, ``"mnist_cnn"`` or ``"mnist_pairs_cnn"``)."""
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
        return _network_input(f["x"], dtype), f["y"]


def _network_input(images, dtype):
    """Pixels 0..255 of (N, H, W) images as (N, 1, H, W) network input in [-1, 1], of the floating-point ``dtype``."""
    if np.dtype(dtype).kind != "f":   # an integer dtype cannot hold [-1, 1] (int8 wrapped 200 round to -56)
        raise TypeError(f"dtype must be a floating-point type (float32, float64), got {np.dtype(dtype)}")
    return (images.astype(dtype) / 127.5 - 1.0)[:, None]


def make_pairs(images, labels, n, seed=0, distinct=True):
    """``n`` canvases of two digits side by side (28 x 56), drawn with ``seed`` from ``images`` (N, 28, 28).

    Returns the canvases (n, 28, 56), of the images' dtype, and the labels (n, 2): left, right. With
    ``distinct`` the two digits are always of different classes.
    """
    n = integer(n, "n (the number of canvases)", low=1)
    if distinct and len(np.unique(labels)) < 2:   # no two digits of different classes: drawing would never end
        raise ValueError(f"distinct canvases need digits of at least two classes, got only {np.unique(labels)}")
    rng = np.random.default_rng(seed)
    left = rng.integers(0, len(images), n)
    right = rng.integers(0, len(images), n)
    while distinct and (clash := labels[left] == labels[right]).any():
        right[clash] = rng.integers(0, len(images), int(clash.sum()))
    return np.concatenate([images[left], images[right]], axis=2), np.stack([labels[left], labels[right]], axis=1)


def mnist_pairs(n=500, seed=0, dtype="float64"):
    """``n`` two-digit canvases from the held-out digits, as input of ``mnist_pairs_cnn``.

    Returns
    -------
    x : array (n, 1, 28, 56) in [-1, 1]
    y : array (n, 2)
        The left and the right digit (always different).
    """
    with np.load(WEIGHTS / "mnist_sample.npz") as f:
        canvases, labels = make_pairs(f["x"], f["y"], n, seed)
    return _network_input(canvases, dtype), labels
