"""Fast paths of the torch backend (CPU, CUDA, MPS): torch's own fused operations.

Each does in one or two library calls what the generic Array API code does in several,
which is fewer kernel launches on a GPU and fewer passes over memory on a CPU. They
return None (or False) for anything they do not cover, and the core then runs its
generic code; ``tests/test_fast_paths.py`` checks each against that code.

- ``bias_act(XW, b, "relu")``: ``XW += b`` then ReLU, both in place. ``X`` is not kept
  (``X`` and ``Y`` are one tensor): ReLU's backward reads only ``Y``. As on NumPy,
  ``detect_anomaly`` then sees ``X^l`` through ``Y^l`` (NaN caught, ``-inf`` not).
- ``act_vjp(X, Y, G, "relu")``: ``threshold_backward(G, Y, 0)``, the one kernel torch's
  own autograd uses for ReLU (``G`` where ``Y > 0``, else 0).
- ``softmax_cce(X, T, scale, loss)``: ``log_softmax`` once, ``Y = exp`` of it, the
  summed cost ``-sum t log y`` and ``D = scale (Y - T)``: six kernels instead of eleven.
- ``sgd_gemm(D, Y, W)``: ``W.addmm_(D^T, Y, alpha=-1)``, plain SGD's update as one GEMM
  with ``beta = 1`` (cuBLAS on CUDA, the CPU BLAS otherwise).
- ``sgd_bias(D, b)``: ``b.addmv_(D^T, 1, alpha=-1)``, the bias update ``b -= sum(D)`` as
  one GEMV with a kept vector of ones (instead of a sum and a subtraction).
"""

from __future__ import annotations


class TorchFastPaths:
    """The fast paths for one torch backend."""

    def __init__(self, torch):
        self.torch = torch
        self._floats = (torch.float32, torch.float64)
        aten = getattr(torch.ops, "aten", None)
        self._threshold_backward = getattr(aten, "threshold_backward", None)
        self._ones_cache: dict = {}

    def _ok(self, *tensors) -> bool:
        d = tensors[0].dtype
        return d in self._floats and all(t.dtype == d for t in tensors)

    def bias_act(self, XW, b, act, a=None):
        if act.name != "relu" or not self._ok(XW, b):
            return None
        Y = XW.add_(b).relu_()
        return Y, Y

    def act_vjp(self, X, Y, G, act, a=None):
        if act.name != "relu" or self._threshold_backward is None or not self._ok(Y, G):
            return None
        return self._threshold_backward(G, Y, 0)

    def softmax_cce(self, X, T, scale: float, loss: bool):
        if X.ndim != 2 or X.shape != T.shape or not self._ok(X, T):
            return None
        logY = self.torch.log_softmax(X, dim=1)
        Y = logY.exp()
        E = -(T * logY).sum() if loss else None
        D = (Y - T).mul_(scale)
        return Y, E, D

    def sgd_gemm(self, D, Y, W) -> bool:
        if W.ndim != 2 or not self._ok(D, Y, W):
            return False
        W.addmm_(D.T, Y, alpha=-1)  # W <- W - D^T Y
        return True

    def sgd_bias(self, D, b) -> bool:
        if D.ndim != 2 or b.ndim != 1 or not self._ok(D, b):
            return False
        b.addmv_(D.T, self._ones(D.shape[0], D), alpha=-1)  # b <- b - D^T 1 = b - sum(D)
        return True

    def _ones(self, n: int, like):
        """A ones vector of length ``n`` like ``like``, kept for the next step."""
        key = (n, like.dtype, like.device)
        ones = self._ones_cache.get(key)
        if ones is None:
            ones = self._ones_cache[key] = self.torch.ones(n, dtype=like.dtype, device=like.device)
        return ones

    def table(self) -> dict:
        return {
            "bias_act": self.bias_act,
            "act_vjp": self.act_vjp,
            "softmax_cce": self.softmax_cce,
            "sgd_gemm": self.sgd_gemm,
            "sgd_bias": self.sgd_bias,
        }
