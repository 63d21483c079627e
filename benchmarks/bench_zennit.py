"""lrpref against Zennit on the same weights and inputs: VGG and ResNet, forward and LRP, one table.

    python benchmarks/bench_zennit.py [--models vgg16 resnet50] [--batches 1 8] [--dtypes float32 float64]
                                      [--threads N] [--repeats 3] [--size 224] [--backend numpy|cupy]

Both libraries explain the same random 224 x 224 inputs (``--size``) on the same random weights (lrpref's
torchvision layout, loaded into PyTorch by module name) with EpsilonGammaBox: Zennit with its canonizers
(BatchNorm merged, ResNet additions as its Sum module), lrpref with ``epsilon_gamma_box`` and
``maxpool="gradient"``, so that both compute the same numbers (checked: the largest difference, relative to
the largest relevance, is printed). Each repeat times lrpref's forward pass, lrpref's explanation and
Zennit's in turn, with the same thread count for NumPy's BLAS and for PyTorch (``--threads``, default all
cores); every time is the median of the repeats after a warm-up. With ``--backend cupy`` lrpref runs on CuPy
and Zennit on CUDA.

Needs PyTorch and Zennit (the test extra installs both). Zennit imports torchvision; where the installed one
does not import (the registry's next to the CPU build of PyTorch), the tests' stand-in ``tests/shims`` is used,
which hands Zennit's ResNet canonizer the export script's residual blocks.
"""
import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def arguments():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["vgg16", "resnet50"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--dtypes", nargs="+", default=["float32"])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=224, help="image height and width (default: 224)")
    parser.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory run")
    return parser.parse_args()


ARGS = arguments()
for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):   # before NumPy is imported
    os.environ[variable] = str(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(ROOT / "weights"))
try:
    import torchvision  # noqa: F401
except Exception:
    for name in [m for m in sys.modules if m.split(".")[0] == "torchvision"]:
        del sys.modules[name]
    sys.path.insert(0, str(ROOT / "tests" / "shims"))

import export_torchvision  # noqa: E402
from zennit.attribution import Gradient  # noqa: E402
from zennit.canonizers import SequentialMergeBatchNorm  # noqa: E402
from zennit.composites import EpsilonGammaBox  # noqa: E402
from zennit.torchvision import ResNetCanonizer  # noqa: E402

import lrpref  # noqa: E402
from lrpref import backend, benchmark  # noqa: E402


def zennit_model(model, net, device):
    """The PyTorch model with the lrpref network's arrays, by torchvision's module names."""
    torch_model = export_torchvision.torch_model(model).to(device=device, dtype=getattr(torch, str(net.dtype)))
    state = {f"{node.name}.{key}": torch.from_numpy(backend.to_host(array))
             for node in net.nodes for key, array in node.layer.arrays().items()}
    wanted = torch_model.state_dict()
    missing = [k for k in wanted if k not in state and not k.endswith("num_batches_tracked")]
    assert not missing, f"arrays missing for {missing}"
    torch_model.load_state_dict({k: v for k, v in state.items() if k in wanted}, strict=False)
    return torch_model.eval()


def zennit_peer(device, agreement):
    def peer(model, net, x, composite):
        torch_model = zennit_model(model, net, device)
        low, high = (np.broadcast_to(np.asarray(b, dtype=net.dtype).reshape(1, -1, 1, 1), x.shape).copy()
                     for b in net.input_bounds)
        canonizers = [ResNetCanonizer()] if model.startswith("resnet") else \
            [SequentialMergeBatchNorm()] if model.endswith("_bn") else []
        zennit = EpsilonGammaBox(low=torch.as_tensor(low, device=device), high=torch.as_tensor(high, device=device),
                                 canonizers=canonizers)
        tx = torch.as_tensor(x, device=device)

        def run():
            with Gradient(torch_model, zennit) as attributor:
                output, relevance = attributor(tx.clone().requires_grad_(True),
                                               lambda out: out * torch.eye(out.shape[1], dtype=out.dtype,
                                                                           device=device)[out.argmax(1)])
            if device == "cuda":
                torch.cuda.synchronize()
            return relevance

        ours = backend.to_host(lrpref.explain(net, x, composite=composite, maxpool="gradient").relevance)
        theirs = run().detach().cpu().numpy()
        agreement[(model, x.shape[0], str(net.dtype))] = float(np.abs(ours - theirs).max() / np.abs(theirs).max())
        return run
    return peer


def main():
    torch.set_num_threads(ARGS.threads)
    device = "cuda" if ARGS.backend == "cupy" else "cpu"
    xp = backend.resolve(ARGS.backend)
    agreement = {}
    print(f"# {benchmark.machine(xp, ARGS.threads)}; PyTorch {torch.__version__} ({torch.get_num_threads()} "
          f"threads); lrpref {lrpref.__version__}; EpsilonGammaBox / epsilon_gamma_box, maxpool='gradient'")
    rows = benchmark.run(ARGS.models, ARGS.batches, ARGS.dtypes, ARGS.backend, "epsilon_gamma_box", ARGS.repeats,
                         ARGS.size, memory=not ARGS.no_memory, peer=zennit_peer(device, agreement),
                         progress=sys.stderr.isatty(), maxpool="gradient")
    print(benchmark.table(rows))
    print("largest relative difference of the input relevance, lrpref vs Zennit: " +
          ", ".join(f"{m} b{b} {d} {e:.1e}" for (m, b, d), e in agreement.items()))


if __name__ == "__main__":
    main()
