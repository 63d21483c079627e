"""Hostile inputs, models: damaged or edited model files, and bad weights built in code.

Every case ends in one of two ways: a ``ValueError`` whose message names the file and what was expected and
found, or a network bit-identical to the shipped one. Never a network with other numbers.
"""
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

import lrpref
from lrpref import layers
from lrpref.backend import to_host

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
SHIPPED = ["mnist_mlp", "mnist_cnn", "mnist_pairs_cnn"]


def same_network(a, b):
    """Bit-identical: names, wiring, hyper-parameters, meta, and every array with its dtype (compared on the host:
    the networks may live on CuPy, LRPREF_BACKEND=cupy)."""
    return (a.names == b.names and a.meta == b.meta and a.input_shape == b.input_shape
            and all(x.inputs == y.inputs and type(x.layer) is type(y.layer) and x.layer.config() == y.layer.config()
                    and all(v.dtype == w.dtype and np.array_equal(to_host(v), to_host(w))
                            for v, w in zip(x.layer.arrays().values(), y.layer.arrays().values()))
                    for x, y in zip(a.nodes, b.nodes)))


def load_or_error(path, original):
    """Load ``path``: either it fails with a ValueError naming the file, or it equals ``original`` bit for bit."""
    try:
        net = lrpref.load(path, dtype=None)
    except ValueError as err:
        assert str(err).startswith(str(path)), err
        return str(err)
    assert same_network(net, original)
    return None


@pytest.mark.parametrize("model", SHIPPED)
def test_overwritten_byte_ranges_fail_clearly_or_change_nothing(tmp_path, model):
    """Random bytes over random ranges (1 B to 4 KiB), 40 seeded cases per model: the checksums of
    lrpref.save catch every change of data or structure, so no case may load other numbers."""
    source = WEIGHTS / f"{model}.h5"
    original, data = lrpref.load(source, dtype=None), source.read_bytes()
    rng = np.random.default_rng(sum(map(ord, model)))
    errors = 0
    for case in range(40):
        damaged = bytearray(data)
        start, length = int(rng.integers(len(data))), int(rng.choice([1, 8, 64, 4096]))
        damaged[start:start + length] = rng.integers(0, 256, len(damaged[start:start + length]), dtype=np.uint8).tobytes()
        path = tmp_path / f"{case}.h5"
        path.write_bytes(bytes(damaged))
        message = load_or_error(path, original)
        errors += message is not None
    assert errors > 30   # most ranges hit data or structure (free space in these files is small)


@pytest.mark.parametrize("model", SHIPPED)
def test_truncated_files_fail_clearly(tmp_path, model):
    source = WEIGHTS / f"{model}.h5"
    data = source.read_bytes()
    for fraction in (0.0, 0.001, 0.1, 0.5, 0.9, 0.999):
        path = tmp_path / f"{fraction}.h5"
        path.write_bytes(data[:int(len(data) * fraction)])
        with pytest.raises(ValueError, match="not a readable HDF5 file|damaged"):
            lrpref.load(path)


def edit(tmp_path, change):
    """A copy of the shipped CNN with ``change(h5py_file)`` applied."""
    path = tmp_path / "edited.h5"
    shutil.copy(WEIGHTS / "mnist_cnn.h5", path)
    with h5py.File(path, "r+") as f:
        change(f)
    return path


def replace(name, value):
    def change(f):
        del f[name]
        f[name] = value
    return change


def set_attr(name, key, value):
    def change(f):
        f[name].attrs[key] = value
    return change


def soft_link(name, target):
    def change(f):
        del f[name]
        f[name] = h5py.SoftLink(target)
    return change


EDITS = {
    "missing dataset": (lambda f: f.__delitem__("nodes/0003/weight"),
                        r"layer 0003 \('3'\): cannot build Conv2d: .*weight"),
    "weight of the wrong shape": (replace("nodes/0003/weight", np.zeros((32, 16, 5, 5), np.float32)),
                                  r"the layers do not fit the input shape \(1, 28, 28\) the file records: "
                                  r"layer 7 \('7'\): .*with 1568 on axis 1, got shape \(0, 1152\)"),
    "dense of the wrong width": (replace("nodes/0007/weight", np.zeros((64, 1000), np.float32)),
                                 r"the layers do not fit the input shape \(1, 28, 28\) the file records: layer 7 \('7'\): "
                                 r".*with 1000 on axis 1, got shape \(0, 1568\)"),
    "bias of the wrong length": (replace("nodes/0007/bias", np.zeros(63, np.float32)),
                                 r"layer 0007 \('7'\): .*bias must have shape \(64,\) .* got \(63,\)"),
    "complex weights": (replace("nodes/0009/weight", np.ones((10, 64), np.complex64)),
                        r"layer 0009 \('9'\): dataset 'weight' holds complex64; expected real numbers"),
    "strings": (replace("nodes/0009/bias", np.array([b"x"] * 10)),
                r"layer 0009 \('9'\): dataset 'bias' holds \|S1; expected real numbers"),
    "NaN weight": (replace("nodes/0009/bias", np.array([0.0] * 9 + [np.nan], np.float32)),
                   r"layer 0009 \('9'\): cannot build Dense: bias must be finite numbers, found 1 NaN or Inf "
                   r"value\(s\), the first at index \(9,\)"),
    "infinite weight": (replace("nodes/0000/weight", np.full((16, 1, 3, 3), np.inf, np.float32)),
                        r"layer 0000 \('0'\): cannot build Conv2d: Conv2d weight must be finite numbers, found 144"),
    "dangling soft link": (soft_link("nodes/0009/bias", "/nowhere"),
                           r"layer 0009 \('9'\): 'bias' is a link; expected a dataset"),
    "soft link to another array": (soft_link("nodes/0009/bias", "/nodes/0007/bias"),
                                   r"layer 0009 \('9'\): 'bias' is a link; expected a dataset"),
    "group for a dataset": (lambda f: (f.__delitem__("nodes/0009/bias"), f.create_group("nodes/0009/bias")),
                            r"layer 0009 \('9'\): 'bias' is a Group; expected a dataset of numbers"),
    "dataset for a layer's group": (replace("nodes/0008", np.zeros(3)),
                                    r"nodes/0008 is a Dataset; expected a group \(one per layer\)"),
    "no nodes": (lambda f: f.__delitem__("nodes"), "no 'nodes' group"),
    "stride 0": (set_attr("nodes/0000", "stride", np.array([0, 1])), "stride must be an integer >= 1, got 0"),
    "fractional stride": (set_attr("nodes/0002", "stride", np.array([1.5, 2.0])),
                          r"stride must be integers, got \(1.5, 2.0\)"),
    "pool padding as large as the kernel": (set_attr("nodes/0002", "padding", np.array([2, 0, 0, 0])),
                                            r"padding must be smaller than the kernel on each side.*"
                                            r"got padding \(2, 0, 0, 0\) for kernel \(2, 2\)"),
    "unknown layer type": (set_attr("nodes/0001", "type", "Sigmoid"), "unknown layer type 'Sigmoid'"),
    "input shape of another network": (set_attr("/", "input_shape", np.array([3, 28, 28])),
                                       r"do not fit the input shape \(3, 28, 28\) the file records: "
                                       r"layer 0 \('0'\): .*with 1 on axis 1"),
    "meta that is not an object": (set_attr("/", "meta", "[1, 2]"), "'meta' must be a JSON object, got list"),
    "meta that is not JSON": (set_attr("/", "meta", "{oops"), "Expecting property name"),
    "other format version": (set_attr("/", "format_version", 7), "lrpref format version 7"),
}


@pytest.mark.parametrize("name", EDITS)
def test_edited_files_fail_naming_the_layer_and_what_was_expected(tmp_path, name):
    change, message = EDITS[name]
    path = edit(tmp_path, change)
    with pytest.raises(ValueError, match=message) as err:
        lrpref.load(path)
    assert str(err.value).startswith(str(path))


def test_an_integer_dataset_is_a_faithful_edit(tmp_path):
    """Integers are real numbers: a dataset stored as int loads as those numbers (not an error, not garbage)."""
    path = edit(tmp_path, replace("nodes/0009/bias", np.arange(10, dtype=np.int32)))
    net = lrpref.load(path, dtype="float64")
    assert np.array_equal(to_host(net["9"].bias), np.arange(10.0))


@pytest.mark.parametrize("make, message", [
    (lambda: layers.Dense(np.array([[1.0, np.nan]])), r"Dense weight must be finite numbers, found 1 NaN or Inf "
                                                      r"value\(s\), the first at index \(0, 1\)"),
    (lambda: layers.Conv2d(np.ones((2, 1, 3, 3)), [0.0, -np.inf]), "bias must be finite numbers"),
    (lambda: layers.Dense(np.ones((2, 2), complex)), "Dense weight must be real numbers, got complex values"),
    (lambda: layers.Dense(np.array([["a", "b"]])), "Dense weight must be an array of real numbers, got dtype <U1"),
    (lambda: layers.Dense(np.zeros((0, 3))), r"must have 2 non-empty axes, got an array of shape \(0, 3\)"),
    (lambda: layers.BatchNorm2d(np.ones(2), np.ones(2), np.ones(2), np.array([1.0, -0.5])),
     "running_var must be >= 0 and running_var \\+ eps > 0 .* got a smallest running_var of -0.5"),
    (lambda: layers.BatchNorm2d(np.ones(2), np.ones(2), np.ones(2), np.ones(2), eps=-1e-5),
     "BatchNorm2d eps must be a number >= 0, got -1e-05"),
    (lambda: layers.BatchNorm2d(np.ones(2), np.ones(2), np.ones(2), np.zeros(2), eps=0.0),
     "got a smallest running_var of 0 with eps 0"),
    (lambda: layers.BatchNorm2d(np.ones(2), np.ones(2), np.ones(2), np.ones(2), eps=float("nan")),
     "BatchNorm2d eps must be a finite number, got nan"),
    (lambda: layers.MaxPool2d(2, padding=2), r"got padding \(2, 2, 2, 2\) for kernel \(2, 2\)"),
    (lambda: layers.AvgPool2d(3, padding=(0, 3)), r"got padding \(0, 0, 3, 3\) for kernel \(3, 3\)"),
    (lambda: layers.Conv2d(np.ones((2, 1, 3, 3)), stride=1.5), r"stride must be integers, got 1.5"),
    (lambda: layers.Conv2d(np.ones((2, 1, 3, 3)), stride="2"), r"stride must be integers, got '2'"),
    (lambda: layers.Dropout(1.5), "Dropout p must be a number <= 1, got 1.5"),
    (lambda: layers.AvgPool2d(2, count_include_pad="False"),
     "AvgPool2d count_include_pad must be True or False, got 'False' \\(str\\)"),
])
def test_layers_built_in_code_refuse_bad_weights(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_numpy_integers_and_integer_floats_are_strides():
    conv = layers.Conv2d(np.ones((2, 1, 3, 3)), stride=np.int64(2), padding=(np.int32(1), 1.0))
    assert conv.stride == (2, 2) and conv.padding == (1, 1, 1, 1)
    assert all(type(v) is int for v in conv.stride + conv.padding)   # saved as integer attributes


def test_networks_refuse_dtypes_and_shapes_without_a_meaning():
    """An int or complex network explained silently (integer weights; imaginary parts); an input shape of -1 was
    saved as a free axis."""
    net = lrpref.load(WEIGHTS / "mnist_mlp.h5")
    for dtype in ("int32", np.complex128, bool):
        with pytest.raises(TypeError, match=r"a network's arrays must be floating-point numbers, got dtype "):
            net.astype(dtype)
    assert net.dtype == np.float32
    for shape, message in (((0,), "input_shape entries must be an integer >= 1, got 0"),
                           ((-1,), "input_shape entries must be an integer >= 1, got -1"),
                           ((2.5,), r"input_shape entries must be an integer, got 2.5 \(float\)")):
        with pytest.raises((TypeError, ValueError), match=message):
            lrpref.Sequential([layers.Dense(np.ones((2, 3)))], input_shape=shape)


@pytest.mark.parametrize("call, message", [
    (lambda tmp: lrpref.load(tmp), r"is a folder; expected a model file \(HDF5\)"),
    (lambda tmp: lrpref.load(None), r"expected the path of a model file, got None \(NoneType\)"),
    (lambda tmp: lrpref.load(WEIGHTS / "mnist_mlp.h5", dtype="banana"),
     r"dtype must be one of \('float32', 'float64'\) or None, got 'banana'"),
    (lambda tmp: lrpref.save("mnist_mlp", tmp / "m.h5"), "save writes an lrpref Network, got str"),
])
def test_load_and_save_name_what_they_expected(tmp_path, call, message):
    with pytest.raises((TypeError, ValueError), match=message):
        call(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_meta_that_json_cannot_write_is_named(tmp_path):
    net = lrpref.load(WEIGHTS / "mnist_mlp.h5")
    net.meta["classes"] = np.arange(10)
    with pytest.raises(TypeError, match=r"net.meta must hold JSON values .*: Object of type ndarray is not JSON"):
        lrpref.save(net, tmp_path / "m.h5")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("layers_, params, shape, message", [
    ([["flat"], ["lin"]], {}, (4, 4, 1), r"Toolbox module 1: expected \['lin', n_out\], got \['lin'\]"),
    ([["max", 2]], {}, (4, 4, 1), r"Toolbox module 0: expected \['max', k, stride\], got \['max', 2\]"),
    ([["conv", 3, 3, 1, 2, 1]], {}, (4, 4, 1), r"Toolbox module 0 \(conv\): params has no entry 0, expected \(W, B\)"),
    ([["relu"]], {}, (4, 4), r"input_shape_hwc must be \(H, W, C\), got \(4, 4\)"),
])
def test_toolbox_descriptions_are_checked_entry_by_entry(layers_, params, shape, message):
    from lrpref import toolbox
    with pytest.raises(ValueError, match=message):
        toolbox.network(layers_, params, shape)
