"""Contrastive explanations: CLRP (Gu, Yang, Tresp, ACCV 2018) and SGLRP (Iwana, Kuroki, Uchida, ICCV-W 2019).

Plain LRP maps for two classes of the same image look alike. Both methods explain the target against a
"dual" and keep the difference; everything is array operations on top of :func:`lrpref.explain`, so they
work on every network lrpref loads. Definitions (``resnet_and_clrp.md`` §2-4; z are the logits, t the
target, C the number of classes, ``LRP(r)`` the explanation started from the output vector r):

CLRP, ``convention="paper"`` (as the paper describes it):
    ``R = LRP(z_t e_t)``; variant 1: ``R_dual = LRP(z_t / (C - 1) on every other class)`` (the target score
    spread over the other classes); variant 2: ``R_dual`` = the same start on the network whose target row
    of the last layer (weights and bias) is negated; ``CLRP = max(0, R - R_dual)``.
CLRP, ``convention="official"`` (the authors' code, Contrastive-LRP ``run.py``):
    absolute values of every starting score; variant 1's dual starts from ``|z_k|`` at every other class;
    ``CLRP = max(0, R / sum(R) - R_dual / sum(R_dual))``, both maps normalised to sum 1 first.
SGLRP, the output relevance is the softmax gradient ``r_t = p_t (1 - p_t)``, ``r_n = -p_t p_n``:
    ``mode="one_pass"`` explains the signed vector once; ``mode="scaled"`` (the authors' repository)
    explains ``r+`` and ``|r-|`` separately and returns ``R_t - R_d sum(R_t) / sum(R_d)``.

For fixed activations LRP is linear in the output relevance, so target and dual maps of variant 1 and of
the scaled SGLRP come from one batched pass (the batch stacked twice, which leaves batch statistics such as
the tutorial's RMS unchanged). Variant 2's dual is another network and takes a pass of its own; negating the
whole last layer gives the same map as negating the target row (only that row receives relevance).
A normalisation by a sum of zero gives a zero map (documented), never NaN.
"""
import copy
from dataclasses import dataclass

import numpy as np

from .backend import array_module, asarray
from .checks import integer
from .explain import Explanation, explain, initial_relevance
from .layers import Conv2d, Dense
from .network import Node

CONVENTIONS = ("paper", "official")
MODES = ("one_pass", "scaled")


@dataclass
class Contrastive:
    """A contrastive explanation: ``relevance`` (the shape of x), and the two explanations it contrasts.

    ``primary`` is the target's explanation, ``dual`` the dual's (``None`` for the one-pass SGLRP).
    ``output``, ``target`` and ``init`` are the primary's.
    """

    relevance: object
    primary: Explanation
    dual: Explanation
    method: str

    @property
    def output(self):
        return self.primary.output

    @property
    def target(self):
        return self.primary.target

    @property
    def init(self):
        return self.primary.init


def _logits_and_target(net, x, target, rule_params):
    """The network output, the targets, and checks that the network has several classes and that
    ``rule_params`` leaves the output relevance to the method."""
    if "init" in rule_params:
        raise ValueError(f"contrastive methods choose the output relevance (init) themselves; got init="
                         f"{rule_params['init']!r}")
    output = net.forward(x)
    if output.shape[1] < 2 or int(np.prod(output.shape[2:])) != 1:
        raise ValueError(f"contrastive explanations need a network with several class outputs; this one's output "
                         f"has shape {tuple(output.shape[1:])}")
    _, target = initial_relevance(output, target, "one")
    return output, target


def _twice(net, x, primary, dual, composite, rule_params):
    """Target and dual explanations from one batched pass: the batch stacked twice."""
    xp = net.xp
    x = net.check_input(x)
    both = explain(net, xp.concatenate([x, x]), composite=composite, init=xp.concatenate([primary, dual]),
                   **rule_params)
    n = x.shape[0]
    return both.subset(slice(0, n)), both.subset(slice(n, 2 * n))


def _sample_sums(R):
    """The sum of ``R`` per sample, shaped to broadcast against ``R``."""
    return R.reshape(R.shape[0], -1).sum(axis=1).reshape((-1,) + (1,) * (R.ndim - 1))


def _divide_or_zero(numerator, denominator):
    """``numerator / denominator``, and 0 where the denominator is 0 (a documented zero map, never NaN)."""
    xp = array_module(numerator)
    nonzero = denominator != 0
    return xp.where(nonzero, numerator / xp.where(nonzero, denominator, 1.0), 0.0)


def _normalised(R):
    """``R`` divided by its sum per sample; a sample whose sum is zero gives zeros."""
    return _divide_or_zero(R, _sample_sums(R))


def negate_last_layer(net):
    """A copy of ``net`` whose last Dense or Conv2d layer has its weights and bias negated."""
    index = max(i for i, node in enumerate(net.nodes) if isinstance(node.layer, (Dense, Conv2d)))
    layer = copy.copy(net.nodes[index].layer)
    layer.weight, layer.bias = -layer.weight, -layer.bias
    nodes = list(net.nodes)
    nodes[index] = Node(nodes[index].name, layer, nodes[index].inputs)
    return net.derive(nodes)


def clrp(net, x, target=None, variant=1, convention="paper", composite="clrp_paper", **rule_params):
    """Contrastive LRP; see the module docstring.

    Parameters
    ----------
    net, x, target, composite, **rule_params
        As in :func:`lrpref.explain`; ``target=None`` explains the predicted class.
    variant : {1, 2}
        The dual: the other classes (1) or the negated target (2).
    convention : {"paper", "official"}

    Returns
    -------
    Contrastive
    """
    if integer(variant, "variant") not in (1, 2):
        raise ValueError(f"variant must be 1 or 2, got {variant!r}")
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}: expected one of {CONVENTIONS}")
    output, target = _logits_and_target(net, x, target, rule_params)
    xp = array_module(output)
    onehot = xp.zeros(output.shape, dtype=output.dtype)
    onehot[xp.arange(output.shape[0]), asarray(target, xp)] = 1
    score = (output * onehot).sum(axis=1, keepdims=True)     # z_t, with the output's trailing axes
    if convention == "official":
        score = xp.abs(score)
    primary = onehot * score
    if variant == 1:
        classes = output.shape[1]
        dual = (1 - onehot) * (xp.abs(output) if convention == "official" else score / (classes - 1))
        R, R_dual = _twice(net, x, primary, dual, composite, rule_params)
    else:
        R = explain(net, x, composite=composite, init=primary, **rule_params)
        R_dual = explain(negate_last_layer(net), x, composite=composite, init=primary, **rule_params)
    R.target = R_dual.target = target
    if convention == "official":
        contrast = _normalised(R.relevance) - _normalised(R_dual.relevance)
    else:
        contrast = R.relevance - R_dual.relevance
    return Contrastive(xp.maximum(contrast, 0), R, R_dual, f"clrp{variant}-{convention}")


def softmax_gradient(output, target):
    """SGLRP's output relevance: ``p_t (1 - p_t)`` at the target, ``-p_t p_n`` elsewhere; it sums to 0."""
    xp = array_module(output)
    z = output.reshape(output.shape[0], -1)
    p = xp.exp(z - z.max(axis=1, keepdims=True))
    p = p / p.sum(axis=1, keepdims=True)
    rows = xp.arange(z.shape[0])
    p_t = p[rows, asarray(target, xp)][:, None]
    r = -p_t * p
    r[rows, asarray(target, xp)] = (p_t * (1 - p_t))[:, 0]
    return r.reshape(output.shape)


def sglrp(net, x, target=None, mode="one_pass", composite="clrp_paper", **rule_params):
    """Softmax-Gradient LRP; see the module docstring.

    Parameters
    ----------
    mode : {"one_pass", "scaled"}
    net, x, target, composite, **rule_params
        As in :func:`clrp`.

    Returns
    -------
    Contrastive
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}: expected one of {MODES}")
    output, target = _logits_and_target(net, x, target, rule_params)
    r = softmax_gradient(output, target)
    if mode == "one_pass":
        R = explain(net, x, composite=composite, init=r, **rule_params)
        R.target = target
        return Contrastive(R.relevance, R, None, "sglrp-one_pass")
    xp = array_module(r)
    R_t, R_d = _twice(net, x, xp.maximum(r, 0), xp.abs(xp.minimum(r, 0)), composite, rule_params)
    R_t.target = R_d.target = target
    scale = _divide_or_zero(_sample_sums(R_t.relevance), _sample_sums(R_d.relevance))
    relevance = R_t.relevance - R_d.relevance * scale
    return Contrastive(relevance, R_t, R_d, "sglrp-scaled")
