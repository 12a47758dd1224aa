"""Fused CuPy kernels: the fast paths of the CuPy backend.

On a GPU a small network is bound by kernel launches, so each of these does in one
launch what the generic Array API code does in two to ten. They are compiled lazily
(on first use, per dtype), exist only for float32 and float64, and return None for any
case they do not cover, so the core falls back to its generic code. Each one is tested
against that generic code (``tests/test_fast_paths.py``, marked ``gpu``).

Fast path names and signatures (the core looks them up with ``backend.fast(name)``):

- ``bias_act(XW, b, act, a) -> (X, Y)``: ``X = XW + b``, ``Y = f(X)``, compiled from the
  activation's own C expression ``act.c_f`` (the activation table is the one source of
  every formula and constant)
- ``act_vjp(X, Y, G, act, a) -> D``: ``D = f'(X) * G``, from ``act.c_vjp``
- ``opt_update(name, p, g, state_slots, hyper) -> bool``: the optimizer update in place
- ``softmax_cce(X, T, scale, loss) -> (Y, E, D)``: softmax, the summed categorical
  cross-entropy (None unless ``loss``) and ``D = scale * (Y - T)``: one kernel with a
  block per row, plus one sum for ``E`` (the generic code takes eleven launches)
- ``sgd_gemm(D, Y, W) -> bool``: plain SGD's ``W -= D^T Y`` (``D`` already scaled by
  ``lr / B``) as one cuBLAS GEMM with ``beta = 1``: no gradient array, no update kernel
- ``sgd_bias(D, b) -> bool``: its ``b -= sum(D)`` as one cuBLAS GEMV with a kept vector
  of ones (a reduction and a subtraction in the generic code)
"""

from __future__ import annotations

import functools

_OPT = {
    "sgd": ("T g, T lr", "T p", "p -= lr * g"),
    "momentum": ("T g, T lr, T mu", "T p, T v", "v = mu * v + g; p -= lr * v"),
    "nesterov": ("T g, T lr, T mu", "T p, T v", "v = mu * v + g; p -= lr * (g + mu * v)"),
    "adam": (
        "T g, T b1, T b2, T step, T inv_sqrt_c2, T eps",
        "T p, T m, T v",
        "m = b1 * m + ((T)1 - b1) * g; v = b2 * v + ((T)1 - b2) * g * g;"
        " p -= step * m / (sqrt(v) * inv_sqrt_c2 + eps)",
    ),
}


# One block per row of X (B rows, n classes): the row's max, the sum of exp(x - max),
# then y, d = scale (y - t) and the row's loss sum_j t_j (ln s - z_j). blockDim is a
# power of two; the reductions go through shared memory. T is float or double.
_SOFTMAX_CCE = r"""
extern "C" __global__ void bpgpu_softmax_cce(
    const T* x, const T* t, T* y, T* d, T* row_loss, const int n, const T scale,
    const int want_loss)
{
    extern __shared__ double bpgpu_smem[];  /* double: aligned for either T */
    T* red = reinterpret_cast<T*>(bpgpu_smem);
    const int tid = threadIdx.x;
    const long long base = (long long)blockIdx.x * n;
    T m = x[base];  /* n >= 1; a NaN anywhere in the row still makes every output NaN */
    for (int j = tid; j < n; j += blockDim.x) m = fmax(m, x[base + j]);
    red[tid] = m;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (tid < s) red[tid] = fmax(red[tid], red[tid + s]);
        __syncthreads();
    }
    m = red[0];
    __syncthreads();
    T acc = 0;
    for (int j = tid; j < n; j += blockDim.x) acc += exp(x[base + j] - m);
    red[tid] = acc;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (tid < s) red[tid] += red[tid + s];
        __syncthreads();
    }
    const T sum = red[0];
    const T log_sum = log(sum);
    __syncthreads();
    T loss = 0;
    for (int j = tid; j < n; j += blockDim.x) {
        const T z = x[base + j] - m;
        const T yj = exp(z) / sum;
        y[base + j] = yj;
        d[base + j] = scale * (yj - t[base + j]);
        loss += t[base + j] * (log_sum - z);
    }
    if (!want_loss) return;
    red[tid] = loss;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (tid < s) red[tid] += red[tid + s];
        __syncthreads();
    }
    if (tid == 0) row_loss[blockIdx.x] = red[0];
}
"""


class CupyFastPaths:
    """Lazily compiled fused kernels for one CuPy backend."""

    def __init__(self, cupy):
        self.cupy = cupy
        self._ones_cache: dict = {}

    @functools.cache  # noqa: B019 - one instance per backend, kept for the process
    def _kernel(self, kind: str, name: str, expr: str = "", param: bool = False):
        """A compiled kernel; element-wise ones are keyed by their C expression, so a
        changed constant in the activation table compiles a new one."""
        ek = self.cupy.ElementwiseKernel
        a = ", T a" if param else ""
        if kind == "fwd":
            return ek(f"T xw, T b{a}", "T z, T y", f"z = xw + b; y = {expr}", f"bpgpu_fwd_{name}")
        if kind == "bwd":
            return ek(f"T x, T y, T g{a}", "T d", f"d = {expr}", f"bpgpu_bwd_{name}")
        if kind == "softmax_cce":  # name: the C type
            code = f"typedef {name} T;\n" + _SOFTMAX_CCE
            return self.cupy.RawKernel(code, "bpgpu_softmax_cce")
        ins, outs, body = _OPT[name]
        return ek(ins, outs, body, f"bpgpu_opt_{name}")

    def _ok(self, *arrays) -> bool:
        return all(a.dtype.kind == "f" and a.dtype.itemsize in (4, 8) for a in arrays)

    def bias_act(self, XW, b, act, a=None):
        expr = getattr(act, "c_f", None)
        if expr is None or not self._ok(XW, b):
            return None
        k = self._kernel("fwd", act.name, expr, a is not None)
        return k(XW, b) if a is None else k(XW, b, a)

    def act_vjp(self, X, Y, G, act, a=None):
        expr = getattr(act, "c_vjp", None)
        if expr is None or not self._ok(X, Y, G):
            return None
        k = self._kernel("bwd", act.name, expr, a is not None)
        return k(X, Y, G) if a is None else k(X, Y, G, a)

    def opt_update(self, name: str, p, g, slots: list, hyper: dict) -> bool:
        if name not in _OPT or not self._ok(p, g):
            return False
        k = self._kernel("opt", name)
        if name == "sgd":
            k(g, p.dtype.type(hyper["lr"]), p)
        elif name in ("momentum", "nesterov"):
            k(g, p.dtype.type(hyper["lr"]), p.dtype.type(hyper["momentum"]), p, slots[0])
        else:
            t = p.dtype.type
            k(
                g,
                t(hyper["beta1"]),
                t(hyper["beta2"]),
                t(hyper["step"]),
                t(hyper["inv_sqrt_c2"]),
                t(hyper["eps"]),
                p,
                slots[0],
                slots[1],
            )
        return True

    def softmax_cce(self, X, T, scale: float, loss: bool):
        if X.ndim != 2 or X.shape != T.shape or X.dtype != T.dtype or not self._ok(X):
            return None
        if not (X.flags.c_contiguous and T.flags.c_contiguous):
            return None
        cp, (B, n) = self.cupy, X.shape
        threads = 32
        while threads < n and threads < 256:
            threads *= 2
        Y, D = cp.empty_like(X), cp.empty_like(X)
        rows = cp.empty((B,), dtype=X.dtype)
        kernel = self._kernel("softmax_cce", "float" if X.dtype.itemsize == 4 else "double")
        t = X.dtype.type
        kernel(
            (B,),
            (threads,),
            (X, T, Y, D, rows, cp.int32(n), t(scale), cp.int32(bool(loss))),
            shared_mem=threads * X.dtype.itemsize,
        )
        return Y, (rows.sum() if loss else None), D

    def sgd_gemm(self, D, Y, W) -> bool:
        if W.ndim != 2 or not self._ok(D, Y, W) or not (D.dtype == Y.dtype == W.dtype):
            return False
        if not W.flags.c_contiguous:
            return False
        from cupy import cublas

        cublas.gemm("T", "N", D, Y, out=W, alpha=-1.0, beta=1.0)  # W <- W - D^T Y
        return True

    def sgd_bias(self, D, b) -> bool:
        if D.ndim != 2 or b.ndim != 1 or not self._ok(D, b) or D.dtype != b.dtype:
            return False
        if not (b.flags.c_contiguous and D.flags.c_contiguous):
            return False
        from cupy import cublas

        cublas.gemv("T", -1.0, D, self._ones(D.shape[0], D.dtype), 1.0, b)  # b -= D^T 1
        return True

    def _ones(self, n: int, dtype):
        """A ones vector of length ``n``, kept for the next step (on the current device)."""
        key = (n, dtype.str, self.cupy.cuda.Device().id)
        ones = self._ones_cache.get(key)
        if ones is None:
            ones = self._ones_cache[key] = self.cupy.ones(n, dtype=dtype)
        return ones

    def table(self) -> dict:
        return {
            "bias_act": self.bias_act,
            "act_vjp": self.act_vjp,
            "opt_update": self.opt_update,
            "softmax_cce": self.softmax_cce,
            "sgd_gemm": self.sgd_gemm,
            "sgd_bias": self.sgd_bias,
        }
