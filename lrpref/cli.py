"""The ``lrpref`` command line."""
import argparse
import math
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from . import (__version__, benchmark, composites, contrastive, conventions, data, datasets, evaluation,
               mismatch, preprocessing, reference, runs)
from .backend import BACKENDS, resolve, to_host
from .explain import INITS, explain
from .files import refuse_overwriting
from .heatmap import relevance_rgb, save_panels, tutorial_scale
from .io import DTYPES, load
from .preprocessing import load_image

EVALUATE_HELP = """\
Explain a set of images (each its predicted class) and measure the explanations: Insertion and Deletion AUC
and their difference (Otsuki et al. 2024's protocol: pixels ranked by the relevance map, a black baseline,
the label's softmax probability), MoRF pixel flipping with AOPC (Samek et al. 2017), and, where an .npz
gives masks, the relevance mass accuracy (Arras et al. 2022). Writes results.csv and the mean curves as PNG.
Runs in chunks, resumable (results.h5), in-process or on Dask (--workers, --scheduler): see
tutorials/guides/dataset_scale.md.

Example, the paper's setting on a ResNet50 exported from torchvision:
  lrpref evaluate --model resnet50.h5 --images imagenet_val/ --labels labels.csv --composite otsuki2024 \\
      --skip flows_skip --quantize 8 --step 500
"""

REFERENCE_HELP = """\
Golden reference vectors for other LRP implementations. 'export' writes lrpref's relevance at every layer for
a fixed suite (small networks, VGG16 and ResNet18 at reduced width; every rule, composite and convention) to
an HDF5 file, float64; 'check' compares another implementation's file in the same schema (tutorials/guides/
reference_vectors.md) against it and prints the errors per case and layer. Exit status 1 when a dataset is
above the tolerance.

  lrpref reference export reference.h5
  lrpref reference check reference.h5 theirs.h5
"""

BENCH_HELP = """\
Time the forward pass and LRP of VGG and ResNet (random weights, random 224x224 inputs) and print a table:
forward and LRP milliseconds (medians of --repeats after a warm-up), LRP as a multiple of the forward pass,
GFLOP/s of the forward pass and of three forward passes' worth of products during LRP (the floor of LRP:
forward, modified forward, transpose), and the peak memory of an explanation. The first line names the
machine and its matrix-product rate. benchmarks/bench_zennit.py adds Zennit's times (it needs PyTorch).
NumPy's thread count follows OPENBLAS_NUM_THREADS / OMP_NUM_THREADS.

  lrpref bench --models vgg16 resnet50 --batches 1 8 --dtypes float32 float64
"""

RULE_PARAMS = ("epsilon", "gamma", "alpha", "beta", "low", "high", "stabilizer")

CONTRASTIVE = {   # contrastive.Contrastive.method: its name in the summary and the captions, its output relevance
    "clrp1-paper": ("CLRP1 paper", "the target's logit; dual: logit / (C - 1) at every other class"),
    "clrp1-official": ("CLRP1 official", "|logit| at the target; dual: |logit| at every other class"),
    "clrp2-paper": ("CLRP2 paper", "the target's logit; dual: the same, target's last-layer weights negated"),
    "clrp2-official": ("CLRP2 official", "|logit| at the target; dual: the same, target's last-layer weights negated"),
    "sglrp-one_pass": ("SGLRP one pass", "softmax gradient: p_t (1 - p_t) at the target, -p_t p_n elsewhere"),
    "sglrp-scaled": ("SGLRP scaled", "softmax gradient's positive part; its negative part explained apart"),
}

EXPLAIN_HELP = """\
Explain one input with LRP and write a PNG: the input and its relevance heatmap side by side (red: evidence
for the class, blue: against; the tutorial's colours and scale).

With no arguments it explains a shipped held-out MNIST digit with the shipped 784-300-100-10 network and
the composite the network records for itself (the tutorial's rules, tutorial_mnist; the Python API defaults
to epsilon_gamma_box). Warnings go to stderr, one line each: rules for non-negative inputs meeting inputs of
both signs, input outside the model's range, an image converted to gray or colour or resized to fit.
Rule parameters use Zennit's names and only apply to composites that take them (see
tutorials/guides/rules.md, "Composites").
"""


class Parser(argparse.ArgumentParser):
    """argparse with lrpref's errors: one line ``lrpref: error: ...`` and exit status 2 (subcommands too)."""

    def error(self, message):
        self.exit(2, f"lrpref: error: {message}\n")


def option(kind, low=None, above=None):
    """An argparse ``type``: ``kind`` (int or float) of a finite value, ``>= low`` and ``> above`` where given,
    so that a bad option is refused before any work."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if (low is not None and value < low) or (above is not None and value <= above):
            bound = f">= {low}" if low is not None else f"> {above}"
            raise argparse.ArgumentTypeError(f"expected a number {bound}, got {text}")
        return value
    return parse


COUNT = option(int, low=1)
CHUNK = 16   # explain --images: images per chunk unless --batch-size says
DATASET_ONLY = ("limit", "batch_size", "output_dir", "save_relevance", "workers", "scheduler")   # explain --images


def build_parser():
    parser = Parser(prog="lrpref", description="Layer-wise Relevance Propagation, exactly.")
    parser.add_argument("--version", action="version", version=f"lrpref {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = commands.add_parser("explain", help="explain one input and write a heatmap PNG", description=EXPLAIN_HELP,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=data.DEFAULT_MODEL,
                   help=f"a shipped model ({', '.join(data.MODELS)}), an lrpref HDF5 file or a Keras .h5 model "
                        "(default: %(default)s)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--image", help="an image file (PNG, JPEG, ...), preprocessed as the model records")
    source.add_argument("--sample", type=option(int, low=0), default=0,
                        help="index of a shipped held-out MNIST digit, 0..1999 (default: %(default)s)")
    source.add_argument("--images", help="dataset mode: a folder of images, an .npz or an HDF5 file (see "
                                         "tutorials/guides/dataset_scale.md); one heatmap per image into "
                                         "--output-dir")
    p.add_argument("--target", type=option(int, low=0), help="the class to explain (default: the predicted class)")
    p.add_argument("--composite", choices=sorted(composites.COMPOSITES), metavar="NAME",
                   help="rules per layer: " + ", ".join(sorted(composites.COMPOSITES))
                   + " (default: the composite the model records, else epsilon_gamma_box where it records its "
                     "input range, else epsilon_plus; clrp_paper with a contrastive --method)")
    p.add_argument("--method", default="lrp", choices=("lrp", "clrp1", "clrp2", "sglrp"),
                   help="plain LRP, or a contrastive explanation: CLRP variant 1 or 2 (Gu et al. 2018) or "
                        "SGLRP (Iwana et al. 2019); the PNG shows the input and the method's map, with the target's "
                        "and the dual's maps between them where it computes two (CLRP; SGLRP scaled: the positive "
                        "and negative parts) (default: lrp)")
    p.add_argument("--clrp-convention", choices=contrastive.CONVENTIONS,
                   help="with --method clrp1/clrp2: CLRP as the paper describes it or as the authors' code computes it "
                        "(default: paper)")
    p.add_argument("--sglrp-mode", choices=contrastive.MODES,
                   help="with --method sglrp: SGLRP in one signed pass or as the authors' scaled difference "
                        "(default: one_pass)")
    add_rule_arguments(p)
    p.add_argument("--output", help="the PNG to write (default: heatmap.png)")
    p.add_argument("--output-dir", help="dataset mode: where the heatmaps go (<name>.png)")
    p.add_argument("--save-relevance", action="store_true",
                   help="dataset mode: also write each image's relevance (C, H, W) as <name>.npy")
    p.add_argument("--limit", type=COUNT, help="dataset mode: at most this many images (default: all)")
    p.add_argument("--batch-size", type=COUNT, help=f"dataset mode: images per chunk (default: {CHUNK})")
    add_dataset_arguments(p)
    p.add_argument("--show-rules", action="store_true", help="print the rule each layer gets")
    p.add_argument("--report", action="store_true", help="print the conservation report")

    p = commands.add_parser("evaluate", help="measure explanations: Insertion/Deletion, MoRF/AOPC, mass accuracy",
                            description=EVALUATE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="mnist_cnn",
                   help=f"a shipped model ({', '.join(data.MODELS)}), an lrpref HDF5 file or a Keras .h5 model "
                        "(default: %(default)s)")
    p.add_argument("--images", help="a folder of images (PNG, JPEG), or an .npz or HDF5 file with x (N, C, H, W) in "
                                    "[0, 1] and optionally y (labels) and masks (N, H, W) (default: the shipped "
                                    "MNIST digits)")
    p.add_argument("--labels", help="for a folder: a CSV of file name, label (default: the predicted classes)")
    p.add_argument("--limit", type=COUNT, default=100, help="evaluate at most this many images (default: %(default)s)")
    p.add_argument("--composite", default="epsilon_gamma_box", choices=sorted(composites.COMPOSITES), metavar="NAME",
                   help="rules per layer (default: %(default)s)")
    add_rule_arguments(p)
    p.add_argument("--quantize", type=option(int, low=2), help="heat quantization levels before Insertion/Deletion (the paper: 8)")
    p.add_argument("--step", type=COUNT, help="pixels per Insertion/Deletion step (default: 500 for 224x224, else 1 %%)")
    p.add_argument("--patch", type=COUNT, default=9, help="MoRF region size (default: %(default)s)")
    p.add_argument("--steps", type=COUNT, default=100, help="MoRF regions perturbed (default: %(default)s)")
    p.add_argument("--batch-size", type=COUNT, default=16, help="(default: %(default)s)")
    p.add_argument("--output-dir", default="evaluation", help="where results.csv and the plots go "
                                                               "(default: %(default)s)")
    p.add_argument("--commit-every", type=option(float, low=0.0), default=2.0, metavar="SECONDS",
                   help="write finished chunks to results.h5 at most this often (0: after every chunk; "
                        "default: %(default)s)")
    p.add_argument("--no-curves", action="store_true",
                   help="keep only the per-image numbers in results.h5, not the curves (and draw no plots)")
    add_dataset_arguments(p)

    p = commands.add_parser("reference", help="export golden reference vectors, or check a file against them",
                            description=REFERENCE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    q = actions.add_parser("export", help="write the reference suite to an HDF5 file")
    q.add_argument("output", metavar="OUT.h5")
    q.add_argument("--networks", nargs="+", choices=list(reference.NETWORKS), metavar="NAME",
                   help="only these networks: " + ", ".join(reference.NETWORKS) + " (default: all)")
    q = actions.add_parser("check", help="compare another implementation's file with the reference")
    q.add_argument("reference", metavar="REFERENCE.h5", help="a file written by 'lrpref reference export'")
    q.add_argument("theirs", metavar="THEIRS.h5", help="the file to check, in the same schema")
    q.add_argument("--tolerance", type=option(float, above=0), default=reference.TOLERANCE,
                   help="largest relative error accepted per dataset (default: %(default)g)")
    q.add_argument("--input-only", action="store_true", help="compare only the relevance of the input")
    q.add_argument("--allow-partial", action="store_true",
                   help="accept a file that answers only some of the reference's cases (the rest are counted as "
                        "skipped); without it every case must be answered")
    q.add_argument("--every-layer", action="store_true",
                   help="print every layer of every case (default: the worst layer of each case, and every layer "
                        "of a case that fails)")

    p = commands.add_parser("bench", help="time forward and LRP of VGG and ResNet", description=BENCH_HELP,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["vgg16", "resnet50"], choices=benchmark.MODELS, metavar="NAME",
                   help=f"some of {', '.join(benchmark.MODELS)} (default: %(default)s)")
    p.add_argument("--batches", nargs="+", type=COUNT, default=[1, 8], help="(default: %(default)s)")
    p.add_argument("--dtypes", nargs="+", default=["float32"], choices=DTYPES, help="(default: %(default)s)")
    p.add_argument("--backend", default="numpy", choices=BACKENDS, help="(default: %(default)s)")
    p.add_argument("--composite", default="epsilon_gamma_box", choices=sorted(composites.COMPOSITES), metavar="NAME",
                   help="(default: %(default)s)")
    p.add_argument("--size", type=option(int, low=32), default=224,
                   help="image height and width, at least 32 (default: %(default)s)")
    p.add_argument("--repeats", type=COUNT, default=3, help="timed runs per measurement (default: %(default)s)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory run")
    return parser


def add_rule_arguments(p):
    """The options shared by explain and evaluate: rule parameters, conventions, backend, dtype."""
    p.add_argument("--init", choices=INITS,
                   help="output relevance: the target's logit, 1, or its softmax probability (default: the "
                        "composite's, else logit)")
    p.add_argument("--convention", choices=sorted(conventions.CONVENTIONS),
                   help="what the numbers mean: " + ", ".join(sorted(conventions.CONVENTIONS))
                        + " (default: zennit; see tutorials/guides/conventions.md)")
    for name in RULE_PARAMS:
        p.add_argument(f"--{name}", type=option(float), help=f"rule parameter {name}")
    p.add_argument("--zero-bias", action="store_true", help="leave biases out of the rules (Zennit's zero_params)")
    p.add_argument("--maxpool", choices=composites.MAXPOOL,
                   help="max-pool relevance: winner-take-all with ties split, all to the first maximum (PyTorch's "
                        "gradient, as Zennit), as average pooling (the tutorial's), or as 2x2 average pooling "
                        "(the LRP-for-ResNet code's)")
    p.add_argument("--skip", choices=sorted(composites.SKIP),
                   help="otsuki2024: the split at residual additions (default: flows_skip, the paper's)")
    p.add_argument("--backend", choices=BACKENDS, help="numpy or cupy (default: $LRPREF_BACKEND, else numpy)")
    p.add_argument("--dtype", default="float32", choices=DTYPES, help="(default: %(default)s)")


def add_dataset_arguments(p):
    """Where the chunks of a dataset run: this process, a new local Dask cluster, or a running one."""
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=COUNT, help="run on a new local Dask cluster of this many processes "
                                                   "(needs pip install 'lrpref[dask]')")
    where.add_argument("--scheduler", metavar="ADDRESS", help="run on a running Dask cluster, e.g. tcp://host:8786")


def rule_params(args):
    """The composite parameters given on the command line."""
    params = {name: getattr(args, name) for name in RULE_PARAMS + ("maxpool", "convention", "skip")
              if getattr(args, name) is not None}
    if args.zero_bias:
        params["zero_bias"] = True
    return params


def model_file(args):
    """The file --model names: a shipped model's, or the path given."""
    return data.model_path(args.model) if args.model in data.MODELS else args.model


def load_model(args):
    path = model_file(args)
    return path, load(path, dtype=args.dtype, backend=args.backend)


def check_output(path, image=False):
    """Refuse, before any work, an output whose folder is missing, that is a folder, or (``image``) whose
    suffix names no image format."""
    path = Path(path)
    if not path.parent.is_dir():
        raise ValueError(f"cannot write {path}: the folder {path.parent} does not exist")
    if path.is_dir():
        raise ValueError(f"cannot write {path}: it is a folder")
    if image and path.suffix.lower() not in Image.registered_extensions():
        raise ValueError(f"cannot write {path}: expected an image file name (.png, .jpg, ...), got suffix "
                         f"{path.suffix or 'none'!r}")


def warn(messages):
    """Print :mod:`lrpref.mismatch`'s one-line warnings to stderr."""
    for message in messages:
        print(f"lrpref: warning: {message}", file=sys.stderr)


def run_explain(args):
    for option, value, methods in (("--clrp-convention", args.clrp_convention, ("clrp1", "clrp2")),
                                   ("--sglrp-mode", args.sglrp_mode, ("sglrp",)),
                                   ("--init", args.init, ("lrp",))):   # contrastive methods choose their own
        if value is not None and args.method not in methods:
            raise ValueError(f"{option} applies only with --method {' or '.join(methods)}, got --method {args.method}")
    if args.images:
        return run_explain_dataset(args)
    args.output = args.output or "heatmap.png"
    given = [f"--{name.replace('_', '-')}" for name in DATASET_ONLY if getattr(args, name) not in (None, False)]
    if given:
        raise ValueError(f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} only with --images "
                         "(dataset mode); without it one input is explained into --output")
    check_output(args.output, image=True)
    refuse_overwriting(args.output, [args.image, model_file(args)])
    path, net = load_model(args)
    spec = preprocessing.of(net)
    warnings = []
    if args.image:
        x, label, what = load_image(args.image, spec.name), None, args.image
        warnings += mismatch.preprocessing_warnings(net) + mismatch.image_file_warnings(args.image, spec)
    elif spec.name not in ("mnist", "mnist_pair"):
        raise ValueError(f"this model takes {spec.name} images: pass one with --image")
    else:
        xs, ys = data.mnist_sample() if spec.name == "mnist" else data.mnist_pairs(len(data.mnist_sample()[1]))
        if not 0 <= args.sample < len(xs):
            raise ValueError(f"--sample must be in 0..{len(xs) - 1}, got {args.sample}")
        label = " and ".join(str(v) for v in np.atleast_1d(ys[args.sample]))
        x, what = xs[args.sample:args.sample + 1], f"held-out {'digit' if spec.name == 'mnist' else 'pair'} {args.sample}"

    params = rule_params(args)
    if args.composite:
        name, why = args.composite, "as given"
    elif args.method == "lrp":
        name, why = composites.recommended(net)
    else:
        name, why = "clrp_paper", "the contrastive papers' rules"
    composite = composites.get(name, net=net, **params)
    warn(warnings + mismatch.range_warnings(net, x) + mismatch.sign_warnings(net, x, composite))
    if args.method == "lrp":
        e = explain(net, x, target=args.target, composite=composite, init=args.init)
        method, init = "LRP", args.init or composite.init or "logit"
        maps = [("LRP", e.relevance)]
    else:
        if args.method == "sglrp":
            result = contrastive.sglrp(net, x, args.target, args.sglrp_mode or "one_pass", composite)
        else:
            result = contrastive.clrp(net, x, args.target, int(args.method[-1]), args.clrp_convention or "paper",
                                      composite)
        e = result.primary
        method, init = CONTRASTIVE[result.method]
        maps = [(method, result.relevance)]
        if result.dual is not None:
            parts = ("positive part", "negative part") if args.method == "sglrp" else ("target", "dual")
            maps = [(parts[0], e.relevance), (parts[1], result.dual.relevance)] + maps

    scores = to_host(e.output)[0].ravel()
    target = int(e.target[0])
    classes = net.meta.get("classes") or []
    named = f"{target} ({classes[target]})" if target < len(classes) and classes[target] != str(target) else target
    start = to_host(e.init)[0].ravel()
    print(f"model      {path} ({args.dtype}, {net.xp.__name__})")
    print(f"input      {what}" + ("" if label is None else f" (label {label})"))
    print(f"method     {method}")
    print(f"composite  {composite.name} ({why})"
          + ("" if not params else " with " + ", ".join(f"{k}={v}" for k, v in params.items())))
    shown = range(len(scores)) if len(scores) <= 10 else scores.argsort()[::-1][:5]
    print(("scores     " if len(scores) <= 10 else "top 5      ") + "  ".join(f"[{k}] {scores[k]:.2f}" for k in shown))
    print(f"target     {named} (predicted {int(scores.argmax())}); output relevance {start[target]:.6g} at the "
          f"target, {float(start.sum()):.6g} in all ({init})")
    print(f"relevance  sum over the input {float(to_host(maps[-1][1]).sum()):.6g} ({maps[-1][0]})")
    if args.show_rules:
        print(composite.describe(net))
    if args.report:
        print(e.conservation().table(sample=0))

    relevance = [to_host(R)[0].sum(axis=0) for _, R in maps]
    bounds = [tutorial_scale(R) for R in relevance]
    captions = [f"{caption}, class {named}\n(colours +-{b:.2g})" for (caption, _), b in zip(maps, bounds)]
    captions = ["input" if label is None else f"input ({label})"] + captions
    save_panels(args.output, [spec.pixels(to_host(x[0]))] + [relevance_rgb(R, b) for R, b in zip(relevance, bounds)],
                captions=captions, zoom=max(1, 224 // relevance[0].shape[0]))
    print(f"wrote      {args.output}: " + "; ".join(c.replace("\n", " ") for c in captions))


def run_evaluate(args):
    if Path(args.output_dir).exists() and not Path(args.output_dir).is_dir():
        raise ValueError(f"--output-dir {args.output_dir} is a file; expected a folder (or a name to create)")
    inputs = [model_file(args), args.images, args.labels]
    for name in evaluation.OUTPUTS:
        refuse_overwriting(Path(args.output_dir) / name, inputs + ([Path(args.images) / name] if args.images else []))
    path, net = load_model(args)
    warn(mismatch.preprocessing_warnings(net) if args.images else [])
    dataset = datasets.open_dataset(args.images, preprocessing.of(net).name, args.labels, args.limit)
    job = dataset_job(args, path, args.composite, curves=not args.no_curves, step=args.step, quantize=args.quantize,
                      patch=args.patch, steps=args.steps, batch_size=args.batch_size)
    with runs.dask_client(args.workers, args.scheduler) as client:
        result = runs.evaluate_dataset(job, dataset, args.output_dir, args.batch_size, client,
                                       progress=sys.stderr.isatty(), commit_every=args.commit_every)
    summary = result["summary"]
    print(f"model      {path}\nimages     {summary['images']} ({args.images or 'shipped MNIST digits'}); "
          f"{summary['computed']} in this run, {summary['images_per_s']:.2f} images/s")
    print(f"composite  {args.composite}")
    for key in runs.METRICS:
        if key in summary:
            print(f"{key:<14} {summary[key][0]:.4f} +- {summary[key][1]:.4f} (95 % confidence interval)")
    print(f"wrote      {Path(args.output_dir) / 'results.h5'}, results.csv" + ("" if args.no_curves else
                                                                                " and the curves as PNG"))


def run_explain_dataset(args):
    """``lrpref explain --images``: one heatmap per image of a dataset, resumable, in-process or on Dask."""
    if args.method != "lrp":
        raise ValueError(f"--images explains with plain LRP; --method {args.method} takes one --image")
    single = [option for option, given in (("--output", args.output is not None), ("--show-rules", args.show_rules),
                                           ("--report", args.report)) if given]
    if single:
        raise ValueError(f"{', '.join(single)} {'applies' if len(single) == 1 else 'apply'} to one input; with "
                         "--images the heatmaps go to --output-dir")
    if args.output_dir is None:
        raise ValueError("--images needs --output-dir, the folder for the heatmaps")
    path, net = load_model(args)
    warn(mismatch.preprocessing_warnings(net))
    dataset = datasets.open_dataset(args.images, preprocessing.of(net).name, limit=args.limit)
    job = dataset_job(args, path, args.composite or "tutorial_mnist", args.target, relevance=args.save_relevance)
    with runs.dask_client(args.workers, args.scheduler) as client:
        count = runs.explain_dataset(job, dataset, args.output_dir, args.batch_size or CHUNK, client,
                                     progress=sys.stderr.isatty())
    print(f"model      {path}\nimages     {len(dataset)} ({args.images}); {count} explained in this run")
    saved = " and its relevance (.npy)" if args.save_relevance else ""
    print(f"wrote      {args.output_dir}: one heatmap per image{saved}")


def dataset_job(args, path, composite, target=None, **settings):
    """The :class:`lrpref.runs.Job` of the command line's model, composite and rule options."""
    params = {**rule_params(args), **({"init": args.init} if args.init else {}),
              **({} if target is None else {"target": target})}
    return runs.Job(str(Path(path).resolve()), composite, args.dtype, args.backend, tuple(sorted(params.items())),
                    **settings)


def run_reference(args):
    if args.action == "export":
        check_output(args.output)
        count = reference.export(args.output, args.networks, progress=sys.stderr.isatty())
        print(f"wrote      {args.output}: {count} cases, float64 (schema: tutorials/guides/reference_vectors.md)")
        return 0
    report = reference.check(args.reference, args.theirs, args.tolerance, args.input_only)
    if report.skipped and not args.allow_partial:
        raise ValueError(f"{args.theirs} answers {report.answered} of the reference's {report.cases} cases; "
                         "pass --allow-partial to check only those")
    print(report.table(args.every_layer))
    return 0 if report.ok else 1


def run_bench(args):
    xp = resolve(args.backend)
    print(f"# {benchmark.machine(xp)}; lrpref {__version__}, composite {args.composite}")
    rows = benchmark.run(args.models, args.batches, args.dtypes, args.backend, args.composite, args.repeats,
                         args.size, memory=not args.no_memory, progress=sys.stderr.isatty())
    print(benchmark.table(rows))


# What a user's file, option or machine can cause (a missing or unreadable file, a wrong format, a value out of
# range, too little memory). Each message names what was expected and what came.
USER_ERRORS = (ValueError, TypeError, OSError, KeyError, IndexError, RuntimeError, FloatingPointError, MemoryError,
               Image.DecompressionBombError)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    run = {"explain": run_explain, "evaluate": run_evaluate, "reference": run_reference, "bench": run_bench}[args.command]
    try:
        status = run(args) or 0
        sys.stdout.flush()   # here, so that a closed pipe is noticed inside the try, not at exit
        return status
    except BrokenPipeError:   # the reader left early (`lrpref ... | head`): stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # so Python's flush at exit succeeds
        return 1
    except USER_ERRORS as err:   # a bad file, option or value: one line, no traceback
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"lrpref: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
