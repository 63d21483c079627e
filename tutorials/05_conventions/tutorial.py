# %% [markdown]
# # Tutorial 5: One network, three conventions
#
# "LRP-epsilon with epsilon 0.25" is not one method: Zennit, the Montavon tutorial and the LRP Toolbox read
# the same words differently, so a heatmap from a 2016 paper (made with the Toolbox) and a Zennit run on the
# same network do not match. Here one network is explained with the same composite and the same number in the
# three conventions, side by side on one colour scale, and the differences are printed with their causes.
#
# Run it with `python tutorials/05_conventions/tutorial.py [OUTPUT_FOLDER]` (it prints this text too), or open
# it as a notebook (`pip install ".[tutorials]"`, then Jupyter).

# %%
import numpy as np

import lrpref
from lrpref import data, layers
from lrpref.backend import to_host
from lrpref.heatmap import colour_bar, gray_rgb, relevance_rgb, save_panels, tutorial_scale
from lrpref.narrate import arguments, narrate, output_folder

narrate(globals())
out = output_folder(arguments())

# %% [markdown]
# ## A network of the Toolbox's kind
#
# The Toolbox's LeNet demos pool by sums: its `SumPool` computes `sum(window) / sqrt(k*k)`, twice the average
# for 2x2 windows (`lrpref.layers.SumPool2d`). We take the shipped MNIST CNN and put such sum pools where its
# max pools are; the convolutions and dense layers are the trained ones, and the network still classifies.

# %%
cnn = lrpref.load(data.model_path("mnist_cnn"), dtype="float64")
net = lrpref.Sequential([layers.SumPool2d(2) if isinstance(layer, layers.MaxPool2d) else layer
                         for layer in cnn.layers], input_shape=cnn.input_shape)
print(net.summary())
X, T = data.mnist_sample()
print(f"accuracy on the {len(T)} held-out digits: max pools {np.mean(to_host(cnn.forward(X)).argmax(1) == T):.4f}, "
      f"sum pools {np.mean(to_host(net.forward(X)).argmax(1) == T):.4f}")   # to_host: tutorial 1 says why
X, T = X[:6], T[:6]

# %% [markdown]
# ## The same call in three conventions
#
# `composite="epsilon", epsilon=0.25` on every convolution and dense layer, starting from the true class's
# logit:
#
# - `zennit`: `z + 0.25 sign(z)`; the pools get Zennit's `Norm` (relevance in proportion to the inputs,
#   stabilised by 1e-6), whatever the rule of the other layers;
# - `tutorial`: `z + 0.25 rms(z) + 1e-9`, epsilon relative to the RMS of z over the whole batch, the sign
#   ignored; pools as `Norm` with `+1e-9`;
# - `toolbox`: `z + 0.25 sign(z)` as Zennit, but its sum pools apply the epsilon too, to the window sum.

# %%
CONVENTIONS = ("zennit", "tutorial", "toolbox")
maps = {c: lrpref.explain(net, X, target=T, composite="epsilon", epsilon=0.25, convention=c) for c in CONVENTIONS}
for c, e in maps.items():
    print(f"{c:>8}: the pools' rule {e.rules[2]}")

# %% [markdown]
# ## Side by side, on one colour scale
#
# All maps share one symmetric scale (the tutorial's `10 * mean(|R|^3)^(1/3)`, over the three conventions'
# maps together), so that colours compare across columns. Red is evidence for the digit, blue against it.

# %%
relevance = {c: to_host(e.relevance[:, 0]) for c, e in maps.items()}
scale = tutorial_scale(np.stack(list(relevance.values())))


def column(images):
    """The digits' panels one above the other, with a white gap."""
    gap = np.full((2,) + images[0].shape[1:], 255, dtype=np.uint8)
    return np.concatenate([part for image in images for part in (image, gap)][:-1])


digits = column([gray_rgb(x[0], -1, 1) for x in X])
panels = [digits] + [column([relevance_rgb(r, scale) for r in relevance[c]]) for c in CONVENTIONS] + \
         [colour_bar(digits.shape[0])]
captions = ["input"] + [f"{c}" for c in CONVENTIONS] + [f"+-{scale:.2f}"]
save_panels(out / "conventions.png", panels, captions=captions, zoom=5,
            title="epsilon 0.25 on a sum-pool MNIST CNN in three conventions (one colour scale)")
print(f"wrote {out / 'conventions.png'}: input, zennit, tutorial, toolbox; colour bar from +{scale:.3f} "
      f"(top) to -{scale:.3f} (bottom)")

# %% [markdown]
# ## How far apart, and why
#
# The relative difference of two maps is `max |R_a - R_b| / max |R_b|` over the six digits. The relevance
# that reaches the pixels tells where the rest went: epsilon absorbs relevance wherever it is added.

# %%
def difference(a, b):
    return np.abs(relevance[a] - relevance[b]).max() / np.abs(relevance[b]).max()


total = to_host(maps["zennit"].init).sum(axis=1)
for c in CONVENTIONS:
    kept = relevance[c].reshape(len(X), -1).sum(axis=1) / total
    print(f"{c:>8}: share of the logit reaching the pixels {np.round(kept, 3)}")
for a, b in (("tutorial", "zennit"), ("toolbox", "zennit"), ("toolbox", "tutorial")):
    print(f"{a} vs {b}: relative difference {difference(a, b):.3f}")

toolbox, zennit = ([to_host(R) for R in maps[c].layers] for c in ("toolbox", "zennit"))
per_layer = [np.abs(t - z).max() / np.abs(z).max() for t, z in zip(toolbox, zennit)]
print("toolbox vs zennit, relative difference at the input of layer",
      {i: float(f"{d:.2g}") for i, d in enumerate(per_layer)})
assert np.allclose(toolbox[-1], zennit[-1], rtol=0, atol=1e-12)   # same top layer
assert difference("toolbox", "zennit") > 1e-3 and difference("tutorial", "zennit") > 1e-3

# %% [markdown]
# - **tutorial vs zennit**: the same number, 0.25, is relative to the RMS of z in the tutorial's convention
#   and absolute in Zennit's; which is larger depends on the layer's scale, and it changes the share of
#   relevance each layer absorbs.
# - **toolbox vs zennit**: identical on the layers above the last pool (the printed per-layer differences are
#   0 there); from the sum pools down, the Toolbox adds the 0.25 to each window sum, which Zennit's `Norm`
#   does not, so the Toolbox absorbs more relevance at the pools. On networks without sum pools (and without
#   tied maxima) the two agree to rounding: `tutorials/guides/toolbox.md` gives the measured numbers.
