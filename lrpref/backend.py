"""The array module: NumPy on the CPU, CuPy on CUDA.

This is the only module of lrpref that knows about CuPy. Everything else is written against ``xp``, the
array module of its inputs, so that the same lines run on both.

The choice is always explicit: ``backend="cupy"`` where a function takes it, the environment variable
``LRPREF_BACKEND=cupy``, or ``net.to("cupy")``. Having CuPy installed never switches anything by itself.
"""
import functools
import os

import numpy as np

BACKENDS = ("numpy", "cupy")
ENV_VAR = "LRPREF_BACKEND"


def resolve(backend=None):
    """Return the array module for a backend name.

    Parameters
    ----------
    backend : {"numpy", "cupy"} or None
        ``None`` reads the environment variable ``LRPREF_BACKEND`` and falls back to ``"numpy"``.

    Returns
    -------
    module
        ``numpy`` or ``cupy``.

    Raises
    ------
    ValueError
        For an unknown name.
    RuntimeError
        If CuPy is asked for but is not installed or sees no CUDA device.
    """
    name = os.environ.get(ENV_VAR, "numpy") if backend is None else backend
    if name == "numpy":
        return np
    if name == "cupy":
        return _import_cupy()
    source = f"environment variable {ENV_VAR}" if backend is None else "backend"
    raise ValueError(f"unknown {source} {name!r}: expected one of {BACKENDS}")


def chosen(backend=None):
    """The backend name ``backend`` or, for ``None``, the environment's default (``LRPREF_BACKEND``, else
    ``"numpy"``), checked to be usable: a request for CuPy without it fails here, before any work."""
    name = os.environ.get(ENV_VAR, "numpy") if backend is None else backend
    resolve(name)
    return name


def _import_cupy():
    try:
        import cupy
    except ImportError as err:
        raise RuntimeError(
            "the 'cupy' backend was requested, but CuPy is not installed; "
            "install it with `pip install 'lrpref[gpu]'` on a machine with CUDA"
        ) from err
    try:
        devices = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CuPy raises its own CUDARuntimeError without a driver
        raise RuntimeError(f"the 'cupy' backend was requested, but CUDA is not usable: {err}") from err
    if devices == 0:
        raise RuntimeError("the 'cupy' backend was requested, but no CUDA device was found")
    return cupy


def _is_cupy(array):
    return type(array).__module__.split(".")[0] == "cupy"


def array_module(*arrays):
    """Return ``cupy`` if any of ``arrays`` is a CuPy array, else ``numpy`` (without importing CuPy)."""
    if any(_is_cupy(a) for a in arrays):
        import cupy
        return cupy
    return np


def name(xp):
    """The backend name of an array module: ``"numpy"`` or ``"cupy"``."""
    return xp.__name__


def to_host(array, dtype=None):
    """Return ``array`` as a NumPy array of ``dtype`` (``None``: its own), copying from the GPU when it lives
    there. This is where data leaves for h5py, Pillow and Python numbers."""
    return np.asarray(array.get() if _is_cupy(array) else array, dtype=dtype)


def constant(values, xp, dtype):
    """A read-only array of host ``values`` on ``xp``, uploaded once per content, array module and dtype.

    For constants the engine rebuilds on every call (pooling matrices, zB bounds): the same values give the
    same device array, so a repeated explanation uploads nothing. Callers must not write into it.
    """
    values = np.ascontiguousarray(values, dtype=dtype)
    return _constant(values.tobytes(), values.shape, values.dtype.str, xp.__name__)


@functools.lru_cache(maxsize=256)
def _constant(data, shape, dtype, module):
    host = np.frombuffer(data, dtype=dtype).reshape(shape)
    return host if module == "numpy" else resolve(module).asarray(host)


def asarray(array, xp, dtype=None):
    """Put ``array`` on the array module ``xp`` with ``dtype`` (``None`` keeps its own)."""
    if xp is np:
        return np.asarray(to_host(array), dtype=dtype)
    return xp.asarray(array, dtype=dtype)


def synchronize(xp):
    """Wait for queued GPU work (for timing); nothing to do on NumPy."""
    if xp.__name__ == "cupy":
        xp.cuda.Device().synchronize()


def device_name(xp):
    """The CUDA device's name for CuPy; for NumPy the CPU model (``/proc/cpuinfo``, else the platform)."""
    if xp.__name__ == "cupy":
        return xp.cuda.runtime.getDeviceProperties(xp.cuda.Device().id)["name"].decode()
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        import platform
        return platform.processor() or "unknown CPU"


def device_memory(xp, reset=False):
    """Bytes CuPy's memory pool holds (its high-water mark, as it keeps what it once allocated), after freeing
    its unused blocks first when ``reset``; ``None`` for NumPy."""
    if xp.__name__ != "cupy":
        return None
    pool = xp.get_default_memory_pool()
    if reset:
        pool.free_all_blocks()
    return pool.total_bytes()
