"""Dataset mode: streaming readers, the resumable store, runs killed and resumed, and real Dask clusters.

The references are independent of the run machinery: whole arrays read with NumPy/h5py, and
:func:`lrpref.explain` / :mod:`lrpref.evaluation` called on the same images in one piece. Numbers are compared
bit for bit: the same float64 operations on the same values in the same order give the same bits on any
CPU and BLAS, and a chunk's operations do not depend on the process that runs it.
"""
import os
import signal
import subprocess
import sys
import threading
import time
import tracemalloc

import h5py
import numpy as np
import pytest
from PIL import Image

import lrpref
from lrpref import data, datasets, evaluation, runs
from lrpref.backend import to_host
from lrpref.cli import main
from lrpref.heatmap import relevance_rgb

distributed = pytest.importorskip("distributed", reason="the Dask tests need pip install 'lrpref[dask]'")

MODEL = str(data.model_path("mnist_mlp"))
# small metric settings keep a chunk at a fraction of a second on a busy 2-core machine
SETTINGS = dict(step=50, steps=5, batch_size=4)


def job(dtype="float64", **changes):
    return runs.Job(MODEL, "epsilon_plus", dtype, **{**SETTINGS, **changes})


def digits(n):
    with np.load(data.WEIGHTS / "mnist_sample.npz") as f:
        return f["x"][:n], f["y"][:n]


@pytest.fixture(scope="module")
def client():
    with runs.dask_client(workers=2) as c:
        yield c


@pytest.mark.parametrize("layout", ["npz", "npz_compressed", "hdf5", "folder", "shipped"])
def test_datasets_read_in_chunks_what_the_whole_file_holds(tmp_path, layout):
    x, y = digits(10)
    names = np.array([f"d{i}.png" for i in range(10)])
    if layout.startswith("npz"):
        save = np.savez_compressed if layout == "npz_compressed" else np.savez
        save(tmp_path / "d.npz", x=x, y=y, names=names)
        source = tmp_path / "d.npz"
    elif layout == "hdf5":
        with h5py.File(tmp_path / "d.h5", "w") as f:
            f["x"], f["y"], f["names"] = x, y, names.astype(object).astype("S")
        source = tmp_path / "d.h5"
    elif layout == "folder":
        for name, image in zip(names, x):
            Image.fromarray(image).save(tmp_path / name)
        (tmp_path / "labels.csv").write_text("".join(f"{n},{v}\n" for n, v in zip(names, y)))
        source = tmp_path
    else:
        source = None
    dataset = datasets.open_dataset(source, "mnist", tmp_path / "labels.csv" if layout == "folder" else None, limit=10)
    chunks = [dataset.chunk(start, stop) for start, stop in dataset.chunks(4)]
    assert [c.start for c in chunks] == [0, 4, 8] and len(dataset) == 10
    np.testing.assert_array_equal(np.concatenate([c.images for c in chunks]), x[:, None] / 255.0)
    np.testing.assert_array_equal(np.concatenate([c.labels for c in chunks]), y)
    want = [f"{i:06d}" for i in range(10)] if layout == "shipped" else list(names)
    assert sum((c.names for c in chunks), []) == want == dataset.names(0, 10)


def test_memory_is_bounded_by_the_chunk_not_the_dataset(tmp_path):
    """Peak traced memory while streaming 2,000 and 20,000 images: the same within 10 % (chunks of 100
    images of 784 float64 values are 0.6 MB; the whole larger file as float64 would be 125 MB)."""
    rng = np.random.default_rng(0)
    peaks = []
    for n in (2_000, 20_000):
        np.savez(tmp_path / f"{n}.npz", x=rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        dataset = datasets.open_dataset(tmp_path / f"{n}.npz")
        bounds = dataset.chunks(100)   # two ints per chunk: the only thing that grows with the dataset
        tracemalloc.start()
        total = sum(float(dataset.chunk(start, stop).images.sum()) for start, stop in bounds)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert total > 0
    assert abs(peaks[1] - peaks[0]) < 0.1 * peaks[0] and peaks[1] < 5e6


def test_bad_datasets_are_named(tmp_path):
    np.savez(tmp_path / "no_x.npz", y=np.arange(3))
    with pytest.raises(ValueError, match="no dataset 'x'"):
        datasets.open_dataset(tmp_path / "no_x.npz")
    np.savez(tmp_path / "short_y.npz", x=np.zeros((3, 28, 28), np.uint8), y=np.arange(2))
    with pytest.raises(ValueError, match="'y' has 2 rows, 'x' has 3"):
        datasets.open_dataset(tmp_path / "short_y.npz")
    with pytest.raises(ValueError, match="a folder of images, an .npz or an HDF5 file"):
        datasets.open_dataset(tmp_path / "x.txt")


def test_chunks_equal_the_metrics_on_the_whole_set(tmp_path):
    """The in-process run against evaluation's functions on all images at once. BLAS may sum a product in
    another order for another batch size, so the numbers agree to float64 rounding of sums of at most 784
    terms (relative 1e-12, far above 784 * 2**-53 ~ 1e-13 on these well-conditioned probabilities)."""
    result = runs.evaluate_dataset(job(), datasets.open_dataset(limit=10), tmp_path, chunk_size=4, progress=False)
    net = lrpref.load(MODEL, dtype="float64")
    x, y = digits(10)
    images = x[:, None] / 255.0
    e = lrpref.explain(net, lrpref.preprocessing.of(net).normalize(images), composite="epsilon_plus")
    maps = evaluation.relevance_maps(e.relevance)
    insdel = evaluation.insertion_deletion(net, images, maps, e.target, step=50, batch_size=4)
    columns = result["columns"]
    np.testing.assert_array_equal(columns["target"], e.target)
    np.testing.assert_allclose(columns["insertion_auc"], insdel.insertion_auc, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(columns["deletion"], insdel.deletion, rtol=1e-12, atol=1e-15)
    assert (tmp_path / "results.csv").exists() and (tmp_path / "morf.png").exists()
    assert result["summary"]["images"] == 10 and len(result["summary"]["aopc"]) == 2


def test_a_changed_configuration_is_refused_by_name(tmp_path):
    runs.evaluate_dataset(job(), datasets.open_dataset(limit=4), tmp_path, chunk_size=4, progress=False)
    with pytest.raises(ValueError, match=r"step: 50 there, 60 now") as err:
        runs.evaluate_dataset(job(step=60), datasets.open_dataset(limit=4), tmp_path, chunk_size=4, progress=False)
    assert "composite" not in str(err.value)
    with pytest.raises(ValueError, match="composite: 'epsilon_plus' there, 'epsilon' now"):
        runs.evaluate_dataset(runs.Job(MODEL, "epsilon", "float64", **SETTINGS), datasets.open_dataset(limit=4),
                              tmp_path, chunk_size=4, progress=False)


def rows(path):
    with h5py.File(path, "r") as f:
        return {key: f["rows"][key][()] for key in f["rows"]}


def assert_same_rows(a, b):
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def command(folder, limit, dtype="float64"):
    """The ``lrpref evaluate`` command line of :func:`job`'s settings."""
    return [sys.executable, "-m", "lrpref.cli", "evaluate", "--model", MODEL, "--limit", str(limit), "--batch-size",
            "4", "--step", "50", "--steps", "5", "--dtype", dtype, "--composite", "epsilon_plus",
            "--output-dir", str(folder)]


def test_a_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    """Killed as soon as its first chunk is committed (every chunk is, with --commit-every 0): half-way on any
    machine that needs more than a few milliseconds per chunk of four digits."""
    store = tmp_path / "run" / "results.h5"
    process = subprocess.Popen(command(tmp_path / "run", 40) + ["--commit-every", "0"], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not store.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = len(rows(store)["index"])
    assert 0 < partial < 40, "the run should have been killed half-way"
    resumed = subprocess.run(command(tmp_path / "run", 40), stdout=subprocess.PIPE, text=True, check=True).stdout
    assert f"{40 - partial} in this run" in resumed
    subprocess.run(command(tmp_path / "whole", 40), stdout=subprocess.DEVNULL, check=True)
    assert_same_rows(rows(store), rows(tmp_path / "whole" / "results.h5"))
    np.testing.assert_array_equal(rows(store)["index"], np.arange(40))


# Dask gives each worker process one BLAS thread; float32 sums come out the same only with the same threads
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


@pytest.fixture(scope="module")
def single_process(tmp_path_factory):
    """``lrpref evaluate`` of 24 digits in one process with one BLAS thread: the results.h5 per dtype."""
    stores = {}
    for dtype in ("float64", "float32"):
        folder = tmp_path_factory.mktemp(dtype)
        subprocess.run(command(folder, 24, dtype), env={**os.environ, **ONE_THREAD}, stdout=subprocess.DEVNULL,
                       check=True)
        stores[dtype] = folder / "results.h5"
    return stores


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_dask_workers_give_the_single_process_numbers(tmp_path, client, single_process, dtype):
    runs.evaluate_dataset(job(dtype), datasets.open_dataset(limit=24), tmp_path, chunk_size=4, client=client,
                          progress=False)
    assert_same_rows(rows(single_process[dtype]), rows(tmp_path / "results.h5"))


def test_a_killed_worker_costs_only_its_chunk(tmp_path, client, single_process):
    pids = client.run(os.getpid)
    killed = []

    def kill_a_busy_worker():
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            busy = [address for address, tasks in client.processing().items() if tasks and address in pids]
            if busy:
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.append(busy[0])
            time.sleep(0.01)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    dataset = datasets.open_dataset(limit=24)
    runs.evaluate_dataset(job(), dataset, tmp_path / "dask", chunk_size=4, client=client, progress=False)
    killer.join()
    assert killed, "no worker was killed"
    assert_same_rows(rows(single_process["float64"]), rows(tmp_path / "dask" / "results.h5"))
    client.wait_for_workers(2, timeout=60)   # the nanny restarts the killed worker


def test_explain_writes_one_heatmap_per_image_and_resumes(tmp_path, client, capsys):
    x, _ = digits(6)
    folder = tmp_path / "digits"
    folder.mkdir()
    for i, image in enumerate(x):
        Image.fromarray(image).save(folder / f"d{i}.png")
    command = ["explain", "--model", MODEL, "--images", str(folder), "--composite", "epsilon_plus", "--dtype",
               "float64", "--save-relevance", "--batch-size", "4", "--output-dir"]
    assert main(command + [str(tmp_path / "one")]) == 0
    assert "6 explained in this run" in capsys.readouterr().out
    net = lrpref.load(MODEL, dtype="float64")
    normalize = lrpref.preprocessing.of(net).normalize
    chunks = (slice(0, 4), slice(4, 6))   # the run's chunks: the same batches
    relevance = np.concatenate([to_host(lrpref.explain(net, normalize(x[rows, None] / 255.0), composite="epsilon_plus")
                                        .relevance) for rows in chunks])   # the net may live on CuPy: to the host
    for i in range(6):
        np.testing.assert_array_equal(np.load(tmp_path / "one" / f"d{i}.npy"), relevance[i])
        heatmap = np.asarray(Image.open(tmp_path / "one" / f"d{i}.png"))
        np.testing.assert_array_equal(heatmap, relevance_rgb(relevance[i].sum(axis=0)))
    (tmp_path / "one" / "d5.png").unlink()
    assert main(command + [str(tmp_path / "one")]) == 0
    assert "2 explained in this run" in capsys.readouterr().out   # the second chunk: d4, d5
    assert main(command + [str(tmp_path / "dask"), "--scheduler", client.scheduler.address]) == 0
    for i in range(6):
        assert (tmp_path / "dask" / f"d{i}.png").read_bytes() == (tmp_path / "one" / f"d{i}.png").read_bytes()
    assert main(command[:-1] + ["--epsilon", "0.5", "--output-dir", str(tmp_path / "one")]) == 2
    assert "epsilon" in capsys.readouterr().err


def test_without_dask_the_error_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)
    assert main(["evaluate", "--limit", "2", "--workers", "2"]) == 2
    assert "pip install 'lrpref[dask]'" in capsys.readouterr().err
