"""Backend operations: every override equals the generic method it replaces, the core
uses them, they switch off, and a user's optimizer is never replaced by a fused one."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from conftest import ALL_BACKENDS, TOL, load_backend, rel_norm

import bpgpu
from bpgpu import optimizers
from bpgpu.activations import ACTIVATIONS
from bpgpu.backends import MutableOps, Ops
from bpgpu.backends.numpy_backend import NumpyBackend
from bpgpu.backends.numpy_fast import NumpyOps

OPS_METHODS = [
    "add_bias",
    "bias_act",
    "act_vjp",
    "softmax_cce",
    "sgd_weight",
    "sgd_bias",
    "apply_updates",
    "optimizer_step",
    "sum_scalars",
]
HIDDEN = [n for n, a in ACTIVATIONS.items() if a.hidden_ok]


def blobs(n=64):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=n)
    return rng.normal(size=(n, 4)) + y[:, None], y


def cases(method: str, dtype: str):
    """(label, argument builder) pairs for ``method``: each builder makes fresh host
    arrays, so an override that writes in place cannot touch the generic's inputs."""
    rng = np.random.default_rng(zlib.crc32(f"{method}-{dtype}".encode()))

    def r(*shape, scale=1.0):
        return (scale * rng.normal(size=shape)).astype(dtype)

    B, n, m = 9, 5, 4
    if method == "add_bias":
        yield "", lambda: (r(B, n), r(n))
    elif method in ("bias_act", "act_vjp"):
        for name in HIDDEN:
            act = ACTIVATIONS[name]
            a = np.full(n, 0.25, dtype) if act.has_param else None
            Z = r(B, n, scale=3.0)
            if method == "bias_act":
                # what divergence looks like: the forward must carry NaN on (the loss
                # read at the end of the epoch finds it); a backward from a NaN output
                # is garbage on any path (torch's own ReLU backward passes G through)
                Z[0, :3] = [np.nan, np.inf, -np.inf]
                yield name, lambda Z=Z, act=act, a=a: (Z.copy(), r(n), act, a)
            else:
                xp = NumpyBackend().xp
                with np.errstate(all="ignore"):
                    Y = act.f(xp, Z, a)
                yield name, lambda Z=Z, Y=Y, act=act, a=a: (Z.copy(), Y.copy(), r(B, n), act, a)
    elif method == "softmax_cce":
        for k in (1, 3, 300):
            X = r(B, k, scale=5.0)
            X[0] += 900.0  # the row max must be taken out first
            T = np.eye(k, dtype=dtype)[rng.integers(0, k, size=B)]
            for loss in (True, False):
                yield f"{k}-{loss}", lambda X=X, T=T, loss=loss: (X, T, 0.25, loss)
    elif method == "sgd_weight":
        yield "", lambda: (r(B, n), r(B, m), r(n, m))
    elif method == "sgd_bias":
        yield "", lambda: (r(B, n), r(n))
    elif method == "apply_updates":
        yield "", lambda: ([r(n, m), r(n)], [r(n, m), None])
    elif method == "sum_scalars":
        for k in (1, 2, 257):
            yield f"{k}", lambda k=k: ([r(*()) for _ in range(k)],)
        yield "nan-inf", lambda: ([r(*()), np.array(np.nan, dtype), np.array(np.inf, dtype)],)
    elif method == "optimizer_step":
        for name, cls in optimizers.OPTIMIZERS.items():
            for wd in (0.0, 0.01):
                shapes = [(n, m), (n,)]

                def build(cls=cls, wd=wd, shapes=shapes):
                    opt = cls(lr=0.05, weight_decay=wd)
                    params = [r(*s) for s in shapes]
                    state = {"t": 2, **{s: [abs(r(*p)) for p in shapes] for s in cls.slots}}
                    return opt, opt.fused_rule(), params, [r(*s) for s in shapes], state

                yield f"{name}-wd{wd}", build


def assert_close(got, want, tol, where) -> None:
    """Same NaN and infinity positions (and signs), finite values within ``tol`` by the
    relative norm of section 5."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, where
    assert np.array_equal(np.isnan(got), np.isnan(want)), where
    assert np.array_equal(np.isposinf(got), np.isposinf(want)), where
    assert np.array_equal(np.isneginf(got), np.isneginf(want)), where
    ok = np.isfinite(want)
    assert rel_norm(got[ok], want[ok]) <= tol, where


def overridden(backend) -> list[str]:
    """The operations ``backend`` overrides (its own class or MutableOps)."""
    ops = backend._ops
    if ops is None:
        return []
    return [m for m in OPS_METHODS if getattr(type(ops), m) is not getattr(Ops, m)]


def _device(backend, a):
    if isinstance(a, np.ndarray):
        return backend.asarray(a, copy=True)  # each call its own: overrides write in place
    if isinstance(a, (list, tuple)):
        return type(a)(_device(backend, x) for x in a)
    if isinstance(a, dict):
        return {k: _device(backend, v) for k, v in a.items()}
    return a


def _flat(out) -> list:
    if isinstance(out, (tuple, list)):
        return [x for o in out for x in _flat(o)]
    if isinstance(out, dict):
        return [x for k in sorted(out) for x in _flat(out[k])]
    return [out]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ALL_BACKENDS)
def test_every_override_equals_the_generic_method(name, dtype):
    """Each method a backend overrides, on NaN/inf and ordinary inputs, against
    ``Ops``' generic method on the same backend: values, NaN positions, results."""
    backend = load_backend(name)
    methods = overridden(backend)
    if not methods:
        pytest.skip(f"{name} overrides nothing (the generic, functional operations)")
    fast, generic = backend._ops, Ops(backend.xp)
    checked = 0
    for method in methods:
        for label, make in cases(method, dtype):
            args = make()
            got = _flat(getattr(fast, method)(*_device(backend, args)))
            want = _flat(getattr(generic, method)(*_device(backend, args)))
            assert len(got) == len(want), (method, label)
            if method == "bias_act" and got[0] is got[1] and want[0] is not want[1]:
                # X not kept (X is Y): allowed where the backward reads only Y (ReLU)
                assert label == "relu", "only ReLU's backward can do without X"
                got, want = got[1:], want[1:]
            for g, w in zip(got, want):
                if w is None or (
                    isinstance(w, (int, float, str)) and not isinstance(w, np.generic)
                ):
                    assert g == w, (method, label)
                else:
                    h = backend.to_numpy
                    assert_close(h(g), h(w), 10 * TOL[dtype], (method, label))
            checked += 1
    assert checked >= len(methods)


def test_the_cpu_backends_override_what_they_speed_up():
    """A check of the check: the override test above has something to compare."""
    assert set(overridden(load_backend("numpy"))) >= {"bias_act", "act_vjp", "sgd_weight"}
    assert isinstance(load_backend("numpy")._ops, MutableOps)
    assert load_backend("array_api_strict")._ops is None  # generic and functional


class Spy(NumpyOps):
    """NumPy's operations, counting the calls the core makes."""

    def __init__(self, xp):
        super().__init__(xp)
        self.calls = dict.fromkeys(OPS_METHODS, 0)

    def __getattribute__(self, name):
        if name in OPS_METHODS:
            calls = object.__getattribute__(self, "calls")
            calls[name] += 1
        return object.__getattribute__(self, name)


def spy_backend() -> NumpyBackend:
    be = NumpyBackend()
    be.name = "spy"
    be._ops = Spy(be.xp)
    return be


@pytest.mark.parametrize("opt", ["sgd", "momentum", "adam"])
def test_the_core_calls_the_backend_operations_and_agrees_with_generic(opt):
    X, y = blobs()
    spy = spy_backend()
    fast = bpgpu.MLP([4, 6, 5, 3], hidden=["prelu", "relu"], backend=spy, dtype="float64")
    generic_be = NumpyBackend()
    generic_be.use_fast = False
    generic = fast.to(generic_be)
    fast.fit(X, y, epochs=2, batch_size=16, optimizer=opt)
    generic.fit(X, y, epochs=2, batch_size=16, optimizer=opt)
    calls = spy._ops.calls
    assert calls["bias_act"] > 0 and calls["act_vjp"] > 0 and calls["softmax_cce"] > 0
    # plain SGD folds lr into the output error and updates each layer as it goes
    assert (calls["sgd_weight"] > 0) == (calls["sgd_bias"] > 0) == (opt == "sgd")
    assert (calls["optimizer_step"] > 0) == (opt != "sgd")
    for a, b in zip(fast.get_weights(), generic.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


def test_overrides_switch_off(monkeypatch):
    be = NumpyBackend()
    assert type(be.ops) is NumpyOps
    be.use_fast = False
    assert type(be.ops) is Ops  # the generic methods, every override off
    be.use_fast = True
    assert type(be.ops) is NumpyOps
    monkeypatch.setenv("BPGPU_FAST", "0")  # read at a backend's first use of ops
    assert type(NumpyBackend().ops) is Ops


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numpy_relu_in_place_trains_bit_for_bit_the_generic_weights(dtype):
    X, y = blobs()
    fast_be, generic_be = NumpyBackend(), NumpyBackend()
    generic_be.use_fast = False
    hidden = ["relu", "tanh", "relu"]
    nets = [
        bpgpu.MLP([4, 6, 5, 7, 3], hidden=hidden, backend=be, dtype=dtype)
        for be in (fast_be, generic_be)
    ]
    for net in nets:
        net.fit(X, y, epochs=2, batch_size=16, optimizer="momentum")
    for a, b in zip(*(n.get_weights() for n in nets)):
        np.testing.assert_array_equal(a, b)


def test_anomaly_mode_applies_no_fused_update():
    """detect_anomaly checks the gradients before the weights change: no sgd_weight."""
    X, y = blobs()
    spy = spy_backend()
    bpgpu.MLP([4, 6, 3], backend=spy).fit(X, y, epochs=1, detect_anomaly=True)
    assert spy._ops.calls["sgd_weight"] == spy._ops.calls["sgd_bias"] == 0
    assert spy._ops.calls["optimizer_step"] > 0


def _frozen(cls):
    """A user's subclass of a built-in optimizer whose rule moves nothing."""

    class Frozen(cls):
        def rule(self, grads, slots, t):
            return [0 * g for g in grads], slots

    return Frozen


def _named_adam():
    """A user's own optimizer that merely calls itself "adam": plain SGD at half the rate."""

    class NotAdam(optimizers.Optimizer):
        name = "adam"

        def rule(self, grads, slots, t):
            return [-0.5 * self.lr * g for g in grads], slots

    return NotAdam


@pytest.mark.parametrize(
    "cls", list(optimizers.OPTIMIZERS.values()), ids=list(optimizers.OPTIMIZERS)
)
def test_a_users_optimizer_subclass_is_always_honoured(cls, backend):
    """No fused path (prescaled SGD, in-place kernels) may replace a subclass's rule:
    a subclass that moves nothing leaves the weights exactly as they were."""
    X, y = blobs()
    net = bpgpu.MLP([4, 6, 3], hidden="prelu", backend=backend, dtype="float64", seed=1)
    before = net.get_weights()
    opt = _frozen(cls)(lr=0.1)
    assert opt.fused_rule() is None and cls(lr=0.1).fused_rule() == cls.name
    net.fit(X, y, epochs=2, batch_size=16, optimizer=opt)
    for a, b in zip(net.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_an_optimizer_named_like_a_builtin_runs_its_own_rule(backend):
    X, y = blobs()
    nets = [bpgpu.MLP([4, 6, 3], backend=backend, dtype="float64", seed=1) for _ in range(2)]
    nets[0].fit(X, y, epochs=2, batch_size=16, optimizer=_named_adam()(lr=0.2))
    nets[1].fit(X, y, epochs=2, batch_size=16, optimizer=optimizers.SGD(lr=0.1))
    for a, b in zip(*(n.get_weights() for n in nets)):
        assert rel_norm(a, b) <= 1e-12  # half of 0.2 is SGD at 0.1, not Adam's kernel


def test_an_immutable_array_library_can_be_a_backend(monkeypatch):
    """array-api-strict with every in-place operator and item assignment forbidden (as
    JAX forbids them): fit, gradients and a resume still run, since only backend
    operations write in place and this backend uses the generic, functional ones."""
    import array_api_strict

    backend = load_backend("array_api_strict")
    Array = type(backend.asarray(np.zeros(1)))
    for dunder in ("__iadd__", "__isub__", "__imul__", "__itruediv__", "__setitem__"):

        def refuse(self, *args, dunder=dunder):
            raise TypeError(f"immutable: {dunder}")

        monkeypatch.setattr(Array, dunder, refuse)
    with pytest.raises(TypeError, match="immutable"):
        a = backend.asarray(np.zeros(2))
        a += 1
    X, y = blobs()
    for opt in ("sgd", "momentum", "nesterov", "adam"):
        net = bpgpu.MLP([4, 6, 3], hidden="prelu", backend=backend, dtype="float64")
        ref = net.to("numpy")
        net.fit(X, y, epochs=2, batch_size=16, optimizer=opt, weight_decay=0.01)
        ref.fit(X, y, epochs=2, batch_size=16, optimizer=opt, weight_decay=0.01)
        for a, b in zip(net.get_weights(), ref.get_weights()):
            assert rel_norm(a, b) <= 1e-12, opt
    net.sgd_step(X, y, lr=0.1)
    assert array_api_strict is backend.xp


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


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("hidden", HIDDEN)
def test_cupy_kernels_train_what_the_generic_path_trains(hidden, dtype):
    """Two fitted epochs per optimizer: CuPy's kernels against its generic operations."""
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


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_torch_fit_with_its_operations_equals_generic(opt):
    be, generic = load_backend("torch"), type(load_backend("torch"))()
    generic.use_fast = False
    X, y = blobs()
    nets = [bpgpu.MLP([4, 6, 5, 3], backend=b, dtype="float64", seed=4) for b in (be, generic)]
    for net in nets:
        net.fit(X, y, epochs=2, batch_size=16, optimizer=opt)
    for a, b in zip(*(n.get_weights() for n in nets)):
        assert rel_norm(a, b) <= 1e-12
