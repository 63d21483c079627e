"""Class discrimination of plain LRP, CLRP and SGLRP on canvases of two different MNIST digits side by side.

    python benchmarks/class_discrimination.py [--pairs 500] [--seed 0]

The shipped ``mnist_pairs_cnn`` recognises digits anywhere on a 28 x 56 canvas. For every canvas (two
different held-out digits) and for each of its two digits, each method explains that digit's class; the
score is the share of the map's positive relevance (summed over channels) that lies on the explained
digit's half. 0.5 means no discrimination, 1 perfect. Maps with no positive relevance count as 0.5. The
table gives the mean share over the 2 x ``--pairs`` explanations, per composite and method.
"""
import argparse
import time

import numpy as np

import lrpref
from lrpref import contrastive, data

METHODS = {
    "LRP": lambda net, x, t, c: lrpref.explain(net, x, t, composite=c, init="logit").relevance,
    "CLRP1 (paper)": lambda net, x, t, c: contrastive.clrp(net, x, t, 1, composite=c).relevance,
    "CLRP2 (paper)": lambda net, x, t, c: contrastive.clrp(net, x, t, 2, composite=c).relevance,
    "CLRP1 (official)": lambda net, x, t, c: contrastive.clrp(net, x, t, 1, "official", composite=c).relevance,
    "SGLRP (one pass)": lambda net, x, t, c: contrastive.sglrp(net, x, t, composite=c).relevance,
    "SGLRP (scaled)": lambda net, x, t, c: contrastive.sglrp(net, x, t, "scaled", composite=c).relevance,
}
COMPOSITES = ("clrp_paper", "epsilon_plus", "epsilon_gamma_box")


def share_on_half(relevance, side):
    """Positive relevance on the left (side 0) or right (side 1) half over all positive relevance."""
    positive = np.maximum(relevance.sum(axis=1), 0)
    half = positive[:, :, :28] if side == 0 else positive[:, :, 28:]
    total = positive.reshape(len(positive), -1).sum(axis=1)
    return np.where(total > 0, half.reshape(len(half), -1).sum(axis=1) / np.where(total > 0, total, 1), 0.5)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    net = lrpref.load(data.model_path("mnist_pairs_cnn"), dtype="float64")
    x, pairs = data.mnist_pairs(args.pairs, args.seed)
    print(f"# {args.pairs} canvases of two different held-out digits (seed {args.seed}), {2 * args.pairs} "
          f"explanations per cell; mnist_pairs_cnn, float64")
    print(f"{'composite':<20} " + " ".join(f"{m:>17}" for m in METHODS))
    start = time.perf_counter()
    for composite in COMPOSITES:
        cells = []
        for method in METHODS.values():
            shares = [share_on_half(method(net, x, pairs[:, side], composite), side) for side in (0, 1)]
            cells.append(np.concatenate(shares).mean())
        print(f"{composite:<20} " + " ".join(f"{c:>17.3f}" for c in cells))
    print(f"# {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
