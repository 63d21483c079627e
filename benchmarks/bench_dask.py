"""Images per second of dataset-mode evaluation, in-process and on local Dask clusters of 1 and 2 workers.

    python benchmarks/bench_dask.py [--models mnist_cnn resnet18 resnet50] [--images 4] [--workers 1 2]

Each configuration runs in a fresh process: ``lrpref.runs.evaluate_dataset`` (explanation with
``epsilon_gamma_box``, Insertion/Deletion at the default step, MoRF with 9x9 regions) on random images
(224 x 224 RGB for the ResNets, random weights as torchvision initialises them; the shipped digits for the
CNN), one explanation batch per ``--chunk`` images. Reported per configuration: images/s over the run (the
cluster's start and each process's first import and network load come before the clock: "start s"), the
seconds one worker spends per image, the peak resident memory of each process that computed
(``ru_maxrss``), and Dask's overhead two ways: "vs in-p", a worker's seconds per image over the in-process
seconds per image, minus 1 (on a busy machine this mostly measures the other load); "outside", the share of
the workers' time not spent computing a task (from Dask's task stream: scheduling, transfers, the client's
commits, idle workers at the end). The in-process run is limited to one BLAS thread, as Dask's workers are,
so that both do the same work.
"""
import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lrpref import data, datasets, io, models, runs

ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def peak_mb():
    """This process's peak resident memory in MB (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def prepare(model, images, folder):
    """The model file and the dataset of one benchmark model."""
    if model == "mnist_cnn":
        return str(data.model_path(model)), datasets.open_dataset(limit=images)
    path = folder / f"{model}.h5"
    if not path.exists():
        io.save(models.build(model, seed=0), path)
    if not (folder / "images.npz").exists():
        rng = np.random.default_rng(0)
        np.savez(folder / "images.npz", x=rng.integers(0, 256, (64, 3, 224, 224), dtype=np.uint8))
    return str(path), datasets.open_dataset(folder / "images.npz", limit=images)


def measure(model, workers, images, chunk, folder):
    """One configuration, in this process: a dict of the numbers."""
    path, dataset = prepare(model, images, folder)
    job = runs.Job(path, "epsilon_gamma_box", "float32", batch_size=chunk, curves=False)
    output = Path(tempfile.mkdtemp(dir=folder))
    started = time.perf_counter()
    with runs.dask_client(workers or None) as client, task_stream(client) as stream:
        if client:   # imports and the network on every worker, before the clock, as in-process below
            client.run(runs.network, path, job.dtype, None)
        else:
            runs.network(path, job.dtype, None)
        ready = time.perf_counter()
        summary = runs.evaluate_dataset(job, dataset, output, chunk, client, progress=False)["summary"]
        seconds = time.perf_counter() - ready
        peaks = list(client.run(peak_mb).values()) if client else [peak_mb()]
    computing = sum(s["stop"] - s["start"] for task in (stream.data if client else [])
                    for s in task["startstops"] if s["action"] == "compute")
    return {"model": model, "workers": workers, "images": summary["images"], "seconds": seconds,
            "start_s": ready - started, "images_per_s": summary["images"] / seconds,
            "s_per_image_per_worker": seconds * max(workers, 1) / summary["images"], "peak_mb": peaks,
            "outside_tasks": 1 - computing / (seconds * workers) if client else None}


def task_stream(client):
    """Dask's record of every task's compute time (nothing in-process)."""
    if client is None:
        return contextlib.nullcontext()
    from distributed import get_task_stream
    return get_task_stream(client)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mnist_cnn", "resnet18", "resnet50"])
    parser.add_argument("--images", type=int, default=4, help="images per worker (default: %(default)s)")
    parser.add_argument("--chunk", type=int, default=2, help="images per task (default: %(default)s)")
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2], help="(default: %(default)s)")
    parser.add_argument("--one", nargs=2, metavar=("MODEL", "WORKERS"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        model, workers = args.one[0], int(args.one[1])
        print(json.dumps(measure(model, workers, args.images * max(workers, 1), args.chunk, Path(args.folder))))
        return
    print(f"# {os.cpu_count()} cores; float32, epsilon_gamma_box, Insertion/Deletion + MoRF; "
          f"{args.images} images per worker, {args.chunk} per task")
    print(f"{'model':<10} {'workers':>7} {'images':>6} {'run s':>7} {'start s':>7} {'images/s':>8} "
          f"{'s/image/worker':>14} {'vs in-p':>8} {'outside':>8}  peak MB per process")
    with tempfile.TemporaryDirectory() as folder:
        for model in args.models:
            in_process = None
            for workers in [0] + args.workers:
                command = [sys.executable, __file__, "--one", model, str(workers), "--images", str(args.images),
                           "--chunk", str(args.chunk), "--folder", folder]
                line = subprocess.run(command, env={**os.environ, **ONE_THREAD}, check=True, text=True,
                                      stdout=subprocess.PIPE).stdout.strip().splitlines()[-1]
                r = json.loads(line)
                in_process = in_process or r["s_per_image_per_worker"]
                slower = "" if not workers else f"{r['s_per_image_per_worker'] / in_process - 1:+.0%}"
                outside = "" if not workers else f"{r['outside_tasks']:.1%}"
                print(f"{model:<10} {workers or 'in-proc':>7} {r['images']:>6} {r['seconds']:>7.1f} "
                      f"{r['start_s']:>7.1f} {r['images_per_s']:>8.4f} {r['s_per_image_per_worker']:>14.2f} "
                      f"{slower:>8} {outside:>8}  {' '.join(f'{m:.0f}' for m in r['peak_mb'])}", flush=True)


if __name__ == "__main__":
    main()
