"""The shipped MNIST models against PyTorch, which trained them (weights/train_mnist.py)."""
import numpy as np
import pytest

from lrpref import backend, data, load


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
    assert np.abs(backend.to_host(net.forward(x)) - reference).max() <= 1e-12 * np.abs(reference).max()


@pytest.mark.parametrize("name", ["mnist_mlp", "mnist_cnn"])
def test_held_out_accuracy_is_what_pytorch_measured(name, sample):
    """The accuracy PyTorch measured after training (stored in the model's meta) is what lrpref's forward gives."""
    net = load(data.model_path(name))
    x, y = data.mnist_sample(dtype="float32")
    accuracy = float((backend.to_host(net.forward(x)).argmax(axis=1) == y).mean())
    assert accuracy == net.meta["held_out_accuracy"] and accuracy > 0.95
    assert len(y) == 2000 and np.bincount(y).min() > 150


def test_pairs_model_recognises_both_digits_as_pytorch_measured():
    """meta["held_out_top2"]: PyTorch's share of 2,000 held-out canvases (make_pairs seed 7) whose two highest
    logits are the two digits, measured by weights/train_mnist_pairs.py; lrpref's forward gives the same."""
    net = load(data.model_path("mnist_pairs_cnn"))
    with np.load(data.WEIGHTS / "mnist_sample.npz") as f:
        canvases, pairs = data.make_pairs(f["x"], f["y"], 2000, seed=7)
    logits = backend.to_host(net.forward((canvases.astype(np.float32) / 127.5 - 1.0)[:, None]))
    top2 = np.sort(np.argsort(-logits, axis=1)[:, :2], axis=1)
    score = float((top2 == np.sort(pairs, axis=1)).all(axis=1).mean())
    assert score == net.meta["held_out_top2"] and score > 0.8
