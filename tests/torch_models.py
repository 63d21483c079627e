"""The same networks in PyTorch (float64) and in lrpref, for the peer-library tests (Zennit, Captum, the tutorial).

Each builder returns ``(model, net, x, (low, high), names)``: the PyTorch model in eval mode, lrpref's network with
identical weights, an input batch, the input bounds (for the zB rule) and ``{PyTorch module: lrpref tensor}`` for
the modules whose outputs are lrpref tensors. Everything is float64 (PyTorch's default dtype is left alone).
"""
import numpy as np
import torch
import torchvision.models

import export_torchvision
import lrpref
import precision
from lrpref import data, layers
from lrpref.backend import to_host


# The peer tests (Zennit, Captum): float64 rounding of two libraries summing in other orders (PyTorch's MKL and oneDNN, lrpref's
# OpenBLAS), at most precision.float64_difference(n, condition) = 2.1e-13 * condition for the longest dot product
# here (VGG16's n = 25088): 1e-9 holds for conditions up to 4,700 (the CNN's explanations measure at most 22.5,
# precision.MNIST_CONDITION). Inputs are continuous random numbers (or noisy digits), so the two libraries make
# the same max-pool and ReLU choices except where two of some 10^7 values come within float64 rounding of a tie
# (probability about 1e-8); exact ties among ReLU zeros carry no relevance.
PEER_TOLERANCE = 1e-9


class Chain(torch.nn.Module):
    """``classifier(flatten(features(x)))``: the flatten as a function (Captum accepts no Flatten module)."""

    def __init__(self, features, classifier):
        super().__init__()
        self.features, self.classifier = features, classifier

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def torch_layer(layer):
    """The PyTorch module computing lrpref's ``layer`` (Conv2d, Dense, MaxPool2d, ReLU)."""
    if isinstance(layer, (layers.Conv2d, layers.Dense)):
        w = torch.from_numpy(to_host(layer.weight))   # explicit: under LRPREF_BACKEND=cupy it lives on the device
        if isinstance(layer, layers.Conv2d):
            module = torch.nn.Conv2d(w.shape[1], w.shape[0], tuple(w.shape[2:]), layer.stride, layer.padding[::2])
        else:
            module = torch.nn.Linear(w.shape[1], w.shape[0])
        module.weight.data, module.bias.data = w.clone(), torch.from_numpy(to_host(layer.bias)).clone()
        return module
    if isinstance(layer, layers.MaxPool2d):
        return torch.nn.MaxPool2d(layer.kernel_size, layer.stride)
    return getattr(torch.nn, type(layer).__name__)()


def mnist_cnn():
    """The shipped CNN (float64) and two held-out digits, without the exact max-pool ties of their constant
    background (precision.noisy_digits): PyTorch and lrpref sum in other orders, and would pick other winners."""
    net = lrpref.load(data.model_path("mnist_cnn"), dtype="float64")
    cut = next(i for i, layer in enumerate(net.layers) if isinstance(layer, layers.Flatten))
    features = torch.nn.Sequential(*(torch_layer(layer) for layer in net.layers[:cut]))
    classifier = torch.nn.Sequential(*(torch_layer(layer) for layer in net.layers[cut + 1:]))
    names = {f"features.{i}": net.nodes[i].name for i in range(cut)}
    names.update({f"classifier.{i}": net.nodes[cut + 1 + i].name for i in range(len(net) - cut - 1)})
    return Chain(features, classifier).double().eval(), net, precision.noisy_digits(2)[0], (-1.0, 1.0), names


def torchvision_model(arch, size, bn_eps=0.0):
    """A torchvision architecture with its random initialisation and random BatchNorm statistics, and its lrpref
    export (weights/export_torchvision.py). torchvision's own model where torchvision runs, else (the test shim)
    the export script's plain-PyTorch one with the same modules.

    ``bn_eps = 0``: Zennit's BatchNorm merge keeps eps in the merged BatchNorm (see test_zennit.py), so the peer
    tests use eps 0 on both sides, where that merge is exact."""
    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(weights=None) if hasattr(torchvision.models, arch) else \
        export_torchvision.torch_model(arch)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.eps = bn_eps
                m.weight.copy_(0.5 + torch.rand(c, generator=generator))
                m.bias.copy_(0.1 * torch.randn(c, generator=generator))
                m.running_mean.copy_(0.1 * torch.randn(c, generator=generator))
                m.running_var.copy_(0.5 + torch.rand(c, generator=generator))
    model = model.double().eval()
    state = {k: v.numpy() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    net = export_torchvision.export(arch, state, "float64")
    for layer in net.layers:
        if isinstance(layer, layers.BatchNorm2d):
            layer.eps = bn_eps
    x = np.random.default_rng(2).normal(size=(1, 3, size, size))
    low, high = (np.array(b)[None, :, None, None] for b in net.input_bounds)
    names = {name: name for name, module in model.named_modules()   # the exports keep torchvision's names
             if not list(module.children()) and not name.endswith(".relu")}
    names.update({name: name + ".relu" for name, module in model.named_modules()   # a residual block: its last ReLU
                  if type(module).__name__ in ("Bottleneck", "BasicBlock")})
    return model, net, x, (low, high), names


def relative(a, b):
    """``max |a - b| / max |b|``."""
    a, b = to_host(a), to_host(b)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def capture_output_gradients(modules):
    """Record the gradient at the output of every module in ``{name: module}``: in Zennit's modified backward pass,
    the relevance of that tensor. Returns the dict it fills and the hook handles."""
    captured, handles = {}, []

    def hook(name):
        def forward_hook(module, inputs, output):
            output.register_hook(lambda grad: captured.__setitem__(name, grad.detach().numpy()))
        return forward_hook
    for name, module in modules.items():
        handles.append(module.register_forward_hook(hook(name)))
    return captured, handles
