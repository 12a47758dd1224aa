"""Peak device memory of one peer at a time.

Both GPU allocators keep process-wide figures: CuPy's pool total is what the pool holds
for every array ever made, and torch's ``max_memory_allocated`` is a high-water mark
since the start (or the last reset). A peer measured after others would carry their
arrays in its number. So each peer is measured over its own window (its ``prepare`` and
first epoch): torch's peak statistics are reset at the start and the bytes already
allocated subtracted; on CuPy a memory hook counts the pool's allocations and frees
inside the window. Both count bytes handed to arrays, not what the allocator caches.
JAX's peak cannot be reset either; a peer that does not raise it gets no figure.
"""

from __future__ import annotations

import contextlib


class PeakCounter:
    """In-use bytes and their peak, from allocation and free events (CuPy's hook API)."""

    name = "bpgpu-peak"

    def __init__(self):
        self.used = self.peak = 0

    def malloc_postprocess(self, *args, **kw):
        self.used += kw["mem_size"] if "mem_size" in kw else args[2]
        self.peak = max(self.peak, self.used)

    def free_postprocess(self, *args, **kw):
        self.used -= kw["mem_size"] if "mem_size" in kw else args[1]


@contextlib.contextmanager
def cupy_window(cupy):
    """Count the peak of CuPy pool bytes in use within the block: yields a dict whose
    ``"peak"`` is set on exit."""

    class Hook(PeakCounter, cupy.cuda.MemoryHook):
        def __init__(self):
            PeakCounter.__init__(self)

    out: dict = {}
    hook = Hook()
    with hook:
        yield out
    cupy.cuda.Device().synchronize()
    out["peak"] = hook.peak


@contextlib.contextmanager
def torch_window(torch, device):
    """The peak of torch's allocated bytes within the block, above what it started with."""
    out: dict = {}
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    yield out
    torch.cuda.synchronize(device)
    out["peak"] = torch.cuda.max_memory_allocated(device) - base


@contextlib.contextmanager
def jax_window(device):
    """The peak of JAX's bytes in use on ``device`` within the block, above what it
    started with. JAX keeps a high-water mark that cannot be reset: when the block does
    not raise it, the block's own peak is unknown and ``"peak"`` is None (shown as "-"),
    never another peer's figure."""
    out: dict = {}
    start = device.memory_stats() or {}
    base, high = start.get("bytes_in_use"), start.get("peak_bytes_in_use")
    yield out
    after = (device.memory_stats() or {}).get("peak_bytes_in_use")
    known = None not in (base, high, after) and after > high
    out["peak"] = after - base if known else None


def window(peer):
    """The measuring context for ``peer``'s device, or a null context (CPU peers)."""
    if peer.device != "cuda":
        return contextlib.nullcontext({})
    if peer.library == "cupy":
        import cupy

        return cupy_window(cupy)
    if peer.library == "jax":
        import jax

        backend = getattr(peer, "backend", None)  # bpgpu's own peers name their device
        return jax_window(getattr(backend, "device", None) or jax.devices("gpu")[0])
    import torch

    return torch_window(torch, torch.device("cuda", torch.cuda.current_device()))
