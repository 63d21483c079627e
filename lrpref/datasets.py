"""Datasets read lazily, a chunk of images at a time, so that memory is bounded by the chunk size.

Every dataset gives images in [0, 1] space, shape (n, C, H, W), RGB order, float64, with their labels
(or ``None``), ground-truth masks (or ``None``) and names. Four layouts:

* **A folder of images** (PNG, JPEG), in sorted file-name order, read and resized as the network's
  preprocessing records (:mod:`lrpref.preprocessing`), with an optional CSV of ``file,label`` rows.
* **An .npz file** with ``x``: (N, C, H, W) floats in [0, 1], or uint8 pixels 0..255 of shape (N, C, H, W)
  or (N, H, W); optionally ``y`` (N,) labels, ``masks`` (N, H, W) and ``names`` (N,) strings. Rows are read
  from the file's members without loading them whole: in O(chunk) for ``np.savez``; ``np.savez_compressed``
  works too but decompresses each member from its start for every chunk.
* **An HDF5 file** (``.h5``, ``.hdf5``) with the same dataset names at its root: ``x``, optional ``y``,
  ``masks``, ``names``; h5py reads only the rows asked for.
* **The shipped digits**: the 2,000 held-out MNIST digits of ``weights/mnist_sample.npz`` (uint8 ``x``,
  ``y``), read as an .npz.
"""
import csv
import hashlib
import os
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from . import data
from .checks import integer
from .preprocessing import load_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
HDF5_SUFFIXES = (".h5", ".hdf5")


@dataclass
class Chunk:
    """Images ``start .. start + len(images) - 1`` of a dataset."""

    start: int
    images: np.ndarray
    labels: object
    masks: object
    names: list


class Dataset:
    """A sequence of images read in chunks. Subclasses give ``count``, ``_read``, ``_names`` and ``describe``."""

    def __init__(self, limit=None):
        self.limit = None if limit is None else integer(limit, "limit (the number of images)", low=1)

    def __len__(self):
        return self.count if self.limit is None else min(self.count, self.limit)

    def chunk(self, start, stop):
        """Images ``start`` to ``stop - 1`` (clipped to the dataset) as a :class:`Chunk`."""
        stop = min(stop, len(self))
        if not 0 <= start < stop:
            raise IndexError(f"chunk {start}..{stop - 1} is outside the dataset's {len(self)} images")
        return self._read(start, stop)

    def names(self, start, stop):
        """The names of images ``start .. stop - 1``, without reading the images."""
        return self._names(start, min(stop, len(self)))

    def chunks(self, size):
        """The ``(start, stop)`` bounds of consecutive chunks of ``size`` images."""
        size = integer(size, "the chunk size", low=1)
        return [(start, min(start + size, len(self))) for start in range(0, len(self), size)]


class ImageFolder(Dataset):
    """The images of a folder in sorted name order, with labels from a ``file,label`` CSV."""

    def __init__(self, folder, preprocessing, labels=None, limit=None):
        super().__init__(limit)
        self.folder, self.preprocessing = Path(folder), preprocessing
        self.files = sorted(p.name for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise ValueError(f"no PNG or JPEG images in {self.folder}")
        self.count = len(self.files)
        self.labels = None
        if labels is not None:
            table = read_labels(labels)
            missing = [name for name in self.files[:len(self)] if name not in table]
            if missing:
                raise ValueError(f"{labels} has no label for {missing[:3]}")
            self.labels = np.array([table[name] for name in self.files[:len(self)]])

    def _names(self, start, stop):
        return self.files[start:stop]

    def sources(self):
        """The files the images are read from."""
        return [self.folder / name for name in self.files[:len(self)]]

    def _read(self, start, stop):
        names = self.files[start:stop]
        images = np.concatenate([load_image(self.folder / name, self.preprocessing, unit=True) for name in names])
        return Chunk(start, images, None if self.labels is None else self.labels[start:stop], None, names)

    def describe(self):
        labels = None if self.labels is None else hashlib.sha256(self.labels.astype(np.int64).tobytes()).hexdigest()
        return {"kind": "folder", "path": str(self.folder.resolve()), "images": len(self), "labels_sha256": labels,
                "files": _fingerprint(self.sources())}


class ArrayFile(Dataset):
    """An .npz or HDF5 file with ``x`` and optionally ``y``, ``masks``, ``names`` (module docstring)."""

    def __init__(self, path, limit=None):
        super().__init__(limit)
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no dataset file {self.path}")
        self.kind = "hdf5" if self.path.suffix.lower() in HDF5_SUFFIXES else "npz"
        shapes = self._shapes()
        if "x" not in shapes:
            raise ValueError(f"{self.path} has no dataset 'x' (the images); it has {sorted(shapes)}")
        if len(shapes["x"]) < 2 or shapes["x"][0] == 0:
            raise ValueError(f"{self.path}: 'x' must hold at least one image (N, C, H, W) or (N, H, W), got shape "
                             f"{shapes['x']}")
        self.count = shapes["x"][0]
        for key, shape in shapes.items():
            if key in ("y", "masks", "names") and shape[0] != self.count:
                raise ValueError(f"{self.path}: '{key}' has {shape[0]} rows, 'x' has {self.count}")
        self.keys = set(shapes)

    def _shapes(self):
        try:
            return self._read_shapes()
        except (OSError, zipfile.BadZipFile, KeyError) as err:   # h5py's and zipfile's words for a damaged file
            kind = "HDF5" if self.kind == "hdf5" else ".npz (zip)"
            raise ValueError(f"{self.path} is not a readable {kind} file ({err})") from None

    def _read_shapes(self):
        if self.kind == "hdf5":
            with h5py.File(self.path, "r") as f:
                return {key: f[key].shape for key in f if isinstance(f[key], h5py.Dataset)}
        with zipfile.ZipFile(self.path) as z:
            return {Path(member).stem: _npy_header(z, member)[0] for member in z.namelist() if member.endswith(".npy")}

    def rows(self, key, start, stop):
        """Rows ``start .. stop - 1`` of one array, read without loading the rest."""
        if self.kind == "hdf5":
            with h5py.File(self.path, "r") as f:
                return f[key][start:stop]
        with zipfile.ZipFile(self.path) as z:
            shape, dtype, offset = _npy_header(z, f"{key}.npy")
            row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
            raw = _member_bytes(self.path, z, f"{key}.npy", offset + start * row_bytes, (stop - start) * row_bytes)
            return np.frombuffer(raw, dtype=dtype).reshape((-1,) + shape[1:])

    def _read(self, start, stop):
        x = self.rows("x", start, stop)
        images = x / 255.0 if x.dtype == np.uint8 else x.astype(np.float64)
        images = images[:, None] if images.ndim == 3 else images
        return Chunk(start, images, self.rows("y", start, stop) if "y" in self.keys else None,
                     self.rows("masks", start, stop) if "masks" in self.keys else None, self._names(start, stop))

    def _names(self, start, stop):
        if "names" in self.keys:
            return [v.decode() if isinstance(v, bytes) else str(v) for v in self.rows("names", start, stop)]
        return [f"{i:06d}" for i in range(start, stop)]

    def sources(self):
        """The files the images are read from."""
        return [self.path]

    def describe(self):
        return {"kind": self.kind, "path": str(self.path.resolve()), "images": len(self),
                "files": _fingerprint(self.sources())}


def _fingerprint(paths):
    """SHA-256 over every file's name, size and modification time: a file written again since (other images under
    the same name) gives another fingerprint, so that a run is not resumed over results of other images."""
    digest = hashlib.sha256()
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{Path(path).name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _member_bytes(path, z, member, skip, count):
    """``count`` bytes from ``skip`` on of a zip member: read straight from the file for a stored member;
    for a compressed one, decompressed from its start in 1 MiB pieces (zipfile's own seek would read up to
    16 MiB at once)."""
    info = z.getinfo(member)
    if info.compress_type == zipfile.ZIP_STORED:
        with open(path, "rb") as f:
            f.seek(info.header_offset + 26)
            name_length, extra_length = struct.unpack("<HH", f.read(4))   # the local header's own lengths
            f.seek(info.header_offset + 30 + name_length + extra_length + skip)
            return f.read(count)
    with z.open(info) as f:
        while skip:
            skip -= len(f.read(min(skip, 1 << 20)))
        return f.read(count)


def _npy_header(z, member):
    """Shape, dtype and data offset of a C-ordered ``.npy`` member of an open zip file."""
    with z.open(member) as f:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(f)
        if fortran or dtype.hasobject:
            raise ValueError(f"{member} must be a C-ordered array without Python objects to be read in chunks")
        return shape, dtype, f.tell()


def open_dataset(source=None, preprocessing="mnist", labels=None, limit=None):
    """A dataset from a folder, an .npz or HDF5 file, or (``source=None``) the shipped MNIST digits.

    Parameters
    ----------
    source : str, path or None
    preprocessing : str
        The network's preprocessing name (``net.meta["preprocessing"]``): how a folder's images are read.
    labels : str, path or None
        For a folder: a CSV of ``file,label`` rows.
    limit : int or None
        Use at most the first ``limit`` images.
    """
    if source is None:
        if labels is not None:
            raise ValueError("labels (a CSV) go with a folder of images; the shipped digits have their own")
        if preprocessing != "mnist":
            raise ValueError(f"this model takes {preprocessing} images: pass them with --images")
        return ArrayFile(data.WEIGHTS / "mnist_sample.npz", limit)
    path = Path(source)
    if path.is_dir():
        return ImageFolder(path, preprocessing, labels, limit)
    if labels is not None:
        raise ValueError(f"labels (a CSV) go with a folder of images; {path} is a file: put its labels in it as 'y'")
    if path.suffix.lower() in (".npz",) + HDF5_SUFFIXES:
        return ArrayFile(path, limit)
    raise ValueError(f"--images must be a folder of images, an .npz or an HDF5 file, got {path}")


def read_labels(path):
    """``{file name: label}`` from a UTF-8 CSV of rows ``name,label`` (a byte-order mark is skipped); a clear
    error for any other row, for a name given twice and for text that is not UTF-8."""
    table, lines = {}, {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            for number, row in enumerate(csv.reader(f), 1):
                if not row:
                    continue
                if len(row) != 2 or not row[1].strip().isdecimal():   # "²" is a digit, not a number
                    raise ValueError(f"{path}, line {number}: expected 'file name,label' with a class index >= 0, "
                                     f"got {','.join(row)!r}")
                if row[0] in table:
                    raise ValueError(f"{path}, line {number}: {row[0]!r} has a label already (line {lines[row[0]]})")
                table[row[0]], lines[row[0]] = int(row[1]), number
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text ({err}); save the CSV as UTF-8") from None
    return table
