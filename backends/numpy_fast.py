"""The NumPy backend's operations: the generic math, in place where NumPy allows it.

Besides :class:`MutableOps`' in-place bias and parameter updates, NumPy can write a
result into an existing array (``out=``) and multiply by a boolean mask, which the
standard cannot express. ReLU is where that saves work and memory:

- ``bias_act``: ``X = XW + b`` and ``Y = max(X, 0)`` both written into ``XW``, which the
  core passes fresh from the matrix product. ``X`` is not kept (``X`` and ``Y`` are the
  same array): ReLU's backward reads only ``Y``, and a hidden layer then holds one
  activation array instead of two.
- ``act_vjp``: ReLU's ``f'(X) * G`` as ``G * (Y > 0)``, written into ``G`` (the core
  passes a fresh ``G`` it does not read again for activations without a parameter)
  instead of a float copy of the mask and a new array.

Anything else (other activations, other dtypes) goes to the generic method; both are
tested against it (``tests/test_ops.py``). With ``detect_anomaly=True`` a ReLU layer's
``X^l`` is therefore checked through ``Y^l``: NaN is still caught there, a ``-inf`` in
``X^l`` (which ReLU maps to 0) is not.

Softmax with cross-entropy stays generic: on arrays this small, ``out=`` buffers save
no more than the keyword ufunc calls cost.
"""

from __future__ import annotations

import numpy as np

from ._ops import MutableOps

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


class NumpyOps(MutableOps):
    """ReLU forward and backward in place; the rest from :class:`MutableOps`."""

    def bias_act(self, XW, b, act, a=None):
        # plain checks: on a small network this runs as often as the product itself
        if act.builtin != "relu" or XW.dtype not in _FLOATS or b.dtype != XW.dtype:
            return super().bias_act(XW, b, act, a)
        XW += b
        Y = np.maximum(XW, 0, out=XW)  # X is not kept: ReLU's backward reads only Y
        return Y, Y

    def act_vjp(self, X, Y, G, act, a=None):
        if act.builtin != "relu" or G.dtype not in _FLOATS or Y.dtype != G.dtype:
            return super().act_vjp(X, Y, G, act, a)
        return np.multiply(G, Y > 0, out=G)  # Y > 0 exactly where X > 0
