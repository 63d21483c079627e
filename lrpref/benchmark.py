"""Timing LRP on VGG and ResNet: the lrpref half of the benchmarks (``lrpref bench``; no PyTorch needed).

For every model, batch size and dtype it times the forward pass and one whole :func:`lrpref.explain` call
(forward, output relevance, backward) on random weights and random 224 x 224 inputs, and reports:

- ``LRP/fwd``: the explanation's time as a multiple of the forward pass. The physical floor is about three
  matrix products per convolution (the forward, the modified forward and the transpose), so about 3;
- ``fwd GFLOP/s``: the forward pass's multiply-adds (x 2) per second, to set against the machine's matrix
  product rate (``matmul_peak``, a 2048 x 2048 product);
- ``LRP GFLOP/s``: three forward passes' worth of products per second of LRP, the rate at which the floor
  would be done;
- ``peak MB``: the most memory the explanation held at once beyond the network and the input (NumPy: as
  ``tracemalloc`` sees NumPy's buffers; CuPy: its memory pool), measured in a separate run.

A ``peer`` (``benchmarks/bench_zennit.py`` passes Zennit) is timed in alternation with lrpref, each repeat
running forward, lrpref and peer in turn; every time is the median of the repeats after one warm-up.
"""
import time
import tracemalloc
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from . import backend, layers, models
from .explain import explain

MODELS = ("vgg16", "vgg16_bn", "resnet18", "resnet50")


@dataclass
class Row:
    """One measured configuration; times in milliseconds, ``gflop`` the forward pass's work."""

    model: str
    batch: int
    dtype: str
    backend: str
    forward_ms: float
    lrp_ms: float
    gflop: float
    peak_mb: float = None
    peer_ms: float = None

    @property
    def lrp_per_forward(self):
        return self.lrp_ms / self.forward_ms

    @property
    def forward_gflops(self):
        return self.gflop / self.forward_ms * 1e3

    @property
    def lrp_gflops(self):
        return 3 * self.gflop / self.lrp_ms * 1e3

    @property
    def peer_ratio(self):
        return None if self.peer_ms is None else self.lrp_ms / self.peer_ms


def forward_gflop(net, x):
    """Multiply-adds x 2 of the forward pass's Dense and Conv2d layers, in GFLOP."""
    acts = net.activations(x[:1])
    total = 0
    for node in net.nodes:
        layer = node.layer
        if isinstance(layer, (layers.Dense, layers.Conv2d)):
            total += acts[node.name].size * (layer.weight.size // layer.weight.shape[0])
    return 2 * total * x.shape[0] / 1e9


def matmul_peak(dtype="float32", xp=np, size=2048, repeats=10):
    """The machine's matrix-product rate in GFLOP/s: the best of ``repeats`` products of two size x size
    matrices."""
    a = xp.asarray(np.random.default_rng(0).random((size, size)), dtype=dtype)
    a @ a
    backend.synchronize(xp)
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ a
        backend.synchronize(xp)
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e9


def peak_memory_mb(fn, xp):
    """The most memory ``fn()`` holds at once beyond what existed before, in MB."""
    if xp is np:
        tracemalloc.start()
        try:
            fn()
            return tracemalloc.get_traced_memory()[1] / 1e6
        finally:
            tracemalloc.stop()
    before = xp.get_default_memory_pool().used_bytes()
    backend.device_memory(xp, reset=True)
    fn()
    backend.synchronize(xp)
    return (backend.device_memory(xp) - before) / 1e6


def _seconds(fn, xp):
    start = time.perf_counter()
    fn()
    backend.synchronize(xp)
    return time.perf_counter() - start


def run(model_names=("vgg16", "resnet50"), batches=(1, 8), dtypes=("float32",), backend_name="numpy",
        composite="epsilon_gamma_box", repeats=3, size=224, memory=True, peer=None, progress=True, **rule_params):
    """Measure every configuration; returns a list of :class:`Row`.

    ``peer(model, net, x, composite)``, where given, returns a function that runs the peer library's
    explanation of ``x`` on the same weights; it is timed in alternation with lrpref.
    """
    unknown = sorted(set(model_names) - set(MODELS))
    if unknown:
        raise ValueError(f"unknown benchmark model(s) {unknown}: expected some of {list(MODELS)}")
    xp = backend.resolve(backend_name)   # a request for CuPy without CUDA fails here, before any work
    configs = [(m, b, d) for m in model_names for d in dtypes for b in batches]
    rows = []
    for model, batch, dtype in tqdm(configs, desc="benchmark", unit="config", disable=not progress):
        net = models.build(model, dtype=dtype, backend=backend_name)
        x = backend.asarray(np.random.default_rng(1).normal(size=(batch, 3, size, size)), xp, dtype)
        calls = {"forward": lambda: net.forward(x),
                 "lrp": lambda: explain(net, x, composite=composite, **rule_params)}
        if peer is not None:
            calls["peer"] = peer(model, net, x, composite)
        times = {name: [] for name in calls}
        for name, fn in calls.items():   # warm-up
            _seconds(fn, xp)
        for _ in range(repeats):
            for name, fn in calls.items():
                times[name].append(_seconds(fn, xp))
        ms = {name: 1e3 * float(np.median(t)) for name, t in times.items()}
        rows.append(Row(model, batch, dtype, backend_name, ms["forward"], ms["lrp"], forward_gflop(net, x),
                        peak_memory_mb(calls["lrp"], xp) if memory else None, ms.get("peer")))
    return rows


def machine(xp=np, threads=None):
    """One line naming the device, its cores or GPU, the BLAS and the matrix-product rates."""
    if xp is np:
        import os
        config = getattr(np.__config__, "CONFIG", {})
        blas = config.get("Build Dependencies", {}).get("blas", {})
        blas = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
        where = f"{backend.device_name(xp)}, {os.cpu_count()} cores" + (f", {threads} threads" if threads else "") + \
            f", NumPy {np.__version__} ({blas})"
    else:
        where = f"{backend.device_name(xp)}, CuPy {xp.__version__}"
    peaks = ", ".join(f"{d} {matmul_peak(d, xp):.0f}" for d in ("float32", "float64"))
    return f"{where}; matrix product GFLOP/s: {peaks}"


def table(rows, peer_name="Zennit"):
    """The rows as a text table."""
    head = (f"{'model':<10} {'batch':>5} {'dtype':<8} {'backend':<7} {'fwd ms':>9} {'LRP ms':>9} {'LRP/fwd':>7} "
            f"{'fwd GFLOP/s':>11} {'LRP GFLOP/s':>11} {'peak MB':>8}")
    if any(row.peer_ms is not None for row in rows):
        head += f" {peer_name + ' ms':>10} {'ratio':>6}"
    lines = [head]
    for r in rows:
        line = (f"{r.model:<10} {r.batch:>5} {r.dtype:<8} {r.backend:<7} {r.forward_ms:>9.1f} {r.lrp_ms:>9.1f} "
                f"{r.lrp_per_forward:>7.2f} {r.forward_gflops:>11.1f} {r.lrp_gflops:>11.1f} "
                f"{'' if r.peak_mb is None else f'{r.peak_mb:.0f}':>8}")
        if r.peer_ms is not None:
            line += f" {r.peer_ms:>10.1f} {r.peer_ratio:>6.2f}"
        lines.append(line)
    return "\n".join(lines)
