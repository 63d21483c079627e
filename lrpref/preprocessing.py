"""Turning images into network input, as each model family expects, and the input range that implies.

A network records the name of its preprocessing in ``meta["preprocessing"]`` and the resulting valid
input range in ``meta["input_low"]``/``["input_high"]``; composites with a zB rule take their bounds from it.

============  ======================================================================  ===========================
name          pixels v in 0..255 become                                               zB bounds per channel
============  ======================================================================  ===========================
mnist         gray, resized to 28x28, ``v / 127.5 - 1`` (the Montavon tutorial)        -1 .. 1
mnist_pair    the same at 28x56: two digits side by side                              -1 .. 1
torchvision   RGB, shorter side 256 then centre crop 224, ``(v / 255 - mean) / std``,   ``(0 - mean) / std`` ..
              ImageNet mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)          ``(1 - mean) / std``
caffe         Keras' ``preprocess_input`` for VGG and ResNet: RGB to BGR, shorter       ``-mean`` .. ``255 - mean``
              side 256 then centre crop 224, ``v - mean``, mean (103.939, 116.779,
              123.68) in BGR order, unscaled
cifar10       RGB, shorter side 32 then centre crop 32x32, ``v`` unscaled (the         0 .. 255
              ``cifar-10-model`` package's CNN, ``weights/fetch_cifar10.py``)
============  ======================================================================  ===========================

The resize and crop follow torchvision's reference transform (``Resize(256)``, ``CenterCrop(224)``, bilinear),
for Keras models too.

Image files are read faithfully, whatever their kind (:func:`load_image`): values are scaled by the image's
real bit depth (8-bit: ``v / 255``; 16-bit grayscale: ``v / 65535``, resized in floating point), palette and
CMYK images are converted to their colours, a transparent image (RGBA, LA, a palette with transparency) is
composited over black (so that content drawn in the alpha channel, as a white digit on a transparent
background, stays visible), and an image larger than Pillow's decompression-bomb limit
(``PIL.Image.MAX_IMAGE_PIXELS``) is refused. 32-bit float images, whose pixel range is not defined, are refused.
"""
import os
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .backend import array_module, constant, to_host


@dataclass(frozen=True)
class Preprocessing:
    """``x = (v / scale - mean) / std`` per channel, after resizing; see the module docstring."""

    name: str
    mode: str
    size: tuple
    resize: int = None
    bgr: bool = False
    scale: float = 1.0
    mean: tuple = (0.0,)
    std: tuple = (1.0,)

    @property
    def low(self):
        """The smallest value of every channel: what pixel value 0 becomes."""
        return [(0.0 - m) / s for m, s in zip(self.mean, self.std)]

    @property
    def high(self):
        """The largest value of every channel: what pixel value 255 becomes."""
        return [(255.0 / self.scale - m) / s for m, s in zip(self.mean, self.std)]

    def geometry(self, image):
        """Resize (shorter side to ``resize``, then centre crop), or resize straight to ``size``."""
        height, width = self.size
        if self.resize is None:
            return image.resize((width, height), Image.Resampling.BILINEAR)
        w, h = image.size
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = self.resize, int(self.resize * long / short)
        image = image.resize((new_short, new_long) if w <= h else (new_long, new_short), Image.Resampling.BILINEAR)
        w, h = image.size
        top, left = int(round((h - height) / 2.0)), int(round((w - width) / 2.0))
        return image.crop((left, top, left + width, top + height))

    def unit(self, image):
        """A Pillow image resized and cropped, as pixels in [0, 1], shape (C, H, W), RGB order, float64
        (read as the module docstring says)."""
        image, full = readable(image, self.mode)
        pixels = np.asarray(self.geometry(image), dtype=np.float64) / full
        if pixels.ndim == 2 and self.mode == "RGB":   # a 16-bit gray image for an RGB network
            pixels = np.repeat(pixels[:, :, None], 3, axis=2)
        return np.ascontiguousarray((pixels[:, :, None] if pixels.ndim == 2 else pixels).transpose(2, 0, 1))

    def normalize(self, x):
        """Images in [0, 1], shape (N, C, H, W), RGB order, to network input (float64, on ``x``'s array module)."""
        xp = array_module(x)
        values = (x.astype(np.float64) if hasattr(x, "astype") else np.asarray(x, dtype=np.float64)) * 255.0
        values = values[:, ::-1] if self.bgr else values
        mean, std = (constant(np.reshape(v, (1, -1, 1, 1)), xp, np.float64) for v in (self.mean, self.std))
        return (values / self.scale - mean) / std

    def __call__(self, image):
        """A Pillow image as network input of shape (1, C, H, W), float64."""
        return self.normalize(self.unit(image)[None])

    def pixels(self, x):
        """One network input (C, H, W) back to displayable pixels: uint8 RGB of shape (H, W, 3)."""
        values = np.moveaxis(to_host(x, np.float64), 0, -1) * np.asarray(self.std) + np.asarray(self.mean)
        values = values[:, :, ::-1] if self.bgr else values
        values = np.clip(np.rint(values * self.scale), 0, 255).astype(np.uint8)
        return np.repeat(values, 3, axis=-1) if values.shape[-1] == 1 else values


SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")
TRANSPARENT = ("RGBA", "RGBa", "LA", "La", "PA")


def readable(image, mode):
    """``(image, full)``: a Pillow image in ``mode`` ("L" or "RGB") with 8-bit values and ``full = 255``, or for a
    16-bit grayscale image a float ("F") image of its values with ``full = 65535``; transparency composited over
    black. ``ValueError`` for a kind of image without a defined pixel range."""
    if image.mode in SIXTEEN_BIT:
        values = np.asarray(image, dtype=np.float64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise ValueError(f"a {image.mode} image with values in {values.min():g}..{values.max():g}; expected "
                             "16-bit values 0..65535")
        return Image.fromarray(values.astype(np.float32), "F"), 65535.0
    if image.mode == "F":
        raise ValueError("a 32-bit float image has no defined pixel range; expected 8- or 16-bit pixels")
    if image.mode in TRANSPARENT or (image.mode == "P" and "transparency" in image.info):
        black = Image.new("RGBA", image.size, (0, 0, 0, 255))
        image = Image.alpha_composite(black, image.convert("RGBA"))
    return image.convert(mode), 255.0


PREPROCESSING = {p.name: p for p in (
    Preprocessing("mnist", "L", (28, 28), scale=127.5, mean=(1.0,)),
    Preprocessing("mnist_pair", "L", (28, 56), scale=127.5, mean=(1.0,)),
    Preprocessing("torchvision", "RGB", (224, 224), resize=256, scale=255.0,
                  mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
    Preprocessing("caffe", "RGB", (224, 224), resize=256, bgr=True, mean=(103.939, 116.779, 123.68),
                  std=(1.0, 1.0, 1.0)),
    Preprocessing("cifar10", "RGB", (32, 32), resize=32, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)),
)}


def get(name):
    """A :class:`Preprocessing` by name."""
    if name not in PREPROCESSING:
        raise ValueError(f"unknown preprocessing {name!r}: expected one of {sorted(PREPROCESSING)}")
    return PREPROCESSING[name]


def of(net):
    """The :class:`Preprocessing` a network records in ``net.meta`` (MNIST's when it records none)."""
    return get(net.meta.get("preprocessing", "mnist"))


def load_image(path, preprocessing, unit=False):
    """Read an image file (PNG, JPEG, ... via Pillow) as network input of shape (1, C, H, W), float64.

    With ``unit=True``: resized and cropped only, pixels in [0, 1] (see :meth:`Preprocessing.unit`).

    Raises
    ------
    ValueError
        For an unknown preprocessing, a file Pillow cannot read, an image larger than Pillow's limit
        ``PIL.Image.MAX_IMAGE_PIXELS`` or one without a defined pixel range.
    """
    spec = get(preprocessing)
    if not isinstance(path, (str, os.PathLike)) and not hasattr(path, "read"):
        raise TypeError(f"expected the path of an image file (or an open file), got {path!r} ({type(path).__name__})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)   # the limit itself, not twice it
            with Image.open(path) as image:
                return spec.unit(image)[None] if unit else spec(image)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as err:
        raise ValueError(f"cannot read image {path}: it is larger than Pillow's limit of {Image.MAX_IMAGE_PIXELS} "
                         f"pixels (PIL.Image.MAX_IMAGE_PIXELS; raise it if the image is trusted): {err}") from None
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read image {path}: {err}") from None
