# %% [markdown]
# # Tutorial 1: LRP on MNIST, step by step
#
# This follows the first part of the Montavon LRP tutorial (heatmapping.org/tutorial): a 784-300-100-10 ReLU
# network on MNIST digits, explained with four array steps per layer. We write those steps by hand first,
# then let lrpref run them, and check that both agree up to float64 rounding.
#
# Run it with `python tutorials/01_mnist/tutorial.py [OUTPUT_FOLDER]` (it prints this text too), or open it
# as a notebook (`pip install ".[tutorials]"`, then Jupyter); it writes PNG figures to the folder (default:
# `tutorial_output/`). The tests run it both ways, so it cannot go stale.

# %%
import numpy as np

import lrpref
from lrpref import data, layers
from lrpref.backend import to_host
from lrpref.heatmap import colour_bar, gray_rgb, relevance_rgb, save_grid, tutorial_scale
from lrpref.narrate import arguments, narrate, output_folder

narrate(globals())
out = output_folder(arguments())

# %% [markdown]
# ## The network and the data
#
# lrpref ships the tutorial's architecture trained on 8,000 MNIST digits (`weights/train_mnist.py`) and the
# 2,000 digits it did not see. Pixels are scaled to [-1, 1] as in the tutorial. We take 12 digits, as the
# tutorial does, and load the network in float64: the reference precision.
#
# The network lives on NumPy, or on CuPy (the GPU) when `LRPREF_BACKEND=cupy` is set; its results then live on
# the GPU too. `to_host` brings an array back to NumPy: we use it wherever we print, or compute by hand.

# %%
net = lrpref.load(data.model_path("mnist_mlp"), dtype="float64")
print(net.summary())
X, T = data.mnist_sample()
X, T = X[:12], T[:12]

scores = to_host(net.forward(X))
for digit in range(3):
    print(" ".join(f"[{k}] {v:.1f}" for k, v in enumerate(scores[digit])), " label", T[digit])

# %% [markdown]
# ## LRP by hand
#
# The tutorial keeps the weights as a list `W` with shape (in, out); lrpref stores them as PyTorch does,
# (out, in), so we transpose. Activations `A[l]` come from a forward pass. The relevance starts at the
# output as the score of the true class (`A[L] * onehot(T)`).

# %%
dense = [layer for layer in net.layers if isinstance(layer, layers.Dense)]
W = [to_host(d.weight).T for d in dense]
B = [to_host(d.bias) for d in dense]
L = len(W)

A = [X.reshape(12, 784)] + [None] * L
for l in range(L):
    A[l + 1] = np.maximum(0, A[l].dot(W[l]) + B[l])
R = [None] * L + [A[L] * (T[:, None] == np.arange(10))]

# %% [markdown]
# The general rule `R_j = sum_k a_j rho(w_jk) / (eps + sum_0,j a_j rho(w_jk)) R_k` becomes four steps. The
# tutorial picks the rule per layer with two helpers: `rho` transforms the weights (gamma = 0.1 in the
# middle layer), `incr` adds the stabilizer (epsilon = 0.1 times the RMS of z over the whole batch in the
# top layer, and 1e-9 everywhere).

# %%
def rho(w, l):
    return w + [None, 0.1, 0.0, 0.0][l] * np.maximum(0, w)


def incr(z, l):
    return z + [None, 0.0, 0.1, 0.0][l] * (z ** 2).mean() ** .5 + 1e-9


for l in range(1, L)[::-1]:
    w, b = rho(W[l], l), rho(B[l], l)
    z = incr(A[l].dot(w) + b, l)   # step 1: forward with rho(w), plus the increment
    s = R[l + 1] / z               # step 2: element-wise division
    c = s.dot(w.T)                 # step 3: backward pass (the transpose of the layer)
    R[l] = A[l] * c                # step 4: element-wise product with the input

# %% [markdown]
# The pixels are no ReLU activations: they lie in [-1, 1]. The zB rule uses those bounds `l = -1`, `h = 1`.

# %%
w = W[0]
wp, wm = np.maximum(0, w), np.minimum(0, w)
lb, hb = A[0] * 0 - 1, A[0] * 0 + 1
z = A[0].dot(w) - lb.dot(wp) - hb.dot(wm) + 1e-9   # step 1
s = R[1] / z                                         # step 2
c, cp, cm = s.dot(w.T), s.dot(wp.T), s.dot(wm.T)     # step 3
R[0] = A[0] * c - lb * cp - hb * cm                  # step 4

# %% [markdown]
# ## The same with lrpref
#
# The composite `tutorial_mnist` assigns exactly these rules, in the tutorial's convention (a `+1e-9` that
# ignores the sign of z, epsilon relative to the batch RMS, rho applied to the bias). lrpref runs the same
# four steps in `lrpref/rules.py`.

# %%
e = lrpref.explain(net, X, target=T, composite="tutorial_mnist")
print(lrpref.composites.get("tutorial_mnist", net=net).describe(net))
difference = np.abs(to_host(e.relevance).reshape(12, 784) - R[0]).max() / np.abs(R[0]).max()
print(f"largest difference to the hand-written loop, relative: {difference:.1e}")
assert difference < 1e-12

# %% [markdown]
# ## Where the relevance goes
#
# The conservation report shows the relevance sum at every layer, and what the bias and the stabilizer kept.
# For sample 0 the epsilon in the top layer absorbs part of the score; the bias absorbs the rest.

# %%
print(e.conservation().table(sample=0))

# %% [markdown]
# ## Heatmaps
#
# Red is evidence for the true class, blue against it (the tutorial's colours: seismic darkened by 0.85).
# All twelve maps share one colour scale `[-b, b]`, the tutorial's `b = 10 * mean(|R|^3)^(1/3)` taken over
# the twelve, so that a darker map really holds more relevance; the bar on the right shows it.

# %%
def figure(path, title, relevance, b):
    """The digits above, their maps below on the shared scale [-b, b], and the colour bar."""
    digits = [gray_rgb(x[0], -1, 1) for x in X]
    maps = [relevance_rgb(r[0], b) for r in relevance] + [colour_bar(28)]
    save_grid(path, [digits, maps], [[f"label {t}" for t in T], [f"R, {t}" for t in T] + [f"+-{b:.2g}"]], zoom=4,
              title=title)
    print(f"wrote {path}: {title}; colours from -{b:.2g} (blue) to +{b:.2g} (red)")


b = tutorial_scale(e.relevance)
figure(out / "mnist_tutorial_rules.png", "Trained MLP, tutorial_mnist rules: relevance of the true class",
       e.relevance, b)

# %% [markdown]
# ## Other rules, and the convolutional network
#
# Zennit's composites run on the same network: `epsilon_gamma_box` (zB on the first convolution, gamma on
# the others, epsilon on dense layers) and `epsilon_plus` (z-plus on convolutions). On the MLP, which has no
# convolution, both reduce to LRP-epsilon with epsilon = 1e-6 on every layer: the two maps are the same
# array, so we draw it once. It is close to LRP-0, and noisier than the tutorial's rules. The small CNN, also
# shipped, shows their intended use; the last row shows where its two composites differ.

# %%
mlp = {c: to_host(lrpref.explain(net, X, target=T, composite=c).relevance) for c in ("epsilon_gamma_box", "epsilon_plus")}
same = np.array_equal(mlp["epsilon_gamma_box"], mlp["epsilon_plus"])
print(f"MLP: epsilon_gamma_box and epsilon_plus give the same array: {same}")
assert same
figure(out / "mnist_mlp_epsilon.png",
       "Trained MLP, epsilon_gamma_box = epsilon_plus here (LRP-epsilon 1e-6 everywhere)",
       mlp["epsilon_plus"], tutorial_scale(mlp["epsilon_plus"]))

cnn = lrpref.load(data.model_path("mnist_cnn"), dtype="float64")
both = {c: to_host(lrpref.explain(cnn, X, target=T, composite=c).relevance) for c in ("epsilon_gamma_box", "epsilon_plus")}
b = tutorial_scale(np.stack(list(both.values())))
difference = both["epsilon_gamma_box"] - both["epsilon_plus"]
rows = [[gray_rgb(x[0], -1, 1) for x in X]] + [[relevance_rgb(r[0], b) for r in R] + [colour_bar(28)]
                                                for R in (*both.values(), difference)]
save_grid(out / "mnist_cnn_composites.png", rows,
          [[f"label {t}" for t in T]] + [[f"{name}" if k == 0 else "" for k in range(12)] + [f"+-{b:.2g}"]
                                          for name in ("eps_gamma_box", "epsilon_plus", "difference")],
          zoom=4, title="Trained CNN: epsilon_gamma_box, epsilon_plus, and their difference, on one scale")
for name, R in both.items():
    print(f"CNN {name}: relevance sums {np.round(R.reshape(12, -1).sum(axis=1)[:4], 2)} ...")
largest = np.abs(difference).max() / np.abs(both["epsilon_plus"]).max()
print(f"CNN: the two composites differ by up to {largest:.2f} of the largest relevance (gamma vs z-plus on the "
      "second convolution, zB vs z-plus on the first)")
print(f"wrote the figures to {out}/")
