"""Fast paths: looked up by name, used when present, checked against the generic code,
and switchable off. The CuPy kernels themselves need a GPU (marked ``gpu``)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TOL, load_backend, rel_norm

import bpgpu
from bpgpu.activations import ACTIVATIONS
from bpgpu.backends.numpy_backend import NumpyBackend


class Spy(NumpyBackend):
    """NumPy with fast paths that count their calls and do the generic math."""

    def __init__(self):
        super().__init__()
        self.name = "spy"
        self.calls = dict.fromkeys(
            ("bias_act", "act_vjp", "opt_update", "softmax_cce", "sgd_gemm", "sgd_bias"), 0
        )

        def bias_act(XW, b, act, a=None):
            self.calls["bias_act"] += 1
            if act.name == "softmax":
                return None  # declining falls back to the generic code
            X = XW + b
            return X, act.f(self.xp, X, a)

        def act_vjp(X, Y, G, act, a=None):
            self.calls["act_vjp"] += 1
            return act.vjp(self.xp, X, Y, G, a)

        def opt_update(name, p, g, slots, hyper):
            self.calls["opt_update"] += 1
            if name != "sgd":
                return False
            p -= hyper["lr"] * g
            return True

        def softmax_cce(X, T, scale, loss):
            self.calls["softmax_cce"] += 1
            e = np.exp(X - X.max(axis=1, keepdims=True))
            Y = e / e.sum(axis=1, keepdims=True)
            E = -(T * np.log(Y)).sum() if loss else None
            return Y, E, scale * (Y - T)

        def sgd_gemm(D, Y, W):
            self.calls["sgd_gemm"] += 1
            W -= D.T @ Y
            return True

        def sgd_bias(D, b):
            self.calls["sgd_bias"] += 1
            b -= D.sum(axis=0)
            return True

        self._fast = {
            "bias_act": bias_act,
            "act_vjp": act_vjp,
            "opt_update": opt_update,
            "softmax_cce": softmax_cce,
            "sgd_gemm": sgd_gemm,
            "sgd_bias": sgd_bias,
        }


def blobs(n=64):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=n)
    return rng.normal(size=(n, 4)) + y[:, None], y


@pytest.mark.parametrize("opt", ["sgd", "momentum", "adam"])
def test_fast_paths_are_used_and_agree_with_generic(opt, monkeypatch):
    X, y = blobs()
    spy = Spy()
    fast = bpgpu.MLP([4, 6, 5, 3], hidden=["prelu", "tanh"], backend=spy, dtype="float64")
    generic = fast.to("numpy")
    fast.fit(X, y, epochs=2, batch_size=16, optimizer=opt)
    generic.fit(X, y, epochs=2, batch_size=16, optimizer=opt)
    assert spy.calls["bias_act"] > 0 and spy.calls["act_vjp"] > 0
    # plain SGD has lr folded into the output error: the weight matrices are updated by
    # one GEMM each, the rest subtracted as they come; no update kernel to call
    assert (spy.calls["opt_update"] > 0) == (opt != "sgd")
    assert (spy.calls["sgd_gemm"] > 0) == (spy.calls["sgd_bias"] > 0) == (opt == "sgd")
    assert spy.calls["softmax_cce"] > 0
    for a, b in zip(fast.get_weights(), generic.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


def test_fast_paths_switch_off(monkeypatch):
    X, y = blobs()
    spy = Spy()
    net = bpgpu.MLP([4, 6, 3], backend=spy)
    spy.use_fast = False
    net.fit(X, y, epochs=1)
    assert not any(spy.calls.values())
    spy.use_fast = True
    net.gradients(X, y)
    assert spy.calls["bias_act"] > 0
    monkeypatch.setenv("BPGPU_FAST", "0")  # read at a backend's first lookup
    off = Spy()
    bpgpu.MLP([4, 6, 3], backend=off).fit(X, y, epochs=1)
    assert not any(off.calls.values())


GPU_HIDDEN = [n for n, a in ACTIVATIONS.items() if a.hidden_ok]


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("hidden", GPU_HIDDEN)
def test_cupy_kernels_match_the_generic_path(hidden, dtype):
    """Forward, gradients and two fitted epochs per optimizer: fused vs generic CuPy."""
    cp = load_backend("cupy")
    X, y = blobs()
    for opt in ("sgd", "momentum", "nesterov", "adam"):
        fast = bpgpu.MLP([4, 7, 3], hidden=hidden, backend=cp, dtype=dtype, seed=5)
        ref = bpgpu.MLP([4, 7, 3], hidden=hidden, backend=cp, dtype=dtype, seed=5)
        try:
            cp.use_fast = True
            fast.fit(X, y, epochs=2, batch_size=16, optimizer=opt)
            g_fast = fast.gradients(X, y)
            cp.use_fast = False
            ref.fit(X, y, epochs=2, batch_size=16, optimizer=opt)
            g_ref = ref.gradients(X, y)
        finally:
            cp.use_fast = True
        for a, b in zip(fast.get_weights(), ref.get_weights()):
            assert rel_norm(a, b) <= 10 * TOL[dtype], (opt, hidden)
        for a, b in zip(g_fast, g_ref):
            assert rel_norm(a, b) <= 10 * TOL[dtype], (opt, hidden)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numpy_relu_backward_in_place_equals_generic(dtype, monkeypatch):
    """The NumPy backend's own fast paths (ReLU in place, forward and backward): used
    for ReLU, declined elsewhere, and the weights after two epochs are bit-for-bit the
    generic ones."""
    from bpgpu.backends import numpy_fast

    calls = []

    def counting(name):
        def call(*args):
            out = numpy_fast.TABLE[name](*args)
            calls.append((name, args[-2].name, out is not None))  # (..., act, a)
            return out

        return call

    X, y = blobs()
    fast_be, generic_be = NumpyBackend(), NumpyBackend()
    fast_be._fast = {name: counting(name) for name in numpy_fast.TABLE}
    generic_be.use_fast = False
    hidden = ["relu", "tanh", "relu"]
    fast = bpgpu.MLP([4, 6, 5, 7, 3], hidden=hidden, backend=fast_be, dtype=dtype)
    generic = bpgpu.MLP([4, 6, 5, 7, 3], hidden=hidden, backend=generic_be, dtype=dtype)
    for net in (fast, generic):
        net.fit(X, y, epochs=2, batch_size=16, optimizer="momentum")
    for name in ("bias_act", "act_vjp"):
        assert (name, "relu", True) in calls and (name, "tanh", False) in calls
    for a, b in zip(fast.get_weights(), generic.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_anomaly_mode_applies_no_fused_update():
    """detect_anomaly checks the gradients before the weights change: no sgd_gemm."""
    X, y = blobs()
    spy = Spy()
    bpgpu.MLP([4, 6, 3], backend=spy).fit(X, y, epochs=1, detect_anomaly=True)
    assert spy.calls["sgd_gemm"] == spy.calls["sgd_bias"] == 0
    assert spy.calls["softmax_cce"] > 0


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("n", [1, 3, 10, 300, 1000])  # one to several elements per thread
def test_cupy_softmax_cce_kernel_matches_the_generic_math(n, dtype):
    from bpgpu.costs import _softmax_cce

    cp = load_backend("cupy")
    rng = np.random.default_rng(n)
    X = rng.normal(scale=5.0, size=(37, n)).astype(dtype)
    X[0] += 900.0  # a large logit: the kernel must shift by the row max too
    T = np.eye(n, dtype=dtype)[rng.integers(0, n, size=37)]
    Xd, Td = cp.asarray(X), cp.asarray(T)
    kernel = cp.fast("softmax_cce")
    Y, E, D = kernel(Xd, Td, 0.25, True)
    Yr, Er, Dr = _softmax_cce(cp.xp, Xd, Td)
    tol = 10 * TOL[dtype]
    assert rel_norm(Y, Yr) <= tol and rel_norm(D, 0.25 * Dr) <= tol
    assert abs(float(E) - float(Er)) <= tol * max(1.0, abs(float(Er)))
    assert kernel(Xd, Td, 1.0, False)[1] is None


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cupy_sgd_gemm_and_bias_match_subtracting_the_gradients(dtype):
    cp = load_backend("cupy")
    rng = np.random.default_rng(0)
    D, Y, W = (rng.normal(size=s).astype(dtype) for s in ((16, 5), (16, 7), (5, 7)))
    Wd = cp.asarray(W)
    assert cp.fast("sgd_gemm")(cp.asarray(D), cp.asarray(Y), Wd)
    assert rel_norm(Wd, W - D.T @ Y) <= 10 * TOL[dtype]
    b = rng.normal(size=5).astype(dtype)
    bd = cp.asarray(b)
    assert cp.fast("sgd_bias")(cp.asarray(D), bd)
    assert rel_norm(bd, b - D.sum(axis=0)) <= 10 * TOL[dtype]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_fast_paths_match_the_generic_math(dtype):
    """Each torch fast path against the generic Array API code it replaces."""
    from bpgpu.costs import _softmax_cce
    from bpgpu.steps import _subtract_gradient

    be = load_backend("torch")
    torch, xp = be.torch, be.xp
    rng = np.random.default_rng(1)
    X = torch.tensor(rng.normal(scale=4.0, size=(9, 5)).astype(dtype))
    b = torch.tensor(rng.normal(size=5).astype(dtype))
    T = torch.tensor(np.eye(5, dtype=dtype)[rng.integers(0, 5, size=9)])
    G = torch.tensor(rng.normal(size=(9, 5)).astype(dtype))
    relu = ACTIVATIONS["relu"]
    tol = TOL[dtype]

    Z, Y = be.fast("bias_act")(X.clone(), b, relu)
    assert Z is Y and rel_norm(Y, relu.f(xp, X + b)) <= tol
    assert be.fast("bias_act")(X.clone(), b, ACTIVATIONS["tanh"]) is None  # declined: generic code
    D = be.fast("act_vjp")(None, Y, G.clone(), relu)
    assert rel_norm(D, relu.vjp(xp, X + b, Y, G)) <= tol
    Yf, Ef, Df = be.fast("softmax_cce")(X, T, 0.5, True)
    Yg, Eg, Dg = _softmax_cce(xp, X, T)
    assert rel_norm(Yf, Yg) <= tol and rel_norm(Df, 0.5 * Dg) <= tol
    assert abs(float(Ef) - float(Eg)) <= tol * abs(float(Eg))
    assert be.fast("softmax_cce")(X, T, 1.0, False)[1] is None
    W = torch.tensor(rng.normal(size=(5, 4)).astype(dtype))
    A = torch.tensor(rng.normal(size=(9, 4)).astype(dtype))
    W_fast, W_generic = W.clone(), W.clone()
    assert be.fast("sgd_gemm")(G, A, W_fast) and _subtract_gradient(G, A, W_generic)
    assert rel_norm(W_fast, W_generic) <= tol
    b_fast = b.clone()
    assert be.fast("sgd_bias")(G, b_fast)
    assert rel_norm(b_fast, b - xp.sum(G, axis=0)) <= tol


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_torch_fit_with_fast_paths_equals_generic(opt):
    be, generic = load_backend("torch"), type(load_backend("torch"))()
    generic.use_fast = False
    X, y = blobs()
    nets = [bpgpu.MLP([4, 6, 5, 3], backend=b, dtype="float64", seed=4) for b in (be, generic)]
    for net in nets:
        net.fit(X, y, epochs=2, batch_size=16, optimizer=opt)
    for a, b in zip(*(n.get_weights() for n in nets)):
        assert rel_norm(a, b) <= 1e-12


@pytest.mark.parametrize(
    "hidden, output",
    [("softplus", "sigmoid"), ("elu", "softmax"), ("prelu", "identity"), ("relu", "sigmoid")],
)
def test_no_python_scalar_becomes_a_device_tensor_in_a_torch_step(hidden, output, monkeypatch):
    """array-api-compat turns a Python scalar in torch's maximum/minimum/logaddexp into a
    new tensor on the array's device per call (a host-to-device copy, a stall on CUDA):
    the core passes cached 0-d arrays instead, so a whole fit makes none."""
    be = load_backend("torch")
    from array_api_compat.torch import _aliases

    made = []
    real = _aliases._scalar_to_tensor

    def spy(x, other):
        if isinstance(x, (int, float)):
            made.append(x)
        return real(x, other)

    monkeypatch.setattr(_aliases, "_scalar_to_tensor", spy)
    X, y = blobs()
    net = bpgpu.MLP([4, 6, 3], hidden=hidden, output=output, backend=be, seed=1)
    T = np.eye(3)[y] * 0.8 + 0.1 if output == "sigmoid" else np.eye(3)[y]
    net.fit(X, T, epochs=2, batch_size=16, optimizer="momentum")
    net.gradients(X, T)
    assert made == []
