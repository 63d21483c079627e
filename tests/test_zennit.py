"""Zennit 0.5.1 (PyTorch, CPU, float64) and lrpref on the same weights: relevance at the input and at every layer.

Single rules on single layers, and Zennit's five LRP composites with their canonizers on the shipped CNN,
VGG16, VGG16-BN, ResNet18 and ResNet50 (torchvision's architectures and random initialisation, random
BatchNorm statistics, exported by weights/export_torchvision.py). Zennit's output seed is reproduced:
``logit x one-hot`` (lrpref's ``init="logit"``) and ``one-hot`` (``init="one"``). Max pooling uses
``maxpool="gradient"``, Zennit's (PyTorch's) treatment of tied maxima. Agreement: 1e-9 relative.

Tolerance: ``torch_models.PEER_TOLERANCE`` (its comment says why it holds).
"""
import functools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from zennit import composites as zc
from zennit import rules as zr
from zennit.attribution import Gradient
from zennit.canonizers import SequentialMergeBatchNorm
from zennit.composites import LayerMapComposite
from zennit.torchvision import ResNetCanonizer

import lrpref
import torch_models
from lrpref import layers, rules
from torch_models import relative

TOL = torch_models.PEER_TOLERANCE


# -- single layers ----------------------------------------------------------------------------------------------

def single_layer(kind):
    """A PyTorch layer, the same lrpref layer, and an input shape."""
    if kind == "linear":
        module = torch.nn.Linear(7, 5).double()
        return module, layers.Dense(module.weight.detach().numpy(), module.bias.detach().numpy()), (3, 7)
    stride, padding = {"conv-s1-p1": (1, 1), "conv-s2-p0": (2, 0), "conv-s1-p2-k2": (1, 2)}[kind]
    kernel = 2 if kind.endswith("k2") else 3
    module = torch.nn.Conv2d(2, 3, kernel, stride, padding).double()
    return module, layers.Conv2d(module.weight.detach().numpy(), module.bias.detach().numpy(), stride, padding), \
        (3, 2, 7, 6)


SINGLE_RULES = {
    "epsilon": (lambda: zr.Epsilon(1e-6), rules.Epsilon(1e-6)),
    "epsilon-0.5-zero-bias": (lambda: zr.Epsilon(0.5, zero_params="bias"), rules.Epsilon(0.5, zero_bias=True)),
    "zplus": (lambda: zr.ZPlus(), rules.ZPlus()),
    "alpha2-beta1": (lambda: zr.AlphaBeta(2.0, 1.0), rules.AlphaBeta(2.0, 1.0)),
    "alpha1-beta0-zero-bias": (lambda: zr.AlphaBeta(1.0, 0.0, zero_params="bias"), rules.AlphaBeta(1.0, 0.0, zero_bias=True)),
    "gamma": (lambda: zr.Gamma(0.25), rules.Gamma(0.25)),
    "gamma-0.5-zero-bias": (lambda: zr.Gamma(0.5, zero_params="bias"), rules.Gamma(0.5, zero_bias=True)),
    "zbox": (lambda: zr.ZBox(-1.5, 2.0), rules.ZBox(-1.5, 2.0)),
    "flat": (lambda: zr.Flat(), rules.Flat()),
    "wsquare": (lambda: zr.WSquare(), rules.WSquare()),
}


@pytest.mark.parametrize("positive", [False, True], ids=["mixed-inputs", "relu-inputs"])
@pytest.mark.parametrize("kind", ["linear", "conv-s1-p1", "conv-s2-p0", "conv-s1-p2-k2"])
@pytest.mark.parametrize("name", SINGLE_RULES)
def test_single_rules(name, kind, positive):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    module, layer, shape = single_layer(kind)
    x = rng.uniform(-1, 1, size=shape)
    x = np.maximum(x, 0) if positive else x
    zennit_rule, ours = SINGLE_RULES[name]
    model = torch.nn.Sequential(module)
    composite = LayerMapComposite([((torch.nn.Linear, torch.nn.Conv2d), zennit_rule())])
    tx = torch.from_numpy(x).requires_grad_(True)
    with Gradient(model, composite) as attributor:
        output, relevance = attributor(tx, lambda out: out)   # the seed: the whole output
    R_in, _ = ours.relprop(layer, x, output.detach().numpy())
    assert relative(R_in, relevance.detach().numpy()) < TOL


@pytest.mark.parametrize("pool", ["avg", "adaptive"])
def test_norm_on_pools(pool):
    module = torch.nn.AvgPool2d(2) if pool == "avg" else torch.nn.AdaptiveAvgPool2d((3, 2))
    layer = layers.AvgPool2d(2) if pool == "avg" else layers.AdaptiveAvgPool2d((3, 2))
    x = np.random.default_rng(1).uniform(0, 1, size=(2, 3, 6, 5))
    with Gradient(torch.nn.Sequential(module), LayerMapComposite([(type(module), zr.Norm())])) as attributor:
        output, relevance = attributor(torch.from_numpy(x).requires_grad_(True), lambda out: out)
    R_in, _ = rules.Norm().relprop(layer, x, output.detach().numpy())
    assert relative(R_in, relevance.detach().numpy()) < TOL


# -- whole networks -----------------------------------------------------------------------------------------------

NETWORKS = {
    "mnist_cnn": torch_models.mnist_cnn,
    "vgg16": lambda: torch_models.torchvision_model("vgg16", 224),
    "vgg16_bn": lambda: torch_models.torchvision_model("vgg16_bn", 64),
    "resnet18": lambda: torch_models.torchvision_model("resnet18", 64),
    "resnet50": lambda: torch_models.torchvision_model("resnet50", 224),
}
COMPOSITES = {   # Zennit's class, lrpref's name
    "epsilon_gamma_box": zc.EpsilonGammaBox, "epsilon_plus": zc.EpsilonPlus, "epsilon_plus_flat": zc.EpsilonPlusFlat,
    "epsilon_alpha2_beta1": zc.EpsilonAlpha2Beta1, "epsilon_alpha2_beta1_flat": zc.EpsilonAlpha2Beta1Flat,
}


@pytest.fixture(scope="module")
def networks():
    """name -> model, each built once, when first asked for."""
    return functools.lru_cache(maxsize=None)(lambda name: NETWORKS[name]())


@pytest.mark.parametrize("composite", sorted(COMPOSITES))
@pytest.mark.parametrize("network", list(NETWORKS))
def test_composites_on_networks(networks, network, composite):
    model, net, x, (low, high), names = networks(network)
    canonizers = []
    if network.startswith("resnet"):
        canonizers = [ResNetCanonizer()]
    elif network.endswith("_bn"):
        canonizers = [SequentialMergeBatchNorm()]
    kwargs = {"low": torch.as_tensor(low), "high": torch.as_tensor(high)} if composite == "epsilon_gamma_box" else {}
    zennit_composite = COMPOSITES[composite](canonizers=canonizers, **kwargs)
    seed_logit = sorted(COMPOSITES).index(composite) % 2 == 0   # alternate Zennit's two usual seeds

    modules = dict(model.named_modules())
    captured, handles = torch_models.capture_output_gradients({name: modules[name] for name in names})
    tx = torch.from_numpy(x).requires_grad_(True)
    with Gradient(model, zennit_composite) as attributor:
        output, relevance = attributor(tx, lambda out: (out if seed_logit else 1.0) * torch.eye(out.shape[1], dtype=out.dtype)[out.argmax(1)])
    for handle in handles:
        handle.remove()

    e = lrpref.explain(net, x, composite=composite, init="logit" if seed_logit else "one", maxpool="gradient",
                       **({"low": low, "high": high} if composite == "epsilon_gamma_box" else {}))
    assert relative(e.relevance, relevance.detach().numpy()) < TOL
    compared = 0
    for name, grad in captured.items():
        if names[name] in e.tensors:
            ours = e.tensors[names[name]]
            assert relative(ours.reshape(grad.shape), grad) < TOL, name
            compared += 1
    assert compared >= len(net) // 3   # most layers have a torchvision module to compare with


def test_zennit_merged_batchnorm_keeps_eps():
    """Why the networks above use BatchNorm eps = 0: Zennit's ``MergeBatchNorm`` folds ``gamma / sqrt(var + eps)``
    into the convolution, then leaves the BatchNorm as ``x / sqrt(1 + eps)`` (running_var 1, eps kept), so the
    canonized model is the original one scaled by ``(1 + eps)^(-1/2)`` per BatchNorm. lrpref's folded network
    (``lrpref.network.fold_batchnorm``) computes the original model's output."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                torch.nn.Conv2d(4, 4, 3, padding=1), torch.nn.BatchNorm2d(4)).double().eval()
    with torch.no_grad():
        for m in (model[1], model[4]):
            m.running_var.uniform_(0.5, 1.5)
            m.running_mean.normal_()
    x = torch.rand(1, 3, 5, 5, dtype=torch.float64)
    original = model(x).detach().numpy()
    with Gradient(model, LayerMapComposite([], canonizers=[SequentialMergeBatchNorm()])) as attributor:
        canonized, _ = attributor(x.requires_grad_(True), lambda out: out)
    net = lrpref.Sequential([layers.Conv2d(model[0].weight.detach().numpy(), model[0].bias.detach().numpy(), 1, 1),
                             layers.BatchNorm2d(*(getattr(model[1], k).detach().numpy() for k in
                                                  ("weight", "bias", "running_mean", "running_var"))),
                             layers.ReLU(),
                             layers.Conv2d(model[3].weight.detach().numpy(), model[3].bias.detach().numpy(), 1, 1),
                             layers.BatchNorm2d(*(getattr(model[4], k).detach().numpy() for k in
                                                  ("weight", "bias", "running_mean", "running_var")))])
    folded = lrpref.network.fold_batchnorm(net).forward(x.detach().numpy())
    assert relative(folded, original) < 1e-13   # float64 rounding of two small sums (36 terms) and a fold
    # the last BatchNorm scales Zennit's output by exactly (1 + 1e-5)^(-1/2); the first one through the ReLU
    assert relative(canonized.detach().numpy(), original) > 1e-6


def test_benchmark_script_explains_like_zennit(tmp_path):
    """benchmarks/bench_zennit.py times the two libraries on the same numbers: its printed agreement for VGG16
    (no BatchNorm, so no merged-eps difference) in float64 is at rounding level."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_zennit.py"
    command = [sys.executable, str(script), "--models", "vgg16", "--batches", "2", "--dtypes", "float64",
               "--size", "32", "--repeats", "1", "--no-memory"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Zennit ms" in result.stdout
    agreement = float(result.stdout.strip().splitlines()[-1].rsplit(" ", 1)[1])
    # precision.float64_difference(25088, 2.3) = 4.9e-13: the condition of this explanation (VGG16 at 32 x 32,
    # epsilon_gamma_box, the script's inputs) measures 2.3 (precision.sensitivity, 2 draws)
    assert agreement < 1e-12
