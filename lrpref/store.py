"""The resumable results store: one HDF5 file, one row per image, rewritten whole at each commit.

Schema (``results.h5``)::

    /                     attributes
        format            "lrpref-results"
        config            JSON object: everything the numbers depend on (model file and its SHA-256,
                          composite and parameters, dtype, backend, metric settings, chunk size, dataset
                          with a fingerprint of its files' names, sizes and modification times)
    /rows/<column>        one value per image, sorted by index: index (int64), name (str), label (int64),
                          target (int64, the explained class), then every metric (float64), and the curves
                          where asked, one row per image (2-D float64)
    /meta/<name>          arrays shared by all rows (e.g. insertion_fraction, the x axis of the curves)

A commit writes the whole file to a temporary file and moves it over the old one
(:func:`lrpref.files.atomic_path`), so the file on disk always holds whole chunks: a run killed at any
moment loses at most the chunks since its last commit, and a restart computes exactly those again.
"""
import json

import h5py
import numpy as np

from .files import atomic_path

FORMAT = "lrpref-results"


class ResultsStore:
    """The rows done so far, on disk at ``path`` and in memory.

    Parameters
    ----------
    path : path
        The HDF5 file; read when it exists.
    config : dict
        What the results depend on (JSON-serialisable). An existing file with another configuration is
        refused with a ``ValueError`` naming every difference.
    """

    def __init__(self, path, config):
        self.path, self.config = path, json.loads(json.dumps(config))
        self.columns, self.meta = {}, {}
        if path.is_dir():
            raise ValueError(f"{path} is a folder; expected the results file (or no file, to start afresh)")
        if path.exists():
            try:
                with h5py.File(path, "r") as f:
                    if f.attrs.get("format") != FORMAT:
                        raise ValueError("it is not an lrpref results file (attribute format='lrpref-results')")
                    found = json.loads(f.attrs["config"])
                    columns = {key: _read(f["rows"][key]) for key in f["rows"]}
                    meta = {key: f["meta"][key][()] for key in f["meta"]}
            except (OSError, KeyError, ValueError) as err:   # h5py's and json's words for a damaged file
                raise ValueError(f"{path} cannot be resumed from: {err}; move it away, or use another output "
                                 "folder, to start afresh") from None
            check_same(found, self.config, path)
            self.columns, self.meta = columns, meta

    def done(self):
        """The indices of the images already in the store."""
        return set(self.columns.get("index", np.empty(0, np.int64)).tolist())

    def __len__(self):
        return len(self.columns.get("index", ()))

    def add(self, columns, meta=None):
        """Add rows (a dict of equally long columns, with ``index``); :meth:`commit` writes them."""
        if not self.columns:
            self.columns = {key: np.asarray(value) for key, value in columns.items()}
        else:
            if set(columns) != set(self.columns):
                raise ValueError(f"rows with columns {sorted(columns)} do not match the store's {sorted(self.columns)}")
            self.columns = {key: np.concatenate([self.columns[key], np.asarray(columns[key])]) for key in self.columns}
        self.meta.update(meta or {})

    def commit(self):
        """Write every row, sorted by index, atomically."""
        order = np.argsort(self.columns["index"], kind="stable")
        self.columns = {key: value[order] for key, value in self.columns.items()}
        with atomic_path(self.path) as tmp:
            with h5py.File(tmp, "w") as f:
                f.attrs["format"] = FORMAT
                f.attrs["config"] = json.dumps(self.config, sort_keys=True)
                rows, meta = f.create_group("rows"), f.create_group("meta")
                for key, value in self.columns.items():
                    if value.dtype.kind == "U":
                        rows.create_dataset(key, data=value.astype(object), dtype=h5py.string_dtype())
                    else:
                        rows.create_dataset(key, data=value)
                for key, value in self.meta.items():
                    meta.create_dataset(key, data=value)


def _read(dataset):
    value = dataset[()]
    return value.astype(str) if dataset.dtype.kind == "O" else value


def check_same(found, wanted, path):
    """Raise a ``ValueError`` naming every setting in which two configurations differ."""
    keys = sorted(set(found) | set(wanted))
    differences = [f"{key}: {found.get(key)!r} there, {wanted.get(key)!r} now" for key in keys
                   if found.get(key) != wanted.get(key)]
    if differences:
        raise ValueError(f"{path} holds results of another configuration ({'; '.join(differences)}); "
                         "use another output folder, or delete it to start afresh")
