"""The GPU check, in one command: CuPy against NumPy, then the benchmark.

    python benchmarks/gpu_check.py

1. Agreement: every case of the golden-vector suite (``lrpref reference``) and every composite on the shipped
   models, explained in float64 on NumPy and on CuPy. The two BLAS libraries sum in different orders, so
   discrete choices (pre-activation signs, max-pool winners over exactly tied windows) can differ; samples
   are compared where both backends made the same choices, and must agree to 1e-12 relative. The table lists
   per network the cases, the samples compared and the worst relative error.
2. Benchmark: VGG16 and ResNet50 at 224 x 224, batch 1, 8 and 32, float32, on CuPy. Where PyTorch sees CUDA
   (and Zennit imports), against Zennit on the same GPU (``benchmarks/bench_zennit.py --backend cupy``);
   otherwise lrpref alone (``lrpref bench --backend cupy``). Paste the tables into ``benchmarks/RESULTS.md``.

Needs a CUDA GPU with CuPy (``pip install "lrpref[gpu]"``; the README names the wheel per CUDA version).
``--standin`` runs part 1 on the tests' CPU stand-in for CuPy (tests/standin) and skips part 2: for
development without a GPU (``tests/test_cupy.py`` runs it so, on two networks: ``--networks``). Exit status 1 if any
case disagrees.
"""
import argparse
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))   # precision.py: the discrete-choice comparison of the tests


def arguments():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--standin", action="store_true", help="part 1 on the CPU stand-in for CuPy, no part 2")
    parser.add_argument("--tolerance", type=float, default=1e-12, help="float64 agreement (default: %(default)g)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per benchmark (default: %(default)s)")
    parser.add_argument("--networks", nargs="+", metavar="NAME",
                        help="part 1 on these golden-suite networks and shipped models only (default: all)")
    args = parser.parse_args()
    from lrpref import data, reference
    unknown = set(args.networks or ()) - set(reference.NETWORKS) - set(data.MODELS)
    if unknown:
        parser.error(f"unknown network(s) {sorted(unknown)}; choose from {sorted(reference.NETWORKS)} and "
                     f"{sorted(data.MODELS)}")
    return args


def agreement(cp, tolerance, networks=None):
    """Part 1; returns the number of disagreeing cases."""
    import precision
    from lrpref import Network, composites, data, explain, load, reference

    def compare(name, host, device, x, runs):
        same = precision.same_choices(host, x, device, cp.asarray(x))
        worst, bad = 0.0, []
        for case, run in runs:
            try:
                expected = run(host, x)
            except ValueError:   # a composite that does not apply to this network
                continue
            error = precision.per_sample_error(run(device, cp.asarray(x)), expected)[same].max(initial=0.0)
            worst = max(worst, error)
            if not error <= tolerance:
                bad.append(f"{case} ({error:.1e})")
        print(f"{name:<26} {len(runs):>6} {int(same.sum()):>4}/{len(x):<4} {worst:>12.1e}  {', '.join(bad) or 'ok'}")
        return len(bad)

    print(f"{'network':<26} {'cases':>6} {'samples':>9} {'worst error':>12}  disagreeing cases")
    failures = 0
    for network, builder in reference.NETWORKS.items():
        if networks and network not in networks:
            continue
        host, x, _ = builder(np.random.default_rng(sorted(reference.NETWORKS).index(network)))
        host = host.astype("float64").to("numpy")
        device = Network(host.nodes, host.input_shape, host.meta).to("cupy")
        runs = [(case.name, lambda net, inputs, case=case: case.run(net, inputs).relevance)
                for case in reference.cases(network, host)]
        failures += compare(f"reference/{network}", host, device, x, runs)
    for name in data.MODELS:
        if networks and name not in networks:
            continue
        host = load(data.model_path(name), dtype="float64", backend="numpy")
        device = load(data.model_path(name), dtype="float64", backend="cupy")
        x = data.mnist_pairs(16)[0] if name == "mnist_pairs_cnn" else data.mnist_sample()[0][:16]
        runs = [(c, lambda net, inputs, c=c: explain(net, inputs, composite=c).relevance)
                for c in sorted(composites.COMPOSITES)]
        failures += compare(name, host, device, x, runs)
    return failures


def benchmark(repeats):
    """Part 2: against Zennit on CUDA where PyTorch has it, else lrpref alone."""
    common = ["--models", "vgg16", "resnet50", "--batches", "1", "8", "32", "--repeats", str(repeats)]
    torch_cuda = importlib.util.find_spec("torch") is not None and subprocess.run(
        [sys.executable, "-c", "import torch, zennit; assert torch.cuda.is_available()"], capture_output=True
    ).returncode == 0
    if torch_cuda:
        command = [sys.executable, str(HERE / "bench_zennit.py"), "--backend", "cupy"] + common
    else:
        print("PyTorch with CUDA (or Zennit) is not available here: lrpref alone")
        command = [sys.executable, "-m", "lrpref.cli", "bench", "--backend", "cupy"] + common
    print("$ " + " ".join(command[1:]), flush=True)
    return subprocess.run(command).returncode


def main():
    args = arguments()
    if args.standin:
        sys.path.insert(0, str(HERE.parent / "tests" / "standin"))
    from lrpref import backend
    cp = backend.resolve("cupy")   # fails here, with the reason, without CuPy and a CUDA device
    print(f"# {backend.device_name(cp)}; CuPy {cp.__version__}; NumPy {np.__version__}")
    start = time.perf_counter()
    failures = agreement(cp, args.tolerance, args.networks)
    print(f"part 1: {failures} disagreeing case(s), {time.perf_counter() - start:.0f} s", flush=True)
    status = 0 if args.standin else benchmark(args.repeats)
    print(f"total {time.perf_counter() - start:.0f} s")
    return 1 if failures or status else 0


if __name__ == "__main__":
    sys.exit(main())
