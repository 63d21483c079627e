"""Comparing computations across precisions: discrete choices first, then a tolerance from the case's conditioning.

Two computations of the same explanation (float32 against float64, one BLAS kernel against another) can only
be compared numerically where they made the same discrete choices: the sign of every pre-activation (the
ReLU mask and the stabilizer's sign) and the winners of every max pool. Where a choice flips, relevance moves
from one neuron to another and the difference is of the order of that neuron's relevance, whatever the
precision. Which choices flip depends on the summation order of the BLAS kernel, that is on the CPU: a
maximum pool over a constant background, whose entries are equal in exact arithmetic, picks a different
winner for each kernel. So :func:`same_choices` says, per sample, whether two computations may be compared.

Where the choices agree, an explanation is a smooth function of the weights and the input, and float32
arithmetic computes it with errors that first-order analysis bounds by ``sensitivity * perturbation``:
each dot product of length n computed in float32 is the exact one of data perturbed relatively by at most
``lambda * sqrt(n) * u`` (u = 2**-24) with probability at least ``1 - 2 n exp(-lambda**2 / 2)``
(Higham and Mary, "A new approach to probabilistic rounding error analysis", SIAM J. Sci. Comput. 2019).
:func:`sensitivity` measures the case's conditioning in float64: the relative change of the explanation
per unit relative perturbation of the weights and the input. :func:`float32_bound` multiplies the two.
"""
import numpy as np

from lrpref import backend, data, layers

UNIT_ROUNDOFF_32 = 2.0 ** -24
UNIT_ROUNDOFF_64 = 2.0 ** -53
LAMBDA = 6.0   # 2 n exp(-18) < 1e-4 for n up to 6,000: the probabilistic bound fails for fewer than 1 in 10^4 products


def noisy_digits(n, amplitude=0.05, seed=0):
    """The first ``n`` MNIST sample digits (float64, exactly representable in float32) and their labels, with
    uniform noise of ``amplitude`` (the digit scaled by ``1 - amplitude`` so that it stays in [-1, 1] unclipped:
    clipping would make half the background exactly -1 again).

    The digits' constant background gives pooling windows whose entries are equal in exact arithmetic: which one
    a max pool picks then depends on the summation order (BLAS kernel, batch size, library, precision), and the
    relevance moves with it. With continuous noise, two of a window's entries come within float64 rounding
    (relative 1e-16 of values spread over about 1e-2) with probability about 1e-14 per pair, so about 1e-9 per
    digit for the CNN's some 10^4 pairs: every float64 computation makes the same choices."""
    x, y = data.mnist_sample()
    x, y = x[:n], y[:n]
    noise = np.random.default_rng(seed).uniform(-1, 1, x.shape)
    x = (1 - amplitude) * x + amplitude * noise   # in [-1, 1], unclipped
    return x.astype(np.float32).astype(np.float64), y


def discrete_choices(net, x):
    """Per sample, the flattened 0/1 choices of a forward pass: pre-activation signs and max-pool winners."""
    acts = net.activations(x)
    choices = []
    for node in net.nodes:
        z = backend.to_host(acts[node.name])
        if isinstance(node.layer, (layers.Dense, layers.Conv2d)):
            choices.append(z >= 0)
        elif isinstance(node.layer, layers.MaxPool2d):
            a = acts[node.inputs[0]]
            winners = node.layer.transpose_maxima(net.xp.ones_like(acts[node.name]), a, acts[node.name])
            choices.append(backend.to_host(winners) > 0)
    return np.concatenate([c.reshape(len(c), -1) for c in choices], axis=1)


def same_choices(net_a, x_a, net_b, x_b):
    """Per sample: do the two forward passes make the same discrete choices?"""
    return (discrete_choices(net_a, x_a) == discrete_choices(net_b, x_b)).all(axis=1)


def per_sample_error(actual, expected):
    """``max |actual - expected| / max |expected|`` per sample, on the host."""
    actual, expected = backend.to_host(actual), backend.to_host(expected)
    n = len(expected)
    scale = np.abs(expected).reshape(n, -1).max(axis=1)
    return np.abs(actual - expected).reshape(n, -1).max(axis=1) / np.maximum(scale, 1e-300)


def longest_dot_product(net):
    """The longest sum a layer of ``net`` computes (inputs per output neuron of a Dense or Conv2d)."""
    return max(int(np.prod(node.layer.weight.shape[1:])) for node in net.nodes
               if isinstance(node.layer, (layers.Dense, layers.Conv2d)))


def sensitivity(load64, x, run, draws=3, size=1e-8, seed=0, continuous=False):
    """The case's relative condition number, per sample, measured in float64.

    Parameters
    ----------
    load64 : callable
        Returns a fresh float64 copy of the network.
    x : array
        The float64 input.
    run : callable
        ``run(net, x)``: the relevance to compare.
    draws, size
        How many random perturbations, and their relative size (small enough for first-order behaviour,
        large enough against float64 rounding: 1e-8 against 1e-16).

    Returns
    -------
    array
        Per sample, the largest relative change of the relevance (as in :func:`per_sample_error`) divided
        by ``size``. Samples whose discrete choices flip under a perturbation get ``inf``: they are not
        smooth at this input, and no tolerance holds for them. With ``continuous=True`` (for ``run`` a
        continuous function, such as the forward pass: ReLU and max change continuously where a choice
        flips) flips are allowed.
    """
    rng = np.random.default_rng(seed)
    net = load64()
    reference = run(net, x)
    worst = np.zeros(len(x))
    for _ in range(draws):
        other = load64()
        other._map(lambda a: perturbed(a, size, rng))
        xp_ = perturbed(x, size, rng)
        change = per_sample_error(run(other, xp_), reference) / size
        if not continuous:
            change[~same_choices(net, x, other, xp_)] = np.inf
        worst = np.maximum(worst, change)
    return worst


def perturbed(value, size, rng):
    """``value`` (an array, or a layer: every array of it) times ``1 + size * uniform(-1, 1)`` entrywise."""
    if hasattr(value, "map_arrays"):
        return value.map_arrays(lambda a: perturbed(a, size, rng))
    noise = rng.uniform(-1, 1, value.shape)   # drawn on the host, then put where the array lives (it may be CuPy)
    return value * (1 + size * backend.asarray(noise, backend.array_module(value)))


def condition_number(run, args, draws=3, size=1e-8, seed=0):
    """The relative condition number of ``run(*args)`` (float64 arrays or layers), measured as in
    :func:`sensitivity` for the whole result: the largest ``max |change| / max |run(*args)|`` per unit relative
    perturbation of every array."""
    rng = np.random.default_rng(seed)
    reference = backend.to_host(run(*args))
    scale = max(np.abs(reference).max(), 1e-300)
    return max(np.abs(backend.to_host(run(*(perturbed(a, size, rng) for a in args))) - reference).max() / scale / size
               for _ in range(draws))


def dot_rounding(n, unit=UNIT_ROUNDOFF_32):
    """``lambda * sqrt(n) * u``: the relative perturbation that a dot product of length n stands for."""
    return LAMBDA * np.sqrt(n) * unit


def float32_bound(net, condition):
    """The first-order float32 error bound ``lambda * sqrt(n) * u * condition`` (see the module docstring)."""
    return dot_rounding(longest_dot_product(net)) * condition


def forward_condition(load64, x):
    """Per sample, the relative condition of the logits ``net.forward(x)`` (see :func:`sensitivity`). The forward
    pass is continuous (a ReLU or a max pool whose choice flips changes its output by the near-tie's gap), so
    flips under the perturbation are allowed; one draw, as a forward pass of a large network is costly."""
    return sensitivity(load64, backend.to_host(x).astype(np.float64), lambda net, v: net.forward(v), draws=1,
                       continuous=True)


def float64_difference(n, condition):
    """Two float64 computations of the same smooth result (other summation orders: another BLAS kernel, batch
    size, formula or library) differ by at most twice the first-order bound ``lambda * sqrt(n) * u * condition``
    of each, relative to the result's largest entry."""
    return 2 * dot_rounding(n, UNIT_ROUNDOFF_64) * condition


# The shipped MNIST networks explaining noisy_digits(12): the largest sensitivity() over every composite that
# applies is 22.5 (lrp0 and epsilon on the CNN; the others 0.8 to 2.4; the MLP with tutorial_mnist 1.6),
# measured in float64 and so a property of the weights and digits, not of the CPU (test_explain.py checks it).
# 1568 is the CNN's longest dot product (the MLP's is 784): two float64 computations differ by at most 1.3e-12.
MNIST_CONDITION = 25.0
MNIST_FLOAT64 = float64_difference(1568, MNIST_CONDITION)
