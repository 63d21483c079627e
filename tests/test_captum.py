"""Captum 0.9 (PyTorch, CPU, float64) and lrpref's ``captum`` composite on the same weights.

Captum's ``LRP`` with each of its rules on every Conv2d and Linear (``EpsilonRule``, ``GammaRule``,
``Alpha1_Beta0_Rule``, with and without ``set_bias_to_zero``) and its default ``EpsilonRule`` on the pools, on the
shipped CNN and VGG16 (torchvision's architecture, random initialisation). Captum seeds with the target logit
(lrpref's ``init="logit"``). Relevance at the input and, through ``LayerLRP``, at inner layers: 1e-9 relative.
Captum has no composite for BatchNorm networks and no rule for additions other than its own ``Addition_Module``:
those are documented in tutorials/guides/conventions.md, not tested here.

Tolerance: ``torch_models.PEER_TOLERANCE`` (its comment says why it holds).
"""
import functools

import pytest
import torch
from captum.attr import LRP, LayerLRP
from captum.attr._utils.lrp_rules import Alpha1_Beta0_Rule, EpsilonRule, GammaRule

import lrpref
import torch_models
from torch_models import relative

TOL = torch_models.PEER_TOLERANCE
CASES = {   # id: lrpref's captum composite parameters, Captum's rule for every Conv2d and Linear (None: its default)
    "default": ({"rule": "epsilon"}, lambda: None),
    "epsilon-1e-4": ({"rule": "epsilon", "epsilon": 1e-4}, lambda: EpsilonRule(epsilon=1e-4)),
    "gamma": ({"rule": "gamma"}, lambda: GammaRule()),
    "gamma-0.5-zero-bias": ({"rule": "gamma", "gamma": 0.5, "set_bias_to_zero": True},
                            lambda: GammaRule(gamma=0.5, set_bias_to_zero=True)),
    "alpha1_beta0": ({"rule": "alpha1_beta0"}, lambda: Alpha1_Beta0_Rule()),
    "alpha1_beta0-zero-bias": ({"rule": "alpha1_beta0", "set_bias_to_zero": True},
                               lambda: Alpha1_Beta0_Rule(set_bias_to_zero=True)),
}
NETWORKS = {"mnist_cnn": torch_models.mnist_cnn, "vgg16": lambda: torch_models.torchvision_model("vgg16", 64)}


@pytest.fixture(scope="module")
def networks():
    """name -> model, each built once, when first asked for."""
    return functools.lru_cache(maxsize=None)(lambda name: NETWORKS[name]())


def set_rules(model, case):
    for module in model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)) and CASES[case][1]() is not None:
            module.rule = CASES[case][1]()


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("network", list(NETWORKS))
def test_captum_lrp(networks, network, case):
    model, net, x, _, _ = networks(network)
    tx = torch.from_numpy(x)
    target = model(tx).argmax(1)
    set_rules(model, case)
    relevance = LRP(model).attribute(tx.clone().requires_grad_(True), target=target).detach().numpy()
    e = lrpref.explain(net, x, composite="captum", init="logit", **CASES[case][0])
    assert (e.target == target.numpy()).all()
    assert relative(e.relevance, relevance) < TOL


@pytest.mark.parametrize("case", ["default", "gamma-0.5-zero-bias"])
def test_captum_layer_lrp(networks, case):
    """``LayerLRP`` gives the relevance at a layer's output: lrpref's tensor of the same layer."""
    model, net, x, _, names = networks("mnist_cnn")
    tx = torch.from_numpy(x)
    target = model(tx).argmax(1)
    e = lrpref.explain(net, x, composite="captum", init="logit", **CASES[case][0])
    modules = dict(model.named_modules())
    for name in ("features.0", "features.3", "features.5", "classifier.0"):
        set_rules(model, case)
        relevance = LayerLRP(model, modules[name]).attribute(tx.clone().requires_grad_(True), target=target)
        assert relative(e.tensors[names[name]], relevance.detach().numpy()) < TOL, name
