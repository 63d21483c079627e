"""Hostile inputs, files: a write that fails or is killed leaves the old file byte-identical and loadable, and a
command never writes over one of its own inputs."""
import os
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
from PIL import Image

import lrpref
from lrpref import backend, data, datasets, reference, runs
from lrpref.cli import main
from lrpref.files import refuse_overwriting
from lrpref.heatmap import save_panels
from lrpref.store import ResultsStore


def equal_networks(a, b):
    """Same layers, same arrays bit for bit."""
    return a.names == b.names and all(
        np.array_equal(backend.to_host(x), backend.to_host(y))
        for la, lb in zip(a.layers, b.layers) for x, y in zip(la.arrays().values(), lb.arrays().values()))


@pytest.fixture
def saved(tmp_path):
    """An existing model file (the shipped MLP saved again), its bytes, and the network."""
    net = lrpref.load(data.model_path("mnist_mlp"), dtype=None)
    path = tmp_path / "model.h5"
    lrpref.save(net, path)
    return path, path.read_bytes(), net


def test_a_save_that_raises_half_way_leaves_the_old_file(saved):
    path, before, net = saved
    net.meta["scale"] = np.float32(0.5)   # json cannot write a NumPy scalar: fails after the layers' arrays
    with pytest.raises(TypeError, match="float32"):
        lrpref.save(net, path)
    assert path.read_bytes() == before and os.listdir(path.parent) == ["model.h5"]
    assert equal_networks(lrpref.load(path, dtype=None), lrpref.load(data.model_path("mnist_mlp"), dtype=None))


def test_a_save_killed_mid_write_leaves_the_old_file(saved):
    """The child process saves over the file and kills itself (SIGKILL: no clean-up runs) after the first
    dataset has been written."""
    path, before, _ = saved
    script = textwrap.dedent(f"""
        import os, signal, h5py, lrpref
        create = h5py.Group.create_dataset
        def create_then_die(self, *args, **kwargs):
            result = create(self, *args, **kwargs)
            self.file.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        h5py.Group.create_dataset = create_then_die
        net = lrpref.load({str(data.model_path("mnist_cnn"))!r})
        lrpref.save(net, {str(path)!r})
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == -9, result.stderr
    assert path.read_bytes() == before
    assert equal_networks(lrpref.load(path, dtype=None), lrpref.load(data.model_path("mnist_mlp"), dtype=None))


def test_a_failed_reference_export_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "reference.h5"
    path.write_bytes(b"an earlier export")

    def fail(*args):
        raise RuntimeError("case failed")
    monkeypatch.setattr(reference, "_write_case", fail)
    with pytest.raises(RuntimeError, match="case failed"):
        reference.export(path, ["mlp"], progress=False)
    assert path.read_bytes() == b"an earlier export" and os.listdir(tmp_path) == ["reference.h5"]


def test_a_heatmap_with_an_unknown_format_leaves_the_old_file(tmp_path):
    path = tmp_path / "heatmap.xyz"
    path.write_bytes(b"old")
    with pytest.raises(ValueError, match="unknown file extension"):
        save_panels(path, [np.zeros((2, 2, 3), np.uint8)])
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["heatmap.xyz"]


def test_the_same_file_is_recognised_under_another_name(tmp_path, monkeypatch):
    (tmp_path / "a.png").write_bytes(b"x")
    os.symlink(tmp_path / "a.png", tmp_path / "link.png")
    monkeypatch.chdir(tmp_path)
    for other in ("a.png", "./a.png", str(tmp_path / "link.png")):
        with pytest.raises(ValueError, match=r"the output 'a.png' is also an input \(.*\): writing it would destroy"):
            refuse_overwriting("a.png", [None, "b.png", other])
    refuse_overwriting("b.png", ["a.png", None])   # distinct files: nothing to refuse


@pytest.mark.parametrize("which", ["image", "model"])
def test_the_cli_refuses_to_write_over_its_input(tmp_path, capsys, which):
    x, _ = data.mnist_sample()
    Image.fromarray(np.rint((x[3, 0] + 1) * 127.5).astype(np.uint8)).save(tmp_path / "digit.png")
    lrpref.save(lrpref.load(data.model_path("mnist_mlp")), tmp_path / "model.h5")
    before = {p: p.read_bytes() for p in tmp_path.iterdir()}
    output = tmp_path / ("digit.png" if which == "image" else "model.h5")
    code = main(["explain", "--model", str(tmp_path / "model.h5"), "--image", str(tmp_path / "digit.png"),
                 "--output", str(output)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("lrpref: error: the output") and "is also an input" in err
    assert {p: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_evaluate_refuses_results_over_its_images(tmp_path, capsys):
    x, _ = data.mnist_sample()
    for i, name in enumerate(["a.png", "morf.png"]):
        Image.fromarray(np.rint((x[i, 0] + 1) * 127.5).astype(np.uint8)).save(tmp_path / name)
    before = {p: p.read_bytes() for p in tmp_path.iterdir()}
    code = main(["evaluate", "--images", str(tmp_path), "--output-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "morf.png' is also an input" in err
    assert {p: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_save_through_a_symlink_replaces_its_target_and_keeps_the_link(saved, tmp_path):
    path, _, _ = saved
    os.symlink(path, tmp_path / "link.h5")
    cnn = lrpref.load(data.model_path("mnist_cnn"), dtype=None)
    lrpref.save(cnn, tmp_path / "link.h5")
    assert (tmp_path / "link.h5").is_symlink() and os.readlink(tmp_path / "link.h5") == str(path)
    assert equal_networks(lrpref.load(path, dtype=None), cnn)


def test_a_write_onto_a_folder_names_the_folder(tmp_path):
    (tmp_path / "out.h5").mkdir()
    net = lrpref.load(data.model_path("mnist_mlp"))
    with pytest.raises(IsADirectoryError, match=r"cannot write '.*out.h5': it is a folder; expected a file name"):
        lrpref.save(net, tmp_path / "out.h5")
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        save_panels(tmp_path / "out.h5", [np.zeros((2, 2, 3), np.uint8)])
    assert os.listdir(tmp_path) == ["out.h5"] and os.listdir(tmp_path / "out.h5") == []


def digits_folder(folder, names):
    folder.mkdir(exist_ok=True)
    x, _ = data.mnist_sample()
    for i, name in enumerate(names):
        Image.fromarray(np.rint((x[i, 0] + 1) * 127.5).astype(np.uint8)).save(folder / name, quality=100)
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_explaining_a_folder_into_itself_is_refused(tmp_path, capsys):
    """The heatmap of d.png would be d.png: refused before any work (it was skipped as done, nothing explained)."""
    before = digits_folder(tmp_path, ["a.png", "b.png"])
    code = main(["explain", "--images", str(tmp_path), "--output-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and f"the output '{tmp_path / 'a.png'}' is also an input" in err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_two_images_sharing_an_output_file_are_refused(tmp_path, capsys):
    """a.png and a.jpg would both be written to a.png: one heatmap would replace the other."""
    digits_folder(tmp_path / "images", ["a.png", "a.jpg", "b.png"])
    code = main(["explain", "--images", str(tmp_path / "images"), "--output-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "the images 'a.jpg' and 'a.png' would both be written to a.png" in err
    assert not (tmp_path / "out").exists()
    np.savez(tmp_path / "named.npz", x=np.zeros((2, 1, 28, 28)), names=np.array(["x/one", "y/one"]))
    code = main(["explain", "--images", str(tmp_path / "named.npz"), "--output-dir", str(tmp_path / "out")])
    assert code == 2 and "the images 'x/one' and 'y/one' would both be written to one.png" in capsys.readouterr().err


def test_label_files_mean_one_label_per_image(tmp_path):
    """A byte-order mark is not part of the first name; a name given twice or text that is not UTF-8 is refused
    (a second label silently replaced the first)."""
    digits_folder(tmp_path / "images", ["a.png", "b.png"])
    (tmp_path / "bom.csv").write_bytes("\ufeffa.png,7\nb.png,2\n".encode("utf-8"))
    assert datasets.open_dataset(tmp_path / "images", "mnist", tmp_path / "bom.csv").labels.tolist() == [7, 2]
    (tmp_path / "twice.csv").write_text("a.png,7\nb.png,2\na.png,3\n")
    with pytest.raises(ValueError, match=r"twice.csv, line 3: 'a.png' has a label already \(line 1\)"):
        datasets.read_labels(tmp_path / "twice.csv")
    (tmp_path / "power.csv").write_text("a.png,\u00b2\n")   # a digit to str.isdigit, no number to int()
    with pytest.raises(ValueError, match="power.csv, line 1: expected 'file name,label' with a class index >= 0"):
        datasets.read_labels(tmp_path / "power.csv")
    (tmp_path / "latin1.csv").write_bytes("a.png,7\n\xe9.png,2\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.csv is not UTF-8 text \(.*\); save the CSV as UTF-8"):
        datasets.read_labels(tmp_path / "latin1.csv")
    np.savez(tmp_path / "d.npz", x=np.zeros((2, 1, 28, 28)))
    for source in (tmp_path / "d.npz", None):   # labels were ignored for these
        with pytest.raises(ValueError, match="labels \\(a CSV\\) go with a folder of images"):
            datasets.open_dataset(source, "mnist", tmp_path / "bom.csv")


@pytest.mark.parametrize("make, message", [
    (lambda p: np.savez(p, x=np.zeros((0, 1, 28, 28))),
     r"'x' must hold at least one image \(N, C, H, W\) or \(N, H, W\), got shape \(0, 1, 28, 28\)"),
    (lambda p: p.write_text("not a zip"), r"is not a readable .npz \(zip\) file \(File is not a zip file\)"),
])
def test_array_files_without_images_are_refused(tmp_path, make, message):
    make(tmp_path / "d.npz")
    with pytest.raises(ValueError, match=message):
        datasets.open_dataset(tmp_path / "d.npz")
    with pytest.raises((TypeError, ValueError), match=r"limit \(the number of images\) must be an integer, got 2.5"):
        datasets.open_dataset(None, limit=2.5)


def unreadable_results(path):
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))


def results_without_rows(path):
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "lrpref-results"
        f.attrs["config"] = "{}"


@pytest.mark.parametrize("make, message", [
    (unreadable_results, r"results.h5 cannot be resumed from: Unable to .*open file \(bad .*; move it away, or use"),
    (results_without_rows, r"results.h5 cannot be resumed from: .*'rows' doesn't exist.*; move it away"),
    (lambda p: p.mkdir(), r"results.h5 is a folder; expected the results file"),
])
def test_a_damaged_results_store_is_named_and_kept(tmp_path, make, message):
    make(tmp_path / "results.h5")
    kind = (tmp_path / "results.h5").is_dir()
    before = None if kind else (tmp_path / "results.h5").read_bytes()
    with pytest.raises(ValueError, match=message):
        ResultsStore(tmp_path / "results.h5", {"model": "m"})
    assert kind or (tmp_path / "results.h5").read_bytes() == before


def test_a_damaged_explain_record_is_named(tmp_path):
    (tmp_path / "explain.json").write_text("{oops")
    job = runs.Job(str(data.model_path("mnist_mlp")), "epsilon")
    with pytest.raises(ValueError, match=r"explain.json cannot be read \(Expecting property name.*\); move it away"):
        runs.explain_dataset(job, datasets.open_dataset(None, limit=2), tmp_path, 2, progress=False)
    assert os.listdir(tmp_path) == ["explain.json"]
    with pytest.raises(ValueError, match="the chunk size must be an integer >= 1, got -1"):   # explained 0 images
        runs.explain_dataset(job, datasets.open_dataset(None, limit=2), tmp_path / "out", -1, progress=False)


def test_a_run_is_not_resumed_over_results_of_other_images(tmp_path, capsys):
    """The same file name holding other images: the old rows were reported as the new images' (exit 0)."""
    x, y = data.mnist_sample()
    argv = ["evaluate", "--images", str(tmp_path / "d.npz"), "--output-dir", str(tmp_path / "out"), "--batch-size",
            "2", "--steps", "2", "--model", "mnist_mlp"]
    np.savez(tmp_path / "d.npz", x=(x[:2] + 1) / 2, y=y[:2])
    assert main(argv) == 0
    before = (tmp_path / "out" / "results.h5").read_bytes()
    os.utime(tmp_path / "d.npz", ns=(0, 0))   # written again since (here: another time; in general other images)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "results.h5 holds results of another configuration (dataset: {'files': " in err
    assert (tmp_path / "out" / "results.h5").read_bytes() == before


def test_numpy_numbers_in_a_run_mean_what_python_numbers_mean(tmp_path):
    """np.float32(0.5) in a job's parameters was a raw "not JSON serializable" error; now it is recorded as 0.5, so
    the run with 0.5 finds the same configuration and has nothing left to explain."""
    def job(epsilon):
        return runs.Job(str(data.model_path("mnist_mlp")), "epsilon", params=(("epsilon", epsilon),))
    digits = datasets.open_dataset(None, limit=2)
    assert runs.explain_dataset(job(np.float32(0.5)), digits, tmp_path, 2, progress=False) == 2
    assert runs.explain_dataset(job(0.5), digits, tmp_path, 2, progress=False) == 0
    with pytest.raises(TypeError, match=r"the run's settings must be numbers, strings or arrays of them, .*: "
                                        r"<object object at .*> \(object\) is not JSON-serialisable"):
        runs.explain_dataset(job(object()), digits, tmp_path / "other", 2, progress=False)
