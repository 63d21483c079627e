"""Turning image files into network input, by the preprocessing a network records in ``meta["preprocessing"]``.

``mnist``: grayscale, resized to 28x28, pixel values ``v / 127.5 - 1`` in [-1, 1] (the tutorial's scaling;
white digit on black, as MNIST).
"""
import numpy as np
from PIL import Image

PREPROCESSING = {
    # name: (Pillow mode, (height, width), function from uint8 array (H, W[, C]) to float array (C, H, W))
    "mnist": ("L", (28, 28), lambda pixels: (pixels.astype(np.float64) / 127.5 - 1.0)[None]),
}


def load_image(path, preprocessing):
    """Read an image file (PNG, JPEG, ... via Pillow) as a batch of one, shape (1, C, H, W), float64.

    Raises
    ------
    ValueError
        For an unknown preprocessing or a file Pillow cannot read.
    """
    if preprocessing not in PREPROCESSING:
        raise ValueError(f"unknown preprocessing {preprocessing!r}: expected one of {sorted(PREPROCESSING)}")
    mode, (height, width), convert = PREPROCESSING[preprocessing]
    try:
        with Image.open(path) as image:
            image = image.convert(mode).resize((width, height), Image.Resampling.BILINEAR)
    except (OSError, Image.UnidentifiedImageError) as err:
        raise ValueError(f"cannot read image {path}: {err}") from None
    return convert(np.asarray(image))[None]
