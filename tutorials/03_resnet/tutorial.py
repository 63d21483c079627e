# %% [markdown]
# # Tutorial 3: ResNet50, relevance at skip connections, and Insertion/Deletion
#
# A residual block adds two branches, `y = h_main + h_skip`. Plain LRP has no rule for that sum; Zennit
# splits the relevance in proportion to the signed branch outputs, which can create or lose relevance.
# Otsuki et al. (ECCV 2024) split it so that nothing is lost, either by the ratio of the absolute branch
# outputs or in halves. lrpref reproduces their published code (composite `otsuki2024`) and their
# Insertion/Deletion evaluation.
#
#     python tutorials/03_resnet/tutorial.py [OUTPUT_FOLDER] [--weights FILE]
#
# `--weights` takes a ResNet50 exported from torchvision with `weights/export_torchvision.py` (see
# tutorial 2's README for how to get pretrained weights); without it the network has random weights, and the
# script says so when it runs and in its figures' titles.

# %%
import numpy as np

import lrpref
from lrpref import evaluation
from lrpref.backend import to_host
from lrpref.composites import SKIP
from lrpref.heatmap import colour_bar, relevance_rgb, save_grid, tutorial_scale
from lrpref.narrate import arguments, here, narrate, network_title, output_folder
from lrpref.plots import line_plot
from lrpref.preprocessing import get as preprocessing
from lrpref.preprocessing import load_image

narrate(globals())
HERE = here(globals())
args = arguments(weights="an lrpref ResNet50 from weights/export_torchvision.py")
out = output_folder(args)
WHO = network_title(args, "ResNet50", "The maps show how the splitting methods differ, not what a trained "
                    "network attends to, and the Insertion/Deletion numbers below mean nothing.")

net = lrpref.models.resnet50(weights=args.weights)
spec = preprocessing(net.meta["preprocessing"])
image01 = load_image(HERE.parent / "02_vgg16" / "chelsea.jpg", spec.name, unit=True)   # pixels in [0, 1]
x = spec.normalize(image01)

# %% [markdown]
# ## Four ways to split, side by side
#
# The authors' code has four variants (`--skip-connection-prop-type`), which decide the split at identity
# shortcuts and at projection shortcuts (1x1 convolution + BatchNorm): `flows_skip`, the paper's method,
# splits by ratio everywhere; `flows_skip_simple` in halves; `latest` (their code's default) and `simple`
# send nothing down identity shortcuts. Everything else is their pipeline: z-plus everywhere, the first
# convolution on an all-ones input, BatchNorm passed through, the output relevance the softmax probability.

#
# The first row shows the five maps on one colour scale (the same output relevance, the softmax probability,
# starts each); the second row shows how each differs from the paper's `flows_skip`, on a scale of its own,
# since the differences are smaller than the maps.

# %%
maps = {}
for skip in sorted(SKIP):
    e = lrpref.explain(net, x, composite="otsuki2024", skip=skip)
    maps[skip] = to_host(e.relevance[0].sum(axis=0))   # on the host, to compare and print (tutorial 1 says why)
    print(f"{skip:18s} relevance sum {maps[skip].sum():.5f}   output relevance (p) {float(e.init.sum()):.5f}")
zennit = lrpref.explain(net, x, composite="epsilon_plus", init="softmax")
maps["epsilon_plus"] = to_host(zennit.relevance[0].sum(axis=0))
print(f"{'epsilon_plus':18s} relevance sum {maps['epsilon_plus'].sum():.5f}   (Zennit's proportional split)")

b = tutorial_scale(np.stack(list(maps.values())))
differences = {name: R - maps["flows_skip"] for name, R in maps.items() if name != "flows_skip"}
d = tutorial_scale(np.stack(list(differences.values())))
for name, D in differences.items():
    print(f"{name:18s} differs from flows_skip by up to {np.abs(D).max() / np.abs(maps['flows_skip']).max():.2f} "
          "of its largest value")
rows = [[spec.pixels(x[0])] + [relevance_rgb(R, b) for R in maps.values()] + [colour_bar(224, 12)],
        [spec.pixels(x[0])] + [relevance_rgb(differences[name], d) if name in differences
                               else np.full((224, 224, 3), 255, np.uint8) for name in maps] + [colour_bar(224, 12)]]
save_grid(out / "resnet_splits.png", rows,
          [["input"] + list(maps) + [f"+-{b:.2g}"], ["input"] + [f"{n} - flows_skip" if n in differences else ""
                                                            for n in maps] + [f"+-{d:.2g}"]],
          zoom=1, title=f"{WHO}: the four splits of otsuki2024 and Zennit's (epsilon_plus); below, the differences "
                        "from flows_skip")

# %% [markdown]
# ## Conservation, shown
#
# The report lists the relevance sum entering every residual block. With the paper's splitting it stays at
# the output relevance down to the first block: the splits lose nothing, the rules' `+1e-5` very little. The
# drop at the pixels happens in the stem, where BatchNorm shifts make units active whose inputs are all zero
# (their relevance has nowhere to go) and where the authors' 2x2 average pool stands in for the 3x3 max
# pool (`maxpool="average"` uses the max pool's own windows instead).

# %%
e = lrpref.explain(net, x, composite="otsuki2024")
report = e.conservation()
report.plot_blocks(out / "resnet_conservation.png",
                   title=f"{WHO}, otsuki2024 (flows_skip): relevance along the network")
for name, value in zip(report.block_names[::5], report.block_in[::5, 0]):
    print(f"entering {name:16s} {value:.5f}")
print(f"at the pixels           {report.total_in[0]:.5f}")

# %% [markdown]
# ## Insertion and Deletion
#
# The paper ranks pixels by the map, inserts them into a black image (or deletes them from the image) step
# by step and records the probability of the label; the areas under the curves are Insertion and Deletion,
# their difference the ID score. The paper uses 500 pixels per step and quantizes the map to 8 levels first;
# we take 2,500 pixels per step to keep this quick.

# %%
maps = evaluation.heat_quantization(e.relevance.sum(axis=1), 8)
result = evaluation.insertion_deletion(net, image01, maps, e.target, step=2500)
print(f"Insertion {result.insertion_auc[0]:.4f}  Deletion {result.deletion_auc[0]:.4f}  "
      f"ID {result.id_score[0]:.4f}  ({len(result.fraction)} steps)")
line_plot(out / "resnet_insertion_deletion.png",
          [(f"insertion (AUC {result.insertion_auc[0]:.3f})", result.fraction, result.insertion[0]),
           (f"deletion (AUC {result.deletion_auc[0]:.3f})", result.fraction, result.deletion[0])],
          title=f"{WHO}: Insertion and Deletion, chelsea.jpg", xlabel="share of pixels",
          ylabel="probability of the label")
print(f"wrote the figures to {out}/")
