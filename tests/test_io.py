"""The HDF5 schema: round trips and clear errors for bad files."""
import json

import h5py
import numpy as np
import pytest

from lrpref import Network, Node, Sequential, backend, layers, load, save


def every_layer_network(rng):
    """A network with every layer type and every hyper-parameter away from its default."""
    nodes = [
        Node("pad", layers.ZeroPad2d((1, 0, 2, 1)), ("input",)),
        Node("conv", layers.Conv2d(rng.normal(size=(4, 2, 3, 2)), rng.normal(size=4), (2, 1), (1, 0, 1, 1)), ("pad",)),
        Node("bn", layers.BatchNorm2d(rng.uniform(1, 2, 4), rng.normal(size=4), rng.normal(size=4),
                                      rng.uniform(1, 2, 4), eps=1e-3), ("conv",)),
        Node("relu", layers.ReLU(), ("bn",)),
        Node("skip", layers.Conv2d(rng.normal(size=(4, 4, 1, 1))), ("relu",)),
        Node("add", layers.Add(), ("skip", "relu")),
        Node("max", layers.MaxPool2d(3, 1, 1), ("add",)),
        Node("avg", layers.AvgPool2d(2, 1, (1, 0, 1, 0), count_include_pad=False), ("max",)),
        Node("adaptive", layers.AdaptiveAvgPool2d((3, 2)), ("avg",)),
        Node("flatten", layers.Flatten(), ("adaptive",)),
        Node("drop", layers.Dropout(0.25), ("flatten",)),
        Node("fc", layers.Dense(rng.normal(size=(5, 24)), rng.normal(size=5)), ("drop",)),
    ]
    meta = {"input_low": [-1.0, -2.0], "input_high": [1.0, 2.0], "classes": list("abcde"), "preprocessing": "mnist"}
    return Network(nodes, input_shape=(2, None, None), meta=meta)


def test_round_trip_keeps_every_array_and_hyper_parameter(tmp_path, rng):
    net = every_layer_network(rng)
    save(net, tmp_path / "net.h5")
    back = load(tmp_path / "net.h5", dtype=None)
    assert back.names == net.names and back.input_shape == net.input_shape and back.meta == net.meta
    for a, b in zip(net.nodes, back.nodes):
        assert type(a.layer) is type(b.layer) and a.inputs == b.inputs and a.layer.config() == b.layer.config()
        for key, array in a.layer.arrays().items():
            assert np.array_equal(backend.to_host(array), backend.to_host(b.layer.arrays()[key]))
    x = rng.normal(size=(2, 2, 6, 5))
    assert np.array_equal(backend.to_host(net.forward(x)), backend.to_host(back.forward(x)))


def test_the_file_follows_the_documented_schema(tmp_path, rng):
    save(every_layer_network(rng), tmp_path / "net.h5")
    with h5py.File(tmp_path / "net.h5") as f:
        assert f.attrs["format"] == "lrpref" and f.attrs["format_version"] == 1
        assert list(f.attrs["input_shape"]) == [2, -1, -1] and json.loads(f.attrs["meta"])["classes"] == list("abcde")
        conv = f["nodes/0001"]
        assert conv.attrs["type"] == "Conv2d" and list(conv.attrs["inputs"]) == ["pad"]
        assert list(conv.attrs["stride"]) == [2, 1] and list(conv.attrs["padding"]) == [1, 0, 1, 1]
        assert conv["weight"].shape == (4, 2, 3, 2) and conv["bias"].shape == (4,)
        assert list(f["nodes/0005"].attrs["inputs"]) == ["skip", "relu"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_load_casts_to_the_requested_dtype(tmp_path, rng, dtype):
    save(every_layer_network(rng), tmp_path / "net.h5")
    net = load(tmp_path / "net.h5", dtype=dtype)
    assert {str(a.dtype) for layer in net.layers for a in layer.arrays().values()} == {dtype}


def write_node(path, **node):
    with h5py.File(path, "w") as f:
        f.attrs["format"], f.attrs["format_version"] = "lrpref", 1
        group = f.create_group("nodes/0000")
        group.attrs["name"], group.attrs["inputs"] = "layer", ["input"]
        for key, value in node.items():
            if isinstance(value, np.ndarray):
                group.create_dataset(key, data=value)
            else:
                group.attrs[key] = value


def test_bad_files_give_clear_errors(tmp_path, rng):
    with pytest.raises(FileNotFoundError, match="no such model file"):
        load(tmp_path / "missing.h5")
    (tmp_path / "text.h5").write_text("not a model")
    with pytest.raises(ValueError, match="is not a readable HDF5 file"):
        load(tmp_path / "text.h5")
    save(every_layer_network(rng), tmp_path / "net.h5")
    (tmp_path / "truncated.h5").write_bytes((tmp_path / "net.h5").read_bytes()[:3000])
    with pytest.raises(ValueError, match="truncated.h5"):
        load(tmp_path / "truncated.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(ValueError, match="neither an lrpref network .* nor a Keras model"):
        load(tmp_path / "other.h5")
    write_node(tmp_path / "unknown.h5", type="Softmax")
    with pytest.raises(ValueError, match=r"layer 0000 \('layer'\): unknown layer type 'Softmax'; supported: Dense, Conv2d"):
        load(tmp_path / "unknown.h5")
    write_node(tmp_path / "shape.h5", type="Dense", weight=np.ones((3, 4)), bias=np.ones(5))
    with pytest.raises(ValueError, match=r"layer 0000 \('layer'\): cannot build Dense: bias must have shape \(3,\)"):
        load(tmp_path / "shape.h5")
    write_node(tmp_path / "missing_weight.h5", type="Dense")
    with pytest.raises(ValueError, match="cannot build Dense"):
        load(tmp_path / "missing_weight.h5")
    with pytest.raises(ValueError, match="dtype must be one of"):
        load(tmp_path / "net.h5", dtype="int8")


def test_a_graph_reading_an_unknown_tensor_is_rejected(tmp_path):
    save(Sequential([layers.ReLU(), layers.ReLU()]), tmp_path / "net.h5")
    with h5py.File(tmp_path / "net.h5", "a") as f:
        f["nodes/0001"].attrs["inputs"] = ["nowhere"]
    with pytest.raises(ValueError, match=r"node 1 \('1'\) reads \['nowhere'\], which no earlier node produces"):
        load(tmp_path / "net.h5")
