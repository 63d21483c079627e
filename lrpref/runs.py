"""Explaining and evaluating whole datasets: streamed in chunks, resumable, in-process or on Dask.

A run cuts the dataset (:mod:`lrpref.datasets`) into chunks of ``chunk_size`` images. Each chunk is one task:
a worker reads its images, loads the network once per process (:func:`network`, kept between tasks),
explains the chunk as one batch and measures it; the client collects the results and commits them to the
output folder (:mod:`lrpref.store` for evaluation, one heatmap per image for explanation). Without a Dask
client the same tasks run one after another in this process. Since a chunk's numbers depend only on its
images and the settings, never on where or when it ran, the results are the same whatever the number of
workers, and a run started again after a crash computes only the chunks not committed yet.

MoRF's noise is drawn per image from ``SeedSequence([seed, index])``, so that it does not depend on which
images ran before in the same process.
"""
import contextlib
import functools
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from . import evaluation
from .backend import to_host
from .explain import explain
from .files import atomic_path, refuse_overwriting
from .heatmap import relevance_rgb
from .io import load
from .preprocessing import of as preprocessing_of
from .store import ResultsStore, check_same

METRICS = ("insertion_auc", "deletion_auc", "id_score", "aopc", "mass_accuracy")
Z_95 = 1.959963984540054   # the standard normal's 97.5 % quantile: mean +- Z_95 * sd / sqrt(n) is a 95 % interval


@dataclass(frozen=True)
class Job:
    """Everything a worker needs besides the dataset: the network file, the explanation and the metrics.

    ``params`` are the keyword arguments of :func:`lrpref.explain` (``init``, rule parameters, ``target``)
    as sorted ``(name, value)`` pairs; the metric settings are those of
    :func:`lrpref.evaluation.insertion_deletion` and :func:`lrpref.evaluation.pixel_flipping`.
    """

    model: str
    composite: str
    dtype: str = "float32"
    backend: str = None
    params: tuple = ()
    step: int = None
    quantize: int = None
    patch: int = 9
    steps: int = 100
    baseline: str = "uniform"
    seed: int = 0
    batch_size: int = 16
    curves: bool = True
    relevance: bool = False

    def config(self, dataset, chunk_size):
        """The settings the results depend on, for :class:`lrpref.store.ResultsStore`."""
        config = {**asdict(self), "params": dict(self.params), "model_sha256": _sha256(self.model),
                  "chunk_size": chunk_size, "dataset": dataset.describe()}
        try:   # as results.h5 and explain.json record it (a tuple reads back as a list, np.float32(0.5) as 0.5)
            return json.loads(json.dumps(config, default=_plain))
        except TypeError as err:
            raise TypeError(f"the run's settings must be numbers, strings or arrays of them, as results.h5 and "
                            f"explain.json record them: {err}") from None


def _plain(value):
    """A NumPy scalar or array as the Python number or list JSON can write (``TypeError`` for anything else)."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"{value!r} ({type(value).__name__}) is not JSON-serialisable")


@functools.lru_cache(maxsize=None)
def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.lru_cache(maxsize=4)
def network(model, dtype, backend):
    """The network of a file, loaded once per process (a Dask worker keeps it for all its tasks)."""
    return load(model, dtype=dtype, backend=backend)


def _explained(job, dataset, start, stop):
    """A chunk's images in [0, 1], its explanation and the labels the metrics score."""
    net = network(job.model, job.dtype, job.backend)
    chunk = dataset.chunk(start, stop)
    images = evaluation.check(chunk.images, masks=chunk.masks, labels=chunk.labels)
    e = explain(net, preprocessing_of(net).normalize(images), composite=job.composite, **dict(job.params))
    targets = to_host(e.target)
    labels = targets if chunk.labels is None else evaluation.check_labels(chunk.labels, e.output.shape[1])
    return net, chunk, images, e, targets, labels


def evaluate_chunk(job, dataset, start, stop):
    """Explain and measure images ``start .. stop - 1``: the task of one chunk.

    Returns
    -------
    columns : dict
        One entry per image: index, name, label, target, the metrics, and the curves if ``job.curves``.
    meta : dict
        ``insertion_fraction``, the x axis of the Insertion/Deletion curves.
    """
    net, chunk, images, e, targets, labels = _explained(job, dataset, start, stop)
    maps = evaluation.relevance_maps(e.relevance)
    insdel = evaluation.insertion_deletion(net, images, maps, labels, job.step, job.quantize, job.batch_size)
    morf = np.concatenate([
        evaluation.pixel_flipping(net, images[i:i + 1], maps[i:i + 1], labels[i:i + 1], job.patch, job.steps,
                                  job.baseline, np.random.SeedSequence([job.seed, start + i]), job.batch_size).curves
        for i in range(len(images))])
    flipping = evaluation.PixelFlipping(morf)
    columns = {"index": np.arange(start, stop, dtype=np.int64), "name": np.array(chunk.names, dtype=str),
               "label": labels.astype(np.int64), "target": targets.astype(np.int64),
               "insertion_auc": insdel.insertion_auc, "deletion_auc": insdel.deletion_auc,
               "id_score": insdel.id_score, "aopc": flipping.aopc}
    if chunk.masks is not None:
        columns["mass_accuracy"] = evaluation.relevance_mass_accuracy(maps, chunk.masks)
    if job.curves:
        columns.update(insertion=insdel.insertion, deletion=insdel.deletion, morf=morf)
    return columns, {"insertion_fraction": insdel.fraction}


def explain_chunk(job, dataset, start, stop):
    """Explain images ``start .. stop - 1``: their names, targets, relevance maps (n, H, W) and, if
    ``job.relevance``, the relevance (n, C, H, W) itself."""
    _, chunk, _, e, targets, _ = _explained(job, dataset, start, stop)
    return {"names": chunk.names, "targets": targets, "maps": evaluation.relevance_maps(e.relevance),
            "relevance": to_host(e.relevance) if job.relevance else None}


@contextlib.contextmanager
def dask_client(workers=None, scheduler=None):
    """A Dask client on a new ``LocalCluster`` of ``workers`` processes (one thread each), or on the
    running cluster at ``scheduler``; ``None`` (in-process) without either."""
    if workers is None and scheduler is None:
        yield None
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise RuntimeError("--workers and --scheduler run on Dask, which is not installed: "
                           "pip install 'lrpref[dask]'") from None
    if scheduler is not None:
        with Client(scheduler) as client:
            yield client
        return
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        yield client


def run_tasks(task, job, dataset, bounds, client=None):
    """Yield ``task(job, dataset, start, stop)`` for every chunk in ``bounds``: in order in this process, or
    as they finish on the Dask ``client`` (a task lost with its worker is rerun by Dask)."""
    if client is None:
        for start, stop in bounds:
            yield task(job, dataset, start, stop)
        return
    from distributed import as_completed
    futures = [client.submit(task, job, dataset, start, stop, pure=False) for start, stop in bounds]
    for future in as_completed(futures):
        yield future.result()
        future.release()


def evaluate_dataset(job, dataset, output, chunk_size=16, client=None, progress=True, commit_every=2.0):
    """Explain and measure every image of a dataset into ``output``, resuming what is there.

    Parameters
    ----------
    job : Job
    dataset : lrpref.datasets.Dataset
    output : folder
        Gets ``results.h5`` (:mod:`lrpref.store`), then ``results.csv`` and the mean curves as PNG.
    chunk_size : int
        Images per task and per explanation batch (float32 numbers depend on it, float64 do not).
    client : distributed.Client or None
        Where the chunks run (:func:`dask_client`); ``None``: in this process.
    commit_every : float
        Seconds between commits at least; the last chunks are committed when the run ends or fails.

    Returns
    -------
    dict
        ``columns`` (every row, by index), ``summary`` (:func:`summarize`).
    """
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    store = ResultsStore(output / "results.h5", job.config(dataset, chunk_size))
    done = store.done()
    todo = [(start, stop) for start, stop in dataset.chunks(chunk_size) if start not in done]
    started, computed, last = time.perf_counter(), 0, time.perf_counter()
    bar = tqdm(total=len(dataset), initial=len(store), unit="image", desc="evaluating", disable=not progress)
    try:
        for columns, meta in run_tasks(evaluate_chunk, job, dataset, todo, client):
            store.add(columns, meta)
            computed += len(columns["index"])
            bar.update(len(columns["index"]))
            if time.perf_counter() - last >= commit_every:
                store.commit()
                last = time.perf_counter()
    finally:
        bar.close()
        if computed:
            store.commit()
    summary = summarize(store.columns, computed, time.perf_counter() - started)
    write_outputs(output, store)
    return {"columns": store.columns, "summary": summary}


def summarize(columns, computed, seconds):
    """Images, images per second of this run, and every metric's mean with its 95 % confidence interval
    (normal approximation: ``mean +- 1.96 sd / sqrt(n)``)."""
    n = len(columns["index"])
    summary = {"images": n, "computed": computed, "seconds": seconds,
               "images_per_s": computed / seconds if seconds > 0 else float("nan")}
    for key in METRICS:
        if key in columns:
            values = np.asarray(columns[key], dtype=np.float64)
            half = Z_95 * values.std(ddof=1) / np.sqrt(n) if n > 1 else float("nan")
            summary[key] = (float(values.mean()), float(half))
    return summary


def write_outputs(folder, store):
    """``results.csv`` and, where the store has curves, the mean curves as PNG (as :func:`evaluation.evaluate`)."""
    columns = store.columns
    rows = [{"index": int(columns["index"][i]), "image": columns["name"][i], "label": int(columns["label"][i]),
             "target": int(columns["target"][i]), **{key: float(columns[key][i]) for key in METRICS if key in columns}}
            for i in range(len(columns["index"]))]
    curves = "insertion" in columns
    insdel = (evaluation.InsertionDeletion(columns["insertion"], columns["deletion"], store.meta["insertion_fraction"])
              if curves else None)
    evaluation.write_results(folder, rows, insdel, evaluation.PixelFlipping(columns["morf"]) if curves else None)


def explain_dataset(job, dataset, output, chunk_size=16, client=None, progress=True):
    """Write one heatmap per image (``<name>.png``, the tutorial's colours; with ``job.relevance`` also
    ``<name>.npy``, the relevance (C, H, W)) into ``output``, skipping chunks whose files are all there.

    ``explain.json`` records the settings; another configuration in the same folder is refused, and so, before
    any work, are two images whose names differ only in their suffix (``a.png``, ``a.jpg``: one output file)
    and an output file that is one of the dataset's own files (``output`` the images' folder).
    Returns the number of images explained in this run.
    """
    output = Path(output)
    suffixes = (".png", ".npy") if job.relevance else (".png",)
    _refuse_clashes(dataset, output, suffixes)
    output.mkdir(parents=True, exist_ok=True)
    config, record = job.config(dataset, chunk_size), output / "explain.json"
    if record.exists():
        try:
            found = json.loads(record.read_text())
        except (OSError, ValueError) as err:
            raise ValueError(f"{record} cannot be read ({err}); move it away, or use another output folder, to "
                             "start afresh") from None
        check_same(found, config, record)
    else:
        with atomic_path(record) as tmp:
            tmp.write_text(json.dumps(config, sort_keys=True, indent=1))

    def missing(start, stop):
        return any(not (output / (Path(name).stem + s)).exists() for name in dataset.names(start, stop)
                   for s in suffixes)

    todo = [(start, stop) for start, stop in dataset.chunks(chunk_size) if missing(start, stop)]
    bar = tqdm(total=len(dataset), initial=len(dataset) - sum(b - a for a, b in todo), unit="image",
               desc="explaining", disable=not progress)
    computed = 0
    with bar:
        for result in run_tasks(explain_chunk, job, dataset, todo, client):
            for k, name in enumerate(result["names"]):
                with atomic_path(output / (Path(name).stem + ".png")) as tmp:
                    Image.fromarray(relevance_rgb(result["maps"][k])).save(tmp, format="PNG")
                if job.relevance:
                    with atomic_path(output / (Path(name).stem + ".npy")) as tmp, open(tmp, "wb") as f:
                        np.save(f, result["relevance"][k])
            computed += len(result["names"])
            bar.update(len(result["names"]))
    return computed


def _refuse_clashes(dataset, output, suffixes):
    """Refuse a dataset two of whose images would be written to one file, or whose files an output would replace."""
    first = {}
    for name in dataset.names(0, len(dataset)):
        stem = Path(name).stem
        if stem in first:
            raise ValueError(f"the images {first[stem]!r} and {name!r} would both be written to {stem}.png in "
                             f"{output}: rename one (each output is named by its image's name without the suffix)")
        first[stem] = name
    sources = {os.path.realpath(path): path for path in dataset.sources()}
    for stem in first:
        for suffix in suffixes:
            target = output / (stem + suffix)
            if os.path.realpath(target) in sources:
                refuse_overwriting(target, [sources[os.path.realpath(target)]])
