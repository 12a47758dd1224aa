"""Arguments from users, normalised: NumPy scalars and dtypes are accepted wherever
Python numbers and names are, and anything else is refused naming the argument."""

from __future__ import annotations

import math
import numbers
from typing import Any

DTYPES = ("float32", "float64")


def integer(name: str, v: Any, lo: int = 1) -> int:
    """``v`` as a Python int >= ``lo`` (``np.int64`` included; bools and floats refused)."""
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or int(v) < lo:
        kind = "a positive integer" if lo == 1 else f"an integer >= {lo}"
        raise ValueError(f"{name} must be {kind}; got {v!r}")
    return int(v)


def real(name: str, v: Any, lo: float, hi: float = math.inf, lo_open: bool = True) -> float:
    """``v`` as a finite Python float in the interval (``np.float32`` included)."""
    ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v))
    if ok:
        f = float(v)
        ok = (f > lo if lo_open else f >= lo) and f < hi
    if not ok:
        bound = f"{'>' if lo_open else '>='} {lo:g}" + (f" and < {hi:g}" if hi < math.inf else "")
        raise ValueError(f"{name} must be a finite number {bound}; got {v!r}")
    return float(v)


def dtype_name(v: Any) -> str:
    """``"float32"``/``"float64"`` from a name, a NumPy dtype or scalar type, or a torch
    dtype; anything else is refused."""
    if isinstance(v, str):
        name = v
    elif isinstance(getattr(v, "name", None), str):  # numpy.dtype("float64")
        name = v.name
    elif isinstance(getattr(v, "__name__", None), str):  # numpy.float64
        name = v.__name__
    else:  # torch.float64 and the like
        name = str(v).rsplit(".", 1)[-1]
    if name not in DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64'; got {v!r}")
    return name


def widths(v: Any) -> list[int]:
    """Layer widths ``[n_0, ..., n_L]`` from a list, tuple or 1-D array of integers."""
    if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__"):
        raise ValueError(
            f"sizes must be a sequence of layer widths [n_inputs, ..., n_outputs], e.g. "
            f"[64, 32, 10]; got {v!r}"
        )
    sizes = list(v)
    ok = len(sizes) >= 2 and all(
        isinstance(n, numbers.Integral) and not isinstance(n, bool) and int(n) > 0 for n in sizes
    )
    if not ok:
        raise ValueError(
            f"sizes must list at least 2 positive integers [n_inputs, ..., n_outputs]; "
            f"got {sizes!r}"
        )
    return [int(n) for n in sizes]
