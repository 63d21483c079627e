"""Checking values where they enter lrpref: one helper per kind of value, so that every entry point means the
same by "a number" or "a boolean" and says what it expected and what came.

- :func:`boolean`: ``True`` or ``False`` (NumPy booleans too); a string such as ``"False"`` is refused.
- :func:`number`: a real number (Python or NumPy scalar, not a bool), finite unless infinity is allowed.
- :func:`integer`: an integer (Python or NumPy, or a float holding an integer value such as ``2.0``).
- :func:`real_array`: an array of real numbers; complex, object and string arrays are refused.
- :func:`finite`: every entry of an array finite (no NaN, no Inf).
"""
import math
import numbers

import numpy as np

from .backend import array_module, to_host


def _kind(value):
    return f"{value!r} ({type(value).__name__})"


def boolean(value, what):
    """``value`` as a bool, if it is ``True``/``False`` or a NumPy boolean; else ``TypeError``."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{what} must be True or False, got {_kind(value)}")


def number(value, what, low=None, high=None, infinite=False):
    """``value`` as a float: a real Python or NumPy number, not a bool, NaN refused, infinity only with
    ``infinite=True``, and ``low <= value <= high`` where given. ``TypeError`` or ``ValueError`` otherwise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.integer, np.floating)):
        raise TypeError(f"{what} must be a real number, got {_kind(value)}")
    value = float(value)
    if math.isnan(value) or (math.isinf(value) and not infinite):
        raise ValueError(f"{what} must be a finite number, got {value}")
    if low is not None and value < low:
        raise ValueError(f"{what} must be a number >= {low:g}, got {value:g}")
    if high is not None and value > high:
        raise ValueError(f"{what} must be a number <= {high:g}, got {value:g}")
    return value


def integer(value, what, low=None):
    """``value`` as an int: a Python or NumPy integer, or a float with an integer value; ``>= low`` where given."""
    if isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_)):
        value = int(value)
    elif isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        value = int(value)
    else:
        raise TypeError(f"{what} must be an integer, got {_kind(value)}")
    if low is not None and value < low:
        raise ValueError(f"{what} must be an integer >= {low}, got {value}")
    return value


def real_array(value, what, host=False):
    """``value`` as an array of real numbers (bool, integer or float dtype), on its own array module (with
    ``host``: as a NumPy array).

    Lists are converted with NumPy; complex values are refused (lrpref does not drop an imaginary part
    silently), as are object, string and ragged arrays.
    """
    if host or not hasattr(value, "dtype") or not hasattr(value, "shape"):
        try:
            value = to_host(value)
        except (ValueError, TypeError) as err:
            raise TypeError(f"{what} must be an array of real numbers, got {type(value).__name__} ({err})") from None
    kind = value.dtype.kind
    if kind == "c":
        raise TypeError(f"{what} must be real numbers, got complex values (dtype {value.dtype}); "
                        "pass the real part or the magnitude explicitly")
    if kind not in "biuf":
        raise TypeError(f"{what} must be an array of real numbers, got dtype {value.dtype}")
    return value


def finite(array, what):
    """``array`` unchanged if every entry is finite; else ``ValueError`` naming the count and the first entry."""
    xp = array_module(array)
    bad = ~xp.isfinite(array)
    if bool(bad.any()):
        first = tuple(int(i) for i in np.argwhere(to_host(bad))[0])
        raise ValueError(f"{what} must be finite numbers, found {int(bad.sum())} NaN or Inf value(s), the first "
                         f"at index {first}")
    return array
