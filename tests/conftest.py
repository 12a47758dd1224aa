"""Fixtures that run tests over every available backend, skipping the absent ones."""

from __future__ import annotations

import os
import signal
import threading
import warnings

import numpy as np
import pytest

from bpgpu.backends import REGISTRY, BackendUnavailable, get_backend
from bpgpu.callbacks import Callback

# From the backend registry: CPU backends run on every CI machine (MPS skips off a Mac);
# CUDA ones are marked `gpu` and skip without a device.
CPU_BACKENDS = [e.name for e in REGISTRY if not e.gpu and e.name != "torch:mps"]
GPU_BACKENDS = [e.name for e in REGISTRY if e.gpu]
ALL_BACKENDS = [
    *CPU_BACKENDS,
    *(pytest.param(name, marks=pytest.mark.gpu) for name in GPU_BACKENDS),
]


def load_backend(name: str):
    """The backend, or a skip; with BPGPU_REQUIRE_GPU=1 a missing GPU backend fails."""
    try:
        return get_backend(name)
    except BackendUnavailable as e:
        if name in GPU_BACKENDS and os.environ.get("BPGPU_REQUIRE_GPU") == "1":
            pytest.fail(f"{name} unavailable on a run that requires the GPU: {e}")
        pytest.skip(f"{name} unavailable: {e}")


@pytest.fixture(autouse=True)
def _sigint_as_in_a_terminal():
    """Ctrl-C tests see Python's own SIGINT handler, even where the runner was started as
    a background job (which ignores SIGINT, and fit then keeps ignoring it)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.fixture(params=ALL_BACKENDS)
def backend(request):
    """Every backend that can run here (array_api_strict on a non-default device)."""
    return load_backend(request.param)


@pytest.fixture
def xp(backend):
    return backend.xp


def rel_norm(a, ref) -> float:
    """``||a - ref|| / ||ref||`` on host copies (0 when both are 0)."""
    from bpgpu import to_numpy

    a = np.asarray(to_numpy(a), dtype=np.float64)
    ref = np.asarray(to_numpy(ref), dtype=np.float64)
    assert a.shape == ref.shape, (a.shape, ref.shape)
    scale = np.linalg.norm(ref)
    diff = np.linalg.norm(a - ref)
    return float(diff / scale) if scale > 0 else float(diff)


TOL = {"float64": 1e-12, "float32": 1e-5}  # DESIGN.md section 5


def perturbed_net(hidden, output, dtype, scaled, sizes, noise):
    """A NumPy network whose weights are its seeded ones plus ``noise`` times a normal
    draw (so no two entries tie), with a random input scaling where ``scaled``: what the
    export and file-format tests write out and read back. A binary step's warning is
    silenced."""
    import bpgpu

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # binary step's zero-gradient warning
        cost = None if output in ("softmax", "sigmoid") else "quadratic"
        net = bpgpu.MLP(list(sizes), hidden, output, cost, "numpy", dtype, seed=3)
    rng = np.random.default_rng(0)
    net.set_weights([w + rng.normal(size=w.shape) * noise for w in net.get_weights()])
    if scaled:
        net.set_input_scaling(rng.normal(size=sizes[0]), rng.uniform(0.5, 2, size=sizes[0]))
    return net


class StopAfter(Callback):
    """Stops the fit at the end of epoch ``epoch``; needs no batch."""

    per_batch = False

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, net, epoch, logs):
        return epoch == self.epoch
