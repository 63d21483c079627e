"""The ``lrpref`` command line."""
import argparse
import sys

from . import __version__, composites, conventions, data, preprocessing
from .backend import BACKENDS, to_host
from .explain import INITS, explain
from .heatmap import relevance_rgb, save_panels
from .io import DTYPES, load
from .preprocessing import load_image

RULE_PARAMS = ("epsilon", "gamma", "alpha", "beta", "low", "high", "stabilizer")

EXPLAIN_HELP = """\
Explain one input with LRP and write a PNG: the input and its relevance heatmap side by side (red: evidence
for the class, blue: against; the tutorial's colours and scale).

With no arguments it explains a shipped held-out MNIST digit with the shipped 784-300-100-10 network and
the tutorial's rules for it (composite tutorial_mnist; the Python API defaults to epsilon_gamma_box).
Rule parameters use Zennit's names and only apply to composites that take them (see README, "Composites").
"""


def build_parser():
    parser = argparse.ArgumentParser(prog="lrpref", description="Layer-wise Relevance Propagation, exactly.")
    parser.add_argument("--version", action="version", version=f"lrpref {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = commands.add_parser("explain", help="explain one input and write a heatmap PNG", description=EXPLAIN_HELP,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=data.DEFAULT_MODEL,
                   help=f"a shipped model ({', '.join(data.MODELS)}), an lrpref HDF5 file or a Keras .h5 model "
                        "(default: %(default)s)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--image", help="an image file (PNG, JPEG, ...), preprocessed as the model records")
    source.add_argument("--sample", type=int, default=0,
                        help="index of a shipped held-out MNIST digit, 0..1999 (default: %(default)s)")
    p.add_argument("--target", type=int, help="the class to explain (default: the predicted class)")
    p.add_argument("--composite", default="tutorial_mnist", choices=sorted(composites.COMPOSITES),
                   metavar="NAME", help="rules per layer: " + ", ".join(sorted(composites.COMPOSITES))
                   + " (default: %(default)s)")
    p.add_argument("--init", default="logit", choices=INITS,
                   help="output relevance: the target's logit, 1, or its softmax probability (default: %(default)s)")
    p.add_argument("--convention", choices=sorted(conventions.CONVENTIONS),
                   help="what the numbers mean: zennit (default) or tutorial (see README, Conventions)")
    for name in RULE_PARAMS:
        p.add_argument(f"--{name}", type=float, help=f"rule parameter {name}")
    p.add_argument("--zero-bias", action="store_true", help="leave biases out of the rules (Zennit's zero_params)")
    p.add_argument("--maxpool", choices=composites.MAXPOOL,
                   help="max-pool relevance: winner-take-all with ties split, all to the first maximum (PyTorch's "
                        "gradient, as Zennit), or as average pooling (the tutorial's)")
    p.add_argument("--output", default="heatmap.png", help="the PNG to write (default: %(default)s)")
    p.add_argument("--backend", choices=BACKENDS, help="numpy or cupy (default: $LRPREF_BACKEND, else numpy)")
    p.add_argument("--dtype", default="float32", choices=DTYPES, help="(default: %(default)s)")
    p.add_argument("--show-rules", action="store_true", help="print the rule each layer gets")
    p.add_argument("--report", action="store_true", help="print the conservation report")
    return parser


def run_explain(args):
    path = data.model_path(args.model) if args.model in data.MODELS else args.model
    net = load(path, dtype=args.dtype, backend=args.backend)
    spec = preprocessing.get(net.meta.get("preprocessing", "mnist"))
    if args.image:
        x, label, what = load_image(args.image, spec.name), None, args.image
    elif spec.name != "mnist":
        raise ValueError(f"this model takes {spec.name} images: pass one with --image")
    else:
        xs, ys = data.mnist_sample()
        if not 0 <= args.sample < len(xs):
            raise ValueError(f"--sample must be in 0..{len(xs) - 1}, got {args.sample}")
        x, label, what = xs[args.sample:args.sample + 1], int(ys[args.sample]), f"held-out digit {args.sample}"

    params = {name: getattr(args, name) for name in RULE_PARAMS + ("maxpool", "convention")
              if getattr(args, name) is not None}
    if args.zero_bias:
        params["zero_bias"] = True
    composite = composites.get(args.composite, net=net, **params)
    e = explain(net, x, target=args.target, composite=composite, init=args.init)

    scores = to_host(e.output)[0].ravel()
    target = int(e.target[0])
    print(f"model      {path} ({args.dtype}, {net.xp.__name__})")
    print(f"input      {what}" + ("" if label is None else f" (label {label})"))
    print(f"composite  {composite.name}" + ("" if not params else " with " + ", ".join(f"{k}={v}" for k, v in params.items())))
    shown = range(len(scores)) if len(scores) <= 10 else scores.argsort()[::-1][:5]
    print(("scores     " if len(scores) <= 10 else "top 5      ") + "  ".join(f"[{k}] {scores[k]:.2f}" for k in shown))
    print(f"target     {target} (predicted {int(scores.argmax())}); output relevance {float(to_host(e.init).sum()):.6g}"
          f" ({args.init})")
    print(f"relevance  sum over the input {float(to_host(e.relevance).sum()):.6g}")
    if args.show_rules:
        print(composite.describe(net))
    if args.report:
        print(e.conservation().table(sample=0))

    relevance = to_host(e.relevance)[0].sum(axis=0)
    save_panels(args.output, [spec.pixels(to_host(x[0])), relevance_rgb(relevance)],
                captions=["input" if label is None else f"input ({label})", f"class {target}: {composite.name}"],
                zoom=max(1, 224 // relevance.shape[0]))
    print(f"wrote      {args.output}")


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        run_explain(args)
    except (ValueError, FileNotFoundError, RuntimeError, FloatingPointError) as err:
        print(f"lrpref: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
