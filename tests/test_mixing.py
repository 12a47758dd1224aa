"""Arrays from other libraries and devices: converted explicitly or refused, never mixed."""

from __future__ import annotations

import logging
import sys
import types

import numpy as np
import pytest

import bpgpu
from bpgpu import backends
from bpgpu.backends import cupy_backend


def test_numpy_input_on_every_backend(backend):
    net = bpgpu.MLP([3, 4, 2], backend=backend, dtype="float64")
    Y = net.forward(np.ones((2, 3)))
    assert backend.owns(Y)


def test_torch_cpu_tensor_into_a_numpy_network():
    torch = pytest.importorskip("torch")
    net = bpgpu.MLP([3, 4, 2], backend="numpy", dtype="float64")
    X = np.random.default_rng(0).normal(size=(5, 3))
    np.testing.assert_array_equal(net.forward(torch.from_numpy(X)), net.forward(X))


def test_a_tensor_that_requires_grad_comes_in_detached():
    """bpgpu computes its own gradients: no autograd graph, no warning, same numbers."""
    import warnings

    torch = pytest.importorskip("torch")
    backend = pytest.importorskip("bpgpu.backends").get_backend("torch")
    X = torch.randn(8, 4, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 3, (8,))
    net = bpgpu.MLP([4, 5, 3], backend=backend, dtype="float64")
    plain = X.detach().clone()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns when a float() ends a graph
        outs = [net.forward(X), *net.gradients(X, y), *net.deltas(X, y)]
        assert net.loss(X, y) == net.loss(plain, y)
        twin = net.to("torch")
        net.fit(X, y, epochs=1, batch_size=4, seed=0)
    assert not any(o.requires_grad for o in outs) and X.grad is None
    twin.fit(plain, y, epochs=1, batch_size=4, seed=0)
    for a, b in zip(net.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_strict_and_numpy_arrays_into_a_torch_network():
    torch = pytest.importorskip("torch")
    net = bpgpu.MLP([3, 4, 2], backend="torch", dtype="float64")
    X = np.random.default_rng(0).normal(size=(5, 3))
    strict = backends.get_backend("array_api_strict").asarray(X, "float64")
    a, b = net.forward(strict), net.forward(X)
    assert isinstance(a, torch.Tensor) and torch.equal(a, b)


def test_read_only_arrays_train_a_torch_network_quietly_and_stay_unchanged(tmp_path):
    """A memory-mapped data set fitted in memory on torch: no warning about writing to a
    read-only array (torch prints it once per process: run in a fresh one), and the data
    are as they were."""
    import subprocess

    pytest.importorskip("torch")
    code = f"""
import numpy as np, bpgpu
rng = np.random.default_rng(0)
np.save({str(tmp_path / "X.npy")!r}, rng.normal(size=(64, 3)).astype(np.float32))
X = np.load({str(tmp_path / "X.npy")!r}, mmap_mode="r")
y = np.load({str(tmp_path / "X.npy")!r})[:, 0] > 0
before = np.array(X)
net = bpgpu.MLP([3, 4, 2], backend="torch")
net.fit(np.asarray(X), y.astype(int), epochs=2, batch_size=8)
net.predict(np.asarray(X))
assert np.array_equal(np.asarray(X), before)
print("ok")
"""
    out = subprocess.run(
        [sys.executable, "-W", "error::UserWarning", "-c", code], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_array_on_another_device_is_refused_with_the_fix():
    torch = pytest.importorskip("torch")
    net = bpgpu.MLP([3, 4, 2], backend="numpy")
    with pytest.raises(ValueError, match=r"torch array on meta.*net\.to"):
        net.forward(torch.empty((2, 3), device="meta"))


def test_to_gives_bit_identical_weights_everywhere(backend):
    net = bpgpu.MLP([5, 6, 3], hidden="prelu", backend="numpy", seed=3)
    there = net.to(backend)
    back = there.to("numpy")
    for a, b, c in zip(net.get_weights(), there.get_weights(), back.get_weights()):
        assert a.tobytes() == b.tobytes() == c.tobytes()


def test_auto_logs_its_choice(monkeypatch, caplog):
    monkeypatch.delenv("BPGPU_BACKEND", raising=False)
    monkeypatch.setattr(backends, "_cache", {})
    monkeypatch.setitem(sys.modules, "cupy", None)  # as if CuPy were not installed
    with caplog.at_level(logging.INFO, logger="bpgpu"):
        assert backends.get_backend("auto").name == "numpy"
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "auto -> numpy (cupy is not importable" in lines[0]


def fake_cupy(count_error=None, count=1):
    """A stand-in cupy module whose CUDA runtime fails the way a driverless machine does."""

    def get_count():
        if count_error:
            raise count_error
        return count

    runtime = types.SimpleNamespace(getDeviceCount=get_count)
    return types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=runtime))


def test_cupy_without_a_driver_is_unavailable_not_a_crash(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(RuntimeError("cudaErrorNoDevice")))
    with pytest.raises(
        backends.BackendUnavailable, match="no CUDA device works.*cudaErrorNoDevice"
    ):
        cupy_backend.create()


def test_cupy_device_out_of_range_names_the_fix(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(count=1))
    with pytest.raises(backends.BackendUnavailable, match="no device 3; use backend='cupy:0'"):
        cupy_backend.create("3")


def test_missing_gpu_library_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)
    monkeypatch.setattr(backends, "_cache", {})
    from bpgpu.backends._install import install_hint

    with pytest.raises(backends.BackendUnavailable) as e:
        bpgpu.MLP([2, 2], backend="cupy")
    assert install_hint("cuda12") in str(e.value)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float16, np.float32])
def test_host_data_of_any_real_dtype_gives_the_float64_results(dtype, backend):
    """Pixels as uint8, half-precision features: converted exactly, on every backend
    (array-api-strict has no float16, so it came in refused)."""
    rng = np.random.default_rng(0)
    X = rng.integers(0, 100, size=(24, 6)).astype(dtype)
    y = rng.integers(0, 3, size=24).astype(np.uint8)
    net = bpgpu.MLP([6, 5, 3], backend=backend, dtype="float64", seed=0)
    assert net.evaluate(X, y) == net.evaluate(X.astype(np.float64), y.astype(np.int64))


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_numpy_subclasses_and_small_floats_come_in_as_their_numbers(backend):
    """np.matrix (whose operators multiply matrices), a masked array (whose data hold
    the masked values), bfloat16 from torch or JAX: read as plain arrays of the values,
    or refused saying why. They failed deep inside (matrix.max() and keepdims; a
    broadcast error; "unsupported ScalarType BFloat16"; "dtype bfloat16: pass real
    numbers")."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 3))
    y = np.array([0, 1] * 4)
    net = bpgpu.MLP([3, 4, 2], backend=backend, dtype="float64", seed=0)
    want = bpgpu.to_numpy(net.forward(X))
    for same in (np.matrix(X), np.ma.masked_array(X)):
        np.testing.assert_array_equal(bpgpu.to_numpy(net.forward(same)), want)
        assert net.loss(same, np.matrix(y).T) == net.loss(X, y)
    with pytest.raises(ValueError, match="X is a masked array with 3 masked value"):
        net.forward(np.ma.masked_array(X, mask=X > 1))
    small = X.astype(np.float32)  # bfloat16 keeps fewer digits: compare with its values
    for lib in ("torch", "jax.numpy"):
        mod = pytest.importorskip(lib)
        half = mod.asarray(small, dtype=mod.bfloat16)
        exact = np.asarray(mod.asarray(half, dtype=mod.float32))
        np.testing.assert_array_equal(
            bpgpu.to_numpy(net.forward(half)), bpgpu.to_numpy(net.forward(exact))
        )


@pytest.mark.parametrize("narrow", ["bfloat16", "float16", "float8_e4m3fn"])
def test_small_floats_of_another_library_on_the_same_device_come_in_widened(narrow, monkeypatch):
    """An array of another library on the network's own device comes in through DLPack.
    A JAX bfloat16 array on the GPU failed that way on CuPy ("X has dtype bfloat16"; the
    first GPU run's one failure): CuPy has no bfloat16, and float8 has no DLPack code in
    every library. They are widened to float32 in their own library first. Here a torch
    CPU tensor stands for the array on the same GPU: the NumPy network is told that both
    live on one device, so the tensor takes the DLPack path, whose NumPy has no
    bfloat16 either."""
    torch = pytest.importorskip("torch")
    from bpgpu.backends import _base

    net = bpgpu.MLP([3, 4, 2], backend="numpy", dtype="float64", seed=0)
    same = ("cuda", 0)
    monkeypatch.setattr(net.backend, "where", same)
    monkeypatch.setattr(_base, "location", lambda a: same)
    X = torch.linspace(-2, 2, 12).reshape(4, 3).to(getattr(torch, narrow))
    exact = X.to(torch.float32).numpy()
    np.testing.assert_array_equal(net.forward(X), net.forward(exact.astype(np.float64)))


def test_pandas_nullable_columns_come_in_as_numbers(backend):
    """pandas' Float64 and Int64 columns read as object arrays ("X has dtype object");
    they are numbers, and a missing value (pd.NA) is refused as NaN is."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(12, 3)), rng.integers(0, 2, size=12)
    net = bpgpu.MLP([3, 4, 2], backend=backend, dtype="float64", seed=0)
    df = pd.DataFrame(X).astype("Float64")
    assert net.loss(df, pd.Series(y).astype("Int64")) == net.loss(X, y)
    df.iloc[2, 1] = pd.NA
    with pytest.raises(ValueError, match="X contains NaN or inf"):
        net.loss(df, y)
    with pytest.raises(TypeError, match="targets has dtype object; pass real numbers"):
        net.loss(X, pd.Series(["a", "b"] * 6))  # text stays refused, saying what to do
