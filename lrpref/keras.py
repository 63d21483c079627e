"""Keras HDF5 files: full models (Keras 2, and Keras 3's legacy ``.h5``) and weights-only files.

A full model file holds ``model_config`` (JSON) and the group ``model_weights``; each layer's group lists its
arrays in the attribute ``weight_names``. A weights-only file (the layout of the published keras-applications
weight files) has those layer groups at its root and no config: :func:`application_config` writes the config
of a ``keras.applications`` architecture for it.

Everything is converted once, at load time:

- channels-last kernels to PyTorch layout: Conv2D (kh, kw, in, out) to (out, in, kh, kw), Dense (in, out) to
  (out, in); the input becomes NCHW;
- the Dense reading a Flatten of a feature map gets its rows permuted from Keras' HWC order to lrpref's CHW;
- activations inside Conv2D/Dense become their own ReLU layers (named ``<layer>.relu``); "same" padding
  becomes explicit padding, with TensorFlow's rule (the odd pixel at the bottom/right); average pooling
  with "same" padding averages the pixels inside the image, as TensorFlow does (Keras 3 on PyTorch instead
  averages replicated edge pixels where the padding is asymmetric);
- a softmax at the output is removed, so that ``forward`` returns logits (``meta["had_softmax"] = True``);
- an Add reads the branch computed last as its main input and the other as its skip.

Every option is read from the config; unsupported layers and options are refused with their names.
"""
import json
from dataclasses import dataclass

import numpy as np

from .layers import AdaptiveAvgPool2d, Add, AvgPool2d, BatchNorm2d, Conv2d, Dense, Dropout, Flatten, MaxPool2d, \
    ReLU, ZeroPad2d
from .checks import real_array
from .network import INPUT, Network, Node
from .preprocessing import get as get_preprocessing

SUPPORTED = ("InputLayer", "Conv2D", "Dense", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D",
             "Flatten", "BatchNormalization", "Activation", "ReLU", "ZeroPadding2D", "Add", "Dropout")
APPLICATIONS = ("vgg16", "vgg19", "resnet50", "resnet101", "resnet152")   # keras.applications, "caffe" inputs


@dataclass
class KerasLayer:
    """One layer of a Keras config: its class, name, options and the names of the layers it reads."""

    cls: str
    name: str
    config: dict
    inputs: list


def parse_config(model_config):
    """The layers of a Keras model config (Sequential or Functional; Keras 2 or 3), in order.

    Returns
    -------
    name : str
    layers : list of KerasLayer
    output : str
        The name of the output layer.
    """
    cls, config = model_config["class_name"], model_config["config"]
    if cls == "Sequential":
        entries = config if isinstance(config, list) else config["layers"]   # Keras 2.2 wrote a bare list
        layers, previous = [], INPUT
        for entry in entries:
            name = entry["config"]["name"]
            inputs = [] if entry["class_name"] == "InputLayer" else [previous]
            if not layers and entry["class_name"] != "InputLayer":   # the first layer carries the input shape
                layers.append(KerasLayer("InputLayer", INPUT, entry["config"], []))
            layers.append(KerasLayer(entry["class_name"], name, entry["config"], inputs))
            previous = name
        return (config.get("name", "sequential") if isinstance(config, dict) else "sequential"), layers, previous
    if cls not in ("Functional", "Model"):
        raise ValueError(f"unsupported Keras model class {cls!r}: expected Sequential or Functional")
    layers = [KerasLayer(e["class_name"], e.get("name", e["config"]["name"]), e["config"], _inbound(e))
              for e in config["layers"]]
    outputs = config["output_layers"]
    outputs = [outputs] if outputs and isinstance(outputs[0], str) else outputs
    if len(outputs) != 1:
        raise ValueError(f"Keras models with {len(outputs)} outputs are not supported; lrpref explains one output")
    return config.get("name", "model"), layers, outputs[0][0]


def _inbound(entry):
    """Names of the layers a Functional layer reads: Keras 2 ``[[[name, 0, 0, {}], ...]]`` or Keras 3's dicts."""
    nodes = entry.get("inbound_nodes", [])
    if not nodes:
        return []
    if len(nodes) > 1:
        raise ValueError(f"layer {entry['config']['name']!r} is called {len(nodes)} times; shared layers are not supported")
    node = nodes[0]
    if isinstance(node, dict):
        tensors, pending = [], list(node["args"])
        while pending:
            item = pending.pop(0)
            if isinstance(item, list):
                pending[:0] = item
            elif isinstance(item, dict) and item.get("class_name") == "__keras_tensor__":
                tensors.append(item["config"]["keras_history"][0])
        return tensors
    return [tensor[0] for tensor in node]


def read_weights(group):
    """``{layer name: [h5py datasets in weight_names order]}`` (read lazily, one layer at a time)."""
    weights = {}
    for name in group.attrs.get("layer_names", []):
        name = name.decode() if isinstance(name, bytes) else name
        layer = group[name]
        names = [n.decode() if isinstance(n, bytes) else n for n in layer.attrs.get("weight_names", [])]
        weights[name] = [layer[n] for n in names]
    return weights


class _Converter:
    """Builds lrpref nodes from Keras layers, one layer at a time."""

    def __init__(self, layers, weights, dtype, output):
        self.weights, self.dtype, self.output = weights, dtype, output
        self.nodes, self.tensor = [], {}   # lrpref nodes; Keras layer name -> lrpref tensor name
        self.flattened = {}                # lrpref tensor -> (C, H, W) of the channels-last map it flattens
        self.input_shape, self.had_softmax = None, False
        formats = {layer.config.get("data_format") or "channels_last" for layer in layers
                   if layer.cls in ("Conv2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D",
                                    "Flatten", "ZeroPadding2D")}
        if not formats <= {"channels_last", "channels_first"} or len(formats) > 1:
            raise ValueError(f"Keras data_format must be one of channels_last, channels_first for the whole model, "
                             f"got {sorted(formats)}")
        self.channels_last = formats != {"channels_first"}

    def arrays(self, layer, count):
        """The layer's arrays as NumPy, checked for number; in the requested dtype."""
        data = self.weights.get(layer.name, [])
        if len(data) != count:
            raise ValueError(f"Keras layer {layer.name!r} ({layer.cls}) has {len(data)} weight arrays, expected {count}")
        data = [real_array(d[()], f"Keras layer {layer.name!r} ({layer.cls}) weight {k}", host=True)
                for k, d in enumerate(data)]
        return [d.astype(self.dtype, copy=False) if self.dtype else d for d in data]

    def add(self, name, layer, inputs):
        self.nodes.append(Node(name, layer, tuple(inputs)))
        return name

    def shape(self, tensor):
        """The shape of one sample of ``tensor``, by running the network built so far on zeros."""
        if tensor == INPUT:
            return self.input_shape
        if any(s is None for s in self.input_shape):
            raise ValueError("this Keras model needs a fixed input size here (a Flatten, or 'same' padding with "
                             "strides), but its input shape is not fixed")
        net = Network(self.nodes, self.input_shape, backend="numpy")   # shapes only: on the host
        return net.activations(np.zeros((1,) + self.input_shape, dtype=self.dtype or np.float32))[tensor].shape[1:]

    def same_padding(self, layer, tensor, kernel, stride):
        """TF's "same": total ``max((ceil(n / s) - 1) s + k - n, 0)``, the odd pixel at the bottom/right."""
        if stride == (1, 1):
            sizes = (None, None)
        else:
            sizes = self.shape(tensor)[1:]
        pads = []
        for n, k, s in zip(sizes, kernel, stride):
            total = k - 1 if s == 1 else max((-(-n // s) - 1) * s + k - n, 0)
            pads += [total // 2, total - total // 2]
        return tuple(pads)

    def activation(self, layer, x, activation, name):
        """Apply a layer's activation to tensor ``x`` (a ReLU node called ``name``); returns the output tensor."""
        activation = activation or "linear"
        if activation == "relu":
            return self.add(name, ReLU(), (x,))
        if activation == "linear":
            return x
        if activation == "softmax" and layer.name == self.output:
            self.had_softmax = True
            return x
        raise ValueError(f"Keras layer {layer.name!r} ({layer.cls}): activation {activation!r} is not supported "
                         "(relu and linear are, and softmax at the output, which is removed)")

    def convert(self, layer):
        if layer.cls not in SUPPORTED:
            raise ValueError(f"Keras layer {layer.name!r} of class {layer.cls!r} is not supported; "
                             f"supported: {', '.join(SUPPORTED)}")
        inputs = [self.tensor[name] for name in layer.inputs]
        c, name = layer.config, layer.name
        if layer.cls == "InputLayer":
            shape = c.get("batch_shape") or c.get("batch_input_shape")
            if shape is None:
                raise ValueError(f"Keras input layer {name!r} has no input shape")
            shape = tuple(shape[1:])
            self.input_shape = (shape[-1],) + shape[:-1] if len(shape) == 3 and self.channels_last else shape
            return INPUT
        if layer.cls == "Conv2D":
            return self.conv2d(layer, inputs[0])
        if layer.cls == "Dense":
            return self.dense(layer, inputs[0])
        if layer.cls in ("MaxPooling2D", "AveragePooling2D"):
            kernel = _pair(c.get("pool_size", (2, 2)))
            stride = _pair(c.get("strides") or kernel)
            padding = self.same_padding(layer, inputs[0], kernel, stride) if c.get("padding") == "same" else 0
            pool = MaxPool2d(kernel, stride, padding) if layer.cls == "MaxPooling2D" else \
                AvgPool2d(kernel, stride, padding, count_include_pad=False)
            return self.add(name, pool, inputs)
        if layer.cls == "GlobalAveragePooling2D":
            if c.get("keepdims", False):
                return self.add(name, AdaptiveAvgPool2d(1), inputs)
            self.add(f"{name}.pool", AdaptiveAvgPool2d(1), inputs)
            return self.add(name, Flatten(), (f"{name}.pool",))
        if layer.cls == "Flatten":
            out = self.add(name, Flatten(), inputs)
            shape = self.shape(inputs[0])
            if self.channels_last and len(shape) == 3:
                self.flattened[out] = shape
            return out
        if layer.cls == "BatchNormalization":
            return self.batchnorm(layer, inputs[0])
        if layer.cls == "Activation":
            return self.activation(layer, inputs[0], c["activation"], name)
        if layer.cls == "ReLU":
            if c.get("max_value") is not None or c.get("negative_slope", 0) or c.get("threshold", 0):
                raise ValueError(f"Keras ReLU {name!r}: only the plain ReLU is supported (max_value, negative_slope "
                                 "and threshold must be unset)")
            return self.add(name, ReLU(), inputs)
        if layer.cls == "ZeroPadding2D":
            return self.add(name, ZeroPad2d(_padding4(c.get("padding", 1))), inputs)
        if layer.cls == "Dropout":
            if inputs[0] in self.flattened:
                self.flattened[name] = self.flattened[inputs[0]]
            return self.add(name, Dropout(c.get("rate", 0.5)), inputs)
        if len(inputs) != 2:
            raise ValueError(f"Keras Add {name!r} has {len(inputs)} inputs; lrpref's Add takes two")
        order = [n.name for n in self.nodes]
        main, skip = sorted(inputs, key=lambda t: -1 if t == INPUT else order.index(t), reverse=True)
        return self.add(name, Add(), (main, skip))

    def conv2d(self, layer, x):
        c = layer.config
        for option, default in (("dilation_rate", (1, 1)), ("groups", 1)):
            if _pair(c.get(option, default)) != _pair(default):
                raise ValueError(f"Keras Conv2D {layer.name!r}: {option}={c[option]} is not supported")
        use_bias = c.get("use_bias", True)
        arrays = self.arrays(layer, 2 if use_bias else 1)
        kernel = arrays[0]
        filters, size = c.get("filters"), _pair(c["kernel_size"])
        if kernel.shape[:2] != size or (filters is not None and kernel.shape[3] != filters):
            raise ValueError(f"Keras Conv2D {layer.name!r}: kernel of shape {kernel.shape} does not match the config "
                             f"(kernel_size {size}, filters {filters})")
        stride = _pair(c.get("strides", (1, 1)))
        padding = self.same_padding(layer, x, size, stride) if c.get("padding") == "same" else 0
        weight = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
        bias = _check_bias(layer, arrays[1], kernel.shape[3]) if use_bias else None
        conv = self.add(layer.name, Conv2d(weight, bias, stride=stride, padding=padding), (x,))
        return self.activation(layer, conv, c.get("activation"), f"{layer.name}.relu")

    def dense(self, layer, x):
        c = layer.config
        use_bias = c.get("use_bias", True)
        arrays = self.arrays(layer, 2 if use_bias else 1)
        kernel = arrays[0]
        if c.get("units") is not None and kernel.shape[1] != c["units"]:
            raise ValueError(f"Keras Dense {layer.name!r}: kernel of shape {kernel.shape} does not match units "
                             f"{c['units']}")
        if x in self.flattened:   # rows in Keras' H, W, C order: reorder to C, H, W while transposing
            channels, height, width = self.flattened[x]
            if kernel.shape[0] != channels * height * width:
                raise ValueError(f"Keras Dense {layer.name!r}: kernel of shape {kernel.shape} does not fit the "
                                 f"flattened input of {channels * height * width}")
            weight = kernel.reshape(height, width, channels, -1).transpose(3, 2, 0, 1).reshape(kernel.shape[1], -1)
        else:
            weight = np.ascontiguousarray(kernel.T)
        bias = _check_bias(layer, arrays[1], kernel.shape[1]) if use_bias else None
        dense = self.add(layer.name, Dense(weight, bias), (x,))
        return self.activation(layer, dense, c.get("activation"), f"{layer.name}.relu")

    def batchnorm(self, layer, x):
        c = layer.config
        axis = c.get("axis", -1)
        axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
        channel_axes = (-1, 3) if self.channels_last else (1,)
        if axis not in channel_axes:
            raise ValueError(f"Keras BatchNormalization {layer.name!r}: axis {axis} is not the channel axis")
        scale, center = c.get("scale", True), c.get("center", True)
        arrays = self.arrays(layer, 2 + scale + center)
        gamma = arrays.pop(0) if scale else np.ones_like(arrays[-1])
        beta = arrays.pop(0) if center else np.zeros_like(arrays[-1])
        return self.add(layer.name, BatchNorm2d(gamma, beta, arrays[0], arrays[1], eps=c.get("epsilon", 1e-3)), (x,))


def _pair(value):
    return tuple(value) if isinstance(value, (list, tuple)) else (value, value)


def _padding4(value):
    """Keras ZeroPadding2D padding (p, (ph, pw) or ((top, bottom), (left, right))) as (top, bottom, left, right)."""
    if isinstance(value, int):
        return (value,) * 4
    rows, cols = value
    rows, cols = _pair(rows), _pair(cols)
    return rows + cols


def _check_bias(layer, bias, size):
    if bias.shape != (size,):
        raise ValueError(f"Keras layer {layer.name!r}: bias of shape {bias.shape}, expected ({size},)")
    return bias


def from_config(model_config, weights, dtype="float32", preprocessing=None):
    """An lrpref network from a Keras model config and ``{layer name: arrays}``."""
    name, layers, output = parse_config(model_config)
    converter = _Converter(layers, weights, dtype, output)
    for layer in layers:
        try:
            converter.tensor[layer.name] = converter.convert(layer)
        except KeyError as err:
            raise ValueError(f"Keras layer {layer.name!r} ({layer.cls}): missing {err}") from None
    nodes, out = converter.nodes, converter.tensor[output]
    if nodes[-1].name != out:
        raise ValueError(f"the output layer {output!r} is not the last layer lrpref built; unsupported graph")
    meta = {"source": "keras", "keras_name": name, "had_softmax": converter.had_softmax}
    preprocessing = preprocessing or ("caffe" if name in APPLICATIONS else None)
    if preprocessing:
        spec = get_preprocessing(preprocessing)
        meta.update(preprocessing=preprocessing, input_low=spec.low, input_high=spec.high)
    if name in APPLICATIONS:
        meta["composite"] = "epsilon_gamma_box"   # Zennit's choice for image classifiers; what `lrpref explain` uses
    return Network(nodes, converter.input_shape, meta)


def load_model(f, dtype="float32", preprocessing=None):
    """An lrpref network from an open Keras full-model HDF5 file."""
    config = f.attrs["model_config"]
    config = json.loads(config.decode() if isinstance(config, bytes) else config)
    return from_config(config, read_weights(f["model_weights"]), dtype, preprocessing)


# -- the keras.applications architectures, for weights-only files ----------------------------------------------

def _layer(cls, name, inputs, **config):
    return {"class_name": cls, "name": name, "config": {"name": name, **config},
            "inbound_nodes": [[[i, 0, 0, {}] for i in inputs]] if inputs else []}


def application_config(arch, classes=1000):
    """The Keras config (Keras 2 format) of ``keras.applications`` VGG16/19 or ResNet50/101/152 with their top."""
    layers = [_layer("InputLayer", "input_1", [], batch_input_shape=[None, 224, 224, 3])]

    def add(cls, name, inputs=None, **config):
        layers.append(_layer(cls, name, inputs or [layers[-1]["name"]], **config))
        return name

    def conv(name, filters, kernel, strides=1, padding="valid", activation="linear", inputs=None):
        return add("Conv2D", name, inputs, filters=filters, kernel_size=[kernel, kernel], strides=[strides, strides],
                   padding=padding, activation=activation, use_bias=True)

    if arch in ("vgg16", "vgg19"):
        counts = (2, 2, 3, 3, 3) if arch == "vgg16" else (2, 2, 4, 4, 4)
        for block, (count, filters) in enumerate(zip(counts, (64, 128, 256, 512, 512)), 1):
            for i in range(1, count + 1):
                conv(f"block{block}_conv{i}", filters, 3, padding="same", activation="relu")
            add("MaxPooling2D", f"block{block}_pool", pool_size=[2, 2], strides=[2, 2], padding="valid")
        add("Flatten", "flatten")
        add("Dense", "fc1", units=4096, activation="relu", use_bias=True)
        add("Dense", "fc2", units=4096, activation="relu", use_bias=True)
    elif arch in ("resnet50", "resnet101", "resnet152"):
        counts = {"resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3), "resnet152": (3, 8, 36, 3)}[arch]
        add("ZeroPadding2D", "conv1_pad", padding=[[3, 3], [3, 3]])
        conv("conv1_conv", 64, 7, strides=2)
        add("BatchNormalization", "conv1_bn", axis=3, epsilon=1.001e-5)
        add("Activation", "conv1_relu", activation="relu")
        add("ZeroPadding2D", "pool1_pad", padding=[[1, 1], [1, 1]])
        add("MaxPooling2D", "pool1_pool", pool_size=[3, 3], strides=[2, 2], padding="valid")
        for stage, (count, filters) in enumerate(zip(counts, (64, 128, 256, 512)), 2):
            for index in range(1, count + 1):
                name, x = f"conv{stage}_block{index}", layers[-1]["name"]
                stride = 2 if stage > 2 and index == 1 else 1
                shortcut = x
                if index == 1:   # the projection shortcut, computed first as in keras.applications
                    conv(f"{name}_0_conv", 4 * filters, 1, strides=stride)
                    shortcut = add("BatchNormalization", f"{name}_0_bn", axis=3, epsilon=1.001e-5)
                conv(f"{name}_1_conv", filters, 1, strides=stride, inputs=[x])
                add("BatchNormalization", f"{name}_1_bn", axis=3, epsilon=1.001e-5)
                add("Activation", f"{name}_1_relu", activation="relu")
                conv(f"{name}_2_conv", filters, 3, padding="same")
                add("BatchNormalization", f"{name}_2_bn", axis=3, epsilon=1.001e-5)
                add("Activation", f"{name}_2_relu", activation="relu")
                conv(f"{name}_3_conv", 4 * filters, 1)
                main = add("BatchNormalization", f"{name}_3_bn", axis=3, epsilon=1.001e-5)
                add("Add", f"{name}_add", [shortcut, main])
                add("Activation", f"{name}_out", activation="relu")
        add("GlobalAveragePooling2D", "avg_pool")
    else:
        raise ValueError(f"no Keras application {arch!r}: expected one of {APPLICATIONS}")
    add("Dense", "predictions", units=classes, activation="softmax", use_bias=True)
    return {"class_name": "Functional", "config": {"name": arch, "layers": layers, "input_layers": [["input_1", 0, 0]],
                                                    "output_layers": [["predictions", 0, 0]]}}
