"""The LRP loop: run the network forward, choose the output relevance, hand it down layer by layer."""
import math
from dataclasses import dataclass, fields

import numpy as np

from . import composites
from .backend import array_module, asarray, to_host
from . import windows
from .checks import integer, real_array
from .layers import ReLU
from .network import INPUT, Network, fold_batchnorm, residual_blocks, sample_shapes
from .rules import SignSplitRule
from .stabilizer import Stabilizer
from .windows import reused_buffers

INITS = ("logit", "one", "softmax")
KEEP = ("all", "input")
JOINED = ("relevance", "layers", "output", "init", "target", "tensors", "_sums")   # per-sample fields


@dataclass
class Explanation:
    """The result of :func:`explain`.

    Attributes
    ----------
    relevance : array
        Relevance of the input, the same shape as ``x``.
    layers : list
        For every layer, in network order, the relevance of the tensor it reads (a tuple for Add). The
        relevance of a tensor read by several layers is the sum of what each hands back.
    output : array
        The network output (logits).
    init : array
        The output relevance the explanation started from.
    target : array or None
        The explained class of every sample (``None`` where ``init`` was given as an array).
    names : list of str
        The layer names.
    rules : list
        The rule of every layer.
    tensors : dict
        The relevance of every tensor, by the name of the layer producing it (``"input"`` for the input).
    """

    relevance: object
    layers: list
    output: object
    init: object
    target: object
    names: list
    rules: list
    tensors: dict
    blocks: list
    _sums: list

    def __repr__(self):
        target = "given init" if self.target is None else f"target {self.target.tolist()}"
        return f"Explanation(relevance of shape {tuple(self.relevance.shape)}, {len(self.names)} layers, {target})"

    def conservation(self):
        """The :class:`ConservationReport`: relevance sums at every layer and what bias and stabilizer kept."""
        return ConservationReport(self)

    def subset(self, rows):
        """The explanation of the samples ``rows`` (a slice or an index array, on either backend) of the batch."""
        def take(value):
            if value is None:
                return None
            if isinstance(value, tuple):
                return tuple(take(v) for v in value)
            return value[rows if isinstance(rows, slice) else asarray(rows, array_module(value))]
        return Explanation(take(self.relevance), None if self.layers is None else [take(item) for item in self.layers],
                           take(self.output),
                           take(self.init), take(self.target), self.names, self.rules,
                           {name: take(R) for name, R in self.tensors.items()}, self.blocks,
                           [take(sums) for sums in self._sums])


def explain(net, x, target=None, composite="epsilon_gamma_box", init=None, convention=None, batch_size=None,
            keep="all", **rule_params):
    """Explain the network's output for a batch ``x`` with LRP.

    Parameters
    ----------
    net : Network
    x : array of shape (N, *net.input_shape)
        Converted to the network's backend and dtype.
    target : int, array of N ints, or None
        The class to explain, one for all samples or one per sample; ``None``: the predicted class.
        Must be ``None`` when ``init`` is an array.
    composite : str or Composite
        A name from :data:`lrpref.composites.COMPOSITES` or a :class:`~lrpref.composites.Composite`.
    init : {"logit", "one", "softmax"}, array or None
        The output relevance: the target's logit (the tutorial, Zennit's example scripts), 1 at the target
        (Zennit's README), the target's softmax probability, or an explicit array of the output's shape
        (or of one sample's output shape), e.g. for contrastive methods. ``None``: the composite's own
        choice (``otsuki2024``: softmax), else the logit.
    convention : str or None
        What numeric rule parameters mean: ``"zennit"`` (``None``, the default), ``"tutorial"``,
        ``"innvestigate"``, ``"captum"`` or ``"toolbox"``; see :mod:`lrpref.conventions`. The ``tutorial_*`` composites fix
        their own and do not take it.
    batch_size : int or None
        Samples explained per pass, so that memory stays bounded whatever the batch; ``None``: as many as fit
        a quarter of the buffer limit (:func:`lrpref.set_buffer_limit`) with every tensor's activation and
        relevance. Each sample's numbers do not depend on the others, so the result is bit-identical to one
        pass; only a stabilizer relative to the whole batch (``relative="batch"``, the tutorial convention's
        epsilon) couples the samples, and then the batch is explained in one pass.
    keep : {"all", "input"}
        What the :class:`Explanation` holds: the relevance of every tensor, or (``"input"``, for large
        batches) only the input's; ``layers`` is then ``None`` and ``tensors`` holds only ``"input"``. The
        conservation report's per-layer sums are kept either way.
    **rule_params
        Parameters of the composite, with Zennit's names: ``epsilon``, ``gamma``, ``alpha``, ``beta``,
        ``low``, ``high``, ``stabilizer``, ``zero_bias``, ``maxpool``.

    Returns
    -------
    Explanation
    """
    if not isinstance(net, Network):
        raise TypeError(f"net must be an lrpref Network (lrpref.load(path), lrpref.Sequential(...)), got "
                        f"{type(net).__name__}")
    if keep not in KEEP:
        raise ValueError(f"keep must be one of {KEEP}, got {keep!r}")
    if convention is not None:
        rule_params["convention"] = convention
    chosen = composites.get(composite, net=net, **rule_params)
    model = fold_batchnorm(net) if chosen.fold_batchnorm else net
    rules = chosen.rules(model)
    init = (chosen.init or "logit") if init is None else init
    x = model.check_input(x)
    n, shapes = x.shape[0], sample_shapes(model, x.shape[1:])
    size = n if _couples_samples(rules) else _chunk_size(shapes, x.dtype, batch_size)
    if size >= n:
        return _explain_batch(model, rules, x, target, init, keep)
    # target and init are checked against the whole batch first: cut into chunks, a wrong length would fit
    initial_relevance(model.xp.zeros((n,) + shapes[model.nodes[-1].name], dtype=x.dtype), target, init)
    per_sample = len(shapes[model.nodes[-1].name]) + 1   # the rank of a batch of outputs

    def part(value, start):
        """``value`` for the samples from ``start``: per-sample arrays are cut, the rest passed as they are."""
        ndim = value.ndim if hasattr(value, "ndim") else np.ndim(value)
        if value is None or isinstance(value, str) or ndim not in (1, per_sample):
            return value
        if ndim == 1 and per_sample != 1 and value is init:   # one sample's (C,) init: for every sample
            return value
        return value[start:start + size]
    return _join(lambda start: _explain_batch(model, rules, x[start:start + size], part(target, start),
                                              part(init, start), keep), n, size)


def _explain_batch(model, rules, x, target, init, keep):
    """One pass of :func:`explain` over the batch ``x`` (its arguments resolved, ``x`` checked)."""
    acts = model.activations(x, checked=True)
    output = acts[model.nodes[-1].name]
    R_out, target = initial_relevance(output, target, init)

    relevance = {model.nodes[-1].name: R_out}   # relevance of every tensor, by the name of the node producing it
    sums = [None] * len(model)
    xp = model.xp
    facts = _sign_facts(model, rules, acts)
    # a zero denominator is reported below, by layer; one scratch buffer serves every im2col (windows.py)
    with np.errstate(divide="ignore", invalid="ignore"), reused_buffers():
        for i in reversed(range(len(model))):
            node, rule = model.nodes[i], rules[i]
            R = relevance[node.name] if node.name in relevance else xp.zeros_like(acts[node.name])
            a = tuple(acts[name] for name in node.inputs)
            R_in, R_bias = rule.relprop(node.layer, a if len(a) > 1 else a[0], R, out=acts[node.name], **facts.get(i, {}))
            R_in = R_in if len(a) > 1 else (R_in,)
            for name, r in zip(node.inputs, R_in):
                relevance[name] = relevance[name] + r if name in relevance else r
            sums[i] = (_sample_sum(R), sum(_sample_sum(r) for r in R_in), R_bias)

    layers = [_tensor(relevance, node.inputs, xp, acts) for node in model.nodes]
    _check_finite(layers, model)
    if keep == "input":
        layers, relevance = None, {INPUT: relevance[INPUT]}
    return Explanation(relevance[INPUT], layers, output, R_out, target, model.names, rules, relevance,
                       residual_blocks(model), sums)


def _couples_samples(rules):
    """Whether a rule's stabilizer is relative to the whole batch (then a sample's numbers depend on the others)."""
    return any(isinstance(value, Stabilizer) and value.relative == "batch"
               for rule in rules for value in vars(rule).values())


def _chunk_size(shapes, dtype, batch_size):
    """Samples per pass: ``batch_size``, or as many as fit a quarter of the buffer limit with every tensor's
    activation and relevance and two temporaries of the rules' size (four copies of all tensors)."""
    if batch_size is not None:
        return integer(batch_size, "batch_size", low=1)
    sample_bytes = 4 * sum(math.prod(shape) for shape in shapes.values()) * np.dtype(dtype).itemsize
    return max(1, windows.BUFFER_LIMIT // 4 // sample_bytes)


def _join(explain_part, n, size):
    """One :class:`Explanation` of the ``n`` samples that ``explain_part(start)`` explains ``size`` at a time.

    The result's arrays are allocated when the first part comes, shared where the part's are (a layer's input
    relevance is a tensor's relevance), and filled part by part, so that at most one part is held beside them.
    """
    for start in range(0, n, size):
        part = explain_part(start)
        arrays = _arrays([getattr(part, name) for name in JOINED])
        if start == 0:
            full = {}
            for a in arrays:
                if id(a) not in full:
                    full[id(a)] = array_module(a).empty((n,) + a.shape[1:], a.dtype)
            joined = _rebuild([getattr(part, name) for name in JOINED], iter([full[id(a)] for a in arrays]))
            whole = Explanation(**{**{f.name: getattr(part, f.name) for f in fields(Explanation)},
                                   **dict(zip(JOINED, joined))})
        filled = set()
        for a, w in zip(arrays, _arrays(joined)):
            if id(w) not in filled:
                w[start:start + a.shape[0]] = a
                filled.add(id(w))
        del part, arrays
    return whole


def _arrays(value):
    """The arrays in ``value`` (nested lists, tuples and dicts of arrays; ``None`` holds none), in order."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [a for item in value for a in _arrays(item)]
    if isinstance(value, dict):
        return [a for item in value.values() for a in _arrays(item)]
    return [value]


def _rebuild(value, arrays):
    """``value`` with its arrays replaced, in order, by those the iterator ``arrays`` gives."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return type(value)(_rebuild(item, arrays) for item in value)
    if isinstance(value, dict):
        return {key: _rebuild(item, arrays) for key, item in value.items()}
    return next(arrays)


def _sample_sum(R):
    return R.reshape(R.shape[0], -1).sum(axis=1)


def _tensor(relevance, names, xp, acts):
    values = tuple(relevance[n] if n in relevance else xp.zeros_like(acts[n]) for n in names)
    return values if len(values) > 1 else values[0]


def _sign_facts(model, rules, acts):
    """For every layer with a sign-splitting rule: ``mixed``, whether its input has negative entries (one
    device synchronisation for all of them), and ``relu_follows``, whether only ReLUs read its output (seen
    through layers that hand their input on unchanged, such as the BatchNorm :func:`fold_batchnorm` leaves)."""
    split = [i for i, rule in enumerate(rules) if isinstance(rule, SignSplitRule)]
    if not split:
        return {}
    xp = model.xp
    mixed = to_host(xp.stack([(acts[model.nodes[i].inputs[0]] < 0).any() for i in split]))
    readers = {}
    for node in model.nodes:
        for name in node.inputs:
            readers.setdefault(name, []).append(node)

    def relu_only(name):
        nodes = readers.get(name, [])   # the output is read by nobody
        return bool(nodes) and all(isinstance(node.layer, ReLU) or (node.layer.passes_through and relu_only(node.name))
                                   for node in nodes)
    return {i: {"mixed": bool(m), "relu_follows": relu_only(model.nodes[i].name)} for i, m in zip(split, mixed)}


def _check_finite(layers, model):
    """Relevance never silently holds NaN: name the first layer (from the output) where it appears.

    One reduction per layer on the device and one synchronisation for all of them."""
    xp = model.xp
    values = [v for item in layers for v in (item if isinstance(item, tuple) else (item,))]
    owner = [i for i, item in enumerate(layers) for _ in (item if isinstance(item, tuple) else (item,))]
    finite = to_host(xp.stack([xp.isfinite(v).all() for v in values]))
    bad = [owner[k] for k in np.flatnonzero(~finite)]
    if bad:
        i = max(bad)
        raise FloatingPointError(
            f"relevance became NaN or Inf at the input of layer {i} ({model.nodes[i].name!r}); "
            "a denominator was zero: use a stabilizer or epsilon > 0"
        )


def initial_relevance(output, target=None, init="logit"):
    """The output relevance and the target of every sample.

    Parameters
    ----------
    output : array of shape (N, C) or (N, C, 1, 1)
        The network output.
    target, init
        As in :func:`explain`.

    Returns
    -------
    R : array of the output's shape
    target : array of N ints, or None for an explicit ``init`` array
    """
    xp = array_module(output)
    n, classes = output.shape[:2]
    if not isinstance(init, str):
        if target is not None:
            raise ValueError("init was given as an array, which already chooses the output relevance: pass target=None")
        R = asarray(real_array(init, "the init array"), xp, output.dtype)
        if R.shape == output.shape[1:]:
            R = xp.broadcast_to(R, output.shape).copy()
        if R.shape != output.shape:
            raise ValueError(f"init array must have the output's shape {tuple(output.shape)} or "
                             f"{tuple(output.shape[1:])}, got {tuple(R.shape)}")
        if not bool(xp.isfinite(R).all()):
            raise ValueError("the init array contains NaN or Inf values")
        return R, None
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}: expected one of {INITS} or an array")
    target, on_device = _targets(target, output)
    onehot = xp.zeros(output.shape, dtype=output.dtype)
    onehot[xp.arange(n), on_device] = 1
    scores = output.reshape(n, classes)
    if init == "one":
        return onehot, target
    if init == "softmax":
        p = xp.exp(scores - scores.max(axis=1, keepdims=True))
        scores = p / p.sum(axis=1, keepdims=True)
    return onehot * scores.reshape(output.shape), target


def _targets(target, output):
    """``target`` as N class indices (``None``: the predicted class), checked against the output: on the host
    and on the output's array module (the predicted class is fetched once, a given one uploaded once)."""
    n, classes = output.shape[:2]
    xp = array_module(output)
    if target is None:
        predicted = output.reshape(n, classes).argmax(axis=1)
        return to_host(predicted), predicted
    t = np.asarray(to_host(target) if hasattr(target, "shape") else target)
    if t.dtype.kind not in "iu" or t.ndim > 1 or (t.ndim == 1 and t.shape[0] != n):
        raise ValueError(f"target must be a class index or one per sample ({n} integers), got {target!r}")
    if ((t < 0) | (t >= classes)).any():
        raise ValueError(f"target {target!r} is out of range: the network has {classes} classes (0..{classes - 1})")
    t = np.broadcast_to(t, (n,)).copy()
    return t, asarray(t, xp)


class ConservationReport:
    """Relevance sums per layer and sample, and where the difference went.

    For layer i: ``out`` is the relevance of its output, ``into`` what it hands to its input(s), and
    ``out - into = bias + stabilizer``: ``bias`` is what the rule's bias neuron kept, ``stabilizer`` the
    rest (the stabilizer's or epsilon's share, or relevance a rule does not pass on).
    Arrays have one entry per layer (rows) and sample (columns).
    """

    def __init__(self, explanation):
        e = explanation
        self.names = e.names
        self.rules = [str(rule) for rule in e.rules]
        n = e.output.shape[0]
        self.out = np.stack([to_host(s[0]) for s in e._sums])
        self.into = np.stack([to_host(s[1]) for s in e._sums])
        self.bias = np.stack([np.zeros(n) if s[2] is None else to_host(s[2]) for s in e._sums])
        self.stabilizer = self.out - self.into - self.bias
        self.total_out = to_host(_sample_sum(e.init))
        self.total_in = to_host(_sample_sum(e.relevance))
        self.block_names = [add for add, _ in e.blocks]
        if any(t not in e.tensors for _, t in e.blocks):
            raise ValueError("the conservation report of a residual network needs the relevance of its blocks: "
                             "explain with keep='all'")
        self.block_in = np.stack([to_host(_sample_sum(e.tensors[t])) for _, t in e.blocks]) if e.blocks else \
            np.zeros((0, n))

    def plot_blocks(self, path, sample=0, title="relevance along the network"):
        """A PNG of the relevance sum along a residual network: its input, the input of every residual block
        (the tensor its shortcut starts from), and the output relevance; for one sample."""
        from .plots import line_plot
        sample = self._sample(sample)
        sums = [self.total_in[sample], *self.block_in[:, sample], self.total_out[sample]]
        lost = max(abs(s - sums[-1]) for s in sums) / abs(sums[-1]) if sums[-1] else 0.0
        line_plot(path, [(f"relevance sum (output relevance {sums[-1]:.4g}; largest change {lost:.1e} of it)",
                          range(len(sums)), sums)], title=title,
                  xlabel="0: input, 1..B: input of residual block b, B + 1: output", ylabel="sum of relevance")

    def table(self, sample=None):
        """The report as text, for one sample or (``None``) summed over the batch."""
        sample = None if sample is None else self._sample(sample)
        pick = (lambda a: a.sum(axis=-1)) if sample is None else (lambda a: a[..., sample])
        out, into, bias, stab = pick(self.out), pick(self.into), pick(self.bias), pick(self.stabilizer)
        head = f"{'idx':>4}  {'name':<16} {'sum R out':>14} {'sum R in':>14} {'bias':>12} {'stabilizer':>12}  rule"
        rows = [f"{i:>4}  {name:<16} {o:>14.6g} {r:>14.6g} {b:>12.4g} {s:>12.4g}  {rule}"
                for i, (name, o, r, b, s, rule) in enumerate(zip(self.names, out, into, bias, stab, self.rules))]
        which = "summed over the batch" if sample is None else f"sample {sample}"
        foot = (f"output relevance {pick(self.total_out):.6g} -> input relevance {pick(self.total_in):.6g} "
                f"({which})")
        return "\n".join([head] + rows + [foot])

    def __str__(self):
        return self.table()

    def _sample(self, sample):
        """``sample`` as the index of a sample of the batch (a negative index would be named as given)."""
        n = self.out.shape[1]
        sample = integer(sample, "sample", low=0)
        if sample >= n:
            raise ValueError(f"sample must be the index of a sample of the batch, 0..{n - 1}, got {sample}")
        return sample
