"""Evaluating explanations: Insertion/Deletion, MoRF pixel flipping with AOPC, relevance mass accuracy.

All metrics take images in [0, 1] space, shape (N, C, H, W), RGB order, and relevance maps (N, H, W) (the
relevance summed over channels: :func:`relevance_maps`). Perturbed images are normalised with the network's
preprocessing (``net.meta["preprocessing"]``) and scored by the softmax probability of each image's label.

**Insertion/Deletion** as Otsuki et al. 2024's code (``metrics/patch_insdel.py`` of LRP-for-ResNet;
``resnet_and_clrp.md`` §1.7): pixels ranked by the map; for step i = 0 .. n-1, n = ceil(H W / step), the
threshold is the map's value at descending rank ``min(step (i + 1), H W - 1)``; insertion keeps the pixels
with a value at or above it, deletion blacks them out (0 in [0, 1] space), the rest is black, resp. kept.
AUC = (sum(p) - p_0 / 2 - p_last / 2) / (n - 1); ID = Insertion - Deletion. Optionally the map is first
quantized to 8 levels as their ``--heat-quantization``.

**MoRF / AOPC** (Samek et al. 2017, "Evaluating the visualization of what a deep neural network has
learned"): the image is divided into non-overlapping ``patch`` x ``patch`` regions, ranked by their summed
relevance; step k replaces the k most relevant regions by uniform noise (seeded) or black;
``AOPC = 1 / (L + 1) sum_{k=0..L} (f(x_0) - f(x_k))`` with f the label's probability.

**Relevance mass accuracy** (Arras et al. 2022, CLEVR-XAI): the positive relevance inside a ground-truth mask
over all positive relevance (0 for a map without positive relevance).
"""
import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .backend import to_host
from .checks import finite, integer, real_array
from .files import atomic_path
from .preprocessing import of as preprocessing_of


def relevance_maps(relevance):
    """Relevance summed over channels: (N, C, H, W) to (N, H, W), on the host, float64."""
    return to_host(relevance).astype(np.float64).sum(axis=1)


def heat_quantization(maps, levels=8):
    """Otsuki et al.'s heat quantization, per map: with ``bins = linspace(min, max, levels)``, a value in
    ``[bins[i], bins[i + 1])`` becomes ``bins[i]``; the maximum keeps its value."""
    maps = finite(real_array(maps, "maps", host=True).astype(np.float64), "maps")
    levels = integer(levels, "levels", low=2)
    out = np.empty(maps.shape, dtype=np.float64)
    for k, m in enumerate(maps):
        bins = np.linspace(m.min(), m.max(), levels)
        index = np.searchsorted(bins, m, side="right") - 1
        out[k] = np.where(m >= bins[-1], m, bins[np.minimum(index, levels - 2)])
    return out


def auc(curve):
    """The trapezoid area under a curve sampled at equal steps on [0, 1]."""
    curve = finite(real_array(curve, "the curve", host=True).astype(np.float64), "the curve")
    if curve.ndim != 1 or len(curve) < 2:
        raise ValueError(f"the curve must be a 1-D array of at least 2 points, got shape {curve.shape}")
    return float((curve.sum() - curve[0] / 2 - curve[-1] / 2) / (len(curve) - 1))


def label_probability(net, images, labels, batch_size=32):
    """The softmax probability of ``labels`` for images in [0, 1] space, in batches."""
    spec = preprocessing_of(net)
    batch_size = integer(batch_size, "batch_size", low=1)
    labels = to_host(labels)
    if real_array(labels, "labels", host=True).dtype.kind not in "iu":
        raise TypeError(f"labels must be integers (class indices), got dtype {labels.dtype}")
    probabilities = []
    for start in range(0, len(images), batch_size):
        logits = to_host(net.forward(spec.normalize(images[start:start + batch_size]))).astype(np.float64)
        logits = logits.reshape(len(logits), -1)
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        check_labels(labels[start:start + batch_size], p.shape[1])
        probabilities.append(p[np.arange(len(p)), np.asarray(labels[start:start + batch_size])])
    return np.concatenate(probabilities)


def check(images, maps=None, masks=None, labels=None):
    """Images (N, C, H, W) in [0, 1]; finite maps and masks (N, H, W); integer labels (N,): clear errors
    otherwise."""
    images = finite(real_array(images, "images", host=True).astype(np.float64), "images")
    if images.ndim != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {images.shape}")
    if images.min() < 0 or images.max() > 1:
        raise ValueError(f"images must lie in [0, 1] (pixel space), got values in [{images.min():g}, {images.max():g}]")
    want = (images.shape[0],) + images.shape[2:]
    for name, array in (("maps", maps), ("masks", masks)):
        if array is not None and to_host(array).shape != want:
            raise ValueError(f"{name} must have shape {want} (one per image, the image's height and width), "
                             f"got {to_host(array).shape}")
    if maps is not None:
        finite(real_array(maps, "maps", host=True), "maps")
    if masks is not None:
        boolean_masks(masks)
    if labels is not None and to_host(labels).shape != (images.shape[0],):
        raise ValueError(f"labels must have shape ({images.shape[0]},), got {to_host(labels).shape}")
    if labels is not None and real_array(labels, "labels", host=True).dtype.kind not in "iu":
        raise TypeError(f"labels must be integers (class indices), got dtype {to_host(labels).dtype}")
    return images


def boolean_masks(masks):
    """``masks`` as a bool array, if it holds only 0/1 or False/True; else ``ValueError`` (NaN or 0.3 is neither
    inside nor outside, and 255 would be a guess)."""
    masks = real_array(masks, "masks", host=True)
    odd = masks[~np.isin(masks, (0, 1))]
    if odd.size:
        raise ValueError(f"masks must hold only 0/1 or False/True, got {odd.size} other value(s), "
                         f"e.g. {float(odd.flat[0]):g}")
    return masks.astype(bool)


def check_labels(labels, classes):
    """Labels that are class indices ``0 .. classes - 1`` of the network, else a clear ``ValueError``."""
    labels = to_host(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"labels must be class indices 0..{classes - 1} of this network, got values in "
                         f"{labels.min()}..{labels.max()}")
    return labels


@dataclass
class InsertionDeletion:
    """Insertion and deletion curves (N, n) and their AUCs (N,); ``fraction`` is the share of pixels per step."""

    insertion: np.ndarray
    deletion: np.ndarray
    fraction: np.ndarray

    @property
    def insertion_auc(self):
        return np.array([auc(c) for c in self.insertion])

    @property
    def deletion_auc(self):
        return np.array([auc(c) for c in self.deletion])

    @property
    def id_score(self):
        """Insertion minus deletion AUC, per image."""
        return self.insertion_auc - self.deletion_auc


def default_step(height, width):
    """500 pixels per step for 224 x 224 (Otsuki et al.), about 1 % of the pixels otherwise."""
    return 500 if (height, width) == (224, 224) else max(1, int(np.ceil(height * width / 100)))


def insertion_deletion(net, images, maps, labels, step=None, quantize=None, batch_size=32, progress=False):
    """Insertion and deletion curves, as Otsuki et al.'s protocol (module docstring).

    Parameters
    ----------
    net : Network
    images : array (N, C, H, W) in [0, 1]
    maps : array (N, H, W)
    labels : array (N,)
        The classes whose probability is scored.
    step : int or None
        Pixels per step (default: :func:`default_step`).
    quantize : int or None
        Heat quantization levels (8 in the paper's "Ours"), or none.
    """
    images = check(images, maps, labels=labels)
    step = None if step is None else integer(step, "step", low=1)
    quantize = None if quantize is None else integer(quantize, "quantize", low=2)
    maps = heat_quantization(maps, quantize) if quantize else to_host(maps, np.float64)
    labels = to_host(labels)
    n_pixels = images.shape[2] * images.shape[3]
    step = step or default_step(*images.shape[2:])
    ranks = np.minimum(step * np.arange(1, int(np.ceil(n_pixels / step)) + 1), n_pixels - 1)
    curves = {"insertion": [], "deletion": []}
    for image, m, label in tqdm(zip(images, maps, labels), total=len(images), disable=not progress,
                                desc="insertion/deletion"):
        thresholds = np.sort(m.ravel())[::-1][ranks]
        top = m[None] >= thresholds[:, None, None]                  # (n, H, W): the pixels ranked highest
        for mode, keep in (("insertion", top), ("deletion", ~top)):
            perturbed = image[None] * keep[:, None]
            curves[mode].append(label_probability(net, perturbed, np.full(len(keep), label), batch_size))
    return InsertionDeletion(np.array(curves["insertion"]), np.array(curves["deletion"]), (ranks + 1) / n_pixels)


@dataclass
class PixelFlipping:
    """MoRF curves (N, L + 1) of the label's probability, and AOPC per image."""

    curves: np.ndarray

    @property
    def aopc(self):
        return (self.curves[:, :1] - self.curves).mean(axis=1)


def pixel_flipping(net, images, maps, labels, patch=9, steps=100, baseline="uniform", seed=0, batch_size=32,
                   progress=False):
    """MoRF perturbation of regions and AOPC (Samek et al. 2017; module docstring).

    ``baseline``: ``"uniform"`` noise in [0, 1] (seeded, as Samek et al.) or ``"black"``.
    """
    images = check(images, maps, labels=labels)
    patch, steps = integer(patch, "patch", low=1), integer(steps, "steps", low=1)
    if baseline not in ("uniform", "black"):
        raise ValueError(f"baseline must be 'uniform' or 'black', got {baseline!r}")
    rng = np.random.default_rng(seed)
    n, c, height, width = images.shape
    rows, cols = height // patch, width // patch
    if rows * cols == 0:
        raise ValueError(f"patches of {patch}x{patch} do not fit images of {height}x{width}")
    steps = min(steps, rows * cols)
    curves = []
    for image, m, label in tqdm(zip(images, to_host(maps, np.float64), to_host(labels)), total=n, disable=not progress,
                                desc="pixel flipping"):
        region_sums = m[:rows * patch, :cols * patch].reshape(rows, patch, cols, patch).sum(axis=(1, 3))
        order = np.argsort(-region_sums, axis=None, kind="stable")[:steps]
        replacement = rng.uniform(size=image.shape) if baseline == "uniform" else np.zeros_like(image)
        sequence, current = [image], image.copy()
        for region in order:
            r, q = divmod(int(region), cols)
            window = (slice(None), slice(r * patch, (r + 1) * patch), slice(q * patch, (q + 1) * patch))
            current[window] = replacement[window]
            sequence.append(current.copy())
        curves.append(label_probability(net, np.stack(sequence), np.full(len(sequence), label), batch_size))
    return PixelFlipping(np.array(curves))


def relevance_mass_accuracy(maps, masks):
    """Positive relevance inside each mask over all positive relevance (Arras et al. 2022); 0 without any."""
    maps = finite(real_array(maps, "maps", host=True).astype(np.float64), "maps")
    masks = boolean_masks(masks)
    if maps.shape != masks.shape:
        raise ValueError(f"masks must have the shape of the maps {maps.shape}, got {masks.shape}")
    positive = np.maximum(maps, 0).reshape(len(maps), -1)
    total = positive.sum(axis=1)
    inside = (positive * masks.reshape(len(masks), -1)).sum(axis=1)
    return np.where(total > 0, inside / np.where(total > 0, total, 1.0), 0.0)


OUTPUTS = ("results.csv", "insertion_deletion.png", "morf.png")


def write_results(folder, rows, insdel=None, flipping=None):
    """``results.csv`` (one row per image) and the mean curves as PNG, in ``folder``, each written atomically."""
    from .plots import line_plot
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"cannot write results into {folder}: it is a file; expected a folder (or a name to create)")
    folder.mkdir(parents=True, exist_ok=True)
    table, insdel_plot, morf_plot = (folder / name for name in OUTPUTS)
    with atomic_path(table) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    if insdel is not None:
        line_plot(insdel_plot,
                  [("insertion", insdel.fraction, insdel.insertion.mean(axis=0)),
                   ("deletion", insdel.fraction, insdel.deletion.mean(axis=0))],
                  title="Insertion and Deletion (mean over images)", xlabel="share of pixels",
                  ylabel="probability of the label")
    if flipping is not None:
        k = np.arange(flipping.curves.shape[1])
        line_plot(morf_plot, [("f(x_0) - f(x_k)", k, (flipping.curves[:, :1] - flipping.curves).mean(axis=0))],
                  title="MoRF pixel flipping (mean over images)", xlabel="regions perturbed k",
                  ylabel="drop of the label's probability")


def evaluate(net, images, labels=None, composite="epsilon_gamma_box", masks=None, step=None, quantize=None,
             patch=9, steps=100, batch_size=16, output=None, progress=True, names=None, **explain_params):
    """Explain every image (its predicted class) and measure the explanations.

    Parameters
    ----------
    net : Network
    images : array (N, C, H, W) in [0, 1]
    labels : array (N,) or None
        Ground-truth classes, whose probability the metrics score (None: the predicted classes).
    composite, **explain_params
        As in :func:`lrpref.explain` (e.g. ``composite="otsuki2024", skip="latest"``).
    masks : array (N, H, W) of bool, or None
        Ground-truth regions for the relevance mass accuracy.
    step, quantize : Insertion/Deletion settings (:func:`insertion_deletion`).
    patch, steps : MoRF settings (:func:`pixel_flipping`).
    output : folder or None
        Where to write ``results.csv``, ``insertion_deletion.png`` and ``morf.png``.
    names : list of str or None
        How the table names the images (default: their index).

    Returns
    -------
    dict
        ``rows`` (per image), ``insertion_deletion``, ``pixel_flipping``, ``summary`` (means).
    """
    from .explain import explain

    images = check(images, masks=masks, labels=labels)
    batch_size = integer(batch_size, "batch_size", low=1)
    if names is not None and len(names) != len(images):
        raise ValueError(f"names must name every image: got {len(names)} names for {len(images)} images")
    spec = preprocessing_of(net)
    if labels is not None:   # before minutes of work: the labels must be classes of this network
        check_labels(labels, net.forward(spec.normalize(images[:1])).shape[1])
    maps, targets = [], []
    for start in tqdm(range(0, len(images), batch_size), disable=not progress, desc="explaining"):
        e = explain(net, spec.normalize(images[start:start + batch_size]), composite=composite, **explain_params)
        maps.append(relevance_maps(e.relevance))
        targets.append(e.target)
    maps, targets = np.concatenate(maps), np.concatenate(targets)
    labels = targets if labels is None else to_host(labels)
    insdel = insertion_deletion(net, images, maps, labels, step, quantize, batch_size, progress)
    flipping = pixel_flipping(net, images, maps, labels, patch, steps, batch_size=batch_size, progress=progress)
    mass = relevance_mass_accuracy(maps, masks) if masks is not None else None
    names = list(range(len(images))) if names is None else names
    rows = [{"image": names[i], "label": int(labels[i]), "target": int(targets[i]),
             "insertion_auc": insdel.insertion_auc[i], "deletion_auc": insdel.deletion_auc[i],
             "id_score": insdel.id_score[i], "aopc": flipping.aopc[i],
             **({} if mass is None else {"mass_accuracy": mass[i]})} for i in range(len(images))]
    summary = {key: float(np.mean([row[key] for row in rows])) for key in rows[0] if key not in ("image", "label", "target")}
    if output is not None:
        write_results(output, rows, insdel, flipping)
    return {"rows": rows, "insertion_deletion": insdel, "pixel_flipping": flipping, "summary": summary}
