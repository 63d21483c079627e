# %% [markdown]
# # Tutorial 4: Contrastive explanations, zebra and elephant with digits
#
# Gu et al. (CLRP) show a photo of a zebra next to an elephant: LRP's maps for "zebra" and for "elephant" both
# light up both animals. The same happens here with two MNIST digits side by side and a CNN that recognises
# digits anywhere on the canvas (`mnist_pairs_cnn`, shipped). Contrastive LRP (CLRP) and Softmax-Gradient
# LRP (SGLRP) explain a class *against* the others and keep only what speaks for it.
#
#     python tutorials/04_contrastive/tutorial.py [OUTPUT_FOLDER]

# %%
import numpy as np

import lrpref
from lrpref import contrastive, data
from lrpref.backend import to_host
from lrpref.heatmap import colour_bar, gray_rgb, relevance_rgb, save_grid, tutorial_scale
from lrpref.narrate import arguments, narrate, output_folder

narrate(globals())
out = output_folder(arguments())
net = lrpref.load(data.model_path("mnist_pairs_cnn"), dtype="float64")
x, pairs = data.mnist_pairs(4, seed=3)
print("the canvases hold", [f"{a} and {b}" for a, b in pairs])

# %% [markdown]
# ## The methods
#
# All with the paper's rules (`clrp_paper`: zB on the first convolution, z-plus elsewhere):
#
# - LRP: start from the target's logit z_t;
# - CLRP1: subtract the map of a dual that spreads z_t over the other classes, keep the positive part;
# - CLRP2: subtract the map of the network with the target's last-layer weights negated;
# - SGLRP: start from the softmax gradient, p_t(1 - p_t) at the target and -p_t p_n elsewhere, one pass.

# %%
METHODS = {
    "LRP": lambda t: lrpref.explain(net, x, t, composite="clrp_paper", init="logit").relevance,
    "CLRP1": lambda t: contrastive.clrp(net, x, t, variant=1).relevance,
    "CLRP2": lambda t: contrastive.clrp(net, x, t, variant=2).relevance,
    "SGLRP": lambda t: contrastive.sglrp(net, x, t).relevance,
}


def share_on_half(R, side):
    """The share of positive relevance on the explained digit's half."""
    positive = np.maximum(R.sum(axis=1), 0)
    half = positive[:, :, :28] if side == 0 else positive[:, :, 28:]
    return half.sum(axis=(1, 2)) / np.maximum(positive.sum(axis=(1, 2)), 1e-300)


rows = {}
for side, name in ((0, "left"), (1, "right")):
    for method, run in METHODS.items():
        R = to_host(run(pairs[:, side]))   # on the host, to measure and draw (tutorial 1 says why)
        rows.setdefault(name, {})[method] = R
        print(f"explaining the {name} digit, {method:5s}: share on its half {np.round(share_on_half(R, side), 2)}")

# %% [markdown]
# ## Side by side
#
# One PNG per canvas: a column per method; its map for the left digit, for the right digit, and their
# difference (left minus right), all three on the method's own colour scale (its bound in the bottom row's caption).
# LRP's two maps look alike, so their difference is faint; CLRP's and SGLRP's each keep the digit they
# explain, so their difference shows the two digits in opposite colours.

# %%
for k in range(len(x)):
    grid, captions = [[], [], []], [[], [], []]
    for method in METHODS:
        left, right = rows["left"][method][k].sum(axis=0), rows["right"][method][k].sum(axis=0)
        b = tutorial_scale(np.stack([left, right]))
        for r, (R, what) in enumerate(((left, f"{pairs[k, 0]}"), (right, f"{pairs[k, 1]}"),
                                       (left - right, "left - right"))):
            grid[r].append(relevance_rgb(R, b))
            captions[r].append(f"{method}: {what}" + (f" (+-{b:.2g})" if r == 2 else ""))
    for r in range(3):
        grid[r] = [gray_rgb(x[k, 0], -1, 1)] + grid[r] + [colour_bar(28)]
        captions[r] = [("explain left", "explain right", "difference")[r]] + captions[r] + [""]
    save_grid(out / f"contrastive_{k}.png", grid, captions, zoom=4,
              title=f"Trained mnist_pairs_cnn, clrp_paper rules: canvas {pairs[k, 0]} | {pairs[k, 1]}; "
                    "each method on its own scale")

# %% [markdown]
# ## A caveat: CLRP2 needs z-plus
#
# With epsilon (or LRP-0) on the last layer, negating the target's weights negates z_t too, so the dual map
# is the target map itself and CLRP2 is zero everywhere. The paper's z-plus rule keeps only positive weights,
# and w+ and (-w)+ differ.

# %%
flat = contrastive.clrp(net, x, pairs[:, 0], variant=2, composite="epsilon_plus")
print("CLRP2 with epsilon on the last layer, largest value:", np.abs(to_host(flat.relevance)).max())
print(f"wrote the figures to {out}/ ; benchmarks/class_discrimination.py measures all of this on 500 canvases")
