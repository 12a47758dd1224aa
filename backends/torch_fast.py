"""The torch backend's operations (CPU, CUDA, MPS): torch's own fused calls.

Each does in one or two library calls what the generic Array API code does in several,
which is fewer kernel launches on a GPU and fewer passes over memory on a CPU. Anything
they do not cover goes to the generic method (``super()``); ``tests/test_ops.py`` checks
each against it.

- ``bias_act`` (ReLU): ``XW += b`` then ReLU, both in place. ``X`` is not kept (``X`` and
  ``Y`` are one tensor): ReLU's backward reads only ``Y``. As on NumPy,
  ``detect_anomaly`` then sees ``X^l`` through ``Y^l`` (NaN caught, ``-inf`` not).
- ``act_vjp`` (ReLU): ``threshold_backward(G, Y, 0)``, the one kernel torch's own
  autograd uses for ReLU (``G`` where ``Y > 0``, else 0).
- ``softmax_cce``: ``log_softmax`` once, ``Y = exp`` of it, the summed cost
  ``-sum t log y`` and ``D = scale (Y - T)``: six kernels instead of eleven.
- ``sgd_weight``: ``W.addmm_(D^T, Y, alpha=-1)``, plain SGD's update as one GEMM with
  ``beta = 1`` (cuBLAS on CUDA, the CPU BLAS otherwise).
- ``sgd_bias``: ``b.addmv_(D^T, 1, alpha=-1)``, the bias update ``b -= sum(D)`` as one
  GEMV with a kept vector of ones (instead of a sum and a subtraction).
"""

from __future__ import annotations

from ._ops import MutableOps


class TorchOps(MutableOps):
    """The operations of one torch backend."""

    def __init__(self, xp, torch):
        super().__init__(xp)
        self.torch = torch
        self._floats = (torch.float32, torch.float64)
        aten = getattr(torch.ops, "aten", None)
        self._threshold_backward = getattr(aten, "threshold_backward", None)
        self._ones_cache: dict = {}

    def _ok(self, *tensors) -> bool:
        d = tensors[0].dtype
        return d in self._floats and all(t.dtype == d for t in tensors)

    def bias_act(self, XW, b, act, a=None):
        if act.builtin != "relu" or not self._ok(XW, b):
            return super().bias_act(XW, b, act, a)
        Y = XW.add_(b).relu_()
        return Y, Y

    def act_vjp(self, X, Y, G, act, a=None):
        if act.builtin != "relu" or self._threshold_backward is None or not self._ok(Y, G):
            return super().act_vjp(X, Y, G, act, a)
        return self._threshold_backward(G, Y, 0)

    def softmax_cce(self, X, T, scale, loss):
        if X.ndim != 2 or X.shape != T.shape or not self._ok(X, T):
            return super().softmax_cce(X, T, scale, loss)
        logY = self.torch.log_softmax(X, dim=1)
        Y = logY.exp()
        E = -(T * logY).sum() if loss else None
        D = (Y - T).mul_(scale)
        return Y, E, D

    def sgd_weight(self, D, Y, W):
        if W.ndim != 2 or not self._ok(D, Y, W):
            return super().sgd_weight(D, Y, W)
        return W.addmm_(D.T, Y, alpha=-1)  # W <- W - D^T Y

    def sgd_bias(self, D, b):
        if D.ndim != 2 or b.ndim != 1 or not self._ok(D, b):
            return super().sgd_bias(D, b)
        return b.addmv_(D.T, self._ones(D.shape[0], D), alpha=-1)  # b - D^T 1 = b - sum(D)

    def _ones(self, n: int, like):
        """A ones vector of length ``n`` like ``like``, kept for the next step."""
        key = (n, like.dtype, like.device)
        ones = self._ones_cache.get(key)
        if ones is None:
            ones = self._ones_cache[key] = self.torch.ones(n, dtype=like.dtype, device=like.device)
        return ones
