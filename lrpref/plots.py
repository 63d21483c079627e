"""Line plots as PNG with Pillow (lrpref does not depend on matplotlib)."""
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .checks import finite, integer, real_array
from .heatmap import save_image

COLOURS = ["#c0392b", "#2471a3", "#229954", "#7d3c98", "#d68910", "#17202a"]


def _ticks(low, high, count=5):
    """About ``count`` round tick values covering [low, high]."""
    if high <= low:
        return [low]
    step = 10 ** np.floor(np.log10((high - low) / count))
    step *= min((m for m in (1, 2, 5, 10) if (high - low) / (m * step) <= count), default=10)
    return list(np.arange(np.ceil(low / step) * step, high + step / 2, step))


def _values(values, what):
    return finite(real_array(values, what, host=True).astype(float), what)


def line_plot(path, series, title="", xlabel="", ylabel="", size=(640, 420)):
    """Save a line plot of ``series``: a list of ``(label, xs, ys)``; the legend sits above the plot, never on a
    line."""
    width, height = (integer(v, "the plot size", low=200) for v in size)
    if not series:
        raise ValueError("nothing to plot: expected at least one (label, xs, ys) series")
    series = [(label, _values(xs, f"the x values of {label!r}"), _values(ys, f"the y values of {label!r}"))
              for label, xs, ys in series]
    for label, xs, ys in series:
        if xs.ndim != 1 or xs.shape != ys.shape or len(xs) == 0:
            raise ValueError(f"series {label!r} needs as many x as y values, at least one, got shapes {xs.shape} and "
                             f"{ys.shape}")
    left, right, top, bottom = 70, 20, 30 + 14 * len(series), 50
    xs_all = np.concatenate([xs for _, xs, _ in series])
    ys_all = np.concatenate([ys for _, _, ys in series])
    x0, x1 = xs_all.min(), xs_all.max() if xs_all.max() > xs_all.min() else xs_all.min() + 1
    y0, y1 = min(ys_all.min(), 0.0), ys_all.max() if ys_all.max() > min(ys_all.min(), 0.0) else 1.0
    y1 += 0.05 * (y1 - y0)

    def to_px(x, y):
        return (left + (x - x0) / (x1 - x0) * (width - left - right),
                height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom))

    image = Image.new("RGB", (width, height), "white")
    draw, font = ImageDraw.Draw(image), ImageFont.load_default()
    draw.rectangle([left, top, width - right, height - bottom], outline="black")
    for t in _ticks(x0, x1):
        px, _ = to_px(t, y0)
        draw.line([px, height - bottom, px, height - bottom + 4], fill="black")
        draw.text((px - 10, height - bottom + 6), f"{t:g}", fill="black", font=font)
    for t in _ticks(y0, y1):
        _, py = to_px(x0, t)
        draw.line([left - 4, py, left, py], fill="black")
        draw.text((5, py - 6), f"{t:.3g}", fill="black", font=font)
    for k, (label, xs, ys) in enumerate(series):
        colour = COLOURS[k % len(COLOURS)]
        draw.line([to_px(x, y) for x, y in zip(xs, ys)], fill=colour, width=2)
        draw.text((width - right - font.getlength(label), 18 + 14 * k), label, fill=colour, font=font)
    draw.text((width / 2 - len(title) * 3, 2), title, fill="black", font=font)
    draw.text(((width - len(xlabel) * 6) / 2, height - 18), xlabel, fill="black", font=font)
    draw.text((5, 16), ylabel, fill="black", font=font)
    save_image(image, path)
