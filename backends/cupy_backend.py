"""CuPy on an NVIDIA GPU: ``cupy`` (device 0) or ``cupy:N``.

Detection never crashes: CuPy importable but no driver, no device or a broken CUDA
install raises BackendUnavailable with the reason, so ``"auto"`` can fall back.
"""

from __future__ import annotations

import numpy as np

from ._base import Backend, BackendUnavailable, DeviceMemoryError, PinnedStaging
from ._install import install_hint


def _install() -> str:
    return f"{install_hint('cuda12')} (or [cuda13] for CUDA 13)"


class CupyBackend(Backend):
    library = "cupy"

    def __init__(self, arg: str | None = None):
        try:
            import cupy
        except Exception as e:  # ImportError, or a broken CUDA library underneath
            raise BackendUnavailable(
                f"cupy is not importable ({type(e).__name__}: {e}); {_install()}, "
                'or use backend="numpy" or "auto"'
            ) from e
        try:
            index = int(arg) if arg else 0
        except ValueError:
            raise ValueError(f"cupy device must be a number (cupy:0); got {arg!r}") from None
        try:
            count = cupy.cuda.runtime.getDeviceCount()
            if index >= count:
                raise BackendUnavailable(
                    f"cupy sees {count} CUDA device(s), no device {index}; use backend='cupy:0'"
                )
            device = cupy.cuda.Device(index)
            with device:  # a real launch: catches driver/toolkit mismatches early
                int(cupy.arange(4).sum())
        except BackendUnavailable:
            raise
        except Exception as e:
            raise BackendUnavailable(
                f"cupy is installed but no CUDA device works ({type(e).__name__}: {e}); "
                'use backend="numpy" or "auto"'
            ) from e
        try:  # inside the guard: a missing or broken compat must let "auto" fall back
            import array_api_compat.cupy as xp
        except Exception as e:
            raise BackendUnavailable(
                f"array_api_compat cannot wrap cupy ({type(e).__name__}: {e}); "
                'pip install -U array-api-compat, or use backend="numpy" or "auto"'
            ) from e

        self.cupy = cupy
        self.xp = xp
        self.device = device
        self.where = ("cuda", index)
        self.name = f"cupy:{index}" if arg else "cupy"
        from .cupy_kernels import CupyOps

        self._ops = CupyOps(xp, cupy)

    graphs = True
    compute_types = ("float16",)  # CuPy has no bfloat16 dtype

    def capture(self, fn):
        """``fn`` recorded by stream capture into a ``cupy.cuda.Graph``: on a stream of
        its own, with a memory pool of its own that lives with the graph (blocks freed
        while capturing stay the graph's, so a replay never writes into another
        array). CuPy refuses its cuBLAS wrappers (``matmul``) while a stream captures:
        that refusal comes out of here, and the fit runs eagerly."""
        cp = self.cupy
        pool = cp.cuda.MemoryPool()
        stream = cp.cuda.Stream(non_blocking=True)
        cp.cuda.Device().synchronize()
        relaxed = getattr(cp.cuda.runtime, "streamCaptureModeRelaxed", None)
        with self.device, cp.cuda.using_allocator(pool.malloc), stream:
            if relaxed is None:
                stream.begin_capture()
            else:  # the pool may grow (cudaMalloc) while capturing
                stream.begin_capture(relaxed)
            try:
                fn()
            finally:
                graph = stream.end_capture()
        return _CupyGraph(graph, pool, cp)

    def asarray(self, host, dtype=None, copy=None):
        with self.device:
            return super().asarray(host, dtype, copy)

    def context(self):
        return self.device  # kernels launch on the current device; make it ours

    def to_numpy(self, a) -> np.ndarray:
        return self.cupy.asnumpy(a)

    def synchronize(self) -> None:
        self.device.synchronize()

    def translate(self, error):
        if isinstance(error, self.cupy.cuda.memory.OutOfMemoryError):
            with self.device:  # the default pool is per device: read this one's
                held = self.cupy.get_default_memory_pool().total_bytes()
            return DeviceMemoryError(
                f"GPU {self.device.id} is out of memory: {error} (bpgpu's pool holds "
                f"{held:,} bytes). Lower batch_size, use smaller layers or "
                "float32, or free GPU memory held by other processes"
            )
        return None

    def staging(self):
        with self.device:  # its copy stream belongs to this backend's device
            return CupyStaging(self.cupy)

    def gpu_key(self):
        from . import _mpi

        try:
            bus = self.device.pci_bus_id
        except Exception:  # a driver that cannot say: the index
            bus = None
        return _mpi.gpu_key(self.device.id, bus)

    def reduction_paths(self) -> list[str]:
        from . import _mpi

        return _mpi.gpu_paths()

    def allreduce(self, flat, comm):
        """NCCL between the ranks' GPUs on the current stream, in place; or the MPI
        library on device memory (CUDA-aware); or host staging (:meth:`reduction`)."""
        path = self.reduction(comm)
        if path == "host":
            return super().allreduce(flat, comm)
        flat = self.cupy.ascontiguousarray(flat)
        if path == "nccl":
            stream = self.cupy.cuda.get_current_stream().ptr
            self._reduction[2].sum(flat.data.ptr, flat.size, flat.dtype.itemsize, stream)
            return flat
        from mpi4py import MPI

        self.synchronize()  # MPI reads device memory outside CUDA's streams
        comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)
        return flat

    def info(self):
        props = self.cupy.cuda.runtime.getDeviceProperties(self.device.id)
        name = props["name"]
        rt = self.cupy.cuda.runtime
        return {
            "name": self.name,
            "version": self.cupy.__version__,
            "device": name.decode() if isinstance(name, bytes) else str(name),
            "cuda_runtime": rt.runtimeGetVersion(),
            "driver": rt.driverGetVersion(),
        }


class _CupyGraph:
    """A captured graph with the pool its arrays live in; replays on the current stream."""

    def __init__(self, graph, pool, cp):
        self.graph, self.pool, self.cp = graph, pool, cp

    def replay(self) -> None:
        self.graph.launch(self.cp.cuda.get_current_stream())


class CupyStaging(PinnedStaging):
    """Pinned buffers from ``cupyx.empty_pinned``; the copy on a non-blocking stream."""

    def __init__(self, cupy):
        super().__init__()
        self.cupy = cupy
        self.stream = cupy.cuda.Stream(non_blocking=True)

    def _pinned(self, count, dtype):
        import cupyx

        return cupyx.empty_pinned((count,), dtype)

    def _copy(self, rows):
        cp = self.cupy
        current = cp.cuda.get_current_stream()
        out = cp.empty(rows.shape, rows.dtype)  # on the current stream's pool
        self.stream.wait_event(current.record())
        out.set(rows, stream=self.stream)  # asynchronous: the source is pinned
        done = self.stream.record()
        current.wait_event(done)
        return out, done


def create(arg: str | None = None) -> CupyBackend:
    return CupyBackend(arg)
