"""The CuPy backend's operations: fused kernels, compiled lazily.

On a GPU a small network is bound by kernel launches, so each override does in one
launch what the generic Array API code does in two to ten. Kernels compile on first
use (per dtype), exist for float32 and float64 only, and anything they do not cover
goes to the generic method (``super()``). Each one is tested against that method
(``tests/test_ops.py``, marked ``gpu``; without a GPU, ``tests/test_cuda_sources.py``
compiles the C and runs the element-wise expressions and the softmax kernel on the host).

- ``bias_act``: ``X = XW + b``, ``Y = f(X)`` in one element-wise kernel, compiled from the
  activation's own C expression ``act.c_f`` (the activation table is the one source of
  every formula and constant)
- ``act_vjp``: ``D = f'(X) * G``, from ``act.c_vjp``
- ``softmax_cce``: softmax, the summed categorical cross-entropy and ``D = scale (Y - T)``:
  one kernel with a block per row, plus one sum for ``E`` (the generic code takes eleven
  launches)
- ``sgd_weight``: plain SGD's ``W -= D^T Y`` (``D`` already scaled by ``lr / B``) as one
  cuBLAS GEMM with ``beta = 1``: no gradient array, no update kernel
- ``sgd_bias``: its ``b -= sum(D)`` as one cuBLAS GEMV with a kept vector of ones
- ``optimizer_step``: the four built-in rules, one kernel per parameter, in place; taken
  only when the core names the rule, which it does only for the exact built-in
  optimizer classes (a user's subclass runs its own ``update``)
"""

from __future__ import annotations

import functools
import re

from ._ops import MutableOps

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


def _kernel_name(kind: str, act) -> str:
    """A C identifier for an activation's kernel: an activation of the user's own may be
    called anything ("swish-1"), a kernel's name may not."""
    return f"bpgpu_{kind}_" + re.sub(r"\W", "_", act.name)


class CupyOps(MutableOps):
    """The fused kernels of one CuPy backend."""

    def __init__(self, xp, cupy):
        super().__init__(xp)
        self.cupy = cupy
        self._ones_cache: dict = {}

    @functools.cache  # noqa: B019 - one instance per backend, kept for the process
    def _elementwise(self, ins: str, outs: str, body: str, name: str):
        """An element-wise kernel, compiled at its first launch; keyed by its C text, so
        a changed constant in the activation or optimizer table makes a new one."""
        return self.cupy.ElementwiseKernel(ins, outs, body, name)

    @functools.cache  # noqa: B019
    def _softmax_kernel(self, ctype: str):
        return self.cupy.RawKernel(f"typedef {ctype} T;\n" + _SOFTMAX_CCE, "bpgpu_softmax_cce")

    def _ok(self, *arrays) -> bool:
        d = arrays[0].dtype
        return d.kind == "f" and d.itemsize in (4, 8) and all(x.dtype == d for x in arrays)

    def bias_act(self, XW, b, act, a=None):
        expr = getattr(act, "c_f", None)
        if expr is None or not self._ok(XW, b, *([] if a is None else [a])):
            return super().bias_act(XW, b, act, a)
        ins = "T xw, T b" + ("" if a is None else ", T a")
        k = self._elementwise(ins, "T z, T y", f"z = xw + b; y = {expr}", _kernel_name("fwd", act))
        return k(XW, b) if a is None else k(XW, b, a)

    def act_vjp(self, X, Y, G, act, a=None):
        expr = getattr(act, "c_vjp", None)
        if expr is None or not self._ok(X, Y, G, *([] if a is None else [a])):
            return super().act_vjp(X, Y, G, act, a)
        ins = "T x, T y, T g" + ("" if a is None else ", T a")
        k = self._elementwise(ins, "T d", f"d = {expr}", _kernel_name("bwd", act))
        return k(X, Y, G) if a is None else k(X, Y, G, a)

    def optimizer_step(self, opt, rule, params, grads, state):
        spec = getattr(opt, "c_update", None) if rule is not None else None
        if spec is None or not all(self._ok(p, g) for p, g in zip(params, grads)):
            return super().optimizer_step(opt, rule, params, grads, state)
        hyper, body = spec  # the rule's C text lives beside its Python, in the optimizer
        ins = "T g" + "".join(f", T {h}" for h in hyper)
        outs = "T p" + "".join(f", T {s}" for s in opt.slots)
        k = self._elementwise(ins, outs, body, f"bpgpu_opt_{rule}")
        t = state["t"] + 1
        h = opt.hyper(t)
        grads = opt.add_weight_decay(grads, params)  # the optimizer's own step, not a copy
        if isinstance(t, int):
            c = params[0].dtype.type
            values = [c(h[n]) for n in hyper]
        else:  # a device step count (a captured step): the factors stay on the device
            values = [self.cupy.asarray(h[n], dtype=params[0].dtype) for n in hyper]
        for i, (p, g) in enumerate(zip(params, grads)):
            k(g, *values, p, *(state[s][i] for s in opt.slots))
        return params, {**state, "t": t}

    def softmax_cce(self, X, T, scale, loss):
        if X.ndim != 2 or X.shape != T.shape or not self._ok(X, T):
            return super().softmax_cce(X, T, scale, loss)
        if not (X.flags.c_contiguous and T.flags.c_contiguous):
            return super().softmax_cce(X, T, scale, loss)
        cp, (B, n) = self.cupy, X.shape
        threads = 32
        while threads < n and threads < 256:
            threads *= 2
        Y, D = cp.empty_like(X), cp.empty_like(X)
        rows = cp.empty((B,), dtype=X.dtype)
        kernel = self._softmax_kernel("float" if X.dtype.itemsize == 4 else "double")
        t = X.dtype.type
        kernel(
            (B,),
            (threads,),
            (X, T, Y, D, rows, cp.int32(n), t(scale), cp.int32(bool(loss))),
            shared_mem=threads * X.dtype.itemsize,
        )
        return Y, (rows.sum() if loss else None), D

    def sgd_weight(self, D, Y, W):
        if W.ndim != 2 or not self._ok(D, Y, W) or not W.flags.c_contiguous:
            return super().sgd_weight(D, Y, W)
        from cupy import cublas

        cublas.gemm("T", "N", D, Y, out=W, alpha=-1.0, beta=1.0)  # W <- W - D^T Y
        return W

    def sgd_bias(self, D, b):
        if D.ndim != 2 or b.ndim != 1 or not self._ok(D, b):
            return super().sgd_bias(D, b)
        if not (b.flags.c_contiguous and D.flags.c_contiguous):
            return super().sgd_bias(D, b)
        from cupy import cublas

        cublas.gemv("T", -1.0, D, self._ones(D.shape[0], D.dtype), 1.0, b)  # b -= D^T 1
        return b

    def _ones(self, n: int, dtype):
        """A ones vector of length ``n``, kept for the next step (on the current device)."""
        key = (n, dtype.str, self.cupy.cuda.Device().id)
        ones = self._ones_cache.get(key)
        if ones is None:
            ones = self._ones_cache[key] = self.cupy.ones(n, dtype=dtype)
        return ones
