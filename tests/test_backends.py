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
    assert backend.fast("no such fast path") is None
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


def test_strict_backend_uses_a_non_default_device():
    b = backends.get_backend("array_api_strict")
    assert str(b.device) != str(b.xp.Device())


def test_numpy_backend_has_no_other_device():
    with pytest.raises(ValueError, match="CPU only"):
        backends.get_backend("numpy:1")
