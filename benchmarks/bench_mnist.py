"""Time the forward pass and LRP of the shipped MNIST models and print a table.

    python benchmarks/bench_mnist.py [--batch 1 64 256] [--repeat 20] [--backend numpy]

"LRP" is a whole ``lrpref.explain`` call (forward pass, output relevance, backward pass); "LRP/fwd" is its
time as a multiple of the forward pass alone. Each time is the median of ``--repeat`` runs after one warm-up.
"""
import argparse
import os
import time

import numpy as np

import lrpref
from lrpref import backend, data

COMPOSITES = ("epsilon_gamma_box", "epsilon_plus", "tutorial_mnist")


def median_ms(fn, repeat, xp):
    fn()
    backend.synchronize(xp)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        backend.synchronize(xp)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 64, 256])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--backend", choices=backend.BACKENDS, default="numpy")
    args = parser.parse_args()

    blas = np.__config__.CONFIG["Build Dependencies"]["blas"]["name"] if hasattr(np.__config__, "CONFIG") else "?"
    print(f"# {backend.device_name(np)}, {os.cpu_count()} cores, numpy {np.__version__} ({blas}), lrpref {lrpref.__version__}, "
          f"backend {args.backend}")
    print(f"{'model':<15} {'batch':>5} {'dtype':<8} {'composite':<18} {'forward ms':>10} {'LRP ms':>9} "
          f"{'LRP/fwd':>7} {'samples/s':>10}")
    inputs = {"mnist_mlp": data.mnist_sample()[0], "mnist_cnn": data.mnist_sample()[0],
              "mnist_pairs_cnn": data.mnist_pairs(max(args.batch))[0]}
    for name in data.MODELS:
        for dtype in ("float32", "float64"):
            net = lrpref.load(data.model_path(name), dtype=dtype, backend=args.backend)
            for batch in args.batch:
                x = backend.asarray(inputs[name][:batch], net.xp, net.dtype)
                forward = median_ms(lambda: net.forward(x), args.repeat, net.xp)
                for composite in COMPOSITES:
                    lrp = median_ms(lambda: lrpref.explain(net, x, composite=composite), args.repeat, net.xp)
                    print(f"{name:<15} {batch:>5} {dtype:<8} {composite:<18} {forward:>10.3f} {lrp:>9.3f} "
                          f"{lrp / forward:>7.1f} {1000 * batch / lrp:>10.0f}")


if __name__ == "__main__":
    main()
