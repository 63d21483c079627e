"""One-line warnings where an explanation's assumptions and its input disagree.

Each function returns a list of messages (empty when all is well); the command line prints them to stderr.
They do not stop anything: the explanation is still exact for the rules given, only probably not the one
meant.

- Rules written for non-negative inputs (:class:`~lrpref.rules.OriginalZPlus`, ``rho(w) = w+``, and
  :class:`~lrpref.rules.OriginalGamma`, ``rho(w) = w + gamma w+``) meeting inputs of both signs: ``a w+``
  is then negative wherever ``a`` is, and the map's colours can turn over (the paper's z-plus on pixels in
  [-1, 1]). The sign-split rules (``ZPlus``, ``AlphaBeta``, ``Gamma``) are defined for such inputs.
- An input outside the range the network records (``net.input_bounds``), which is also zB's box.
- An image converted to what the model reads in an obvious way: colour to gray or back, or resized where
  the model's preprocessing has no resize-and-crop of its own (MNIST's straight 28x28).
- Images read for a network that records no preprocessing: they are read as the shipped MNIST models expect.
"""
import numpy as np
from PIL import Image

from .backend import to_host
from .network import fold_batchnorm
from .rules import OriginalGamma, OriginalZPlus

NONNEGATIVE_INPUT_RULES = (OriginalZPlus, OriginalGamma)
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")
ORIENTATION = 0x0112   # the EXIF tag


def sign_warnings(net, x, composite):
    """Layers whose rule assumes non-negative inputs but whose input has both signs (sample 0 and on)."""
    model = fold_batchnorm(net) if composite.fold_batchnorm else net
    acts = model.activations(x)
    messages = []
    for node, rule in zip(model.nodes, composite.rules(model)):
        if not isinstance(rule, NONNEGATIVE_INPUT_RULES) or getattr(rule, "ones_input", False):
            continue
        a = to_host(acts[node.inputs[0]])
        if a.min() < 0 < a.max():
            messages.append(f"layer {node.name} ({type(node.layer).__name__}) gets {type(rule).__name__}, a rule "
                            f"for non-negative inputs, but its input spans [{a.min():.3g}, {a.max():.3g}]: the "
                            "map's signs may turn over (a sign-split rule such as ZPlus or Gamma is defined there)")
    return messages


def range_warnings(net, x):
    """The input leaves the range the network records (zB's box), beyond the rounding of its dtype."""
    if net.input_bounds is None:
        return []
    x = to_host(x).astype(np.float64)
    channels = (1, -1) + (1,) * (x.ndim - 2)
    low, high = (np.reshape(np.asarray(b, dtype=np.float64), channels if np.ndim(b) == 1 else np.shape(b))
                 for b in net.input_bounds)
    # a preprocessed image reaches its bounds exactly in float64; a few units of the network's dtype allow for
    # its rounding to float32, and nothing more
    slack = 4 * np.finfo(net.dtype or np.float64).eps * max(float(np.max(np.abs(low))), float(np.max(np.abs(high))))
    below, above = float(np.max(low - x)), float(np.max(x - high))
    if below <= slack and above <= slack:
        return []
    return [f"input spans [{x.min():.3g}, {x.max():.3g}], outside the range the network records "
            f"[{_show(low)}, {_show(high)}] (by up to {max(below, above):.3g}), which zB's box and the "
            "preprocessing assume"]


def preprocessing_warnings(net):
    """A network that records no preprocessing, whose images are therefore read as MNIST's (:func:`lrpref.preprocessing.of`)."""
    if "preprocessing" in net.meta:
        return []
    return ["the model records no preprocessing: its images are read as the shipped MNIST models expect (gray, "
            "28x28, pixels scaled to [-1, 1]); record the right one with lrpref.io.set_preprocessing and save"]


def image_file_warnings(path, spec):
    """An image file that ``spec`` (a :class:`~lrpref.preprocessing.Preprocessing`) converts in an obvious way."""
    with Image.open(path) as image:
        return image_warnings(image, spec)


def image_warnings(image, spec):
    """A Pillow image that ``spec`` converts in an obvious way."""
    messages = []
    gray, wants_gray = image.mode in GRAY_MODES, spec.mode in GRAY_MODES
    if gray != wants_gray:
        messages.append(f"{'gray' if gray else 'colour'} image converted to {'gray' if wants_gray else 'colour'} "
                        f"for a model trained on {spec.name} images")
    orientation = image.getexif().get(ORIENTATION, 1)
    if orientation != 1:   # Pillow, torchvision and lrpref read the pixels as stored; a viewer turns them
        messages.append(f"the image's EXIF orientation is {orientation} (a viewer shows it turned or mirrored); its "
                        "pixels are read as stored, as torchvision reads them: apply PIL.ImageOps.exif_transpose "
                        "first to explain what a viewer shows")
    width, height = image.size
    if spec.resize is None and (height, width) != tuple(spec.size):
        messages.append(f"{width}x{height} image resized to {spec.size[1]}x{spec.size[0]} for a model trained on "
                        f"{spec.name} images")
    elif spec.resize is not None and min(width, height) < min(spec.size):
        messages.append(f"{width}x{height} image enlarged to {spec.resize} pixels on its shorter side for a model "
                        f"trained on {spec.name} images")
    return messages


def _show(bound):
    values = np.unique(bound)
    return f"{values[0]:.3g}" if len(values) == 1 else f"{values.min():.3g}..{values.max():.3g}"
