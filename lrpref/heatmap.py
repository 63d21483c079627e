"""Heatmaps as PNG, in the tutorial's colours, with Pillow (no matplotlib).

The tutorial (`montavon_and_toolbox.md` §1.3) draws relevance with matplotlib's ``seismic`` colour map, its
RGB darkened by 0.85, on the symmetric range ``[-b, b]`` with ``b = 10 * mean(|R|^3)^(1/3)``; red is
positive, blue negative. Inputs are drawn in gray.
"""
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .backend import to_host
from .checks import finite, integer, number, real_array
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
    """``b = 10 * mean(|R|^3)^(1/3)``, the tutorial's colour range ``[-b, b]``, of finite, non-empty relevance."""
    R = finite(real_array(R, "the relevance", host=True), "the relevance")
    if R.size == 0:
        raise ValueError(f"the relevance is empty (shape {R.shape}): it has no colour range")
    return 10.0 * float(np.mean(np.abs(R) ** 3)) ** (1.0 / 3.0)


def relevance_rgb(R, scale=None):
    """A 2-D relevance map as uint8 RGB (H, W, 3); values beyond ``[-scale, scale]`` take the end colours.

    ``scale`` (default :func:`tutorial_scale`) must be a finite number >= 0; 0 draws the map white. A map
    that is not 2-D and non-empty, or holds NaN or Inf, is refused (it has no colours to show)."""
    R = finite(real_array(R, "the relevance map", host=True).astype(np.float64), "the relevance map")
    if R.ndim != 2 or R.size == 0:
        raise ValueError(f"the relevance map must be 2-D (height, width) and non-empty, got shape {R.shape}; "
                         "sum relevance over channels first")
    scale = tutorial_scale(R) if scale is None else number(scale, "the colour scale", low=0.0)
    lut = seismic()
    t = (R + scale) / (2 * scale) if scale > 0 else np.full(R.shape, 0.5)
    index = np.clip(np.floor(t * len(lut)), 0, len(lut) - 1).astype(int)
    return np.rint(lut[index] * 255).astype(np.uint8)


def gray_rgb(x, low, high):
    """A 2-D input (or 3 channels first) as uint8 RGB, ``low`` black and ``high`` white (``low < high``)."""
    if not number(low, "low") < number(high, "high"):
        raise ValueError(f"the gray range needs low < high, got low={low:g}, high={high:g}")
    x = to_host(x).astype(np.float64)
    x = np.repeat(x[..., None], 3, axis=-1) if x.ndim == 2 else np.moveaxis(x, 0, -1)
    return np.rint(np.clip((x - low) / (high - low), 0, 1) * 255).astype(np.uint8)


def colour_bar(height, width=6):
    """The colour scale as a panel of uint8 RGB (height, width, 3): ``+b`` at the top, 0 (white) in the middle,
    ``-b`` at the bottom. Caption it with the bound ``b`` of the maps it stands for."""
    lut = seismic()
    index = np.rint(np.linspace(len(lut) - 1, 0, height)).astype(int)
    return np.repeat(np.rint(lut[index] * 255).astype(np.uint8)[:, None], width, axis=1)


def save_panels(path, panels, captions=None, zoom=8, title=None):
    """Save RGB arrays side by side, each enlarged ``zoom`` times, with an optional caption under each and an
    optional title above them all."""
    save_grid(path, [panels], None if captions is None else [captions], zoom, title)


def save_grid(path, rows, captions=None, zoom=8, title=None):
    """Save rows of RGB arrays, each enlarged ``zoom`` times; ``captions`` (one list per row, lines split by
    ``\\n``) go under the panels, ``title`` above the grid."""
    zoom = integer(zoom, "zoom", low=1)
    if not rows or not all(rows):
        raise ValueError("nothing to draw: expected at least one panel in every row")
    rows = [[to_host(p) for p in row] for row in rows]   # Pillow's: one transfer per panel
    for row in rows:
        for p in row:
            if p.dtype != np.uint8 or p.ndim not in (2, 3):
                raise TypeError(f"panels must be uint8 images (H, W) or (H, W, 3), got dtype {p.dtype} and "
                                f"shape {p.shape}; see relevance_rgb and gray_rgb")
    if captions is not None and [len(c) if c else len(r) for c, r in zip(captions, rows)] != [len(r) for r in rows]:
        raise ValueError(f"captions must give one per panel: {[len(r) for r in rows]} panels per row, got "
                         f"{[len(c) if c else None for c in captions]}")
    gap, line = 8, 12   # Pillow's default font is about 11 pixels high
    font = ImageFont.load_default()
    grid = [[Image.fromarray(p).resize((p.shape[1] * zoom, p.shape[0] * zoom), Image.Resampling.NEAREST)
             for p in row] for row in rows]
    captions = captions or [None] * len(grid)

    def slot(im, caption):   # a panel's width, or its caption's where that is wider (a colour bar's)
        return max([im.width] + [int(font.getlength(part)) + 1 for part in (caption or "").split("\n")])

    slots = [[slot(im, names[i] if names else None) for i, im in enumerate(row)] for row, names in zip(grid, captions)]
    text = [4 + line * max(c.count("\n") + 1 for c in row) if row else 0 for row in captions]
    top = gap + (line * (title.count("\n") + 1) + 4 if title else 0)
    width = max(sum(row) + gap * (len(row) + 1) for row in slots)
    if title:
        width = max(width, 2 * gap + max(int(font.getlength(part)) + 1 for part in title.split("\n")))
    height = top + sum(max(im.height for im in row) + t + gap for row, t in zip(grid, text))
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((gap, gap), title, fill="black", font=font)
    y = top
    for row, names, widths, t in zip(grid, captions, slots, text):
        x = gap
        for i, im in enumerate(row):
            canvas.paste(im, (x, y))
            if names:
                draw.text((x, y + im.height + 2), names[i], fill="black", font=font)
            x += widths[i] + gap
        y += max(im.height for im in row) + t + gap
    save_image(canvas, path)


def save_image(image, path):
    """Save a Pillow image to ``path`` atomically (:mod:`lrpref.files`), in the format its suffix names
    (``.png``; an unknown suffix is refused before anything is written)."""
    with atomic_path(path) as tmp:
        image.save(tmp)
