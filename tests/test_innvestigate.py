"""iNNvestigate 1.0.9's own stored results (shared/peer-references/innvestigate-1.0.9/layer), reproduced.

Each file holds, for one analyzer, six single-layer Keras models ``Input(10, 10, 3) -> layer -> Flatten()``:
their weights, the input (8 random images in [0, 1)) and iNNvestigate's attribution, computed by Keras in
float32 (see that folder's README). lrpref rebuilds each model, explains the neuron with the largest output
(iNNvestigate's max_activation) with the matching ``innvestigate`` composite, in float64, and must agree within
1e-5 relative (iNNvestigate's own test uses 1e-2).

Why this holds on any CPU: the references are stored numbers, so only lrpref's float64 side depends on the
CPU, by float64 rounding (about 1e-15 for these single layers of at most 27-term sums). The largest error
measured over all 78 cases is 2.2e-7 (LRPZ with a boxed input rule on Conv2D; float32 rounding in Keras), a
margin of 45 (python: the loop of this test printing max |ours - stored| / max |stored|; 2026-12-02, this
machine). Discrete choices are fixed data too: the max pools compare stored inputs, and the explained neuron
is checked to be iNNvestigate's.
"""
from pathlib import Path

import h5py
import numpy as np
import pytest

import lrpref
from lrpref import layers
from lrpref.backend import to_host

FOLDER = Path(__file__).resolve().parents[2] / "shared" / "peer-references" / "innvestigate-1.0.9" / "layer"
ANALYZERS = {   # file name: composite parameters
    **{name: {"analyzer": name} for name in lrpref.composites.INNVESTIGATE if name != "BoundedDeepTaylor"},
    "BoundedDeepTaylor": {"analyzer": "BoundedDeepTaylor", "low": -128.0, "high": 128.0},
    "LRPZ_Flat_input_layer_rule": {"analyzer": "LRPZ", "input_layer_rule": "Flat"},
    "LRPZ_boxed_input_layer_rule": {"analyzer": "LRPZ", "input_layer_rule": (-10.0, 10.0)},
}
MODELS = ("Dense", "Dense_relu", "Conv2D", "Conv2D_relu", "AveragePooling2D", "MaxPooling2D")

pytestmark = pytest.mark.skipif(not FOLDER.is_dir(), reason=f"iNNvestigate's reference data is not at {FOLDER} "
                                                             "(it is read from shared/, never copied into the repo)")


def keras_model(name, group):
    """The Keras model ``Input(10, 10, 3) -> layer -> Flatten()`` as an lrpref network (NCHW)."""
    if name.startswith("Dense"):
        kernel, bias = group["weights/0"][()], group["weights/1"][()]
        layer = layers.Dense(kernel.T.astype(np.float64), bias.astype(np.float64))   # on every position's channels
    elif name.startswith("Conv2D"):
        kernel, bias = group["weights/0"][()], group["weights/1"][()]
        layer = layers.Conv2d(kernel.transpose(3, 2, 0, 1).astype(np.float64), bias.astype(np.float64))
    else:
        layer = (layers.AvgPool2d if name.startswith("Average") else layers.MaxPool2d)(2)
    stack = [layer] + ([layers.ReLU()] if name.endswith("relu") else []) + [layers.Flatten()]
    return lrpref.Sequential(stack, input_shape=(3, 10, 10))


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("analyzer", sorted(ANALYZERS))
def test_reproduces_innvestigate(analyzer, model):
    with h5py.File(FOLDER / f"{analyzer}.hdf5") as f:
        x = f["input"][()].transpose(0, 3, 1, 2)
        group = f[model]
        net = keras_model(model, group)
        reference = group["attribution"][()].astype(np.float64).transpose(0, 3, 1, 2)
        keras_output = group["output"][()]
    output = to_host(net.forward(x))   # the network may live on CuPy (LRPREF_BACKEND=cupy): compare on the host
    order = keras_order(model, output.shape[1])
    assert np.allclose(output, keras_output[:, order], rtol=1e-5, atol=1e-6)
    e = lrpref.explain(net, x, target=None, init="logit", composite="innvestigate", **ANALYZERS[analyzer])
    assert np.array_equal(order[to_host(e.target)], keras_output.argmax(axis=1))   # the same neuron
    error = np.abs(to_host(e.relevance) - reference).max() / np.abs(reference).max()
    assert error < 1e-5, f"{analyzer} on {model}: relative error {error:.2e}"


def keras_order(model, n):
    """Keras flattens H, W, C; lrpref C, H, W: the position of every lrpref output in Keras' flat output."""
    channels = 5 if model.startswith(("Dense", "Conv2D")) else 3
    side = int(round((n / channels) ** 0.5))
    c, h, w = np.meshgrid(np.arange(channels), np.arange(side), np.arange(side), indexing="ij")
    return ((h * side + w) * channels + c).ravel()
