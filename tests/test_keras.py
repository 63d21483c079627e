"""Keras HDF5 files written by Keras itself (Keras 3 on its PyTorch backend), random weights, full size.

Keras computes convolutions in float64 when ``floatx`` is float64, but its type promotion gives float32 for
float64 matrix products and for BatchNormalization's ``variance + epsilon`` (``result_type("float64",
"float64") == "float32"``). So in float64 the convolutional part agrees to 1e-10 (all of VGG16's, and every
ResNet50 convolution on its Keras input: float64 rounding of sums of at most 4,608 terms, about 1e-14 times the
condition), and whole models as far as float32 matrix products allow.

Tolerances of whole models come from the logits' measured condition (tests/precision.py): two float32 forward
passes of the same float32 weights differ by at most twice precision.float32_bound, and Keras' float64 model
(float32 where its promotion says so) from lrpref's float64 one by once that bound. The forward pass is
continuous, so ReLU and max-pool flips need no check.
"""
import json
import subprocess
import sys
from contextlib import contextmanager

import h5py
import keras
import numpy as np
import pytest

import lrpref
import precision
from lrpref import layers
from lrpref.backend import asarray, to_host
from lrpref.keras import SUPPORTED, application_config, parse_config

APPLICATIONS = {"vgg16": keras.applications.VGG16, "vgg19": keras.applications.VGG19,
                "resnet50": keras.applications.ResNet50, "resnet101": keras.applications.ResNet101,
                "resnet152": keras.applications.ResNet152}


@contextmanager
def floatx(dtype):
    """Keras builds layers with its global dtype policy and converts inputs with its floatx."""
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)
    try:
        yield
    finally:
        keras.config.set_floatx("float32")
        keras.config.set_dtype_policy("float32")


def keras_model(arch, dtype, path):
    """keras.applications ``arch`` with random weights and random BatchNorm statistics, saved as .h5."""
    with floatx(dtype):
        keras.utils.set_random_seed(0)
        model = APPLICATIONS[arch](weights=None)
        rng = np.random.default_rng(0)
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                c = layer.gamma.shape[0]
                layer.gamma.assign(rng.uniform(0.5, 1.5, c))
                layer.beta.assign(rng.normal(0, 0.1, c))
                layer.moving_mean.assign(rng.normal(0, 0.1, c))
                layer.moving_variance.assign(rng.uniform(0.5, 1.5, c))
        model.save(path)
    return model


def logits(model, x):
    """The Keras model's output before its softmax, computed in the dtype of ``x``."""
    model.layers[-1].activation = keras.activations.linear
    try:
        with floatx(str(x.dtype)):
            return np.asarray(model.predict(x, verbose=0))
    finally:
        model.layers[-1].activation = keras.activations.softmax


def images(dtype, n=2):
    return np.random.default_rng(1).uniform(-120, 140, size=(n, 224, 224, 3)).astype(dtype)


def relative(a, b):
    a, b = to_host(a), to_host(b)   # the network may live on CuPy (LRPREF_BACKEND=cupy): compare on the host
    return float(np.abs(a - b).max() / np.abs(b).max())


def agree(net, load64, x, expected, sides=2):
    """Per sample, lrpref's logits of the NCHW input ``x`` are within ``sides`` float32 bounds of ``expected``."""
    bound = sides * precision.float32_bound(net, precision.forward_condition(load64, x))
    error = precision.per_sample_error(net.forward(x), expected)
    return (error <= bound).all()


def float64_file(path):
    return lambda: lrpref.load(path, dtype="float64")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Keras models and their files, built once per (arch, dtype)."""
    cache = {}

    def get(arch, dtype):
        if (arch, dtype) not in cache:
            path = tmp_path_factory.mktemp("keras") / f"{arch}_{dtype}.h5"
            cache[arch, dtype] = keras_model(arch, dtype, path), path
        return cache[arch, dtype]
    return get


@pytest.mark.parametrize("arch", ["vgg16", "resnet50"])
def test_float32_logits_equal_keras(saved, arch):
    model, path = saved(arch, "float32")
    net = lrpref.load(path)
    x = images("float32")
    assert net.dtype == np.float32
    assert agree(net, float64_file(path), x.transpose(0, 3, 1, 2), logits(model, x))
    assert net.meta["had_softmax"] and net.meta["preprocessing"] == "caffe"
    assert net.meta["composite"] == "epsilon_gamma_box"   # what `lrpref explain` uses for it


@pytest.mark.parametrize("arch", ["vgg19", "resnet101", "resnet152"])
def test_other_applications_load_out_of_the_box(saved, arch):
    model, path = saved(arch, "float32")
    x = images("float32", 1)
    assert agree(lrpref.load(path), float64_file(path), x.transpose(0, 3, 1, 2), logits(model, x))


def test_float64_vgg16(saved):
    model, path = saved("vgg16", "float64")
    net = lrpref.load(path, dtype="float64")
    x = images("float64")
    with floatx("float64"):
        features = keras.Model(model.inputs, model.get_layer("block5_pool").output).predict(x, verbose=0)
    ours = net.activations(x.transpose(0, 3, 1, 2))["block5_pool"]
    assert relative(ours.transpose(0, 2, 3, 1), np.asarray(features)) < 1e-10
    assert agree(net, float64_file(path), x.transpose(0, 3, 1, 2), logits(model, x), sides=1)


def test_float64_resnet50(saved):
    model, path = saved("resnet50", "float64")
    net = lrpref.load(path, dtype="float64")
    x = images("float64", 1)
    assert agree(net, float64_file(path), x.transpose(0, 3, 1, 2), logits(model, x), sides=1)
    convs = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    with floatx("float64"):
        probe = keras.Model(model.inputs, [model.get_layer(n).input for n in convs]
                            + [model.get_layer(n).output for n in convs])
        values = probe.predict(x, verbose=0)
    for name, keras_in, keras_out in zip(convs, values[:len(convs)], values[len(convs):]):
        ours = net[name].forward(asarray(np.asarray(keras_in).transpose(0, 3, 1, 2), net.xp))   # onto net's backend
        assert relative(ours.transpose(0, 2, 3, 1), np.asarray(keras_out)) < 1e-10, name


def test_options_are_read_from_the_config(saved):
    """Keras ResNet50 is not torchvision's: stride on the first 1x1 convolution, biased convolutions,
    BatchNorm epsilon 1.001e-5, explicit zero padding before the stem convolution and pool."""
    _, path = saved("resnet50", "float32")
    net = lrpref.load(path)
    first = net["conv3_block1_1_conv"]
    assert first.kernel_size == (1, 1) and first.stride == (2, 2) and net["conv3_block1_2_conv"].stride == (1, 1)
    assert net["conv3_block1_2_conv"].padding == (1, 1, 1, 1) and np.abs(to_host(first.bias)).max() == 0
    assert net["conv1_bn"].eps == 1.001e-5 and net["conv1_pad"].padding == (3, 3, 3, 3)
    assert net["pool1_pool"].kernel_size == (3, 3) and net["pool1_pool"].padding == (0, 0, 0, 0)
    names = net.names
    add = net.nodes[names.index("conv2_block1_add")]
    assert add.inputs == ("conv2_block1_3_bn", "conv2_block1_0_bn")   # main branch first, then the shortcut
    assert net.nodes[names.index("conv2_block2_add")].inputs == ("conv2_block2_3_bn", "conv2_block1_out")


@pytest.mark.parametrize("arch", list(APPLICATIONS))
def test_generated_application_configs_match_keras(saved, arch):
    """The configs lrpref writes for weights-only files describe what Keras builds: same layers, classes,
    inputs and every option the converter reads."""
    _, path = saved(arch, "float32")
    with h5py.File(path) as f:
        _, theirs, _ = parse_config(json.loads(f.attrs["model_config"]))
    _, ours, _ = parse_config(application_config(arch))
    input_name = {theirs[0].name: ours[0].name}
    theirs = {layer.name: layer for layer in theirs[1:]}   # Keras stores its own topological order
    assert {l.name: (l.cls, l.inputs) for l in ours[1:]} == {
        l.name: (l.cls, [input_name.get(n, n) for n in l.inputs]) for l in theirs.values()}
    options = ("filters", "kernel_size", "strides", "padding", "activation", "use_bias", "pool_size", "units",
               "epsilon", "axis")
    for a in ours[1:]:
        b = theirs[a.name]
        for key in options:
            if key in a.config or key in b.config:
                assert _norm(a.config.get(key)) == _norm(b.config.get(key)), (a.name, key)


def _norm(value):
    return json.loads(json.dumps(value)) if value is not None else None


@pytest.mark.parametrize("arch", ["vgg16", "resnet50"])
def test_weights_only_files(saved, tmp_path, arch):
    """The published keras-applications layout: layer groups at the root, no config."""
    model, path = saved(arch, "float32")
    weights = tmp_path / "weights.h5"
    with h5py.File(path) as src, h5py.File(weights, "w") as dst:
        for key, value in src["model_weights"].attrs.items():
            dst.attrs[key] = value
        for name in src["model_weights"]:
            src.copy(src["model_weights"][name], dst, name)
    net = getattr(lrpref.models, arch)(weights=weights, layout="keras" if arch == "resnet50" else None)
    x = images("float32", 1)
    load64 = lambda: getattr(lrpref.models, arch)(weights=weights, dtype="float64",  # noqa: E731
                                                  layout="keras" if arch == "resnet50" else None)
    assert agree(net, load64, x.transpose(0, 3, 1, 2), logits(model, x))
    with pytest.raises(ValueError, match="holds Keras weights without an architecture"):
        lrpref.load(weights)
    with pytest.raises(ValueError, match="holds the keras layout, but layout='torchvision'"):
        getattr(lrpref.models, arch)(weights=weights, layout="torchvision")


def keras2_file(model, path):
    """The model as Keras 2 wrote it: list-style inbound_nodes, batch_input_shape, ':0' weight names."""
    config = json.loads(model.to_json())
    for layer in config["config"]["layers"]:
        layer.pop("module", None)
        layer.pop("registered_name", None)
        c = layer["config"]
        if layer["class_name"] == "InputLayer":
            c["batch_input_shape"] = c.pop("batch_shape")
        tensors = [] if not layer["inbound_nodes"] else layer["inbound_nodes"][0]["args"]
        flat = tensors[0] if tensors and isinstance(tensors[0], list) else tensors
        layer["inbound_nodes"] = [[[t["config"]["keras_history"][0], 0, 0, {}] for t in flat]] if flat else []
    config["class_name"] = "Model"
    config["config"]["input_layers"] = [config["config"]["input_layers"]]
    config["config"]["output_layers"] = [config["config"]["output_layers"]]
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config).encode()
        f.attrs["keras_version"] = b"2.2.4"
        group = f.create_group("model_weights")
        group.attrs["layer_names"] = [layer.name.encode() for layer in model.layers]
        for layer in model.layers:
            g = group.create_group(layer.name)
            names = []
            for variable in layer.weights:
                name = f"{layer.name}/{variable.path.split('/')[-1]}:0"
                g.create_dataset(name, data=np.asarray(variable.numpy()))
                names.append(name.encode())
            g.attrs["weight_names"] = names


def test_keras2_format(tmp_path):
    """Keras 2's layout and config format (Functional model with an Add, activations inside layers)."""
    inputs = keras.Input((12, 10, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="c1")(inputs)
    y = keras.layers.Conv2D(4, 1, name="c2")(x)
    y = keras.layers.BatchNormalization(name="bn", center=False)(y)
    z = keras.layers.Add(name="add")([x, y])
    # stride 1 keeps "same" symmetric: for asymmetric "same", Keras 3 on PyTorch averages replicated edge
    # pixels, unlike TensorFlow (and lrpref), which averages the pixels inside the image
    z = keras.layers.AveragePooling2D(3, strides=1, padding="same", name="avg")(z)
    z = keras.layers.Flatten(name="flat")(z)
    out = keras.layers.Dense(5, activation="softmax", name="out")(keras.layers.Dropout(0.3, name="drop")(z))
    model = keras.Model(inputs, out, name="mixed")
    rng = np.random.default_rng(0)
    for w in model.weights:
        w.assign(rng.uniform(0.5, 1.5, w.shape) if "variance" in w.path else rng.normal(size=w.shape))
    keras2_file(model, tmp_path / "k2.h5")
    net = lrpref.load(tmp_path / "k2.h5", dtype="float64")
    x = rng.normal(size=(3, 12, 10, 3)).astype(np.float32)
    assert agree(net, float64_file(tmp_path / "k2.h5"), x.transpose(0, 3, 1, 2), logits(model, x), sides=1)
    assert net.nodes[net.names.index("add")].inputs == ("bn", "c1.relu") and net["c1"].padding == (0, 1, 0, 1)


def test_sequential_and_channels_first(tmp_path):
    keras.config.set_image_data_format("channels_first")
    try:
        model = keras.Sequential([keras.Input((3, 9, 8)), keras.layers.Conv2D(4, 3, activation="relu"),
                                  keras.layers.MaxPooling2D(2, padding="same"), keras.layers.ZeroPadding2D(((1, 0), (0, 2))),
                                  keras.layers.ReLU(), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
        model.save(tmp_path / "seq.h5")
        x = np.random.default_rng(0).normal(size=(2, 3, 9, 8)).astype(np.float32)
        expected = np.asarray(model.predict(x, verbose=0))
    finally:
        keras.config.set_image_data_format("channels_last")
    net = lrpref.load(tmp_path / "seq.h5")
    assert net.input_shape == (3, 9, 8) and agree(net, float64_file(tmp_path / "seq.h5"), x, expected)


def test_unsupported_layers_and_mismatched_weights(tmp_path, saved):
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.LeakyReLU(name="leaky")])
    model.save(tmp_path / "leaky.h5")
    with pytest.raises(ValueError, match=r"Keras layer 'leaky' of class 'LeakyReLU' is not supported; supported: "
                                         + ", ".join(SUPPORTED[:3])):
        lrpref.load(tmp_path / "leaky.h5")
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, activation="tanh", name="c")])
    model.save(tmp_path / "tanh.h5")
    with pytest.raises(ValueError, match="Keras layer 'c' \\(Conv2D\\): activation 'tanh' is not supported"):
        lrpref.load(tmp_path / "tanh.h5")
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, dilation_rate=2, name="d")])
    model.save(tmp_path / "dilated.h5")
    with pytest.raises(ValueError, match="Keras Conv2D 'd': dilation_rate"):
        lrpref.load(tmp_path / "dilated.h5")
    _, path = saved("vgg16", "float32")
    broken = tmp_path / "broken.h5"
    broken.write_bytes(path.read_bytes())
    with h5py.File(broken, "a") as f:
        group = f["model_weights/block1_conv2"]
        name = [n for n in group.attrs["weight_names"] if n.endswith("kernel")][0]
        del group[name]
        group[name] = np.zeros((3, 3, 64, 32), np.float32)
    with pytest.raises(ValueError, match=r"Keras Conv2D 'block1_conv2': kernel of shape \(3, 3, 64, 32\) does not "
                                         r"match the config \(kernel_size \(3, 3\), filters 64\)"):
        lrpref.load(broken)


def test_vgg16_loads_within_twice_its_file_size(saved):
    """Peak memory of loading the 553 MB float32 VGG16 file, in a fresh process, above the process's memory
    after the imports: below twice the file size (measured on the process's maximum resident set)."""
    _, path = saved("vgg16", "float32")
    script = ("import resource, sys, lrpref; base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
              "net = lrpref.load(sys.argv[1]); "
              "print(base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, net.dtype)")
    out = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True)
    base, peak, dtype = out.stdout.split()
    size_kib = path.stat().st_size / 1024
    assert dtype == "float32" and int(peak) - int(base) < 2 * size_kib, (base, peak, size_kib)


def test_nhwc_input_is_caught_with_a_hint(saved):
    _, path = saved("resnet50", "float32")
    with pytest.raises(ValueError, match="channels-last"):
        lrpref.load(path).forward(images("float32", 1))


def test_bounds_for_explaining_come_from_the_preprocessing(saved):
    _, path = saved("resnet50", "float32")
    net = lrpref.load(path)
    rule = lrpref.composites.get("epsilon_gamma_box", net=net).rules(net)[net.names.index("conv1_conv")]
    assert rule.low == [-103.939, -116.779, -123.68] and rule.high == [151.061, 138.221, 131.32]
    net = lrpref.load(path, preprocessing="torchvision")
    assert net.meta["preprocessing"] == "torchvision" and np.isclose(net.input_bounds[0][0], -0.485 / 0.229)
    assert isinstance(net["conv1_conv"], layers.Conv2d)


def test_otsuki2024_on_keras_resnet50(saved):
    """The authors' 2x2 average pool does not fit Keras' explicitly padded stem pool: a clear error; the max
    pool's own windows work, and the splits conserve relevance through the blocks."""
    _, path = saved("resnet50", "float32")
    net = lrpref.load(path, dtype="float64")
    x = images("float64", 1).transpose(0, 3, 1, 2)
    with pytest.raises(ValueError, match="average pooling 2x2 in place of MaxPool2d.*maxpool='average'"):
        lrpref.explain(net, x, composite="otsuki2024")
    e = lrpref.explain(net, x, composite="otsuki2024", maxpool="average", stabilizer=1e-12)
    report = e.conservation()
    assert len(report.block_names) == 16 and report.block_names[0] == "conv2_block1_add"
    assert np.isfinite(report.block_in).all() and (e.relevance >= 0).all()


def test_keras_weights_that_are_not_numbers_are_named(tmp_path):
    """A string dataset where a kernel belongs: named by layer (it was NumPy's "could not convert string to float")."""
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="d")])
    model.save(tmp_path / "d.h5")
    with h5py.File(tmp_path / "d.h5", "a") as f:
        group = f["model_weights/d"]
        name = [n for n in group.attrs["weight_names"] if n.endswith("kernel")][0]
        del group[name]
        group[name] = np.array([b"x"] * 3)
    with pytest.raises(ValueError, match=r"d.h5: Keras layer 'd' \(Dense\) weight 0 must be an array of real numbers, "
                                         r"got dtype \|S1"):
        lrpref.load(tmp_path / "d.h5")
