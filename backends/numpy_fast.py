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

- ``softmax_cce``: the normalisation and the scaling of ``D`` written into the arrays
  they come from, and the summed cost as one dot product, ``-T . (Z - ln s)``, instead
  of a product array and its sum (the generic's ``sum(T * (ln s - Z))``, summed in
  another order).
- ``sgd_bias``: the rows of ``D`` summed by the ufunc itself (the namespace's ``sum``
  is one Python call more, as long as the sum of a small batch).
- ``sum_scalars``: an epoch's per-batch costs (NumPy scalars) summed from one array
  made of them at once, not stacked one 0-d array at a time.
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

    def softmax_cce(self, X, T, scale, loss):
        if X.dtype not in _FLOATS or T.dtype != X.dtype or X.ndim != 2 or T.shape != X.shape:
            return super().softmax_cce(X, T, scale, loss)
        Z = X - np.maximum.reduce(X, axis=1, keepdims=True)
        e = np.exp(Z) if loss else np.exp(Z, out=Z)  # Z is needed again for the loss only
        s = np.add.reduce(e, axis=1, keepdims=True)
        E = None
        if loss:
            Z -= np.log(s)  # ln y; Z is this method's own
            E = -np.vdot(T, Z)
        Y = np.divide(e, s, out=e)
        D = np.subtract(Y, T)
        if not (isinstance(scale, (int, float)) and scale == 1):
            D *= scale
        return Y, E, D

    def sum_scalars(self, values):
        first = values[0] if values else None
        if not all(type(v) is type(first) for v in values) or first.dtype not in _FLOATS:
            return super().sum_scalars(values)
        return np.add.reduce(np.asarray(values, dtype=first.dtype), axis=None)

    def sgd_bias(self, D, b):
        if D.dtype is not b.dtype or b.ndim != 1 or type(D) is not np.ndarray:
            return super().sgd_bias(D, b)
        b -= np.add.reduce(D, axis=0)
        return b
