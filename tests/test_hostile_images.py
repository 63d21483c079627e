"""Hostile inputs, images: every kind of image file reaches the network as its pixels say, or is refused clearly.

Each test builds an image of one kind with NumPy, writes it with Pillow and checks the array ``load_image``
hands to the network against the pixel values computed here (the sizes equal the networks' input sizes, so
no resize is involved and the comparison is exact: the values are small integers divided by the full scale).
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from lrpref.preprocessing import load_image

RNG = np.random.default_rng(7)
GRAY = RNG.integers(0, 256, (28, 28)).astype(np.uint8)


def mnist_input(path):
    """The MNIST network's input for an image file, back in pixel units 0..1."""
    return (load_image(path, "mnist")[0, 0] + 1) / 2


@given(st.sampled_from(["L", "16-bit", "1", "P", "RGBA", "LA", "P with transparency"]))
def test_gray_kinds_reach_the_network_as_their_pixels(tmp_path_factory, kind):
    path = tmp_path_factory.mktemp("images") / f"{kind}.png"
    alpha = GRAY
    if kind == "L":
        Image.fromarray(GRAY, "L").save(path)
        expected = GRAY / 255
    elif kind == "16-bit":   # all 16 bits used: the low byte must not be lost, nor the image binarised
        values = RNG.integers(0, 65536, (28, 28)).astype(np.uint16)
        Image.fromarray(values).save(path)
        expected = values / 65535
    elif kind == "1":
        Image.fromarray(GRAY > 127).convert("1").save(path)
        expected = (GRAY > 127).astype(float)
    elif kind == "P":   # a palette of grays in reverse order: index i means gray 255 - i
        image = Image.fromarray(GRAY, "P")
        image.putpalette([v for i in range(256) for v in (255 - i,) * 3])
        image.save(path)
        expected = (255 - GRAY.astype(int)) / 255
    elif kind in ("RGBA", "LA"):   # a white digit drawn in the alpha channel: over black, the digit itself
        channels = [np.full_like(GRAY, 255)] * (3 if kind == "RGBA" else 1) + [alpha]
        Image.fromarray(np.stack(channels, axis=-1), kind).save(path)
        expected = alpha / 255
    else:   # palette index 0 transparent (shown black), index i > 0 the gray i
        image = Image.fromarray(GRAY, "P")
        image.putpalette([v for i in range(256) for v in (i,) * 3])
        image.save(path, transparency=0)
        expected = GRAY / 255
    assert np.allclose(mnist_input(path), expected, rtol=0, atol=1e-15), kind   # float64 rounding of v/127.5-1


def test_colour_kinds_reach_the_network_as_their_colours(tmp_path):
    """RGB as it is; CMYK through its colours (pure cyan is (0, 255, 255), full black is black); an RGBA pixel of
    colour c and opacity a is c * a / 255 over black."""
    spec_input = lambda path: load_image(path, "torchvision", unit=True)[0]   # (3, 224, 224) in [0, 1]
    crop = (slice(16, 240), slice(16, 240))   # torchvision's centre crop of a 256 x 256 image
    rgb = RNG.integers(0, 256, (256, 256, 3)).astype(np.uint8)
    Image.fromarray(rgb, "RGB").save(tmp_path / "rgb.png")
    assert np.array_equal(spec_input(tmp_path / "rgb.png"), np.moveaxis(rgb[crop] / 255, -1, 0))

    cmyk = np.zeros((256, 256, 4), np.uint8)
    cmyk[:128, :, 0] = 255     # top half cyan
    cmyk[128:, :, 3] = 255     # bottom half black
    Image.fromarray(cmyk, "CMYK").save(tmp_path / "cmyk.jpg", quality=100)
    x = spec_input(tmp_path / "cmyk.jpg")
    assert np.abs(x[:, :80] - np.array([0, 1, 1])[:, None, None]).max() < 3 / 255   # JPEG: a few levels off
    assert np.abs(x[:, -80:]).max() < 3 / 255

    rgba = np.concatenate([np.full((256, 256, 3), 200, np.uint8), np.full((256, 256, 1), 51, np.uint8)], axis=-1)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    assert np.allclose(spec_input(tmp_path / "rgba.png"), 200 * 51 / 255 / 255, rtol=0, atol=1e-15)


def test_sixteen_bit_values_are_scaled_by_their_real_depth(tmp_path):
    """A 16-bit image whose values all lie below 256 is dark, not white: v / 65535, not v / 255 clipped."""
    values = np.full((28, 28), 255, np.uint16)
    Image.fromarray(values).save(tmp_path / "dark.png")
    assert np.allclose(mnist_input(tmp_path / "dark.png"), 255 / 65535, rtol=0, atol=1e-15)


def test_images_without_a_pixel_range_are_refused(tmp_path):
    Image.fromarray(np.full((28, 28), 0.5, np.float32), "F").save(tmp_path / "float.tif")
    with pytest.raises(ValueError, match="float.tif: a 32-bit float image has no defined pixel range; expected 8- "
                                         "or 16-bit pixels"):
        load_image(tmp_path / "float.tif", "mnist")
    Image.fromarray(np.full((28, 28), -5, np.int32), "I").save(tmp_path / "signed.tif")
    with pytest.raises(ValueError, match=r"signed.tif: a I image with values in -5..-5; expected 16-bit values"):
        load_image(tmp_path / "signed.tif", "mnist")


@pytest.mark.parametrize("limit", [28 * 28 - 1, (28 * 28) // 2 - 1])   # over the limit, and over twice it
def test_images_over_pillows_limit_are_refused(tmp_path, monkeypatch, limit):
    Image.fromarray(GRAY).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with pytest.raises(ValueError, match=f"big.png: it is larger than Pillow's limit of {limit} pixels"):
        load_image(tmp_path / "big.png", "mnist")


def test_an_exif_orientation_is_read_as_stored_and_warned_about(tmp_path):
    """Pixels are read as stored (as Pillow and torchvision read them); the command line says that a viewer would
    show them turned, rather than explaining another picture than the user sees without a word."""
    from lrpref import preprocessing
    from lrpref.mismatch import image_file_warnings
    image = Image.fromarray(GRAY)
    exif = image.getexif()
    exif[0x0112] = 6   # "rotate 90 degrees clockwise to display"
    image.save(tmp_path / "turned.png", exif=exif)
    assert np.allclose(mnist_input(tmp_path / "turned.png"), GRAY / 255, rtol=0, atol=1e-15)
    warnings = image_file_warnings(tmp_path / "turned.png", preprocessing.get("mnist"))
    assert warnings == ["the image's EXIF orientation is 6 (a viewer shows it turned or mirrored); its pixels are "
                        "read as stored, as torchvision reads them: apply PIL.ImageOps.exif_transpose first to "
                        "explain what a viewer shows"]
