"""The chain networks of lrpref's golden reference file (``mlp``, ``cnn``, ``vgg16_small``) as PyTorch modules.

For checking another implementation against ``lrpref reference export``: build the network the file holds, run
your LRP on it, write your answers in the file's schema and run ``lrpref reference check`` (see
tutorials/guides/check_your_implementation.md). Needs PyTorch, imported only when :func:`build` is called::

    import sys; sys.path.insert(0, "weights")
    from reference_torch import build
    model, names, x = build("reference.h5", "cnn")     # float64, eval mode; names: one per module

lrpref stores padding as (top, bottom, left, right); PyTorch's ``Conv2d`` and ``MaxPool2d`` take (height,
width) for symmetric padding, ``ZeroPad2d`` takes (left, right, top, bottom). Asymmetric padding inside a
convolution is refused: the reference networks put it in a ``ZeroPad2d`` of its own. ``resnet18_small`` is not a
chain; it is torchvision's architecture: build it with ``weights/export_torchvision.py``'s classes instead.
"""
import h5py
import numpy as np


def _module(torch, kind, attrs, arrays):
    nn = torch.nn
    if kind in ("Conv2d", "Dense"):
        w = torch.from_numpy(arrays["weight"])
        if kind == "Dense":
            m = nn.Linear(w.shape[1], w.shape[0])
        else:
            top, bottom, left, right = (int(p) for p in attrs["padding"])
            if (top, left) != (bottom, right):
                raise ValueError(f"asymmetric padding {attrs['padding']} in a Conv2d: not expressible in PyTorch")
            m = nn.Conv2d(w.shape[1], w.shape[0], tuple(w.shape[2:]), tuple(int(s) for s in attrs["stride"]),
                          (top, left))
        m.weight.data, m.bias.data = w, torch.from_numpy(arrays["bias"])
        return m
    if kind in ("MaxPool2d", "AvgPool2d"):
        top, bottom, left, right = (int(p) for p in attrs["padding"])
        if (top, left) != (bottom, right):
            raise ValueError(f"asymmetric padding {attrs['padding']} in a {kind}: not expressible in PyTorch")
        size, stride = tuple(int(k) for k in attrs["kernel_size"]), tuple(int(s) for s in attrs["stride"])
        if kind == "MaxPool2d":
            return nn.MaxPool2d(size, stride, (top, left))
        return nn.AvgPool2d(size, stride, (top, left), count_include_pad=bool(attrs.get("count_include_pad", True)))
    if kind == "AdaptiveAvgPool2d":
        return nn.AdaptiveAvgPool2d(tuple(int(s) for s in attrs["output_size"]))
    if kind == "ZeroPad2d":
        top, bottom, left, right = (int(p) for p in attrs["padding"])
        return nn.ZeroPad2d((left, right, top, bottom))
    if kind == "Dropout":
        return nn.Dropout(float(attrs["p"]))
    if kind in ("ReLU", "Flatten"):
        return getattr(nn, kind)()
    raise ValueError(f"layer type {kind!r} is not in the chain networks this builder reads")


def build(path, network):
    """The network ``network`` of the reference file ``path`` as a float64 ``torch.nn.Sequential`` in eval mode.

    Returns
    -------
    model : torch.nn.Sequential
    names : list of str
        The lrpref name of every module, in order: the file's ``relevance/<name>`` datasets hold the relevance
        of each module's output (``relevance/input``: of the input).
    x : numpy array
        The input batch the file's cases explain.
    """
    import torch
    with h5py.File(path, "r") as f:
        group = f[f"networks/{network}"]
        modules, names = [], []
        for key in sorted(group["model/nodes"]):
            node = group[f"model/nodes/{key}"]
            if list(node.attrs["inputs"]) != [names[-1] if names else "input"]:
                raise ValueError(f"{network} is not a chain (node {node.attrs['name']!r}): see this module's docstring")
            arrays = {name: np.asarray(node[name][()]) for name in node}
            modules.append(_module(torch, node.attrs["type"], dict(node.attrs), arrays))
            names.append(str(node.attrs["name"]))
        x = group["input"][()]
    return torch.nn.Sequential(*modules).double().eval(), names, x
