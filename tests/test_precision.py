"""Mixed precision (bpgpu.precision): float32 master weights, products in bfloat16 or
float16, on every backend that has the type; refused with the fix elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import load_backend

import bpgpu
from bpgpu import datasets

MIXED = [("torch", "bfloat16"), ("torch", "float16"), ("jax", "bfloat16"), ("jax", "float16")]
# float32 against the compute type: what one step's update may differ by, relative to
# the update itself (bfloat16 keeps 8 bits of mantissa, float16 11)
STEP_TOL = {"bfloat16": 5e-2, "float16": 1e-2}


def blobs(n=96, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    return rng.normal(size=(n, d)) + 2.0 * np.eye(k, d)[y], y


@pytest.mark.parametrize("name", ["numpy", "array_api_strict"])
@pytest.mark.parametrize("precision", ["bfloat16", "float16", "tf32"])
def test_backends_without_the_type_refuse_it_naming_those_that_have_it(name, precision):
    backend = load_backend(name)
    with pytest.raises(ValueError, match=f"precision='{precision}' needs a backend") as info:
        bpgpu.MLP([4, 3], backend=backend, precision=precision)
    assert "torch" in str(info.value) and "precision=None" in str(info.value)


def test_bfloat16_on_cupy_says_cupy_has_no_bfloat16(monkeypatch):
    """CuPy's refusal, asked of the base class as CuPy's backend asks it (no GPU here)."""
    from bpgpu.backends._base import Backend

    class FakeCupy(Backend):
        name, compute_types = "cupy", ("float16",)

    with pytest.raises(ValueError, match="CuPy has no bfloat16 dtype"):
        FakeCupy().compute_dtype("bfloat16")


def test_unknown_names_and_a_float64_network_are_refused():
    with pytest.raises(ValueError, match="did you mean 'bfloat16'"):
        bpgpu.MLP([4, 3], backend="numpy", precision="bf16")
    with pytest.raises(ValueError, match="use dtype='float32' with it"):
        bpgpu.MLP([4, 3], backend="numpy", dtype="float64", precision="float16")


@pytest.mark.parametrize("name, precision", MIXED)
def test_master_weights_stay_float32_and_the_products_are_narrower(name, precision):
    """One plain SGD step: the mixed network's update is the float32 update to the
    compute type's precision, not to float32's (so the products really ran narrower),
    and every weight, output and loss the user sees is float32."""
    backend = load_backend(name)
    X, y = blobs()
    full = bpgpu.MLP([6, 16, 3], backend=backend, seed=0)
    mixed = bpgpu.MLP([6, 16, 3], backend=backend, seed=0, precision=precision)
    start = full.get_weights()
    for net in (full, mixed):
        net.fit(X, y, epochs=1, batch_size=96, lr=0.5, shuffle=False)
    assert all(w.dtype == np.float32 for w in mixed.get_weights())
    assert str(mixed.predict(X).dtype).endswith("float32")
    d_full = np.concatenate([(a - s).ravel() for a, s in zip(full.get_weights(), start)])
    d_mixed = np.concatenate([(a - s).ravel() for a, s in zip(mixed.get_weights(), start)])
    rel = np.linalg.norm(d_mixed - d_full) / np.linalg.norm(d_full)
    assert 1e-5 < rel < STEP_TOL[precision]
    assert mixed.precision == precision and f"precision='{precision}'" in repr(mixed)


@pytest.mark.parametrize("name, precision", MIXED)
def test_training_on_the_digits_ends_within_a_point_of_float32(name, precision):
    backend = load_backend(name)
    X, y = datasets.load_digits()
    X = X / 16.0
    Xt, yt, Xv, yv = X[:1400], y[:1400], X[1400:], y[1400:]
    acc = {}
    for p in (None, precision):
        net = bpgpu.MLP([64, 64, 10], backend=backend, seed=0, precision=p)
        net.fit(Xt, yt, epochs=10, optimizer="adam", lr=1e-2, batch_size=32)
        acc[p] = net.evaluate(Xv, yv)["accuracy"]
    assert acc[None] > 0.85
    assert abs(acc[precision] - acc[None]) <= 0.01 + 1e-12


def test_to_keeps_the_precision_where_the_backend_has_it():
    load_backend("torch")
    net = bpgpu.MLP([4, 5, 3], backend="torch", precision="bfloat16")
    assert net.to("torch").precision == "bfloat16"
    with pytest.raises(ValueError, match="needs a backend"):
        net.to("numpy")
    plain = net.to("numpy", precision=None)
    assert plain.precision is None
    for a, b in zip(plain.get_weights(), net.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["torch", "jax"])
def test_a_mixed_fit_resumes_to_the_uninterrupted_one(name, tmp_path):
    backend = load_backend(name)
    X, y = blobs()
    kw = dict(batch_size=16, optimizer="adam", lr=1e-2)
    whole = bpgpu.MLP([6, 8, 3], backend=backend, seed=1, precision="bfloat16")
    whole.fit(X, y, epochs=4, **kw)
    part = bpgpu.MLP([6, 8, 3], backend=backend, seed=1, precision="bfloat16")
    ckpt = tmp_path / "run.ckpt.npz"
    part.fit(X, y, epochs=2, checkpoint=ckpt, **kw)
    again = bpgpu.MLP([6, 8, 3], backend=backend, seed=1, precision="bfloat16")
    again.fit(X, y, epochs=4, resume=ckpt, **kw)
    for a, b in zip(whole.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_tf32_is_on_inside_the_networks_calls_only(monkeypatch):
    """precision="tf32" turns the backend's TF32 switch on around fit, predict and
    evaluate, and back off after (tried with a backend whose switch is recorded)."""
    import contextlib

    backend = bpgpu.get_backend("numpy")
    depth = [0]

    @contextlib.contextmanager
    def tf32():
        depth[0] += 1
        try:
            yield
        finally:
            depth[0] -= 1

    class Seen(bpgpu.Callback):
        def __init__(self):
            self.on = []

        def on_batch_end(self, net, batch):
            self.on.append(depth[0] > 0)

    monkeypatch.setattr(backend, "compute_types", ("tf32",), raising=False)
    monkeypatch.setattr(backend, "tf32", tf32, raising=False)
    net = bpgpu.MLP([6, 3], backend=backend, precision="tf32")
    X, y = blobs()
    seen = Seen()
    net.fit(X, y, epochs=1, callbacks=[seen])
    assert seen.on and all(seen.on) and depth[0] == 0
    plain = bpgpu.MLP([6, 3], backend=backend)
    seen = Seen()
    plain.fit(X, y, epochs=1, callbacks=[seen])
    assert seen.on and not any(seen.on)
    assert net.get_weights()[0].dtype == np.float32


# ---- float16 loss scaling ---------------------------------------------------------------

SCALED = ["torch", "jax"]


def tiny_task():
    """Targets of 1e-7 and a network of zero weights: the output errors over the batch,
    and every gradient, are below float16's smallest number (6e-8) unless scaled."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(128, 8))
    Y = 1e-7 * (X @ rng.normal(size=(8, 2)))
    return X, Y


@pytest.mark.parametrize("name", SCALED)
def test_float16_learns_where_its_unscaled_gradients_underflow(name, monkeypatch):
    """One full-batch step from zero weights: with the loss scaled, the float16 update
    points where float32's does; with a scale of 1 every gradient is flushed to zero."""
    backend = load_backend(name)
    X, Y = tiny_task()

    def update(precision):
        net = bpgpu.MLP(
            [8, 2], hidden=[], output="identity", backend=backend, seed=0, precision=precision
        )
        net.set_weights([np.zeros((2, 8)), np.zeros(2)])
        net.fit(X, Y, epochs=1, batch_size=128, lr=0.5, shuffle=False)
        return np.concatenate([w.ravel() for w in net.get_weights()])

    full, scaled = update(None), update("float16")
    monkeypatch.setattr(bpgpu.precision, "INITIAL_SCALE", 1.0)  # no scaling: a scale of 1
    unscaled = update("float16")
    assert not unscaled.any()  # every gradient flushed to zero in float16
    cos = scaled @ full / (np.linalg.norm(scaled) * np.linalg.norm(full))
    assert cos > 0.99


@pytest.mark.parametrize("name", SCALED)
def test_an_overflowing_scale_skips_steps_and_halves_until_they_fit(name, monkeypatch):
    """A scale of 2**40 makes the first steps' float16 errors inf: those steps change
    no weight and are counted; the scale halves until the steps go through, and the
    fit ends finite and trained, not stopped as diverged."""
    backend = load_backend(name)
    monkeypatch.setattr(bpgpu.precision, "INITIAL_SCALE", 2.0**40)
    X, y = blobs()
    net = bpgpu.MLP([6, 16, 3], backend=backend, seed=0, precision="float16")
    start = net.get_weights()
    h = net.fit(X, y, epochs=1, batch_size=96, lr=0.1)  # one batch: one skipped step
    assert h.skipped_steps == 1
    for a, b in zip(net.get_weights(), start):
        np.testing.assert_array_equal(a, b)
    h = net.fit(X, y, epochs=40, batch_size=8, lr=0.1)
    assert 10 < h.skipped_steps < 40  # about log2(2**40 / 2**15) halvings
    assert all(np.isfinite(w).all() for w in net.get_weights())
    assert h.loss[-1] < h.loss[0]


@pytest.mark.parametrize("name", SCALED)
def test_the_loss_scale_goes_on_after_a_resume(name, tmp_path, monkeypatch):
    backend = load_backend(name)
    monkeypatch.setattr(bpgpu.precision, "INITIAL_SCALE", 2.0**30)  # skips in both halves
    monkeypatch.setattr(bpgpu.precision, "GROWTH_INTERVAL", 5)  # and grows in them
    X, y = blobs()
    kw = dict(batch_size=8, optimizer="adam", lr=1e-2)

    def net():
        return bpgpu.MLP([6, 8, 3], backend=backend, seed=1, precision="float16")

    whole = net()
    h_whole = whole.fit(X, y, epochs=4, **kw)
    ckpt = tmp_path / "run.ckpt.npz"
    net().fit(X, y, epochs=2, checkpoint=ckpt, **kw)
    again = net()
    h_again = again.fit(X, y, epochs=4, resume=ckpt, **kw)
    assert h_again.skipped_steps == h_whole.skipped_steps > 0
    for a, b in zip(whole.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_the_estimators_take_precision_from_their_parameter_table():
    pytest.importorskip("sklearn")
    load_backend("torch")
    from sklearn.utils._param_validation import InvalidParameterError

    from bpgpu.sklearn import BPClassifier

    X, y = blobs()
    kw = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0, backend="torch")
    full = BPClassifier(dtype="float32", **kw).fit(X, y)
    mixed = BPClassifier(dtype="float32", precision="bfloat16", **kw).fit(X, y)
    assert mixed._net.precision == "bfloat16" and mixed.coefs_[0].dtype == np.float32
    gap = np.abs(mixed.coefs_[0] - full.coefs_[0]).max()
    assert 0 < gap < 0.05
    with pytest.raises(InvalidParameterError, match="'precision' parameter"):
        BPClassifier(precision="bf16", **kw).fit(X, y)
    with pytest.raises(ValueError, match="use dtype='float32' with it"):
        BPClassifier(precision="bfloat16", **kw).fit(X, y)  # the estimators' float64


def test_the_cli_trains_in_the_precision_asked_and_a_resume_keeps_it(tmp_path):
    load_backend("torch")
    import subprocess
    import sys

    X, y = blobs(n=120)
    data = tmp_path / "blobs.csv"
    np.savetxt(data, np.column_stack([X, y]), delimiter=",", fmt="%.6g")
    base = [sys.executable, "-m", "bpgpu", "train", "--data", str(data), "--backend", "torch"]
    base += ["--hidden", "8", "--no-plot", "-o", str(tmp_path / "m.npz")]
    ckpt = str(tmp_path / "c.npz")
    first = subprocess.run(
        [*base, "--epochs", "2", "--precision", "bfloat16", "--checkpoint", ckpt],
        capture_output=True,
        text=True,
    )
    assert first.returncode == 0, first.stderr
    assert "precision='bfloat16'" in first.stdout and "precision bfloat16" in first.stdout
    again = subprocess.run(
        [*base, "--epochs", "3", "--resume", ckpt], capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr
    assert "precision='bfloat16'" in again.stdout
    refused = subprocess.run(
        [*base, "--epochs", "1", "--backend", "numpy", "--precision", "float16"],
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0 and "needs a backend that computes in it" in refused.stderr


# ---- bpgpu check --precision --------------------------------------------------------------


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_the_suite_agrees_within_the_types_tolerance(precision):
    """Every activation and cost of the suite on torch (and JAX) in the type, against
    NumPy float64 from the rounded weights and batch."""
    load_backend("torch")
    from bpgpu.consistency import PRECISION_TOLERANCE

    report = bpgpu.compare_backends(["torch", "jax"], precision=precision)
    ran = {r.backend for r in report.rows}
    assert "torch" in ran and report.rows[0].label == f"float32/{precision}"
    assert all(r.tolerance == PRECISION_TOLERANCE[precision] for r in report.rows)
    assert all(r.ok for r in report.rows), report.failures()


def test_the_precision_check_fails_on_a_wrong_gradient(monkeypatch):
    """A mixed backward pass whose weight gradients are 10% off fails the check, naming
    a gradient; numpy, which has no bfloat16, is reported as not run."""
    load_backend("torch")
    from bpgpu import core

    real = core.mixed_backward

    def off(*args, **kwargs):
        grads, *rest = real(*args, **kwargs)
        return [g * 1.1 if g.ndim == 2 else g for g in grads], *rest

    monkeypatch.setattr(core, "mixed_backward", off)
    report = bpgpu.compare_backends(["torch", "numpy"], precision="bfloat16")
    assert not report.ok and "numpy" in report.skipped
    assert any("gradients dW" in f for f in report.failures())


def test_check_precision_on_the_command_line():
    load_backend("torch")
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "bpgpu", "check", "--precision", "float16", "--backends", "torch"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert (
        "| torch | float32/float16 |" in out.stdout and "agreement within tolerance" in out.stdout
    )


def test_gradcheck_and_compare_backends_take_a_mixed_network():
    """Both check the network's math at full precision on a float64 NumPy copy of its
    float32 weights (the copy drops the precision NumPy has no type for)."""
    load_backend("torch")
    X, y = blobs()
    net = bpgpu.MLP([6, 5, 3], hidden="tanh", backend="torch", precision="bfloat16")
    assert bpgpu.gradcheck(net, X[:8], y[:8]) < 1e-6
    report = bpgpu.compare_backends(net, X[:16], y[:16], backends=["numpy"])
    assert report.ok, report.failures()
    assert net.precision == "bfloat16"
