# %% [markdown]
# # Tutorial 2: VGG16 with the tutorial's rules
#
# The second part of the Montavon LRP tutorial: VGG16 on a photograph, with rules that depend on the depth
# of the layer (LRP-gamma near the pixels, LRP-epsilon in the middle, LRP-0 at the top, zB on the pixels),
# max pooling treated as average pooling, and heatmaps at several depths.
#
#     python tutorials/02_vgg16/tutorial.py [OUTPUT_FOLDER] [--weights FILE]
#
# Without `--weights` the network has random weights: everything runs, but the heatmaps show the
# architecture and the image's contrasts, not a cat; the script says so when it runs and in every figure's
# title. For real weights (see this folder's README):
#
# - torchvision: where torchvision is installed, `torch.save(torchvision.models.vgg16(weights="IMAGENET1K_V1")
#   .state_dict(), "vgg16.pth")`, then here `python weights/export_torchvision.py vgg16 vgg16.h5
#   --state-dict vgg16.pth`;
# - Keras: `keras.applications.VGG16().save("vgg16_keras.h5")` (any Keras 2 or 3).
#
# The photograph is scikit-image's "chelsea" (CC0, by Stefan van der Walt), a tabby cat.

# %%
import numpy as np

import lrpref
from lrpref.backend import to_host
from lrpref.heatmap import colour_bar, relevance_rgb, save_grid, tutorial_scale
from lrpref.narrate import arguments, here, narrate, network_title, output_folder
from lrpref.preprocessing import get as preprocessing
from lrpref.preprocessing import load_image

narrate(globals())
HERE = here(globals())
args = arguments(weights="an lrpref file from export_torchvision.py or a Keras VGG16 .h5")
out = output_folder(args)
WHO = network_title(args, "VGG16", "Its maps show what random filters respond to (edges and contrasts, such as "
                    "the cat's eyes), not evidence for a class; do not read them as an explanation (this folder's "
                    "README says where trained weights come from).")

# %% [markdown]
# ## The network and the image
#
# `lrpref.models.vgg16` builds torchvision's layout (layer names `features.0` ... `classifier.6`); a
# Keras file gives Keras' names. The network records the preprocessing it expects, and the image is loaded
# with it: torchvision's (RGB in [0, 1], ImageNet mean and std, resize 256, centre crop 224) or Keras'
# "caffe" (BGR, mean subtracted).

# %%
net = lrpref.models.vgg16(weights=args.weights)
spec = preprocessing(net.meta["preprocessing"])
x = load_image(HERE / "chelsea.jpg", spec.name)
scores = to_host(net.forward(x))[0]   # on the host, to print (tutorial 1 says why)
top = scores.argsort()[::-1][:5]
print("top 5 classes:", ", ".join(f"{k} ({scores[k]:.2f})" for k in top))
print("ImageNet 281 is 'tabby cat', 282 'tiger cat', 285 'Egyptian cat'")
target = int(top[0])

# %% [markdown]
# ## The tutorial's rules
#
# The composite `tutorial_vgg16` counts layers as the tutorial's list does (features 0-30, then the
# classifier as convolutions 31-37) and gives: zB to layer 0 with the bounds of the preprocessing;
# LRP-gamma (0.25) to layers 1-16; LRP-epsilon (0.25 times the RMS of z) to layers 17-30; LRP-0 from 31.
# Every increment has the tutorial's `+1e-9`, and the max pools become 2x2 average pools going backwards.

# %%
print(lrpref.composites.get("tutorial_vgg16", net=net).describe(net))
e = lrpref.explain(net, x, target=target, composite="tutorial_vgg16")

# %% [markdown]
# ## Relevance at several depths
#
# As in the tutorial, the relevance entering layers 31, 21, 11 and 1, summed over channels: the
# explanation becomes finer the closer it gets to the pixels. (Layer 31 of the tutorial's list is the
# classifier's first layer; in lrpref's network the adaptive pool before it has the same input.)

# %%
names = {"avgpool": 31, "features.21": 21, "features.11": 11, "features.1": 1}
panels, captions = [spec.pixels(x[0])], ["input"]
for name, depth in names.items():
    R = to_host(e.layers[net.names.index(name)][0].sum(axis=0))
    b = tutorial_scale(R)
    up = 224 // R.shape[0]   # nearest-neighbour enlargement to the input's size, for one figure
    panels.append(relevance_rgb(np.kron(R, np.ones((up, up))), b))
    captions.append(f"layer {depth} ({R.shape[0]}x{R.shape[1]})\n+-{b:.2g}")
    print(f"layer {depth:>2}: relevance map of {R.shape[0]}x{R.shape[1]}, sum {R.sum():.4g}, colours +-{b:.2g}")
save_grid(out / "vgg16_depths.png", [panels + [colour_bar(224, 12)]], [captions + ["scale:\neach +-b"]], zoom=1,
          title=f"{WHO}, tutorial_vgg16 rules: relevance entering layers 31, 21, 11 and 1 (each on its own scale)")

# %% [markdown]
# ## The pixel heatmap

# %%
pixels = e.relevance[0].sum(axis=0)
b = tutorial_scale(pixels)
save_grid(out / "vgg16_pixels.png", [[spec.pixels(x[0]), relevance_rgb(pixels, b), colour_bar(224, 12)]],
          [["input", f"relevance of class {target}", f"+-{b:.2g}"]], zoom=1,
          title=f"{WHO}, tutorial_vgg16 rules:\nrelevance of class {target} at the pixels")
report = e.conservation()
print(f"output relevance {report.total_out[0]:.4g}, input relevance {report.total_in[0]:.4g}")
print(f"wrote the heatmaps to {out}/")
