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
# tutorial 2's README for how to get pretrained weights); without it the network has random weights.

# %%
import argparse
from pathlib import Path

import lrpref
from lrpref import evaluation
from lrpref.composites import SKIP
from lrpref.heatmap import relevance_rgb, save_panels
from lrpref.preprocessing import get as preprocessing
from lrpref.preprocessing import load_image

HERE = Path(__file__).resolve().parent
parser = argparse.ArgumentParser()
parser.add_argument("output", nargs="?", default="tutorial_output")
parser.add_argument("--weights", help="an lrpref ResNet50 from weights/export_torchvision.py")
args = parser.parse_args()
out = Path(args.output)
out.mkdir(parents=True, exist_ok=True)

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

# %%
panels, captions = [spec.pixels(x[0])], ["input"]
for skip in sorted(SKIP):
    e = lrpref.explain(net, x, composite="otsuki2024", skip=skip)
    panels.append(relevance_rgb(e.relevance[0].sum(axis=0)))
    captions.append(skip)
    print(f"{skip:18s} relevance sum {e.relevance.sum():.5f}   output relevance (p) {e.init.sum():.5f}")
zennit = lrpref.explain(net, x, composite="epsilon_plus", init="softmax")
panels.append(relevance_rgb(zennit.relevance[0].sum(axis=0)))
captions.append("epsilon_plus")
print(f"{'epsilon_plus':18s} relevance sum {zennit.relevance.sum():.5f}   (Zennit's proportional split)")
save_panels(out / "resnet_splits.png", panels, captions, zoom=1)

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
report.plot_blocks(out / "resnet_conservation.png")
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
evaluation.write_results(out, [{"image": "chelsea.jpg", "insertion_auc": result.insertion_auc[0],
                                "deletion_auc": result.deletion_auc[0], "id_score": result.id_score[0]}], result)
print(f"wrote the figures to {out}/")
