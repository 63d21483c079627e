"""``tutorial_vgg16`` against the Montavon tutorial's own PyTorch procedure (`montavon_and_toolbox.md` §1.3).

The procedure is written here as the tutorial publishes it: the layer list ``features + toconv(classifier)``,
``newlayer`` applying rho to weights and bias, the per-layer loop with step 3 as an autograd gradient, max pools
replaced by ``AvgPool2d(2)`` in the backward pass, and the zB step on the pixels. It runs on torchvision's VGG16
(random initialisation, float64) at 224 x 224, where the adaptive average pool is the identity. Agreement:
1e-10 relative, at the input and at every layer.

Tolerance: float64 rounding of two libraries summing in other orders (PyTorch's MKL and oneDNN, lrpref's
OpenBLAS), at most precision.float64_difference(n, condition) = 2.1e-13 * condition for the longest dot product
here (VGG16's n = 25088): 1e-10 holds for conditions up to 470, and this case's measures 4.0 (precision.sensitivity
on the test's image and model, 2 draws). Inputs are continuous random numbers, so the two libraries make the
same max-pool and ReLU choices except where two of some 10^7 values come within float64 rounding of a tie
(probability about 1e-8); exact ties among ReLU zeros carry no relevance.
"""
import copy

import numpy as np
import torch

import lrpref
import torch_models
from lrpref import rules
from torch_models import relative

MEAN = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).reshape(1, -1, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).reshape(1, -1, 1, 1)
TARGET = 483   # the tutorial's class, "castle"


def toconv(layers):
    """The tutorial's ``utils.toconv``: the classifier's Linear layers as convolutions."""
    newlayers = []
    for i, layer in enumerate(layers):
        if isinstance(layer, torch.nn.Linear):
            m, n = layer.weight.shape[1], layer.weight.shape[0]
            if i == 0:
                newlayer = torch.nn.Conv2d(512, n, 7)
                newlayer.weight = torch.nn.Parameter(layer.weight.reshape(n, 512, 7, 7))
            else:
                newlayer = torch.nn.Conv2d(m, n, 1)
                newlayer.weight = torch.nn.Parameter(layer.weight.reshape(n, m, 1, 1))
            newlayer.bias = torch.nn.Parameter(layer.bias)
            newlayers += [newlayer]
        else:
            newlayers += [layer]
    return newlayers


def newlayer(layer, g):
    """The tutorial's ``utils.newlayer``: a copy of the layer with ``g`` applied to its weight and its bias."""
    layer = copy.deepcopy(layer)
    try:
        layer.weight = torch.nn.Parameter(g(layer.weight))
    except AttributeError:
        pass
    try:
        layer.bias = torch.nn.Parameter(g(layer.bias))
    except AttributeError:
        pass
    return layer


def tutorial_lrp(model, X, T):
    """The tutorial's part 2, from the forward pass to ``R[0]``: the list ``R`` of relevance at every layer."""
    layers = list(model._modules["features"]) + toconv(list(model._modules["classifier"]))
    L = len(layers)
    A = [X] + [None] * L
    for l in range(L):
        A[l + 1] = layers[l].forward(A[l])
    R = [None] * L + [(A[-1] * T).data]
    for l in range(1, L)[::-1]:
        A[l] = A[l].data.requires_grad_(True)
        if isinstance(layers[l], torch.nn.MaxPool2d):
            layers[l] = torch.nn.AvgPool2d(2)
        if isinstance(layers[l], torch.nn.Conv2d) or isinstance(layers[l], torch.nn.AvgPool2d):
            if l <= 16:
                def rho(p): return p + 0.25 * p.clamp(min=0)
                def incr(z): return z + 1e-9
            if 17 <= l <= 30:
                def rho(p): return p
                def incr(z): return z + 1e-9 + 0.25 * ((z ** 2).mean() ** .5).data
            if l >= 31:
                def rho(p): return p
                def incr(z): return z + 1e-9
            z = incr(newlayer(layers[l], rho).forward(A[l]))   # step 1
            s = (R[l + 1] / z).data                              # step 2
            (z * s).sum().backward()
            c = A[l].grad                                        # step 3
            R[l] = (A[l] * c).data                               # step 4
        else:
            R[l] = R[l + 1]
    A[0] = A[0].data.requires_grad_(True)
    lb = (A[0].data * 0 + (0 - MEAN) / STD).requires_grad_(True)
    hb = (A[0].data * 0 + (1 - MEAN) / STD).requires_grad_(True)
    z = layers[0].forward(A[0]) + 1e-9                                    # step 1 (a)
    z -= newlayer(layers[0], lambda p: p.clamp(min=0)).forward(lb)       # step 1 (b)
    z -= newlayer(layers[0], lambda p: p.clamp(max=0)).forward(hb)       # step 1 (c)
    s = (R[1] / z).data                                                   # step 2
    (z * s).sum().backward()
    c, cp, cm = A[0].grad, lb.grad, hb.grad                               # step 3
    R[0] = (A[0] * c + lb * cp + hb * cm).data                            # step 4
    return R


def test_tutorial_vgg16_equals_the_tutorials_pytorch_procedure():
    model, net, _, (low, high), _ = torch_models.torchvision_model("vgg16", 224)
    image = np.random.default_rng(3).uniform(0, 1, size=(1, 3, 224, 224))   # an RGB image in [0, 1]
    X = (torch.from_numpy(image) - MEAN) / STD
    T = torch.eye(1000, dtype=torch.float64)[TARGET].reshape(1, 1000, 1, 1)
    R = tutorial_lrp(model, X, T)

    e = lrpref.explain(net, X.numpy(), target=TARGET, composite="tutorial_vgg16", low=low, high=high)
    assert relative(e.relevance, R[0].numpy()) < 1e-10
    # the tutorial's R[l] is the input relevance of its layer l: lrpref's relevance at the input of the same layer
    position = {name: i for i, name in enumerate(e.names)}
    tutorial_names = [f"features.{i}" for i in range(31)] + [f"classifier.{i}" for i in range(7)]
    for l in range(1, len(tutorial_names)):
        ours = e.layers[position[tutorial_names[l]]]
        assert relative(ours.reshape(R[l].shape), R[l].numpy()) < 1e-10, tutorial_names[l]
    rule_of = dict(zip(e.names, e.rules))
    assert isinstance(rule_of["features.2"], rules.OriginalGamma) and isinstance(rule_of["features.17"], rules.Epsilon)
    assert isinstance(rule_of["features.23"], rules.AverageMaxPool) and isinstance(rule_of["classifier.6"], rules.LRP0)
