"""Networks as HDF5 files: lrpref's own schema (format version 1), and reading Keras files.

Schema::

    /                     attributes
        format            "lrpref"
        format_version    1
        input_shape       int array, one sample's shape, -1 for a free axis (absent: not checked)
        meta              JSON object: input_low, input_high (valid input range, numbers or per-channel
                          lists), preprocessing (name), classes (list of names), description, ...
    /nodes/0000, 0001...  one group per layer, in execution order
        attributes        name (str), type (layer class name), inputs (str array: "input" or earlier names),
                          and the layer's hyper-parameters:
                            Conv2d             stride (2 ints), padding (4 ints: top, bottom, left, right)
                            MaxPool2d          kernel_size (2), stride (2), padding (4)
                            AvgPool2d          kernel_size (2), stride (2), padding (4), count_include_pad
                            SumPool2d          kernel_size (2), stride (2), padding (4)
                            AdaptiveAvgPool2d  output_size (2)
                            BatchNorm2d        eps
                            ZeroPad2d          padding (4)
                            Dropout            p
        datasets          the layer's arrays, in PyTorch layout:
                            Dense              weight (out, in), bias (out,)
                            Conv2d             weight (out, in, kh, kw), bias (out,)
                            BatchNorm2d        weight, bias, running_mean, running_var (C,)

Layers without either (ReLU, Flatten, Add) have only the three common attributes.

Damage is detected, not loaded: :func:`save` writes HDF5's newer object headers (``libver="v108"``), which
carry checksums of the file's structure and attributes, and every dataset with a Fletcher-32 checksum; a file
whose bytes were changed afterwards fails to load with a clear error instead of loading other numbers. Files
without checksums (older lrpref files, Keras files) are read as they are. Whatever the file, every array is
checked where it enters (real, finite, shapes that fit the layer) and, where the file records a fixed input
shape, the layers' shapes are checked against each other before :func:`load` returns.
"""
import json
import os

import h5py
import numpy as np

from . import keras
from .backend import chosen, to_host
from .checks import integer
from .files import atomic_path
from .layers import LAYERS
from .network import Network, Node, sample_shapes
from .preprocessing import get as get_preprocessing

FORMAT = "lrpref"
VERSION = 1
DTYPES = ("float32", "float64")


def save(net, path):
    """Write ``net`` to ``path`` in the schema above.

    The file is written whole to a temporary file next to ``path`` and then moved onto it (:mod:`lrpref.files`):
    a save that fails or is killed half-way leaves an existing ``path`` byte-identical.
    """
    if not isinstance(net, Network):
        raise TypeError(f"save writes an lrpref Network, got {type(net).__name__}")
    with atomic_path(path) as tmp, h5py.File(tmp, "w", libver="v108") as f:
        write(net, f, checksum=True)


def write(net, group, checksum=False):
    """Write ``net`` into an open HDF5 file or group, in the schema above (``checksum``: Fletcher-32 on
    every dataset)."""
    group.attrs["format"] = FORMAT
    group.attrs["format_version"] = VERSION
    if net.input_shape is not None:
        group.attrs["input_shape"] = np.array([-1 if s is None else s for s in net.input_shape], dtype=np.int64)
    try:
        group.attrs["meta"] = json.dumps(net.meta)
    except TypeError as err:
        raise TypeError(f"net.meta must hold JSON values (str, int, float, bool, None, lists, dicts): {err}") from None
    nodes = group.create_group("nodes")
    for i, node in enumerate(net.nodes):
        g = nodes.create_group(f"{i:04d}")
        g.attrs["name"] = node.name
        g.attrs["type"] = type(node.layer).__name__
        g.attrs["inputs"] = np.array(node.inputs, dtype=h5py.string_dtype())
        for key, value in node.layer.config().items():
            g.attrs[key] = np.asarray(value)
        for key, array in node.layer.arrays().items():
            g.create_dataset(key, data=to_host(array), fletcher32=checksum)


def load(path, dtype="float32", backend=None, preprocessing=None):
    """Read a network: lrpref's schema, or a Keras full-model HDF5 file (Keras 2, or Keras 3's legacy .h5).

    Parameters
    ----------
    path : str or path
    dtype : {"float32", "float64"} or None
        The dtype of every array (``None`` keeps the file's).
    backend : {"numpy", "cupy"} or None
        ``None``: the environment variable ``LRPREF_BACKEND``, else NumPy.
    preprocessing : str or None
        The input preprocessing the network expects (see :mod:`lrpref.preprocessing`); it sets the recorded
        input range, the zB bounds. ``None`` keeps what the file records (Keras files of ``keras.applications``
        VGG and ResNet: ``"caffe"``).

    Raises
    ------
    FileNotFoundError, ValueError
        A missing file; a file that is not HDF5, neither lrpref's nor Keras', a Keras weights file without an
        architecture, or an invalid network (each message names the layer and what was expected).
    """
    if dtype is not None and dtype_name(dtype) not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES} or None, got {dtype!r}")
    backend = chosen(backend)   # before the file is read, so that its errors are the file's alone
    with open_hdf5(path) as f:
        try:
            kind = file_kind(f)
            if kind == "lrpref":
                net = read(f, dtype)
            elif kind == "keras-model":
                net = keras.load_model(f, dtype, preprocessing)
            elif kind == "keras-weights":
                raise ValueError("it holds Keras weights without an architecture: build one with "
                                 "lrpref.models.vgg16(weights=path), lrpref.models.resnet50(weights=path) ...")
            else:
                raise ValueError(f"it is an HDF5 file but neither an lrpref network (attribute format='{FORMAT}') "
                                 "nor a Keras model (attribute model_config)")
        except (ValueError, TypeError) as err:
            raise ValueError(f"{path}: {err}") from None
        except (OSError, KeyError, RuntimeError) as err:   # h5py's words for a damaged file
            raise ValueError(f"{path}: the file is damaged (HDF5 says: {err})") from None
    if preprocessing is not None:
        set_preprocessing(net, preprocessing)
    return net.to(backend)


def dtype_name(dtype):
    """The name of a dtype, or ``repr(dtype)`` of something NumPy does not read as one."""
    try:
        return str(np.dtype(dtype))
    except TypeError:
        return repr(dtype)


def open_hdf5(path, what="model file"):
    """``h5py.File(path, "r")``, with clear errors for a missing or unreadable file (``what``: the kind of
    file expected, for the messages)."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"expected the path of a {what}, got {path!r} ({type(path).__name__})")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such {what}: {path}")
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder; expected a {what} (HDF5)")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path} is not a readable HDF5 file ({err})") from None


def file_kind(f):
    """``"lrpref"``, ``"keras-model"``, ``"keras-weights"`` or ``None``, from an open HDF5 file's attributes."""
    if f.attrs.get("format") == FORMAT:
        return "lrpref"
    if "model_config" in f.attrs:
        return "keras-model"
    if "layer_names" in f.attrs:
        return "keras-weights"
    return None


def set_preprocessing(net, name):
    """Record the preprocessing ``name`` and its input range (the zB bounds) in ``net.meta``."""
    spec = get_preprocessing(name)
    net.meta.update(preprocessing=name, input_low=spec.low, input_high=spec.high)


def read(f, dtype=None):
    """The network in an open HDF5 file or group written by :func:`write` (errors as :func:`load`'s)."""
    version = _python(f.attrs.get("format_version"))
    if version != VERSION:
        raise ValueError(f"lrpref format version {version}; this lrpref reads version {VERSION}")
    if not isinstance(f.get("nodes"), h5py.Group):
        raise ValueError("no 'nodes' group")
    nodes = [_read_node(f["nodes"][key], key, dtype) for key in sorted(f["nodes"])]
    shape = f.attrs.get("input_shape")
    if shape is not None:
        shape = tuple(None if s == -1 else integer(s, "the attribute input_shape", low=1) for s in shape)
    meta = json.loads(f.attrs.get("meta", "{}"))
    if not isinstance(meta, dict):
        raise ValueError(f"the attribute 'meta' must be a JSON object, got {type(meta).__name__}")
    try:
        net = Network(nodes, shape, meta)
    except (ValueError, TypeError) as err:
        raise ValueError(f"invalid network: {err}") from None
    check_shapes(net)
    return net


def check_shapes(net):
    """Raise ``ValueError`` naming the first layer whose arrays do not fit its input, where ``net.input_shape``
    is fixed: the layers run on an empty batch of that shape, which checks every shape and computes nothing."""
    if net.input_shape is None or None in net.input_shape:
        return
    try:
        sample_shapes(net, net.input_shape)
    except ValueError as err:
        raise ValueError(f"the layers do not fit the input shape {net.input_shape} the file records: {err}") from None


def _read_node(group, key, dtype):
    if not isinstance(group, h5py.Group):
        raise ValueError(f"nodes/{key} is a {type(group).__name__}; expected a group (one per layer)")
    attrs = {k: _python(v) for k, v in group.attrs.items()}
    where = f"layer {key} ({attrs.get('name', '?')!r})"
    kind = attrs.pop("type", None)
    if not isinstance(kind, str) or kind not in LAYERS:
        raise ValueError(f"{where}: unknown layer type {kind!r}; supported: {', '.join(LAYERS)}")
    name, inputs = attrs.pop("name", key), attrs.pop("inputs", ())
    inputs = (inputs,) if isinstance(inputs, str) else tuple(inputs)
    if not isinstance(name, str) or not all(isinstance(i, str) for i in inputs):
        raise ValueError(f"{where}: the attributes name and inputs must be strings, got {name!r} and {inputs!r}")
    arrays = {k: _read_array(group, k, where) for k in group}
    if dtype is not None:
        arrays = {k: v.astype(dtype, copy=False) for k, v in arrays.items()}
    try:
        layer = LAYERS[kind](**arrays, **attrs)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: cannot build {kind}: {err}") from None
    return Node(name, layer, inputs)


def _read_array(group, key, where):
    """The dataset ``key`` of a layer's group, refusing links, groups and arrays that are not real numbers."""
    if not isinstance(group.get(key, getlink=True), h5py.HardLink):
        raise ValueError(f"{where}: {key!r} is a link; expected a dataset stored in the layer's group")
    node = group[key]
    if not isinstance(node, h5py.Dataset):
        raise ValueError(f"{where}: {key!r} is a {type(node).__name__}; expected a dataset of numbers")
    if node.dtype.kind not in "biuf":
        raise ValueError(f"{where}: dataset {key!r} holds {node.dtype}; expected real numbers")
    return node[()]


def _python(value):
    """An HDF5 attribute as a plain Python value (tuples for arrays, str for strings)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return tuple(_python(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value
