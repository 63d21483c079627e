"""lrpref.mismatch: the warnings stay quiet on inputs that fit and speak on those that do not."""
import numpy as np
import pytest
from PIL import Image

import lrpref
from lrpref import composites, layers, mismatch, preprocessing


def colour_net(dtype, spec):
    rng = np.random.default_rng(1)
    net = lrpref.Sequential([layers.Conv2d(rng.normal(size=(2, 3, 3, 3)), None, padding=1), layers.ReLU(),
                             layers.AdaptiveAvgPool2d(1), layers.Flatten(),
                             layers.Dense(rng.normal(size=(3, 2)), None)],
                            input_shape=(3, None, None),
                            meta={"preprocessing": spec.name, "input_low": spec.low, "input_high": spec.high})
    return net.astype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["torchvision", "caffe"])
def test_black_and_white_pixels_sit_on_the_bounds_without_a_warning(dtype, name):
    """Pixel values 0 and 255 become exactly the per-channel bounds in float64 (the same operations); float32
    rounds them within 4 units of its epsilon, which the check allows and nothing more."""
    spec = preprocessing.get(name)
    net = colour_net(dtype, spec)
    x = spec.normalize(np.stack([np.zeros((3, 8, 8)), np.ones((3, 8, 8))])).astype(dtype)
    assert mismatch.range_warnings(net, x) == []
    x[1, 2, 3, 3] += 0.01 * (spec.high[2] - spec.low[2])
    (message,) = mismatch.range_warnings(net, x)
    assert "outside the range the network records" in message


def test_a_network_without_a_range_is_not_checked():
    net = colour_net("float64", preprocessing.get("torchvision"))
    del net.meta["input_low"], net.meta["input_high"]
    assert mismatch.range_warnings(net, np.full((1, 3, 4, 4), 1e9)) == []


def test_sign_warnings_name_the_rules_for_nonnegative_inputs_only():
    """clrp_paper puts zB first and its z-plus reads ReLU outputs; the sign-split ZPlus and Gamma are defined for
    both signs; Captum's gamma (OriginalGamma on every layer) on inputs of both signs is the trap."""
    net = colour_net("float64", preprocessing.get("torchvision"))
    x = np.random.default_rng(2).uniform(-1, 1, size=(2, 3, 6, 6))
    for name in ("clrp_paper", "zplus", "epsilon_gamma_box"):
        assert mismatch.sign_warnings(net, x, composites.get(name, net=net)) == [], name
    captum = composites.get("captum", rule="gamma")   # Captum's GammaRule: OriginalGamma on every layer
    (message,) = mismatch.sign_warnings(net, x, captum)
    assert message.startswith("layer 0 (Conv2d) gets OriginalGamma")
    assert mismatch.sign_warnings(net, np.abs(x), captum) == []


@pytest.mark.parametrize("size, mode, expected", [
    ((224, 256), "RGB", 0),   # ImageNet models resize and crop as their preprocessing does: no warning
    ((100, 150), "RGB", 1),   # smaller than the crop: enlarged
    ((300, 300), "L", 1),     # gray into a colour model
])
def test_image_warnings_for_an_imagenet_model(size, mode, expected):
    image = Image.new(mode, size)
    assert len(mismatch.image_warnings(image, preprocessing.get("torchvision"))) == expected
