"""VGG and ResNet in torchvision's layout: node names are torchvision's module paths.

``features.0`` holds the parameters ``features.0.weight`` and ``features.0.bias`` of a torchvision state dict,
``layer1.0.bn1`` holds ``layer1.0.bn1.weight``, ``.bias``, ``.running_mean`` and ``.running_var``. Nodes that
torchvision has no module for are named after what they do: ``flatten``, ``layer1.0.add``, and the ReLUs of a
residual block ``relu1``, ``relu2`` (after bn1, bn2) and ``relu`` (after the addition).

Every builder takes ``param(name, shape, kind)``, which returns the array for one parameter: random
initialisation as torchvision's (:func:`random_init`) or entries of a state dict (:func:`from_state_dict`).
"""
import math

import numpy as np

from ..backend import to_host
from ..layers import AdaptiveAvgPool2d, Add, BatchNorm2d, Conv2d, Dense, Dropout, Flatten, MaxPool2d, ReLU
from ..network import INPUT, Network, Node

VGG_CONFIGS = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}
RESNET_CONFIGS = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
    "resnet152": ("bottleneck", (3, 8, 36, 3)),
}
ARCHITECTURES = ("vgg16", "vgg16_bn", "vgg19", "vgg19_bn") + tuple(RESNET_CONFIGS)
BN_EPS = 1e-5


class _Builder:
    """Appends named nodes; ``param`` supplies the arrays."""

    def __init__(self, param):
        self.param, self.nodes, self.last = param, [], INPUT

    def add(self, name, layer, inputs=None):
        """Append a node reading ``inputs`` (default: the last node)."""
        self.nodes.append(Node(name, layer, tuple(inputs) if inputs else (self.last,)))
        self.last = name
        return name

    def conv(self, name, c_in, c_out, kernel, stride=1, padding=0, bias=False, inputs=None):
        weight = self.param(f"{name}.weight", (c_out, c_in, kernel, kernel), "conv")
        b = self.param(f"{name}.bias", (c_out,), "bias") if bias else None
        return self.add(name, Conv2d(weight, b, stride=stride, padding=padding), inputs)

    def bn(self, name, channels):
        arrays = [self.param(f"{name}.{p}", (channels,), "bn_" + p)
                  for p in ("weight", "bias", "running_mean", "running_var")]
        return self.add(name, BatchNorm2d(*arrays, eps=BN_EPS))

    def dense(self, name, n_in, n_out, kind):
        return self.add(name, Dense(self.param(f"{name}.weight", (n_out, n_in), kind),
                                    self.param(f"{name}.bias", (n_out,), kind + "_bias")))


def scaled(channels, width):
    """``channels`` times the width factor, at least 1."""
    return max(1, round(channels * width))


def vgg(arch, param, num_classes=1000, width=1.0, pool_size=7):
    """VGG16/19, with BatchNorm after every convolution for the ``_bn`` variants (torchvision's ``vgg16_bn``);
    ``width`` scales every layer's channels and hidden units, ``pool_size`` is the adaptive average pool's
    output size (torchvision: 7)."""
    b = _Builder(param)
    batch_norm, c_in, i = arch.endswith("_bn"), 3, 0
    hidden = scaled(4096, width)
    for v in VGG_CONFIGS[arch.replace("_bn", "")]:
        if v == "M":
            b.add(f"features.{i}", MaxPool2d(2, 2))
            i += 1
            continue
        v = scaled(v, width)
        b.conv(f"features.{i}", c_in, v, 3, padding=1, bias=True)
        if batch_norm:
            b.bn(f"features.{i + 1}", v)
        b.add(f"features.{i + 1 + batch_norm}", ReLU())
        c_in, i = v, i + 2 + batch_norm
    b.add("avgpool", AdaptiveAvgPool2d(pool_size))
    b.add("flatten", Flatten())
    b.dense("classifier.0", c_in * pool_size ** 2, hidden, "linear_vgg")
    b.add("classifier.1", ReLU())
    b.add("classifier.2", Dropout(0.5))
    b.dense("classifier.3", hidden, hidden, "linear_vgg")
    b.add("classifier.4", ReLU())
    b.add("classifier.5", Dropout(0.5))
    b.dense("classifier.6", hidden, num_classes, "linear_vgg")
    return Network(b.nodes, input_shape=(3, None, None), meta={"architecture": arch})


def resnet(arch, param, num_classes=1000, width=1.0):
    """ResNet18-152 as torchvision ("ResNet v1.5": the stride of a bottleneck sits on its 3x3 convolution);
    ``width`` scales every layer's channels."""
    block, counts = RESNET_CONFIGS[arch]
    b = _Builder(param)
    c_in = scaled(64, width)
    b.conv("conv1", 3, c_in, 7, stride=2, padding=3)
    b.bn("bn1", c_in)
    b.add("relu", ReLU())
    b.add("maxpool", MaxPool2d(3, 2, 1))
    expansion = 4 if block == "bottleneck" else 1
    for stage, (count, planes) in enumerate(zip(counts, [scaled(c, width) for c in (64, 128, 256, 512)]), 1):
        for index in range(count):
            stride = 2 if stage > 1 and index == 0 else 1
            name, block_input = f"layer{stage}.{index}", b.last
            if block == "bottleneck":
                b.conv(f"{name}.conv1", c_in, planes, 1)
                b.bn(f"{name}.bn1", planes)
                b.add(f"{name}.relu1", ReLU())
                b.conv(f"{name}.conv2", planes, planes, 3, stride=stride, padding=1)
                b.bn(f"{name}.bn2", planes)
                b.add(f"{name}.relu2", ReLU())
                b.conv(f"{name}.conv3", planes, planes * 4, 1)
                main = b.bn(f"{name}.bn3", planes * 4)
            else:
                b.conv(f"{name}.conv1", c_in, planes, 3, stride=stride, padding=1)
                b.bn(f"{name}.bn1", planes)
                b.add(f"{name}.relu1", ReLU())
                b.conv(f"{name}.conv2", planes, planes, 3, padding=1)
                main = b.bn(f"{name}.bn2", planes)
            skip = block_input
            if stride != 1 or c_in != planes * expansion:   # the projection shortcut
                b.conv(f"{name}.downsample.0", c_in, planes * expansion, 1, stride=stride, inputs=(block_input,))
                skip = b.bn(f"{name}.downsample.1", planes * expansion)
            b.add(f"{name}.add", Add(), (main, skip))
            b.add(f"{name}.relu", ReLU())
            c_in = planes * expansion
    b.add("avgpool", AdaptiveAvgPool2d(1))
    b.add("flatten", Flatten())
    b.dense("fc", c_in, num_classes, "linear_resnet")
    return Network(b.nodes, input_shape=(3, None, None), meta={"architecture": arch})


def build(arch, param, num_classes=1000, width=1.0):
    """The network ``arch`` (one of :data:`ARCHITECTURES`) with parameters from ``param``; ``width`` scales
    the channels (1.0: torchvision's network)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}: expected one of {ARCHITECTURES}")
    return (vgg if arch.startswith("vgg") else resnet)(arch, param, num_classes, width)


def random_init(seed=0, dtype="float32"):
    """``param`` drawing parameters as torchvision initialises them (not its random numbers).

    Convolutions: He normal with fan-out (``kaiming_normal_(mode="fan_out")``); BatchNorm weight 1, bias 0,
    statistics 0 and 1; VGG's Linear layers normal(0, 0.01); ResNet's fc uniform in +-1/sqrt(fan_in) (PyTorch's
    default); every bias 0 (torchvision draws the fc bias uniformly).
    """
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)

    def param(name, shape, kind):
        if kind == "conv":
            return rng.standard_normal(shape, dtype=np.float32).astype(dtype) * math.sqrt(2.0 / (shape[0] * shape[2] * shape[3]))
        if kind == "linear_vgg":
            return rng.standard_normal(shape, dtype=np.float32).astype(dtype) * 0.01
        if kind == "linear_resnet":
            return rng.uniform(-1.0, 1.0, shape).astype(dtype) / math.sqrt(shape[1])
        fill = 1.0 if kind in ("bn_weight", "bn_running_var") else 0.0
        return np.full(shape, fill, dtype=dtype)
    return param


def from_state_dict(arch, state, dtype="float32"):
    """The network ``arch`` with the arrays of a torchvision state dict (names to arrays), matched strictly.

    Every entry the architecture needs must be there with its shape and finite values, and every entry of the
    state dict must be used; otherwise one ``ValueError`` names each missing, unexpected, misshapen or
    non-finite entry (with a hint when the names carry ``DataParallel``'s ``module.`` prefix).
    """
    problems, used = [], set()

    def param(name, shape, kind):
        used.add(name)
        if name not in state:
            problems.append(f"missing entry {name!r}")
            return np.zeros(shape, dtype=dtype)
        array = to_host(state[name])
        if array.shape != tuple(shape):
            problems.append(f"entry {name!r} has shape {array.shape}, the architecture needs {tuple(shape)}")
            return np.zeros(shape, dtype=dtype)
        if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all():
            problems.append(f"entry {name!r} is not finite real numbers (dtype {array.dtype})")
            return np.zeros(shape, dtype=dtype)
        return array.astype(dtype, copy=False)

    net = build(arch, param)
    unexpected = sorted(set(state) - used)
    problems += [f"unexpected entry {name!r}" for name in unexpected[:5]]
    if len(unexpected) > 5:
        problems.append(f"and {len(unexpected) - 5} more unexpected entries")
    if problems:
        hint = ("; its names start with 'module.' (a DataParallel model): save model.module.state_dict() instead"
                if state and all(name.startswith("module.") for name in state) else "")
        raise ValueError(f"the state dict does not fit {arch}: {'; '.join(problems[:10])}"
                         + (f" (and {len(problems) - 10} more)" if len(problems) > 10 else "") + hint)
    return net
