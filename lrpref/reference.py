"""Golden reference vectors: lrpref's relevance at every layer, for a fixed suite of networks and of rules,
composites and conventions, in an HDF5 file that another implementation can check itself against without
installing lrpref.

The file (``format = "lrpref-reference"``, ``format_version = 1``)::

    /                           attributes: format, format_version, lrpref_version, description
    /networks/<network>/        attributes: description
        model/                  the network in lrpref's network schema (tutorials/guides/models.md, "HDF5 schema"): its layers in
                                execution order with their arrays in PyTorch layout; meta holds input_low and
                                input_high, the zB bounds
        input                   float64 (N, ...): the input batch
        output                  float64 (N, classes): the logits
        cases/<case>/           attributes: method ("lrp", "clrp" or "sglrp"), composite (an lrpref composite
                                name), params (JSON: the composite's parameters; zB bounds not listed come
                                from the model's meta), init ("logit", "one", "softmax" or "given"),
                                rules (JSON: layer name to its rule), description
            target              int64 (N,): the explained class of every sample (the prediction)
            init                float64 (N, classes): the output relevance the explanation starts from
            relevance/<tensor>  float64: the relevance of every tensor, named as the layer that produces it
                                ("input" for the input: the explanation itself). Contrastive cases hold only
                                relevance/input, the contrastive map.

A file to check (``THEIRS``) needs the same root attributes and, for every case it answers,
``/networks/<network>/cases/<case>/relevance/<tensor>`` with the reference's shapes; everything else is
optional. :func:`check` (and ``lrpref reference check REFERENCE THEIRS``) compares them dataset by dataset.
"""
import json
from dataclasses import dataclass, field

import h5py
import numpy as np
from tqdm import tqdm

from . import __version__, composites, conventions, io, toolbox
from .backend import to_host
from .checks import number
from .contrastive import clrp, sglrp
from .explain import explain
from .files import atomic_path
from .layers import (Add, AdaptiveAvgPool2d, AvgPool2d, Conv2d, Dense, Dropout, Flatten, MaxPool2d,
                     ReLU, ZeroPad2d)
from .models import torchvision
from .network import Sequential
from .preprocessing import PREPROCESSING

FORMAT = "lrpref-reference"
VERSION = 1
TOLERANCE = 1e-9


# -- the networks -----------------------------------------------------------------------------------------------

def _params(rng):
    """``param`` for the torchvision-layout builders: random weights, biases and BatchNorm statistics (none of
    them 0 or 1, so that every bias convention and the BatchNorm folding change the numbers)."""
    def param(name, shape, kind):
        if kind == "conv":
            return rng.normal(size=shape) * np.sqrt(2.0 / np.prod(shape[1:]))
        if kind.startswith("linear") and not kind.endswith("bias"):
            return rng.normal(size=shape) / np.sqrt(shape[1])
        if kind in ("bn_weight", "bn_running_var"):
            return rng.uniform(0.5, 1.5, size=shape)
        return 0.1 * rng.normal(size=shape)   # biases, BatchNorm bias and mean
    return param


def _mlp(rng):
    dense = [Dense(rng.normal(size=(n_out, n_in)) / np.sqrt(n_in), 0.1 * rng.normal(size=n_out))
             for n_in, n_out in ((8, 6), (6, 5), (5, 4))]
    net = Sequential([dense[0], ReLU(), dense[1], ReLU(), dense[2]], input_shape=(8,),
                     meta={"input_low": -1.0, "input_high": 1.0})
    return net, rng.uniform(-1, 1, size=(3, 8)), "Dense 8-6-5-4 with ReLU; inputs uniform in [-1, 1]"


def _cnn(rng):
    def conv(c_in, c_out, k, **kw):
        return Conv2d(rng.normal(size=(c_out, c_in, k, k)) / np.sqrt(c_in * k * k), 0.1 * rng.normal(size=c_out), **kw)
    layers = [MaxPool2d(3, 2, 1), conv(2, 4, 3, padding=1), ReLU(), ZeroPad2d((0, 1, 0, 1)), conv(4, 5, 2, stride=2),
              ReLU(), AvgPool2d(2, 1), AdaptiveAvgPool2d(2), Flatten(),
              Dense(rng.normal(size=(8, 20)) / np.sqrt(20), 0.1 * rng.normal(size=8)), ReLU(), Dropout(0.5),
              Dense(rng.normal(size=(5, 8)) / np.sqrt(8), 0.1 * rng.normal(size=5))]
    net = Sequential(layers, input_shape=(2, 9, 9), meta={"input_low": -1.0, "input_high": 1.0})
    x = rng.integers(-4, 5, size=(3, 2, 9, 9)) / 4.0   # quarter steps: tied maxima in the first max pool
    return net, x, ("MaxPool2d(3, 2, 1) on the input, Conv2d, ZeroPad2d, strided Conv2d, AvgPool2d, "
                    "AdaptiveAvgPool2d, Dense, Dropout; inputs in quarter steps of [-1, 1], so max pooling sees ties")


def _torchvision(arch, width, description):
    def build(rng):
        if arch.startswith("vgg"):   # pooled to 1 x 1, the size of its features at 32 x 32, as the tutorial's 7 at 224
            net = torchvision.vgg(arch, _params(rng), num_classes=10, width=width, pool_size=1)
        else:
            net = torchvision.resnet(arch, _params(rng), num_classes=10, width=width)
        io.set_preprocessing(net, "torchvision")
        x = PREPROCESSING["torchvision"].normalize(rng.uniform(0, 1, size=(1, 3, 32, 32)))
        return net, x, description
    return build


def _toolbox(rng):
    """An LRP Toolbox network, built from its layout (kernels (h, w, in, out), linear weights (in, out))."""
    spec = [["conv", 3, 3, 3, 4, 1], ["relu"], ["max", 3, 2], ["conv", 3, 3, 4, 6, 1], ["relu"], ["sum", 2, 2],
            ["flat"], ["lin", 10], ["relu"], ["lin", 5]]
    params = {i: (rng.normal(size=shape) / np.sqrt(np.prod(shape[:-1])), 0.1 * rng.normal(size=shape[-1]))
              for i, shape in ((0, (3, 3, 3, 4)), (3, (3, 3, 4, 6)), (7, (24, 10)), (9, (10, 5)))}
    net = toolbox.network(spec, params, (15, 15, 3))
    return net, rng.uniform(-1, 1, size=(3, 3, 15, 15)), (
        "an LRP Toolbox CNN (Convolution, Rect, overlapping MaxPool 3x3 stride 2, SumPool 2x2, Flatten, Linear) "
        "converted from its layout; inputs uniform in [-1, 1]")


NETWORKS = {
    "mlp": _mlp,
    "cnn": _cnn,
    "vgg16_small": _torchvision("vgg16", 1 / 32, "torchvision's VGG16 at 1/32 width, 10 classes, one 32x32 image "
                                                 "(torchvision preprocessing); the adaptive average pool to 1x1 is "
                                                 "the identity there, as torchvision's 7x7 at 224x224"),
    "resnet18_small": _torchvision("resnet18", 1 / 16, "torchvision's ResNet18 at 1/16 width with random "
                                                       "BatchNorm statistics, 10 classes, one 32x32 image"),
    "toolbox_cnn": _toolbox,
}
SEEDS = {"cnn": 0, "mlp": 1, "resnet18_small": 2, "vgg16_small": 3, "toolbox_cnn": 4}   # each network's random seed


# -- the cases --------------------------------------------------------------------------------------------------

@dataclass
class Case:
    """One explanation: ``method`` ("lrp", "clrp", "sglrp"), a composite with its parameters, an init."""

    name: str
    composite: str
    params: dict = field(default_factory=dict)
    init: str = None
    method: str = "lrp"
    options: dict = field(default_factory=dict)   # the contrastive method's own options

    def run(self, net, x):
        """The explanation (an :class:`~lrpref.Explanation`, or a :class:`~lrpref.contrastive.Contrastive`)."""
        if self.method == "clrp":
            return clrp(net, x, composite=self.composite, **self.options, **self.params)
        if self.method == "sglrp":
            return sglrp(net, x, composite=self.composite, **self.options, **self.params)
        init = {} if self.init is None else {"init": self.init}
        return explain(net, x, composite=self.composite, **init, **self.params)


SINGLE_RULES = {   # case name: composite, parameters
    "lrp0": ("lrp0", {}), "epsilon": ("epsilon", {}), "epsilon-0.25": ("epsilon", {"epsilon": 0.25}),
    "gamma": ("gamma", {}), "zplus": ("zplus", {}), "alpha2_beta1": ("alpha_beta", {}),
    "alpha1_beta0": ("alpha_beta", {"alpha": 1.0, "beta": 0.0}), "flat": ("flat", {}), "wsquare": ("wsquare", {}),
}
CAPTUM_LAYERS = (Dense, Conv2d, ReLU, Dropout, Flatten, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d)   # what its LRP takes
ZENNIT = ("epsilon_gamma_box", "epsilon_plus", "epsilon_plus_flat", "epsilon_alpha2_beta1",
          "epsilon_alpha2_beta1_flat")


def cases(network, net):
    """The cases of the suite for ``network`` (a name of :data:`NETWORKS`) and its network ``net``."""
    if network == "toolbox_cnn":   # the Toolbox's layers: the single rules in its convention (and Zennit's, to compare)
        return [Case(name + suffix, composite, {**params, "convention": convention})
                for convention, suffix in (("toolbox", "-toolbox"), ("zennit", ""))
                for name, (composite, params) in SINGLE_RULES.items()]
    small = network in ("mlp", "cnn")   # every rule and composite in every convention on the small networks
    out = []
    for convention in sorted(conventions.CONVENTIONS) if small else ["zennit"]:
        suffix = "" if convention == "zennit" else f"-{convention}"
        for name, (composite, params) in SINGLE_RULES.items():
            out.append(Case(name + suffix, composite, {**params, "convention": convention}))
        for composite in ZENNIT:
            out.append(Case(composite + suffix, composite, {"convention": convention}))
    for name in ("epsilon", "gamma", "alpha1_beta0"):
        composite, params = SINGLE_RULES[name]
        out.append(Case(f"{name}-zero_bias", composite, {**params, "zero_bias": True}))
    out += [Case("epsilon_plus-init_one", "epsilon_plus", init="one"),
            Case("epsilon_plus-init_softmax", "epsilon_plus", init="softmax")]
    if any(isinstance(layer, MaxPool2d) for layer in net.layers):
        # Zennit's convention (the first of tied maxima takes all, PyTorch's gradient) for every Zennit composite;
        # "average2x2" (the LRP-for-ResNet code's) is in the otsuki2024 cases
        out += [Case(f"{composite}-maxpool_gradient", composite, {"maxpool": "gradient"}) for composite in ZENNIT]
        out.append(Case("epsilon_plus-maxpool_average", "epsilon_plus", {"maxpool": "average"}))
    has_add = any(isinstance(layer, Add) for layer in net.layers)
    if small:   # iNNvestigate's analyzers (it does not fold BatchNorm)
        out += [Case(f"innvestigate-{a}", "innvestigate", {"analyzer": a}) for a in composites.INNVESTIGATE]
    if all(isinstance(layer, CAPTUM_LAYERS) for layer in net.layers):
        out += [Case(f"captum-{rule}{'-zero_bias' if zero else ''}", "captum",
                     {"rule": rule, **({"set_bias_to_zero": True} if zero else {})}, init="logit")
                for rule in ("epsilon", "gamma", "alpha1_beta0") for zero in (False, True)]
    if network == "mlp":
        out.append(Case("tutorial_mnist", "tutorial_mnist"))
    if network == "vgg16_small":
        out.append(Case("tutorial_vgg16", "tutorial_vgg16"))
    if has_add:
        out += [Case(f"otsuki2024-{skip}", "otsuki2024", {"skip": skip}) for skip in sorted(composites.SKIP)]
    if any(isinstance(layer, Conv2d) for layer in net.layers):   # CLRP's composite: zB on the first convolution
        out.append(Case("clrp_paper", "clrp_paper"))
        out += [Case(f"clrp{v}-{c}", "clrp_paper", method="clrp", options={"variant": v, "convention": c})
                for v in (1, 2) for c in ("paper", "official")]
        out += [Case(f"sglrp-{mode}", "clrp_paper", method="sglrp", options={"mode": mode})
                for mode in ("one_pass", "scaled")]
    return out


# -- export -----------------------------------------------------------------------------------------------------

def export(path, networks=None, progress=True):
    """Write the reference suite to ``path``: every network of :data:`NETWORKS` (or those named in
    ``networks``) with all its cases, in float64. Returns the number of cases written."""
    names = list(NETWORKS) if networks is None else [networks] if isinstance(networks, str) else list(networks)
    names = list(dict.fromkeys(names))   # a network named twice is exported once (HDF5 has one group per name)
    if not names:
        raise ValueError(f"networks must name at least one of {list(NETWORKS)} (or be None: all), got none")
    unknown = sorted(set(names) - set(NETWORKS))
    if unknown:
        raise ValueError(f"unknown reference network(s) {unknown}: expected some of {list(NETWORKS)}")
    built = {}
    for name in names:
        net, x, description = NETWORKS[name](np.random.default_rng(SEEDS[name]))
        built[name] = net, x, description
    work = [(name, case) for name in names for case in cases(name, built[name][0])]
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs.update(format=FORMAT, format_version=VERSION, lrpref_version=__version__,
                       description="lrpref golden reference vectors: relevance at every layer, float64")
        for name in names:
            net, x, description = built[name]
            group = f.create_group(f"networks/{name}")
            group.attrs["description"] = description
            io.write(net, group.create_group("model"))
            group["input"], group["output"] = to_host(x), to_host(net.forward(x))
        for name, case in tqdm(work, desc="reference cases", unit="case", disable=not progress):
            net, x, _ = built[name]
            _write_case(f[f"networks/{name}"].create_group(f"cases/{case.name}"), case, net, case.run(net, x))
    return len(work)


def _write_case(group, case, net, result):
    explanation = result if case.method == "lrp" else result.primary
    init = "given" if case.method != "lrp" else \
        case.init or composites.get(case.composite, net=net, **case.params).init or "logit"
    group.attrs.update(method=case.method, composite=case.composite, init=init,
                       params=json.dumps({**case.params, **case.options}),
                       rules=json.dumps(dict(zip(explanation.names, map(str, explanation.rules)))),
                       description=f"{case.method} {case.composite} {json.dumps({**case.params, **case.options})}")
    group["target"] = to_host(result.target, np.int64)
    group["init"] = to_host(result.init)
    relevance = group.create_group("relevance")
    if case.method == "lrp":
        for tensor, R in result.tensors.items():
            relevance[tensor] = to_host(R)
    else:
        relevance["input"] = to_host(result.relevance)


# -- check ------------------------------------------------------------------------------------------------------

@dataclass
class Row:
    """One compared dataset: its case and tensor, its shape, the largest absolute and relative errors."""

    network: str
    case: str
    tensor: str
    shape: tuple
    max_abs: float
    relative: float
    ok: bool


class CheckReport:
    """The result of :func:`check`: one :class:`Row` per compared dataset; ``answered`` of the reference's
    ``cases`` were answered, ``skipped`` were not."""

    def __init__(self, rows, tolerance, answered, cases):
        self.rows, self.tolerance, self.answered, self.cases = rows, tolerance, answered, cases

    @property
    def skipped(self):
        return self.cases - self.answered

    @property
    def ok(self):
        return all(row.ok for row in self.rows)

    @property
    def failed(self):
        return [row for row in self.rows if not row.ok]

    def table(self, every_layer=False):
        """One line per case (its worst tensor); every tensor of a case above the tolerance, or of every case
        with ``every_layer``."""
        lines = [f"{'network':<16} {'case':<34} {'tensor':<24} {'max abs error':>14} {'relative':>10}"]
        by_case = {}
        for row in self.rows:
            by_case.setdefault((row.network, row.case), []).append(row)
        for (network, case), rows in by_case.items():
            worst = max(rows, key=lambda r: r.relative)
            shown = rows if every_layer or not worst.ok else [worst]
            for row in shown:
                flag = "" if row.ok else "  FAIL"
                label = row.tensor if (every_layer or not worst.ok) else f"{row.tensor} (worst of {len(rows)})"
                lines.append(f"{network:<16} {case:<34} {label:<24} {row.max_abs:>14.3e} {row.relative:>10.3e}{flag}")
        failed = len(self.failed)
        lines.append(f"{len(self.rows)} datasets in {len(by_case)} cases compared; {failed} above the relative "
                     f"tolerance {self.tolerance:g}" + ("" if failed else ": all agree")
                     + (f"; {self.skipped} of the reference's {self.cases} cases not answered (skipped)"
                        if self.skipped else ""))
        return "\n".join(lines)

    def __str__(self):
        return self.table()


def check(reference, theirs, tolerance=TOLERANCE, input_only=False):
    """Compare another implementation's relevance with the reference file.

    Parameters
    ----------
    reference : path
        A file written by :func:`export`.
    theirs : path or mapping
        A file in the same schema (see the module docstring) holding the cases it answers, or a mapping
        ``{"<network>/<case>": {tensor: array}}``.
    tolerance : float
        The largest accepted relative error ``max |theirs - reference| / max |reference|`` per dataset (NaN or
        Inf count as infinite).
    input_only : bool
        Compare only ``relevance/input`` of every case (else every tensor the reference holds).

    Returns
    -------
    CheckReport

    Raises
    ------
    FileNotFoundError, ValueError
        A missing file, a wrong format or version, a file that answers no case, a case the reference lacks, a
        missing dataset or a shape that differs from the reference's: each message names the dataset.
    """
    tolerance = number(tolerance, "tolerance", low=0.0)
    if not isinstance(theirs, (str, bytes)) and not hasattr(theirs, "__fspath__"):
        answers = {key: {tensor: to_host(R) for tensor, R in value.items()} for key, value in theirs.items()}
        source = "the answers given"
    else:
        answers, source = _read_answers(theirs), str(theirs)
    rows = []
    with _open(reference, "reference") as ref:
        cases = sum(len(group.get("cases", {})) for group in ref.get("networks", {}).values())
        if not answers:
            raise ValueError(f"{source} answers none of the reference's {cases} cases (expected groups "
                             "/networks/<network>/cases/<case>/relevance)")
        for key, given in answers.items():
            network, _, case = key.partition("/")
            where = f"/networks/{network}/cases/{case}"
            if where not in ref:
                raise ValueError(f"{where}: no such case in the reference {reference}")
            expected = ref[f"{where}/relevance"]
            for tensor in ["input"] if input_only else list(expected):
                want = expected[tensor][()]
                if tensor not in given:
                    raise ValueError(f"{where}/relevance/{tensor}: missing from the file checked "
                                     f"(the reference holds it with shape {want.shape})")
                got = given[tensor]
                if got.shape != want.shape:
                    raise ValueError(f"{where}/relevance/{tensor}: shape {got.shape}, the reference's is {want.shape}")
                rows.append(_compare(network, case, tensor, got, want, tolerance))
    return CheckReport(rows, tolerance, len(answers), cases)


def _compare(network, case, tensor, got, want, tolerance):
    if not np.isfinite(got).all():
        return Row(network, case, tensor, want.shape, np.inf, np.inf, False)
    max_abs = float(np.abs(got - want).max()) if want.size else 0.0
    scale = float(np.abs(want).max()) if want.size else 0.0
    relative = max_abs / scale if scale > 0 else max_abs
    return Row(network, case, tensor, want.shape, max_abs, relative, relative <= tolerance)


def _open(path, what):
    """The HDF5 file at ``path``, once its root attributes say it is a reference file of this version."""
    f = io.open_hdf5(path, {"reference": "reference file", "checked": "file to check"}[what])
    found, version = f.attrs.get("format"), f.attrs.get("format_version")
    if found != FORMAT or version != VERSION:
        f.close()
        if found != FORMAT:
            raise ValueError(f"{path} ({what}): the root attribute 'format' is not {FORMAT!r}")
        raise ValueError(f"{path} ({what}): format_version {version}; this lrpref reads version {VERSION}")
    return f


def _read_answers(path):
    """``{"<network>/<case>": {tensor: array}}`` from a file in the reference schema."""
    answers = {}
    with _open(path, "checked") as f:
        if "networks" not in f:
            raise ValueError(f"{path}: no group /networks")
        for network, group in f["networks"].items():
            for case, case_group in group.get("cases", {}).items():
                if "relevance" not in case_group:
                    raise ValueError(f"{path}: /networks/{network}/cases/{case}/relevance is missing")
                answers[f"{network}/{case}"] = {t: d[()] for t, d in case_group["relevance"].items()}
    return answers
