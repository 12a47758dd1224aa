"""array-api-compat's NumPy namespace, with the reductions of the training step made cheap.

``numpy.sum``, ``max``, ``argmax`` and ``take`` are Python wrappers that inspect their
arguments before they reach the ufunc or the array method that does the work: about
1-1.5 us a call, as much as the work itself on a 32x10 array. A small network's step
calls them about ten times. Here they call that ufunc or method directly when the
argument is a plain ``ndarray`` (what the NumPy backend holds), which is what the
wrappers themselves end up calling, so the results are the same values, dtypes and
types; anything else goes to array-api-compat's function. ``tests/test_numpy_xp.py``
compares both on every dtype, axis and ``keepdims``.
"""

from __future__ import annotations

import types

import array_api_compat.numpy as _compat
import numpy as np

_ndarray = np.ndarray
_add, _maximum = np.add.reduce, np.maximum.reduce


def sum(x, /, *, axis=None, dtype=None, keepdims=False):  # noqa: A001 - the standard's name
    # floats only: the standard sums integers in the default integer dtype, which
    # NumPy's wrapper and array-api-compat take care of
    if dtype is None and type(x) is _ndarray and x.dtype.kind == "f":
        return _add(x, axis=axis, keepdims=keepdims)
    return _compat.sum(x, axis=axis, dtype=dtype, keepdims=keepdims)


def max(x, /, *, axis=None, keepdims=False):  # noqa: A001
    if type(x) is _ndarray and x.dtype.kind == "f":
        return _maximum(x, axis=axis, keepdims=keepdims)
    return _compat.max(x, axis=axis, keepdims=keepdims)


def argmax(x, /, *, axis=None, keepdims=False):
    if type(x) is _ndarray:
        return x.argmax(axis=axis, keepdims=keepdims)
    return _compat.argmax(x, axis=axis, keepdims=keepdims)


def take(x, indices, /, *, axis=None):
    if type(x) is _ndarray and axis is not None:
        return x.take(indices, axis=axis)
    return _compat.take(x, indices, axis=axis)


def namespace() -> types.ModuleType:
    """array-api-compat's NumPy namespace with the four functions above in place."""
    ns = types.ModuleType("bpgpu.backends.numpy_xp.namespace", _compat.__doc__)
    ns.__dict__.update({k: v for k, v in vars(_compat).items() if not k.startswith("__")})
    ns.__array_api_version__ = _compat.__array_api_version__
    ns.__array_namespace_info__ = _compat.__array_namespace_info__
    ns.sum, ns.max, ns.argmax, ns.take = sum, max, argmax, take
    return ns


OVERRIDDEN = ("sum", "max", "argmax", "take")
