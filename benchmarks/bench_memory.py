"""Peak memory of explaining a large batch: one pass against lrpref's chunked explain.

    python benchmarks/bench_memory.py [--count 10000] [--model mnist_cnn]

Each setting runs in a fresh Python process, which reports its peak resident memory (``ru_maxrss``: the whole
process, Python, NumPy and the data included) and its time. The digits are the 2,000 shipped held-out MNIST
digits, repeated to ``--count``. Settings:

- ``one pass``: ``explain(..., batch_size=count)``, every tensor of the whole batch at once (lrpref before
  chunking);
- ``chunked``: ``explain(...)``, the default: chunks sized from the buffer limit, every tensor's relevance kept;
- ``chunked, keep="input"``: chunks, and only the input's relevance kept.

The chunked results are checked bit-identical to the one-pass result (on the first 500 digits, in the parent).
"""
import argparse
import json
import platform
import subprocess
import sys

CHILD = """
import json, resource, sys, time
import numpy as np
import lrpref
from lrpref import data
count, model, batch_size, keep = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
net = lrpref.load(data.model_path(model))
x, _ = data.mnist_sample(dtype="float32")
x = np.concatenate([x] * (-(-count // len(x))))[:count]
start = time.perf_counter()
e = lrpref.explain(net, x, composite="epsilon_gamma_box", batch_size=None if batch_size == "auto" else int(batch_size),
                   keep=keep)
seconds = time.perf_counter() - start
print(json.dumps({"peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "seconds": seconds,
                  "checksum": float(np.abs(e.relevance).sum())}))
"""


def run(count, model, batch_size, keep):
    result = subprocess.run([sys.executable, "-c", CHILD, str(count), model, batch_size, keep], capture_output=True,
                            text=True, check=True)
    return json.loads(result.stdout)


def check_identical(model):
    import numpy as np

    import lrpref
    from lrpref import data
    net = lrpref.load(data.model_path(model))
    x, _ = data.mnist_sample(dtype="float32")
    one = lrpref.explain(net, x[:500], batch_size=500)
    for batch_size in (1, 37, None):
        chunked = lrpref.explain(net, x[:500], batch_size=batch_size)
        assert np.array_equal(one.relevance, chunked.relevance), batch_size


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--model", default="mnist_cnn")
    args = parser.parse_args()
    check_identical(args.model)
    print(f"# {platform.processor() or platform.machine()}, {platform.system()}, Python {platform.python_version()}; "
          f"{args.count} digits, {args.model}, epsilon_gamma_box, float32")
    print(f"{'setting':<24} {'peak MiB':>10} {'seconds':>8}")
    for name, batch_size, keep in (("one pass", str(args.count), "all"), ("chunked", "auto", "all"),
                                   ("chunked, keep='input'", "auto", "input")):
        result = run(args.count, args.model, batch_size, keep)
        print(f"{name:<24} {result['peak_mib']:>10.0f} {result['seconds']:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
