"""Image preprocessing: torchvision's reference transform, Keras' "caffe" mode, MNIST, and their zB bounds."""
import numpy as np
import pytest
from PIL import Image

from lrpref.preprocessing import PREPROCESSING, get, load_image

MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68])


@pytest.fixture
def photo(rng):
    """An RGB image 300 wide and 256 high: the resize to a shorter side of 256 leaves it as it is."""
    return rng.integers(0, 256, size=(256, 300, 3), dtype=np.uint8)


# Elementwise float64 formulas on both sides: they differ by a few ulps of values of size at most 255, so atol
# 1e-12 holds on any CPU (no sum, no BLAS).


def test_torchvision_crops_the_centre_and_normalises(photo):
    x = PREPROCESSING["torchvision"](Image.fromarray(photo))
    crop = photo[16:240, 38:262] / 255.0   # torchvision's CenterCrop: round((256 - 224) / 2), round((300 - 224) / 2)
    assert x.shape == (1, 3, 224, 224)
    assert np.allclose(x[0], ((crop - MEAN) / STD).transpose(2, 0, 1), rtol=0, atol=1e-12)


def test_caffe_is_bgr_and_mean_subtracted(photo):
    x = PREPROCESSING["caffe"](Image.fromarray(photo))
    crop = photo[16:240, 38:262, ::-1].astype(float)
    assert np.allclose(x[0], (crop - CAFFE_MEAN_BGR).transpose(2, 0, 1), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["torchvision", "caffe"])
def test_pixels_undo_the_preprocessing(photo, name):
    spec = PREPROCESSING[name]
    assert np.array_equal(spec.pixels(spec(Image.fromarray(photo))[0]), photo[16:240, 38:262])


def test_bounds_are_what_pixel_values_0_and_255_become():
    assert np.allclose(get("torchvision").low, -MEAN / STD) and np.allclose(get("torchvision").high, (1 - MEAN) / STD)
    assert np.allclose(get("caffe").low, -CAFFE_MEAN_BGR) and np.allclose(get("caffe").high, 255 - CAFFE_MEAN_BGR)
    assert get("mnist").low == [-1.0] and get("mnist").high == [1.0]


def test_mnist_images(tmp_path):
    digit = np.zeros((28, 28), np.uint8)
    digit[10:18, 12:15] = 255
    Image.fromarray(digit).save(tmp_path / "digit.png")
    assert np.array_equal(load_image(tmp_path / "digit.png", "mnist")[0, 0], digit / 127.5 - 1)


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown preprocessing 'imagenet'"):
        get("imagenet")
    (tmp_path / "x.png").write_text("not an image")
    with pytest.raises(ValueError, match="cannot read image"):
        load_image(tmp_path / "x.png", "torchvision")
