"""Composites: which rule each layer gets.

A :class:`Composite` is an ordered list of ``(selector, rule)`` entries; each layer gets the rule of the first
entry whose selector matches it, and a layer that matches none is an error. Selectors pick layers by kind
(:class:`Kind`), by name (:class:`Name`), by index (:class:`Index`), or the first/last of a kind
(:class:`First`, :class:`Last`); ``a & b`` needs both.

The built-in composites are registered by name in :data:`COMPOSITES` and take Zennit's parameter names. All
of them end with the same entries for the layers without parameters (Zennit's ``layer_map_base``): Pass for
ReLU, Dropout, BatchNorm2d, Flatten and ZeroPad2d; Norm for the average pools; a proportional split for Add;
winner-take-all for max pooling with ties split (``maxpool="winner"``), or all to the first maximum as
PyTorch's gradient and Zennit do (``"gradient"``), or the tutorial's average-pool treatment (``"average"``).
"""
import inspect

from . import conventions
from .layers import AdaptiveAvgPool2d, Add, AvgPool2d, BatchNorm2d, Conv2d, Dense, Dropout, Flatten, MaxPool2d, \
    ReLU, ZeroPad2d
from .network import INPUT, PROJECTION
from .rules import LRP0, AverageMaxPool, Epsilon, FixedSplit, Flat, Gradient, MaxPoolEpsilon, Norm, OriginalZPlus, \
    Pass, ProportionalSplit, RatioSplit, Rule, WinnerTakeAll, WSquare, ZBox, ZPlus
from .stabilizer import Stabilizer

WEIGHTED = (Dense, Conv2d)


# -- selectors ------------------------------------------------------------------------------------------------

class Selector:
    """Picks layers of a network by their index."""

    def matches(self, net, index):
        raise NotImplementedError

    def __and__(self, other):
        return Both(self, other)


class Kind(Selector):
    """Layers of the given classes."""

    def __init__(self, *types):
        self.types = types

    def matches(self, net, index):
        return isinstance(net.nodes[index].layer, self.types)

    def __str__(self):
        return "|".join(t.__name__ for t in self.types)


class First(Kind):
    """The first layer (in execution order) of the given classes."""

    def matches(self, net, index):
        return index == next((i for i in range(len(net)) if Kind.matches(self, net, i)), None)

    def __str__(self):
        return f"first {super().__str__()}"


class Last(Kind):
    """The last layer (in execution order) of the given classes."""

    def matches(self, net, index):
        return index == next((i for i in reversed(range(len(net))) if Kind.matches(self, net, i)), None)

    def __str__(self):
        return f"last {super().__str__()}"


class Name(Selector):
    """Layers with the given names."""

    def __init__(self, *names):
        self.names = names

    def matches(self, net, index):
        return net.nodes[index].name in self.names

    def __str__(self):
        return "name in " + ", ".join(self.names)


class Index(Selector):
    """Layers at the given indices (ints or ranges)."""

    def __init__(self, *indices):
        self.indices = {i for item in indices for i in (item if isinstance(item, range) else [item])}

    def matches(self, net, index):
        return index in self.indices

    def __str__(self):
        return f"index in {sorted(self.indices)}"


class TutorialIndex(Selector):
    """Layers whose index in the tutorial's VGG16 list lies in ``[low, high]``.

    The tutorial's list is ``features`` followed by the classifier turned into convolutions; it has no
    adaptive average pool and no flatten, so those are not counted.
    """

    skipped = (AdaptiveAvgPool2d, Flatten)

    def __init__(self, low, high):
        self.low, self.high = low, high

    def matches(self, net, index):
        if isinstance(net.nodes[index].layer, self.skipped):
            return False
        position = sum(not isinstance(node.layer, self.skipped) for node in net.nodes[:index])
        return self.low <= position <= self.high

    def __str__(self):
        return f"tutorial index {self.low}..{self.high}"


class Projection(Selector):
    """Residual additions whose skip branch is a projection (a 1x1 convolution, usually with BatchNorm)
    rather than the identity: the second input of the Add comes from a Conv2d or BatchNorm2d."""

    def matches(self, net, index):
        node = net.nodes[index]
        return isinstance(node.layer, Add) and node.inputs[1] != INPUT and isinstance(net[node.inputs[1]], PROJECTION)

    def __str__(self):
        return "projection shortcut"


class Both(Selector):
    """Layers matched by both selectors."""

    def __init__(self, first, second):
        self.first, self.second = first, second

    def matches(self, net, index):
        return self.first.matches(net, index) and self.second.matches(net, index)

    def __str__(self):
        return f"{self.first} & {self.second}"


# -- composites -----------------------------------------------------------------------------------------------

class Composite:
    """An ordered list of ``(selector, rule)`` entries; the first match wins.

    Parameters
    ----------
    entries : list of (Selector, Rule)
    name : str
    fold_batchnorm : bool
        Merge BatchNorm2d into the layer before it before explaining (Zennit's canonizer).
    init : str or None
        The output relevance ``explain`` starts from when it is not given (``None``: the logit).
    requires : tuple of layer classes
        Kinds of layer the network must contain (the composite makes no sense without them).
    """

    def __init__(self, entries, name="custom", fold_batchnorm=True, init=None, requires=()):
        self.entries = list(entries)
        for entry in self.entries:
            if not (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], Selector)
                    and isinstance(entry[1], Rule)):
                raise TypeError(f"composite entries must be (Selector, Rule) pairs, got {entry!r}")
        self.name = name
        self.fold_batchnorm = fold_batchnorm
        self.init = init
        self.requires = tuple(requires)

    def rules(self, net):
        """The rule of every layer of ``net``, in order.

        Raises
        ------
        ValueError
            If a layer matches no entry, or its entry's rule does not apply to that kind of layer.
        """
        for kind in self.requires:
            if not any(isinstance(layer, kind) for layer in net.layers):
                raise ValueError(f"composite {self.name!r} needs a network with {kind.__name__} layers; this one has none")
        rules = []
        for i, node in enumerate(net.nodes):
            rule = next((rule for selector, rule in self.entries if selector.matches(net, i)), None)
            where = f"layer {i} ({node.name!r}, {node.layer!r})"
            if rule is None:
                raise ValueError(
                    f"{where} matches no entry of composite {self.name!r}; its entries select: "
                    + "; ".join(str(selector) for selector, _ in self.entries)
                )
            if not isinstance(node.layer, rule.layer_types):
                kinds = ", ".join(t.__name__ for t in rule.layer_types)
                raise ValueError(f"composite {self.name!r} gives {where} the rule {rule}, which applies to {kinds}")
            rules.append(rule)
        return rules

    def describe(self, net):
        """A table of the rule each layer of ``net`` gets."""
        rows = [f"{i:>4}  {n.name:<20} {n.layer!r:<48} {rule}" for i, (n, rule) in
                enumerate(zip(net.nodes, self.rules(net)))]
        return "\n".join([f"composite {self.name!r}", f"{'idx':>4}  {'name':<20} {'layer':<48} rule"] + rows)


def base(stabilizer, maxpool="winner"):
    """The entries for layers without parameters, shared by every built-in composite."""
    return [
        (Kind(ReLU, Dropout, BatchNorm2d, Flatten, ZeroPad2d), Pass()),
        (Kind(AvgPool2d, AdaptiveAvgPool2d), Norm(stabilizer)),
        (Kind(Add), ProportionalSplit(stabilizer)),
        (Kind(MaxPool2d), maxpool_rule(maxpool, stabilizer)),
    ]


MAXPOOL = ("winner", "gradient", "average", "average2x2")


def maxpool_rule(maxpool, stabilizer):
    """``"winner"``: winner-take-all, ties split equally; ``"gradient"``: all to the first maximum (PyTorch's
    gradient, Zennit's behaviour); ``"average"``: the tutorial's average-pool treatment (the max pool's own
    windows); ``"average2x2"``: 2x2 average pooling, as the LRP-for-ResNet code does."""
    if maxpool == "winner":
        return WinnerTakeAll("split")
    if maxpool == "gradient":
        return WinnerTakeAll("first")
    if maxpool == "average":
        return AverageMaxPool(stabilizer)
    if maxpool == "average2x2":
        return AverageMaxPool(stabilizer, kernel_size=2)
    raise ValueError(f"maxpool must be one of {MAXPOOL}, got {maxpool!r}")


COMPOSITES = {}


def register(factory):
    """Register a composite factory under its function name."""
    COMPOSITES[factory.__name__] = factory
    return factory


# -- Zennit's composites ----------------------------------------------------------------------------------------

@register
def epsilon_gamma_box(low, high, epsilon=None, gamma=0.25, stabilizer=None, zero_bias=False, maxpool="winner",
                      convention="zennit"):
    """zB on the first Conv2d, gamma on the other Conv2d, epsilon on Dense (Zennit ``EpsilonGammaBox``)."""
    c = conventions.get(convention)
    stab = c.stabilizer(stabilizer)
    return Composite([
        (First(Conv2d), ZBox(low, high, stab)),
        (Kind(Conv2d), c.gamma(gamma, stab, zero_bias)),
        (Kind(Dense), Epsilon(c.epsilon(epsilon), zero_bias)),
        *base(stab, maxpool),
    ], "epsilon_gamma_box")


@register
def epsilon_plus(epsilon=None, stabilizer=None, zero_bias=False, maxpool="winner", convention="zennit"):
    """z-plus on Conv2d, epsilon on Dense (Zennit ``EpsilonPlus``)."""
    c = conventions.get(convention)
    stab = c.stabilizer(stabilizer)
    return Composite([
        (Kind(Conv2d), ZPlus(stab, zero_bias)),
        (Kind(Dense), Epsilon(c.epsilon(epsilon), zero_bias)),
        *base(stab, maxpool),
    ], "epsilon_plus")


@register
def epsilon_plus_flat(epsilon=None, stabilizer=None, zero_bias=False, maxpool="winner", convention="zennit"):
    """Flat on the first Conv2d or Dense, then as :func:`epsilon_plus` (Zennit ``EpsilonPlusFlat``)."""
    stab = conventions.get(convention).stabilizer(stabilizer)
    plus = epsilon_plus(epsilon, stabilizer, zero_bias, maxpool, convention)
    return Composite([(First(*WEIGHTED), Flat(stab))] + plus.entries, "epsilon_plus_flat")


@register
def epsilon_alpha2_beta1(epsilon=None, stabilizer=None, zero_bias=False, maxpool="winner", convention="zennit"):
    """Alpha2-beta1 on Conv2d, epsilon on Dense (Zennit ``EpsilonAlpha2Beta1``)."""
    c = conventions.get(convention)
    stab = c.stabilizer(stabilizer)
    return Composite([
        (Kind(Conv2d), c.alpha_beta(2.0, 1.0, stab, zero_bias)),
        (Kind(Dense), Epsilon(c.epsilon(epsilon), zero_bias)),
        *base(stab, maxpool),
    ], "epsilon_alpha2_beta1")


@register
def epsilon_alpha2_beta1_flat(epsilon=None, stabilizer=None, zero_bias=False, maxpool="winner",
                              convention="zennit"):
    """Flat on the first Conv2d or Dense, then as :func:`epsilon_alpha2_beta1` (Zennit ``EpsilonAlpha2Beta1Flat``)."""
    stab = conventions.get(convention).stabilizer(stabilizer)
    ab = epsilon_alpha2_beta1(epsilon, stabilizer, zero_bias, maxpool, convention)
    return Composite([(First(*WEIGHTED), Flat(stab))] + ab.entries, "epsilon_alpha2_beta1_flat")


# -- one rule on every Dense and Conv2d -------------------------------------------------------------------------

def _single(name, rule, stab, maxpool, convention):
    pools = [(Kind(kind), pool_rule) for kind, pool_rule in convention.pools(rule).items()]
    return Composite([(Kind(*WEIGHTED), rule), *pools, *base(stab, maxpool)], name)


@register
def lrp0(stabilizer=None, zero_bias=False, maxpool="winner", convention="zennit"):
    """LRP-0 on every Dense and Conv2d."""
    c = conventions.get(convention)
    stab = c.stabilizer(stabilizer)
    return _single("lrp0", LRP0(stab, zero_bias), stab, maxpool, c)


@register
def epsilon(epsilon=None, stabilizer=None, zero_bias=False, maxpool="winner", convention="zennit"):
    """LRP-epsilon on every Dense and Conv2d."""
    c = conventions.get(convention)
    return _single("epsilon", Epsilon(c.epsilon(epsilon), zero_bias), c.stabilizer(stabilizer), maxpool, c)


@register
def gamma(gamma=0.25, stabilizer=None, zero_bias=False, maxpool="winner", convention="zennit"):
    """LRP-gamma (the convention's) on every Dense and Conv2d."""
    c = conventions.get(convention)
    return _single("gamma", c.gamma(gamma, stabilizer, zero_bias), c.stabilizer(stabilizer), maxpool, c)


@register
def zplus(stabilizer=None, zero_bias=False, maxpool="winner", convention="zennit"):
    """z-plus on every Dense and Conv2d."""
    c = conventions.get(convention)
    stab = c.stabilizer(stabilizer)
    return _single("zplus", ZPlus(stab, zero_bias), stab, maxpool, c)


@register
def alpha_beta(alpha=2.0, beta=1.0, stabilizer=None, zero_bias=False, maxpool="winner", convention="zennit"):
    """Alpha-beta on every Dense and Conv2d."""
    c = conventions.get(convention)
    stab = c.stabilizer(stabilizer)
    return _single("alpha_beta", c.alpha_beta(alpha, beta, stabilizer, zero_bias), stab, maxpool, c)


@register
def flat(stabilizer=None, maxpool="winner", convention="zennit"):
    """The flat rule on every Dense and Conv2d."""
    c = conventions.get(convention)
    stab = c.stabilizer(stabilizer)
    return _single("flat", Flat(stab), stab, maxpool, c)


@register
def wsquare(stabilizer=None, zero_bias=False, maxpool="winner", convention="zennit"):
    """The w-square rule on every Dense and Conv2d."""
    c = conventions.get(convention)
    stab = c.stabilizer(stabilizer)
    return _single("wsquare", c.wsquare(stab, zero_bias), stab, maxpool, c)


# -- the tutorial, quirks included ------------------------------------------------------------------------------

@register
def tutorial_mnist(low, high, epsilon=0.1, gamma=0.1, maxpool="average"):
    """The tutorial's MNIST rules (`montavon_and_toolbox.md` §1.2), in the tutorial convention.

    zB on the first weighted layer (the tutorial leaves its bias out; here it cancels), LRP-epsilon with
    ``epsilon * rms(z over the batch) + 1e-9`` on the last one (the tutorial's text says LRP-0, its code
    gives the top layer epsilon), the original gamma with rho on the bias on every layer between, ``+1e-9``
    everywhere. Start it from the logit (the tutorial's ``A[L] * onehot(T)``).
    """
    c = conventions.TUTORIAL
    stab = c.stabilizer()
    return Composite([
        (First(*WEIGHTED), ZBox(low, high, stab)),
        (Last(*WEIGHTED), Epsilon(c.epsilon(epsilon))),
        (Kind(*WEIGHTED), c.gamma(gamma, stab)),
        *base(stab, maxpool),
    ], "tutorial_mnist")


@register
def tutorial_vgg16(low, high, epsilon=0.25, gamma=0.25, maxpool="average"):
    """The tutorial's VGG16 rules by layer index l (`montavon_and_toolbox.md` §1.3), in the tutorial convention.

    l counts the tutorial's list: ``features`` (0-30), then the classifier as convolutions (31-37). l = 0:
    zB; 1 <= l <= 16: the original gamma (0.25) on convolutions, pools as average pools, ``+1e-9``;
    17 <= l <= 30: epsilon ``0.25 * rms(z) + 1e-9`` on convolutions and pools; l >= 31: LRP-0 (``+1e-9``).
    The adaptive average pool, absent from the tutorial, passes relevance through (it is the identity for
    224x224 inputs).
    """
    c = conventions.TUTORIAL
    stab, eps = c.stabilizer(), c.epsilon(epsilon)
    pool = maxpool_rule(maxpool, stab)
    pool_eps = maxpool_rule(maxpool, eps)
    lower, middle, upper = TutorialIndex(1, 16), TutorialIndex(17, 30), TutorialIndex(31, 10 ** 9)
    return Composite([
        (First(*WEIGHTED), ZBox(low, high, stab)),
        (Kind(Conv2d) & lower, c.gamma(gamma, stab)),
        (Kind(MaxPool2d) & lower, pool),
        (Kind(Conv2d) & middle, Epsilon(eps)),
        (Kind(MaxPool2d) & middle, pool_eps),
        (Kind(*WEIGHTED) & upper, LRP0(stab)),
        (Kind(ReLU, Dropout, Flatten, AdaptiveAvgPool2d), Pass()),
    ], "tutorial_vgg16")


# -- Contrastive LRP: Gu et al. 2018 ---------------------------------------------------------------------------

@register
def clrp_paper(low, high, stabilizer=1e-9, maxpool="winner"):
    """The rules of the CLRP paper (Gu et al. 2018) and its code: zB on the first convolution, z-plus without
    bias on every other convolution and dense layer (``rho(w) = w+``, ``+1e-9``), winner-take-all max pooling
    with ties split. (The code's zB bounds are the scalars -2.1179 and 2.64; lrpref takes the network's
    per-channel input range.)"""
    stab = Stabilizer(stabilizer, sign_aware=False)
    return Composite([
        (First(Conv2d), ZBox(low, high, stab)),
        (Kind(*WEIGHTED), OriginalZPlus(stab, zero_bias=True)),
        *base(stab, maxpool),
    ], "clrp_paper")


# -- iNNvestigate 1.0.9 ------------------------------------------------------------------------------------------

INNVESTIGATE = ("LRPZ", "LRPZIgnoreBias", "LRPEpsilon", "LRPEpsilonIgnoreBias", "LRPWSquare", "LRPFlat",
                "LRPAlpha2Beta1", "LRPAlpha2Beta1IgnoreBias", "LRPAlpha1Beta0", "LRPAlpha1Beta0IgnoreBias",
                "LRPZPlus", "LRPZPlusFast", "LRPSequentialPresetA", "LRPSequentialPresetB",
                "LRPSequentialPresetAFlat", "LRPSequentialPresetBFlat", "DeepTaylor", "BoundedDeepTaylor")


@register
def innvestigate(analyzer="LRPZ", input_layer_rule=None, epsilon=None, low=None, high=None):
    """iNNvestigate 1.0.9's LRP analyzers by their names (``relevance_analyzer.py``, ``deeptaylor.py``).

    In its convention: ``SafeDivide`` (only exact zeros become 1e-7), the epsilon rule's ``z + 1e-7 sign(z)``,
    alpha-beta with the whole bias in both denominators, z-plus and w-square without bias, flat with ones.
    ``LRPSequentialPresetA``/``B``: Epsilon(0.1) on Dense, Alpha1Beta0/Alpha2Beta1 (with bias) on Conv2d; the
    ``Flat`` variants add the flat rule to the input layer. ``DeepTaylor``: z-plus without bias on layers
    with an activation, w-square on the others, the plain gradient through pools; ``BoundedDeepTaylor`` adds
    zB with ``low``/``high`` on the input layer. ``input_layer_rule``: ``"Flat"`` or ``(low, high)`` for zB
    on the first Dense or Conv2d, as iNNvestigate's argument. Explain with ``target=None`` and
    ``init="logit"``: iNNvestigate's ``neuron_selection_mode="max_activation"``. BatchNorm is not reproduced.
    """
    if analyzer not in INNVESTIGATE:
        raise ValueError(f"unknown iNNvestigate analyzer {analyzer!r}: expected one of {INNVESTIGATE}")
    c = conventions.INNVESTIGATE
    safe = c.stabilizer()
    epsilon = epsilon if epsilon is not None else (0.1 if "Preset" in analyzer else 1e-7)
    ignore_bias = analyzer.endswith("IgnoreBias")
    kernel = {
        "LRPZ": LRP0(safe), "LRPZIgnoreBias": LRP0(safe, zero_bias=True),
        "LRPEpsilon": Epsilon(c.epsilon(epsilon)), "LRPEpsilonIgnoreBias": Epsilon(c.epsilon(epsilon), zero_bias=True),
        "LRPWSquare": WSquare(safe, zero_bias=True), "LRPFlat": Flat(safe),
        "LRPZPlus": c.alpha_beta(1.0, 0.0, safe, zero_bias=True), "LRPZPlusFast": OriginalZPlus(safe, zero_bias=True),
    }
    if analyzer in ("LRPSequentialPresetAFlat", "LRPSequentialPresetBFlat"):
        input_layer_rule = "Flat"
    elif analyzer == "BoundedDeepTaylor":
        input_layer_rule = (low, high)
    entries = []
    if input_layer_rule is not None:
        first = Flat(safe) if input_layer_rule == "Flat" else ZBox(*input_layer_rule, safe)
        entries.append((First(*WEIGHTED), first))
    if analyzer.startswith("LRPAlpha"):
        alpha, beta = (2.0, 1.0) if "Alpha2" in analyzer else (1.0, 0.0)
        entries.append((Kind(*WEIGHTED), c.alpha_beta(alpha, beta, safe, zero_bias=ignore_bias)))
    elif "Preset" in analyzer:
        alpha, beta = (1.0, 0.0) if "PresetA" in analyzer else (2.0, 1.0)
        entries += [(Kind(Dense), Epsilon(c.epsilon(epsilon))), (Kind(Conv2d), c.alpha_beta(alpha, beta, safe))]
    elif "DeepTaylor" in analyzer:   # its w-square branch needs a kernel layer without an activation attribute
        entries.append((Kind(*WEIGHTED), c.alpha_beta(1.0, 0.0, safe, zero_bias=True)))
    else:
        entries.append((Kind(*WEIGHTED), kernel[analyzer]))
    pools = Gradient() if "DeepTaylor" in analyzer else Norm(safe)
    entries += [(Kind(ReLU, Dropout, Flatten, ZeroPad2d), Pass()), (Kind(AvgPool2d, AdaptiveAvgPool2d), pools),
                (Kind(MaxPool2d), WinnerTakeAll("first")), (Kind(Add), ProportionalSplit(safe))]
    return Composite(entries, f"innvestigate:{analyzer}", fold_batchnorm=False)


# -- Captum 0.9 ----------------------------------------------------------------------------------------------------

@register
def captum(rule="epsilon", epsilon=1e-9, gamma=0.25, set_bias_to_zero=False):
    """Captum's ``LRP`` with one of its rules on every Conv2d and Linear (``captum/attr/_utils/lrp_rules.py``).

    ``"epsilon"``: ``EpsilonRule``; ``"gamma"``: ``GammaRule`` (``w + gamma w+`` on the weights, the bias left
    as it is or zeroed, one formula for every output); ``"alpha1_beta0"``: ``Alpha1_Beta0_Rule`` (``w+``, the
    bias left or zeroed, inputs not split by sign). Every denominator is the layer's output plus
    ``1e-9 sign`` (``epsilon`` for EpsilonRule); pools and additions (Captum's ``Addition_Module``) get
    EpsilonRule (max pooling: the first maximum, up to the stabilizer); ReLU and Dropout pass. Captum's
    EpsilonRule on BatchNorm is not reproduced: such networks are refused. Captum scales by the target output,
    which is lrpref's ``init="logit"``.
    """
    c = conventions.CAPTUM
    stab = c.stabilizer()
    rules = {"epsilon": Epsilon(c.epsilon(epsilon), set_bias_to_zero),
             "gamma": c.gamma(gamma, stab, set_bias_to_zero),
             "alpha1_beta0": OriginalZPlus(stab, zero_bias=set_bias_to_zero)}
    if rule not in rules:
        raise ValueError(f"unknown Captum rule {rule!r}: expected one of {sorted(rules)}")
    return Composite([
        (Kind(*WEIGHTED), rules[rule]),
        (Kind(ReLU, Dropout, Flatten), Pass()),
        (Kind(AvgPool2d, AdaptiveAvgPool2d), Norm(stab)),
        (Kind(MaxPool2d), MaxPoolEpsilon(stab)),
        (Kind(Add), ProportionalSplit(stab)),
    ], f"captum:{rule}", fold_batchnorm=False)


# -- ResNet: Otsuki et al. 2024 ------------------------------------------------------------------------------

SKIP = {   # variant: (split at identity shortcuts, split at projection shortcuts), the authors' --skip-connection-prop-type
    "latest": (FixedSplit(1.0), RatioSplit()),
    "simple": (FixedSplit(1.0), FixedSplit(0.5)),
    "flows_skip": (RatioSplit(), RatioSplit()),
    "flows_skip_simple": (FixedSplit(0.5), FixedSplit(0.5)),
}


@register
def otsuki2024(skip="flows_skip", stabilizer=1e-5, maxpool="average2x2"):
    """The LRP-for-ResNet pipeline of Otsuki et al. (ECCV 2024) as their published code runs it.

    z-plus (``rho(w) = w+``, ``+1e-5``) on every convolution, the first on an all-ones input and the
    projection shortcuts included; z-plus with the bias zeroed on the classifier; the average pools with the
    same increment; BatchNorm and ReLU passed through and BatchNorm not folded (the rules see the bare
    convolution weights, the splits the true branch outputs); the stem max pool as a 2x2 average pool; the
    output relevance the softmax probability of the explained class. ``skip`` picks the split at the residual
    additions (``resnet_and_clrp.md`` §1.3): ``"flows_skip"`` (the paper's method: ratio-based everywhere),
    ``"flows_skip_simple"`` (symmetric everywhere), ``"latest"`` (their code's default: identity shortcuts get
    nothing, projections ratio-based), ``"simple"`` (identity nothing, projections symmetric).
    """
    if skip not in SKIP:
        raise ValueError(f"unknown skip {skip!r}: expected one of {sorted(SKIP)}")
    stab = Stabilizer(stabilizer, sign_aware=False)
    identity, projection = SKIP[skip]
    return Composite([
        (First(Conv2d), OriginalZPlus(stab, ones_input=True)),
        (Kind(Conv2d), OriginalZPlus(stab)),
        (Kind(Dense), OriginalZPlus(stab, zero_bias=True)),
        (Kind(Add) & Projection(), projection),
        (Kind(Add), identity),
        (Kind(MaxPool2d), maxpool_rule(maxpool, stab)),
        (Kind(AvgPool2d, AdaptiveAvgPool2d), Norm(stab)),
        (Kind(ReLU, Dropout, BatchNorm2d, Flatten, ZeroPad2d), Pass()),
    ], "otsuki2024", fold_batchnorm=False, init="softmax", requires=(Add,))


# -- lookup -----------------------------------------------------------------------------------------------------

def recommended(net):
    """The name of the composite to explain ``net`` with, and why: the one it records in ``meta["composite"]``
    (the shipped models, torchvision exports and ``keras.applications`` files record one), else
    ``epsilon_gamma_box`` where it records its input range (zB on the first layer needs it), else
    ``epsilon_plus``.

    Raises
    ------
    ValueError
        For a recorded name that is not a composite.
    """
    name = net.meta.get("composite")
    if name is not None:
        if name not in COMPOSITES:
            raise ValueError(f"the network records composite {name!r}, which is not one of {sorted(COMPOSITES)}")
        return name, "recorded by the model"
    if net.input_bounds is not None:
        return "epsilon_gamma_box", "the model records no composite; its input range is known"
    return "epsilon_plus", "the model records no composite nor input range"


def get(composite, net=None, **params):
    """A :class:`Composite` by name with its parameters (or a Composite as given).

    Where a composite takes the input bounds ``low``/``high`` and they are not given, they come from the
    network's recorded input range (``net.input_bounds``).

    Raises
    ------
    ValueError
        For an unknown name, an unknown parameter or a missing one.
    """
    if isinstance(composite, Composite):
        if params:
            raise ValueError(f"parameters {sorted(params)} only apply to composites given by name")
        return composite
    if composite not in COMPOSITES:
        raise ValueError(f"unknown composite {composite!r}: expected one of {sorted(COMPOSITES)}")
    accepted = inspect.signature(COMPOSITES[composite]).parameters
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(f"composite {composite!r} takes {list(accepted)}; got unknown parameter(s) {unknown}")
    bounds = net.input_bounds if net is not None else None
    if bounds is not None and "low" in accepted:
        params = {"low": bounds[0], "high": bounds[1], **params}
    missing = [n for n, p in accepted.items() if p.default is inspect.Parameter.empty and n not in params]
    if missing:
        raise ValueError(
            f"composite {composite!r} needs {', '.join(missing)} (the valid input range, for the zB rule); "
            "the network records none: pass them, e.g. low=-1.0, high=1.0"
        )
    return COMPOSITES[composite](**params)
