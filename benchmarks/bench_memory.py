"""Peak memory of explaining a large batch: one pass against lrpref's chunked explain.

    python benchmarks/bench_memory.py [--count 10000] [--model mnist_cnn]
    python benchmarks/bench_memory.py --count 64 --model vgg16

Each setting runs in a fresh Python process, which reports its peak resident memory (``ru_maxrss``: the whole
process, Python, NumPy and the data included) and its time. For a shipped MNIST model the inputs are the 2,000
shipped held-out digits, repeated to ``--count``; for ``vgg16`` or ``resnet50`` (random weights in torchvision's
layout, see ``lrpref.models``) they are ``--count`` random 224 x 224 images drawn from a standard normal, as
normalized ImageNet images roughly are. Settings:

- ``one pass``: ``explain(..., batch_size=count)``, every tensor of the whole batch at once (lrpref before
  chunking);
- ``chunked``: ``explain(...)``, the default: chunks sized from the buffer limit, every tensor's relevance kept;
- ``chunked, keep="input"``: chunks, and only the input's relevance kept.

Before timing, the parent checks that chunked results equal the one-pass result bit for bit (on 500 digits,
or on 3 images for the ImageNet networks).
"""
import argparse
import json
import platform
import subprocess
import sys

IMAGENET = ("vgg16", "resnet50")

INPUTS = """
import numpy as np
import lrpref
from lrpref import data


def network_and_inputs(model, count):
    if model in ("vgg16", "resnet50"):
        net = getattr(lrpref.models, model)()
        return net, np.random.default_rng(0).standard_normal((count, 3, 224, 224)).astype("float32")
    x, _ = data.mnist_sample(dtype="float32")
    return lrpref.load(data.model_path(model)), np.concatenate([x] * (-(-count // len(x))))[:count]
"""

CHILD = INPUTS + """
import json, resource, sys, time
count, model, batch_size, keep = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
net, x = network_and_inputs(model, count)
start = time.perf_counter()
e = lrpref.explain(net, x, composite="epsilon_gamma_box", batch_size=None if batch_size == "auto" else int(batch_size),
                   keep=keep)
seconds = time.perf_counter() - start
print(json.dumps({"peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "seconds": seconds}))
"""


def run(count, model, batch_size, keep):
    result = subprocess.run([sys.executable, "-c", CHILD, str(count), model, batch_size, keep], capture_output=True,
                            text=True, check=True)
    return json.loads(result.stdout)


def check_identical(model):
    namespace = {}
    exec(INPUTS, namespace)
    lrpref, np = namespace["lrpref"], namespace["np"]
    count, sizes = (3, (1, 2)) if model in IMAGENET else (500, (1, 37, None))
    net, x = namespace["network_and_inputs"](model, count)
    one = lrpref.explain(net, x, batch_size=count)
    for batch_size in sizes:
        chunked = lrpref.explain(net, x, batch_size=batch_size)
        assert np.array_equal(one.relevance, chunked.relevance), batch_size


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--model", default="mnist_cnn", help="a shipped MNIST model, or vgg16 or resnet50")
    parser.add_argument("--skip-one-pass", action="store_true", help="leave out the one-pass setting")
    args = parser.parse_args()
    check_identical(args.model)
    what = "random 224 x 224 images" if args.model in IMAGENET else "digits"
    print(f"# {platform.processor() or platform.machine()}, {platform.system()}, Python {platform.python_version()}; "
          f"{args.count} {what}, {args.model}, epsilon_gamma_box, float32")
    print(f"{'setting':<24} {'peak MiB':>10} {'seconds':>8}")
    settings = (("one pass", str(args.count), "all"), ("chunked", "auto", "all"), ("chunked, keep='input'", "auto", "input"))
    for name, batch_size, keep in settings[args.skip_one_pass:]:
        result = run(args.count, args.model, batch_size, keep)
        print(f"{name:<24} {result['peak_mib']:>10.0f} {result['seconds']:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
