"""The backend layer: names, auto, the environment override, errors that name the fix."""

from __future__ import annotations

import numpy as np
import pytest

import bpgpu
from bpgpu import backends


def test_protocol(backend):
    host = np.arange(6.0).reshape(2, 3)
    a = backend.asarray(host, "float64")
    assert backend.owns(a)
    assert np.array_equal(backend.to_numpy(a), host)
    backend.synchronize()
    assert backend.ops.xp is backend.xp  # the operations run on the backend's namespace
    assert backend.info()["name"] == backend.name


def test_to_numpy_is_a_copy(backend):
    a = backend.asarray(np.zeros(3), "float64")
    h = backend.to_numpy(a)
    h[0] = 1.0
    assert backend.to_numpy(a)[0] == 0.0


def test_auto_without_cuda_is_numpy(monkeypatch):
    monkeypatch.delenv("BPGPU_BACKEND", raising=False)
    try:
        backends.get_backend("cupy")
        pytest.skip("a CUDA device works here; auto picks cupy")
    except backends.BackendUnavailable:
        pass
    assert backends.get_backend("auto").name == "numpy"


def test_environment_overrides_the_default(monkeypatch):
    monkeypatch.setenv("BPGPU_BACKEND", "array_api_strict")
    assert backends.get_backend(None).name == "array_api_strict"
    assert backends.get_backend("auto").name == "array_api_strict"
    assert backends.get_backend("numpy").name == "numpy"  # explicit names win
    assert bpgpu.MLP([2, 2], backend=None).backend.name == "array_api_strict"


def test_unknown_name_suggests_the_closest():
    with pytest.raises(ValueError, match="did you mean 'torch'"):
        backends.get_backend("trch")
    for spelled, meant in [("CuPy", "cupy"), ("array-api-strict", "array_api_strict")]:
        with pytest.raises(ValueError, match=f"did you mean '{meant}'"):
            backends.get_backend(spelled)
    # a device is not a backend: say which libraries run on it
    with pytest.raises(ValueError, match="for the CPU, 'numpy'"):
        backends.get_backend("cpu")
    for device in ("gpu", "cuda", "CUDA:0"):
        with pytest.raises(ValueError, match="for an NVIDIA GPU, 'cupy'"):
            backends.get_backend(device)


def test_strict_backend_uses_a_non_default_device():
    b = backends.get_backend("array_api_strict")
    assert str(b.device) != str(b.xp.Device())


def test_numpy_backend_has_no_other_device():
    with pytest.raises(ValueError, match="CPU only"):
        backends.get_backend("numpy:1")


@pytest.mark.parametrize("arg, name", [("cuda", "torch:cuda"), ("cuda:1", "torch:cuda:1")])
def test_torch_gpu_backend_keeps_the_name_asked_for(arg, name, monkeypatch):
    """torch's own spelling is "cuda:0"; benchmarks, tests and the registry look the
    backend up as "torch:cuda", so the name must be the one asked for."""
    torch = pytest.importorskip("torch")
    from bpgpu.backends.torch_backend import TorchBackend

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    b = TorchBackend(arg)
    assert b.name == name
    assert b.where == ("cuda", int(arg.partition(":")[2] or 0))


class _FakeDevice:
    """A CUDA device stand-in: a context that marks itself current."""

    current = None

    def __init__(self, index):
        self.id = index

    def __enter__(self):
        self.before, _FakeDevice.current = _FakeDevice.current, self.id
        return self

    def __exit__(self, *exc):
        _FakeDevice.current = self.before

    def synchronize(self):
        pass


def _fake_cupy():
    """A module that passes for CuPy with one working device (NumPy underneath)."""
    import types

    cupy = types.ModuleType("cupy")
    cupy.arange = np.arange
    cupy.cuda = types.SimpleNamespace(
        runtime=types.SimpleNamespace(getDeviceCount=lambda: 1), Device=_FakeDevice
    )
    return cupy


def test_cupy_without_a_working_compat_is_unavailable_and_auto_falls_back(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy())
    monkeypatch.setitem(sys.modules, "array_api_compat.cupy", None)  # import fails
    monkeypatch.setattr(backends, "_cache", {})
    monkeypatch.delenv("BPGPU_BACKEND", raising=False)
    with pytest.raises(backends.BackendUnavailable, match="array.api.compat.*backend=.numpy"):
        backends.get_backend("cupy")
    assert backends.get_backend("auto").name == "numpy"


def test_device_memory_error_is_built_while_the_device_is_current():
    """The translation reads the device's pool: it must run inside the device context
    (on cupy:N the default pool outside it is device 0's)."""
    from bpgpu.backends.numpy_backend import NumpyBackend

    class OnDevice3(NumpyBackend):
        def context(self):
            return _FakeDevice(3)

        def translate(self, error):
            if isinstance(error, MemoryError):
                return bpgpu.DeviceMemoryError(f"device {_FakeDevice.current} is out of memory")
            return None

    net = bpgpu.MLP([2, 3, 2], backend=OnDevice3())

    def boom(*args, **kwargs):
        raise MemoryError("out of memory")

    net.model.outputs = boom
    with pytest.raises(bpgpu.DeviceMemoryError, match="device 3 is out"):
        net.forward(np.zeros((1, 2)))


def test_numpy_trains_small_networks_on_one_blas_thread(monkeypatch):
    """One BLAS thread below the size where a second one pays; the library's choice
    above it; BPGPU_BLAS_THREADS overrides (measured reasons: NOTES section 15)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from bpgpu.backends.numpy_backend import NumpyBackend

    def blas_threads():
        return {
            d["num_threads"] for d in threadpoolctl.threadpool_info() if d["user_api"] == "blas"
        }

    be, before = NumpyBackend(), blas_threads()
    with be.threads(32 * 64 * 256):  # the digits network's largest product
        assert blas_threads() == {1}
    assert blas_threads() == before
    with be.threads(256 * 784 * 512):  # the mnist workload's
        assert blas_threads() == before
    monkeypatch.setenv("BPGPU_BLAS_THREADS", "1")
    with be.threads(10**9):
        assert blas_threads() == {1}
    monkeypatch.setenv("BPGPU_BLAS_THREADS", "many")
    with pytest.raises(ValueError, match="BPGPU_BLAS_THREADS must be"):
        be.threads(10)


def test_fit_runs_inside_the_backends_thread_choice(monkeypatch):
    from bpgpu.backends.numpy_backend import NumpyBackend

    seen = []

    class Watch(NumpyBackend):
        def threads(self, work, sharing=1):
            seen.append(work)
            return super().threads(work, sharing)

    X = np.random.default_rng(0).normal(size=(40, 64))
    bpgpu.MLP([64, 256, 10], backend=Watch()).fit(X, np.arange(40) % 10, epochs=1, batch_size=32)
    assert seen == [32 * 64 * 256]
