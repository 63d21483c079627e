"""Heatmaps as PNG, in the tutorial's colours, with Pillow (no matplotlib).

The tutorial (`montavon_and_toolbox.md` §1.3) draws relevance with matplotlib's ``seismic`` colour map, its
RGB darkened by 0.85, on the symmetric range ``[-b, b]`` with ``b = 10 * mean(|R|^3)^(1/3)``; red is
positive, blue negative. Inputs are drawn in gray.
"""
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .backend import to_host
from .files import atomic_path

# matplotlib's "seismic": these five colours at 0, 1/4, 1/2, 3/4, 1, linearly interpolated into 256 entries.
SEISMIC_NODES = np.array([(0.0, 0.0, 0.3), (0.0, 0.0, 1.0), (1.0, 1.0, 1.0), (1.0, 0.0, 0.0), (0.5, 0.0, 0.0)])
DARKEN = 0.85


def seismic(n=256):
    """The tutorial's colour map as an (n, 3) float array: seismic with its RGB multiplied by 0.85."""
    at = np.linspace(0.0, 1.0, len(SEISMIC_NODES))
    x = np.linspace(0.0, 1.0, n)
    return np.stack([np.interp(x, at, SEISMIC_NODES[:, k]) for k in range(3)], axis=1) * DARKEN


def tutorial_scale(R):
    """``b = 10 * mean(|R|^3)^(1/3)``, the tutorial's colour range ``[-b, b]``."""
    return 10.0 * float(np.mean(np.abs(R) ** 3)) ** (1.0 / 3.0)


def relevance_rgb(R, scale=None):
    """A 2-D relevance map as uint8 RGB (H, W, 3); values beyond ``[-scale, scale]`` take the end colours."""
    R = to_host(R).astype(np.float64)
    scale = tutorial_scale(R) if scale is None else scale
    lut = seismic()
    t = (R + scale) / (2 * scale) if scale > 0 else np.full(R.shape, 0.5)
    index = np.clip(np.floor(t * len(lut)), 0, len(lut) - 1).astype(int)
    return np.rint(lut[index] * 255).astype(np.uint8)


def gray_rgb(x, low, high):
    """A 2-D input (or 3 channels first) as uint8 RGB, ``low`` black and ``high`` white."""
    x = to_host(x).astype(np.float64)
    x = np.repeat(x[..., None], 3, axis=-1) if x.ndim == 2 else np.moveaxis(x, 0, -1)
    return np.rint(np.clip((x - low) / (high - low), 0, 1) * 255).astype(np.uint8)


def save_panels(path, panels, captions=None, zoom=8):
    """Save RGB arrays side by side, each enlarged ``zoom`` times, with an optional caption under each."""
    images = [Image.fromarray(p).resize((p.shape[1] * zoom, p.shape[0] * zoom), Image.Resampling.NEAREST)
              for p in panels]
    gap, text_height = 8, 16 if captions else 0
    width = sum(im.width for im in images) + gap * (len(images) + 1)
    height = max(im.height for im in images) + 2 * gap + text_height
    canvas = Image.new("RGB", (width, height), "white")
    draw, font = ImageDraw.Draw(canvas), ImageFont.load_default()
    x = gap
    for i, im in enumerate(images):
        canvas.paste(im, (x, gap))
        if captions:
            draw.text((x, gap + im.height + 2), captions[i], fill="black", font=font)
        x += im.width + gap
    save_image(canvas, path)


def save_image(image, path):
    """Save a Pillow image to ``path`` atomically (:mod:`lrpref.files`), in the format its suffix names."""
    with atomic_path(path) as tmp:
        image.save(tmp)
