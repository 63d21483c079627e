"""The shipped MNIST models against PyTorch, which trained them (weights/train_mnist.py).

float64 logits agree with PyTorch's stored float64 ones to float64 rounding (precision.float64_difference from
the logits' measured condition). Accuracies are discrete: PyTorch measured them in float32, summing in its own
order, so a digit whose two competing logits lie within float32 rounding of each other may be decided either
way; the counts must agree on every other digit.
"""
import numpy as np
import pytest

import precision
from lrpref import backend, data, load


def undecided(name, x, k=1):
    """Per sample: could float32 rounding (in any summation order) change which k logits are the largest?

    The gap between the k-th and (k+1)-th largest float64 logit is compared with twice the first-order float32
    bound of the forward pass (tests/precision.py), made absolute with the sample's largest logit."""
    net = load(data.model_path(name), dtype="float64")
    x = x.astype(np.float64)
    logits = backend.to_host(net.forward(x))
    condition = precision.forward_condition(lambda: load(data.model_path(name), dtype="float64"), x)
    bound = 2 * precision.float32_bound(net, condition) * np.abs(logits).max(axis=1)
    ordered = np.sort(logits, axis=1)
    return ordered[:, -k] - ordered[:, -k - 1] <= bound


@pytest.fixture(scope="module")
def sample():
    with np.load(data.WEIGHTS / "mnist_sample.npz") as f:
        return {key: f[key] for key in f.files}


@pytest.mark.parametrize("name", ["mnist_mlp", "mnist_cnn"])
def test_forward_equals_pytorch_logits(name, sample):
    """mlp_logits / cnn_logits: PyTorch's float64 forward pass of the saved weights on the first 100 held-out
    digits, stored by weights/train_mnist.py."""
    net = load(data.model_path(name), dtype="float64")
    x = (sample["x"][:100].astype(np.float64) / 127.5 - 1.0)[:, None]
    reference = sample[name.split("_")[1] + "_logits"]
    condition = precision.forward_condition(lambda: load(data.model_path(name), dtype="float64"), x)
    bound = precision.float64_difference(precision.longest_dot_product(net), condition)
    assert (precision.per_sample_error(net.forward(x), reference) <= bound).all()


@pytest.mark.parametrize("name", ["mnist_mlp", "mnist_cnn"])
def test_held_out_accuracy_is_what_pytorch_measured(name, sample):
    """The accuracy PyTorch measured after training (stored in the model's meta) is what lrpref's forward gives."""
    net = load(data.model_path(name))
    x, y = data.mnist_sample(dtype="float32")
    correct = (backend.to_host(net.forward(x)).argmax(axis=1) == y).sum()
    assert abs(correct - round(net.meta["held_out_accuracy"] * len(y))) <= undecided(name, x).sum()
    assert correct / len(y) > 0.95
    assert len(y) == 2000 and np.bincount(y).min() > 150


def test_pairs_model_recognises_both_digits_as_pytorch_measured():
    """meta["held_out_top2"]: PyTorch's share of 2,000 held-out canvases (make_pairs seed 7) whose two highest
    logits are the two digits, measured by weights/train_mnist_pairs.py; lrpref's forward gives the same."""
    net = load(data.model_path("mnist_pairs_cnn"))
    with np.load(data.WEIGHTS / "mnist_sample.npz") as f:
        canvases, pairs = data.make_pairs(f["x"], f["y"], 2000, seed=7)
    x = (canvases.astype(np.float32) / 127.5 - 1.0)[:, None]
    logits = backend.to_host(net.forward(x))
    top2 = np.sort(np.argsort(-logits, axis=1)[:, :2], axis=1)
    hits = (top2 == np.sort(pairs, axis=1)).all(axis=1).sum()
    assert abs(hits - round(net.meta["held_out_top2"] * len(pairs))) <= undecided("mnist_pairs_cnn", x, k=2).sum()
    assert hits / len(pairs) > 0.8
