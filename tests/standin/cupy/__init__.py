"""A strict CPU stand-in for CuPy, for the tests only.

It lets the CuPy half of lrpref run where no GPU is: its arrays hold NumPy arrays but refuse, as CuPy's do,
everything that would silently move data between host and device:

- ``numpy.asarray(a)`` and every other implicit conversion (``__array__``): TypeError, with CuPy's message;
- mixing with NumPy arrays in operators, ufuncs, indexing and assignment: TypeError (``Unsupported type``);
- NumPy functions called on them (``numpy.sum(a)``): TypeError, stricter than CuPy, which dispatches some
  through ``__array_function__``; lrpref calls the array module (``xp.sum``), and this enforces it;
- names CuPy does not have: AttributeError (the module offers an explicit list).

What it offers besides: ``.get()``, ``cupy.asnumpy``, ``cuda.runtime.getDeviceCount()``,
``cuda.runtime.getDeviceProperties``, ``cuda.Device().synchronize()``, ``get_default_memory_pool()``.
It counts transfers in :data:`counters`: ``"to_host"`` for every device-to-host copy or synchronising read
(``.get()``, ``asnumpy``, ``.item()``, ``.tolist()``, ``bool()``, ``float()``, ``int()``) and ``"to_device"``
for every upload of host data (``asarray``/``array`` of a NumPy array or a list).

What it does not model: asynchrony and streams (every operation completes at once), kernels and their
launch cost, device memory limits, and CuPy's differences in numerics (it computes with NumPy, so results
equal NumPy's bit for bit). Returned reductions are 0-d arrays, as CuPy's.
"""
import numpy as _np
from numpy.lib.mixins import NDArrayOperatorsMixin as _Operators

__version__ = "0.0-standin"
STANDIN = True
counters = {"to_host": 0, "to_device": 0}


def reset_counters():
    counters.update(to_host=0, to_device=0)


def _refuse_host_array(value):
    raise TypeError(f"Unsupported type {type(value)}: the stand-in CuPy refuses NumPy arrays "
                    "(move them with cupy.asarray first)")


def _unwrap(value):
    """Arguments for NumPy: stand-in arrays unwrapped, NumPy arrays refused, containers recursed."""
    if isinstance(value, ndarray):
        return value._a
    if isinstance(value, _np.ndarray):
        _refuse_host_array(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v) for v in value)
    return value


def _wrap(value):
    """Results from NumPy: arrays and NumPy scalars become stand-in arrays (0-d for scalars, as CuPy)."""
    if isinstance(value, _np.ndarray):
        return ndarray(value)
    if isinstance(value, _np.generic):
        return ndarray(_np.asarray(value))
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def _to_host(a):
    counters["to_host"] += 1
    return a


class _Pointer:
    def __init__(self, ptr):
        self.ptr = ptr


class ndarray(_Operators):
    """A device array of the stand-in: a NumPy array behind CuPy's refusals."""

    __slots__ = ("_a",)
    __hash__ = None

    def __init__(self, array):
        self._a = array

    # -- refusals --------------------------------------------------------------------------------------------
    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def __array_function__(self, func, types, args, kwargs):
        raise TypeError(f"numpy.{func.__name__} was called on a stand-in CuPy array: "
                        f"use the array module (xp.{func.__name__})")

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        args = [_unwrap(x) for x in inputs]
        if out is not None:
            kwargs["out"] = tuple(_unwrap(o) for o in out)
        result = getattr(ufunc, method)(*args, **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    # -- explicit and synchronising reads ---------------------------------------------------------------------
    def get(self):
        return _to_host(self._a).copy()

    def item(self):
        return _to_host(self._a).item()

    def tolist(self):
        return _to_host(self._a).tolist()

    def __bool__(self):
        return bool(_to_host(self._a))

    def __float__(self):
        return float(_to_host(self._a))

    def __int__(self):
        return int(_to_host(self._a))

    def __index__(self):
        if self._a.ndim or self._a.dtype.kind not in "iu":
            raise TypeError("only integer scalar arrays can be converted to a scalar index")
        return int(_to_host(self._a))

    def __repr__(self):
        return "array(" + repr(_to_host(self._a))[6:]

    __str__ = __repr__

    # -- shape and data ---------------------------------------------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    T = property(lambda self: ndarray(self._a.T))
    real = property(lambda self: ndarray(self._a.real))
    flags = property(lambda self: self._a.flags)
    data = property(lambda self: _Pointer(self._a.__array_interface__["data"][0]))   # .data.ptr, as CuPy

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(v) for v in self._a)

    def __getitem__(self, key):
        return _wrap(self._a[_unwrap(key)])

    def __setitem__(self, key, value):
        self._a[_unwrap(key)] = _unwrap(value)

    def __getattr__(self, name):
        if name not in _METHODS:
            raise AttributeError(f"the stand-in CuPy array has no attribute {name!r}")
        method = getattr(self._a, name)

        def call(*args, **kwargs):
            return _wrap(method(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()}))
        return call


_METHODS = {
    "all", "any", "argmax", "argmin", "argsort", "astype", "clip", "copy", "cumsum", "dot", "fill", "flatten",
    "max", "mean", "min", "nonzero", "prod", "ravel", "repeat", "reshape", "round", "sort", "squeeze", "std",
    "sum", "swapaxes", "take", "transpose", "var", "view",
}

# -- the module's functions: only names CuPy has ---------------------------------------------------------------
_FUNCTIONS = (
    "abs absolute add all allclose any arange argmax argmin argsort argwhere around array_equal atleast_1d "
    "atleast_2d broadcast_arrays broadcast_to ceil clip concatenate copysign count_nonzero cumprod cumsum diff "
    "divide dot einsum empty empty_like equal exp expand_dims eye flip floor full full_like greater "
    "greater_equal hstack isclose isfinite isinf isnan less less_equal linspace log log1p logical_and "
    "logical_not logical_or matmul max maximum mean median min minimum moveaxis multiply negative nonzero ones "
    "ones_like outer pad power prod ravel repeat reshape round searchsorted sign sort split sqrt square squeeze "
    "stack std subtract sum swapaxes take tensordot tile transpose tril triu unique var vstack where zeros "
    "zeros_like"
).split()
_NAMES = ("bool_ float16 float32 float64 int8 int16 int32 int64 uint8 uint16 uint32 uint64 "
          "inf nan pi newaxis dtype finfo iinfo result_type can_cast").split()


def _function(name):
    numpy_function = getattr(_np, name)

    def function(*args, **kwargs):
        return _wrap(numpy_function(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()}))
    function.__name__ = name
    return function


globals().update({name: _function(name) for name in _FUNCTIONS})
globals().update({name: getattr(_np, name) for name in _NAMES})


def asarray(a, dtype=None, order=None):
    """Upload host data (counted) or return a stand-in array, cast to ``dtype``."""
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == dtype else a.astype(dtype)
    counters["to_device"] += 1
    return ndarray(_np.array(a, dtype=dtype, order=order or "K"))


def array(a, dtype=None, copy=True):
    if isinstance(a, ndarray):
        return ndarray(_np.array(a._a, dtype=dtype, copy=copy))
    return asarray(a, dtype)


def asnumpy(a):
    return a.get() if isinstance(a, ndarray) else _np.asarray(a)


class _MemoryPool:
    def used_bytes(self):
        return 0

    def total_bytes(self):
        return 0

    def free_all_blocks(self):
        pass


_POOL = _MemoryPool()


def get_default_memory_pool():
    return _POOL


class cuda:
    """``cupy.cuda``: one device, always idle (nothing here is asynchronous)."""

    class runtime:
        @staticmethod
        def getDeviceCount():
            return 1

        @staticmethod
        def getDeviceProperties(device):
            return {"name": b"stand-in CuPy device (NumPy on the CPU)"}

    class Device:
        def __init__(self, device=0):
            self.id = device

        def synchronize(self):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False
