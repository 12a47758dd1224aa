"""The JAX backend: the core's own training step compiled into one XLA program."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import load_backend, rel_norm

import bpgpu
from bpgpu import core


def blobs(n=200):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=n)
    return rng.normal(size=(n, 5)) + y[:, None], y


@pytest.mark.parametrize("opt", ["sgd", "momentum", "nesterov", "adam"])
def test_the_compiled_step_trains_what_numpy_trains(opt, monkeypatch):
    """Traced once per batch shape (the full batches and the shorter last one), then
    run as one program per step; float64 equal to NumPy's eager step to rounding."""
    be = load_backend("jax")
    traced = []
    real = core.train_step
    monkeypatch.setattr(
        core, "train_step", lambda *a, **k: (traced.append(a[4].shape), real(*a, **k))[1]
    )
    X, y = blobs()
    ref = bpgpu.MLP([5, 9, 3], hidden="prelu", backend="numpy", dtype="float64", seed=2)
    net = ref.to(be)
    kw = dict(epochs=3, batch_size=16, optimizer=opt, weight_decay=0.01, seed=1)
    h_ref = ref.fit(X, y, **kw)
    traced.clear()  # NumPy runs the step's Python every step; JAX only to trace it
    h = net.fit(X, y, **kw)
    assert sorted(traced) == [(8, 5), (16, 5)]  # 200 rows = 12 x 16 + 8
    for a, b in zip(net.get_weights(), ref.get_weights()):
        assert rel_norm(a, b) <= 1e-12
    np.testing.assert_allclose(h.loss, h_ref.loss, rtol=1e-12)
    assert h.compile_time > 0 and h_ref.compile_time == 0


def test_anomaly_mode_and_gradients_run_eagerly():
    be = load_backend("jax")
    X, y = blobs()
    net = bpgpu.MLP([5, 9, 3], backend=be, dtype="float64")
    h = net.fit(X, y, epochs=1, batch_size=50, detect_anomaly=True)
    assert h.compile_time == 0  # every layer checked between operations: not compiled
    assert bpgpu.gradcheck(net, X[:10], y[:10]) < 1e-6
    assert len(net.deltas(X[:4], y[:4])) == 2


def test_float64_needs_and_gets_jax_x64():
    import jax

    be = load_backend("jax")
    assert jax.config.jax_enable_x64
    net = bpgpu.MLP([5, 3], backend=be, dtype="float64")
    assert str(net.forward(np.zeros((2, 5))).dtype) == "float64"
