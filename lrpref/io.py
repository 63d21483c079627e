"""Networks as HDF5 files, in lrpref's own schema (format version 1).

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
                            AdaptiveAvgPool2d  output_size (2)
                            BatchNorm2d        eps
                            ZeroPad2d          padding (4)
                            Dropout            p
        datasets          the layer's arrays, in PyTorch layout:
                            Dense              weight (out, in), bias (out,)
                            Conv2d             weight (out, in, kh, kw), bias (out,)
                            BatchNorm2d        weight, bias, running_mean, running_var (C,)

Layers without either (ReLU, Flatten, Add) have only the three common attributes.
"""
import json
import os

import h5py
import numpy as np

from .backend import to_host
from .layers import LAYERS
from .network import Network, Node

FORMAT = "lrpref"
VERSION = 1
DTYPES = ("float32", "float64")


def save(net, path):
    """Write ``net`` to ``path`` in the schema above."""
    with h5py.File(path, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = VERSION
        if net.input_shape is not None:
            f.attrs["input_shape"] = np.array([-1 if s is None else s for s in net.input_shape], dtype=np.int64)
        f.attrs["meta"] = json.dumps(net.meta)
        nodes = f.create_group("nodes")
        for i, node in enumerate(net.nodes):
            group = nodes.create_group(f"{i:04d}")
            group.attrs["name"] = node.name
            group.attrs["type"] = type(node.layer).__name__
            group.attrs["inputs"] = np.array(node.inputs, dtype=h5py.string_dtype())
            for key, value in node.layer.config().items():
                group.attrs[key] = np.asarray(value)
            for key, array in node.layer.arrays().items():
                group.create_dataset(key, data=to_host(array))


def load(path, dtype="float32", backend=None):
    """Read a network written by :func:`save`.

    Parameters
    ----------
    path : str or path
    dtype : {"float32", "float64"} or None
        The dtype of every array (``None`` keeps the file's).
    backend : {"numpy", "cupy"} or None
        ``None``: the environment variable ``LRPREF_BACKEND``, else NumPy.

    Raises
    ------
    FileNotFoundError, ValueError
        A missing file; a file that is not HDF5, not in this schema, or describes an invalid network (each
        message names the layer and what was expected).
    """
    if dtype is not None and str(np.dtype(dtype)) not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES} or None, got {dtype!r}")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such model file: {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path} is not a readable HDF5 file ({err})") from None
    with f:
        if f.attrs.get("format") != FORMAT:
            raise ValueError(f"{path} is an HDF5 file but not an lrpref network (no attribute format='{FORMAT}')")
        if f.attrs.get("format_version") != VERSION:
            raise ValueError(f"{path} has lrpref format version {f.attrs.get('format_version')}; "
                             f"this lrpref reads version {VERSION}")
        if "nodes" not in f:
            raise ValueError(f"{path} has no 'nodes' group")
        nodes = [_read_node(f["nodes"][key], key, dtype) for key in sorted(f["nodes"])]
        shape = f.attrs.get("input_shape")
        shape = None if shape is None else tuple(None if s < 0 else int(s) for s in shape)
        meta = json.loads(f.attrs.get("meta", "{}"))
    try:
        return Network(nodes, shape, meta, backend)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{path}: invalid network: {err}") from None


def _read_node(group, key, dtype):
    attrs = {k: _python(v) for k, v in group.attrs.items()}
    where = f"layer {key} ({attrs.get('name', '?')!r})"
    kind = attrs.pop("type", None)
    if kind not in LAYERS:
        raise ValueError(f"{where}: unknown layer type {kind!r}; supported: {', '.join(LAYERS)}")
    name, inputs = attrs.pop("name", key), attrs.pop("inputs", ())
    inputs = (inputs,) if isinstance(inputs, str) else tuple(inputs)
    arrays = {k: group[k][()] for k in group}
    if dtype is not None:
        arrays = {k: v.astype(dtype, copy=False) for k, v in arrays.items()}
    try:
        layer = LAYERS[kind](**arrays, **attrs)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: cannot build {kind}: {err}") from None
    return Node(name, layer, inputs)


def _python(value):
    """An HDF5 attribute as a plain Python value (tuples for arrays, str for strings)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return tuple(_python(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value
