"""Networks: named layers in execution order, each reading the input or earlier layers' outputs (a DAG).

A chain is built with :func:`Sequential`; residual networks name two inputs for their :class:`~lrpref.layers.Add`
nodes. The last node is the output.
"""
import copy
import os
from collections import Counter
from dataclasses import dataclass

import numpy as np

from .backend import ENV_VAR, array_module, asarray, resolve
from .backend import name as module_name
from .checks import integer, real_array
from .layers import Add, BatchNorm2d, Conv2d, Dense, Layer
from .windows import reused_buffers

INPUT = "input"


@dataclass(frozen=True)
class Node:
    """One layer of a network: its ``name``, the ``layer`` and the names of the tensors it reads."""

    name: str
    layer: Layer
    inputs: tuple


class Network:
    """A network of named layers.

    Parameters
    ----------
    nodes : list of Node
        In execution order; each node reads ``"input"`` or the outputs of earlier nodes.
    input_shape : tuple or None
        Shape of one sample, ``None`` for a free axis (e.g. ``(3, None, None)``); ``None`` skips the check.
    meta : dict, optional
        Saved with the network: ``input_low``/``input_high`` (the valid input range, used as zB bounds),
        ``preprocessing``, ``classes``, ``description``.
    backend : {"numpy", "cupy"} or None
        Where the arrays live. ``None``: where the layers' arrays already are; for layers whose arrays are
        NumPy arrays, the environment variable ``LRPREF_BACKEND`` is the default where it is set (a new
        network from host data). A network on CuPy is never moved by the variable, and networks derived
        from another (:meth:`derive`) keep its backend.
    """

    def __init__(self, nodes, input_shape=None, meta=None, backend=None):
        self.nodes = list(nodes)
        self.input_shape = None if input_shape is None else tuple(
            None if s is None else integer(s, "input_shape entries", low=1) for s in input_shape)
        self.meta = dict(meta or {})
        self._check_graph()
        self._check_arrays()
        if backend is None and self.xp is np:
            backend = os.environ.get(ENV_VAR) or None
        if backend is not None and backend != module_name(self.xp):
            self.to(backend)

    def derive(self, nodes):
        """A network of ``nodes`` (layers changed from this one's) with this one's input shape, meta and backend."""
        return Network(nodes, self.input_shape, self.meta, backend=module_name(self.xp))

    # -- structure -------------------------------------------------------------------------------------------

    def _check_graph(self):
        if not self.nodes:
            raise ValueError("a network needs at least one layer")
        seen = {INPUT}
        for i, node in enumerate(self.nodes):
            if not isinstance(node.layer, Layer):
                raise TypeError(f"node {i} ({node.name!r}) holds {node.layer!r}, which is not an lrpref layer")
            if node.name in seen:
                raise ValueError(f"node {i}: the name {node.name!r} is used twice (or is the reserved name 'input')")
            missing = [name for name in node.inputs if name not in seen]
            if missing:
                raise ValueError(f"node {i} ({node.name!r}) reads {missing}, which no earlier node produces")
            if len(node.inputs) != node.layer.n_inputs:
                raise ValueError(
                    f"node {i} ({node.name!r}): {type(node.layer).__name__} takes {node.layer.n_inputs} input(s), "
                    f"got {len(node.inputs)}"
                )
            seen.add(node.name)

    def _check_arrays(self):
        arrays = [a for node in self.nodes for a in node.layer.arrays().values()]
        modules = {module_name(array_module(a)) for a in arrays}
        dtypes = {str(a.dtype) for a in arrays}
        if len(modules) > 1 or len(dtypes) > 1:
            raise ValueError(
                f"all layers must share one backend and dtype, got backends {sorted(modules)} and dtypes "
                f"{sorted(dtypes)}; use net.to(...) and net.astype(...)"
            )

    @property
    def layers(self):
        return [node.layer for node in self.nodes]

    @property
    def names(self):
        return [node.name for node in self.nodes]

    def __len__(self):
        return len(self.nodes)

    def __getitem__(self, key):
        """The layer at an index or with a name."""
        if isinstance(key, str):
            for node in self.nodes:
                if node.name == key:
                    return node.layer
            raise KeyError(f"no layer named {key!r}; names are {self.names}")
        return self.nodes[key].layer

    @property
    def xp(self):
        """The array module the network's arrays live on."""
        for layer in self.layers:
            for array in layer.arrays().values():
                return array_module(array)
        return np

    @property
    def dtype(self):
        """The dtype of the network's arrays (``None`` for a network without parameters)."""
        for layer in self.layers:
            for array in layer.arrays().values():
                return array.dtype
        return None

    @property
    def input_bounds(self):
        """``(low, high)``, the valid input range recorded in ``meta``, or ``None``."""
        if "input_low" in self.meta and "input_high" in self.meta:
            return self.meta["input_low"], self.meta["input_high"]
        return None

    def _map(self, fn):
        self.nodes = [Node(n.name, n.layer.map_arrays(fn), n.inputs) for n in self.nodes]

    def to(self, backend_name):
        """Move every array to ``"numpy"`` or ``"cupy"`` (in place; returns the network)."""
        xp = resolve(backend_name)
        self._map(lambda a: asarray(a, xp))
        return self

    def astype(self, dtype):
        """Cast every array to ``dtype``, a floating-point type (in place; returns the network)."""
        if np.dtype(dtype).kind != "f":
            raise TypeError(f"a network's arrays must be floating-point numbers, got dtype {np.dtype(dtype)}; "
                            "use float32 or float64")
        self._map(lambda a: a.astype(dtype))
        return self

    # -- running -------------------------------------------------------------------------------------------

    def check_input(self, x):
        """``x`` on the network's backend and dtype, after checking its shape and values.

        Raises
        ------
        ValueError
            For a wrong rank, a wrong size on a fixed axis (with a hint for channels-last images), an empty
            batch, or NaN/Inf values.
        """
        xp = self.xp
        x = asarray(real_array(x, "the input"), xp)
        given = x
        with np.errstate(over="ignore"):   # a value beyond the dtype's range is reported below
            x = x.astype(self.dtype or (x.dtype if x.dtype.kind == "f" else np.float64), copy=False)
        if self.input_shape is not None:
            want = "(N, " + ", ".join("*" if s is None else str(s) for s in self.input_shape) + ")"
            if x.ndim != len(self.input_shape) + 1:
                raise ValueError(
                    f"expected an input of shape {want} (a batch axis first), got shape {tuple(x.shape)}"
                    + ("; for one sample use x[None]" if x.ndim == len(self.input_shape) else "")
                )
            if any(s is not None and s != n for s, n in zip(self.input_shape, x.shape[1:])):
                hint = ""
                if x.ndim == 4 and x.shape[-1] == self.input_shape[0]:
                    hint = "; this looks like channels-last (NHWC) data: lrpref expects NCHW, x.transpose(0, 3, 1, 2)"
                raise ValueError(f"expected an input of shape {want}, got shape {tuple(x.shape)}{hint}")
        if x.shape[0] == 0:
            raise ValueError("the input batch is empty")
        if not bool(xp.isfinite(x).all()):
            if bool(xp.isfinite(given).all()):
                raise ValueError(f"the input holds values too large for the network's dtype {x.dtype} (largest "
                                 f"magnitude {float(xp.abs(given).max()):g}); scale it, or use float64")
            raise ValueError("the input contains NaN or Inf values")
        return x

    def activations(self, x, checked=False):
        """Run the network; return ``{name: output}`` for every node, plus ``"input"``: the checked input
        (``checked``: ``x`` is the result of :meth:`check_input` already)."""
        acts = {INPUT: x if checked else self.check_input(x)}
        with reused_buffers():
            for i, node in enumerate(self.nodes):
                try:
                    acts[node.name] = node.layer.forward(*(acts[name] for name in node.inputs))
                except ValueError as err:
                    raise ValueError(f"layer {i} ({node.name!r}): {err}") from None
        return acts

    def forward(self, x):
        """The output scores (logits) for a batch ``x``."""
        return self.activations(x)[self.nodes[-1].name]

    def summary(self):
        """A table of the layers: index, name, layer, inputs."""
        rows = [f"{i:>4}  {n.name:<20} {n.layer!r:<48} {', '.join(n.inputs)}" for i, n in enumerate(self.nodes)]
        return "\n".join([f"{'idx':>4}  {'name':<20} {'layer':<48} inputs"] + rows)

    def __repr__(self):
        return f"Network({len(self)} layers, input_shape={self.input_shape})"


def Sequential(layers, input_shape=None, names=None, meta=None, backend=None):
    """A chain of layers; names default to ``"0"``, ``"1"``, ...

    ``input_shape`` defaults to what the first layer tells: ``(in,)`` for Dense, ``(C, None, None)`` for Conv2d.
    """
    layers = list(layers)
    names = [str(i) for i in range(len(layers))] if names is None else list(names)
    if len(names) != len(layers):
        raise ValueError(f"got {len(names)} names for {len(layers)} layers")
    if input_shape is None and layers:
        first = layers[0]
        if isinstance(first, Dense):
            input_shape = (first.weight.shape[1],)
        elif isinstance(first, Conv2d):
            input_shape = (first.weight.shape[1], None, None)
    nodes = [Node(name, layer, (prev,)) for name, layer, prev in zip(names, layers, [INPUT] + names[:-1])]
    return Network(nodes, input_shape, meta, backend)


def fold_batchnorm(net):
    """A copy of ``net`` with every BatchNorm2d merged into the Conv2d or Dense it directly follows.

    As Zennit's ``SequentialMergeBatchNorm``: with ``s = gamma / sqrt(var + eps)``, ``W' = W s`` per output
    channel and ``b' = (b - mean) s + beta``; the BatchNorm becomes the identity (mean 0, var 1, weight 1,
    bias 0, eps 0). A BatchNorm is merged only when the layer before it feeds nothing else. The output is
    unchanged up to rounding.
    """
    readers = Counter(name for node in net.nodes for name in node.inputs)
    index = {node.name: i for i, node in enumerate(net.nodes)}
    nodes = list(net.nodes)
    for i, node in enumerate(nodes):
        source = index.get(node.inputs[0]) if isinstance(node.layer, BatchNorm2d) else None
        if source is None or not isinstance(nodes[source].layer, (Conv2d, Dense)) or readers[node.inputs[0]] != 1:
            continue
        bn, linear = node.layer, copy.copy(nodes[source].layer)
        scale = bn.scale()
        linear.weight = linear.weight * scale.reshape((-1,) + (1,) * (linear.weight.ndim - 1))
        linear.bias = (linear.bias - bn.running_mean) * scale + bn.bias
        xp, c = array_module(scale), scale.shape[0]
        identity = BatchNorm2d.identity(c, xp, scale.dtype)
        nodes[source] = Node(nodes[source].name, linear, nodes[source].inputs)
        nodes[i] = Node(node.name, identity, node.inputs)
    return net.derive(nodes)


PROJECTION = (Conv2d, BatchNorm2d)   # what a projection shortcut is made of; an identity shortcut has none


def residual_blocks(net):
    """``[(Add node name, block input tensor name)]`` for every residual addition of ``net``.

    The block input is where the shortcut starts: the skip input of the Add, traced back through a projection
    (Conv2d and BatchNorm2d layers) if there is one.
    """
    producers = {node.name: node for node in net.nodes}
    blocks = []
    for node in net.nodes:
        if isinstance(node.layer, Add):
            tensor = node.inputs[1]
            while tensor in producers and isinstance(producers[tensor].layer, PROJECTION):
                tensor = producers[tensor].inputs[0]
            blocks.append((node.name, tensor))
    return blocks


def sample_shapes(net, shape):
    """The shape of one sample of every tensor (``"input"`` and each node's output, by name) for an input of one
    sample's ``shape``. The layers run on an empty batch: every shape is checked, nothing is computed."""
    acts = {INPUT: net.xp.zeros((0,) + tuple(shape), dtype=net.dtype or np.float64)}
    for i, node in enumerate(net.nodes):
        try:
            acts[node.name] = node.layer.forward(*(acts[name] for name in node.inputs))
        except ValueError as err:
            raise ValueError(f"layer {i} ({node.name!r}): {err}") from None
    return {name: tuple(a.shape[1:]) for name, a in acts.items()}
