"""PyTorch tensors through array-api-compat: ``torch`` (CPU), ``torch:cuda[:N]``, ``torch:mps``.

TF32 is left as PyTorch ships it for matmul (off); bpgpu turns it on only inside the calls
of a network built with precision="tf32" (:meth:`TorchBackend.tf32`).
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np

from ._base import (
    Backend,
    BackendUnavailable,
    DeviceMemoryError,
    PinnedStaging,
    threads_per_process,
)
from ._install import install_hint


class TorchBackend(Backend):
    library = "torch"

    def __init__(self, arg: str | None = None):
        try:
            import torch
        except ImportError as e:
            raise BackendUnavailable(
                f'torch is not installed; {install_hint("torch")}, or use backend="numpy" or "auto"'
            ) from e
        import array_api_compat.torch as xp

        dev = torch.device(arg or "cpu")
        if dev.type == "cuda":
            if not torch.cuda.is_available():
                raise BackendUnavailable(
                    f"torch {torch.__version__} sees no CUDA device (a CPU build, or no "
                    'driver); install a CUDA build of torch, or use backend="torch" or "auto"'
                )
            index = dev.index or 0
            if index >= torch.cuda.device_count():
                raise BackendUnavailable(
                    f"torch sees {torch.cuda.device_count()} CUDA device(s), no cuda:{index}; "
                    'use backend="torch:cuda:0"'
                )
            dev = torch.device("cuda", index)
            self.where = ("cuda", index)
        elif dev.type == "mps":
            if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
                raise BackendUnavailable(
                    'torch sees no Apple MPS device here; use backend="torch" or "auto"'
                )
            self.where = ("mps", None)
            self.dtypes = ("float32",)  # MPS has no float64
        elif dev.type != "cpu":
            raise ValueError(f"unknown torch device {arg!r}; use cpu, cuda, cuda:N or mps")
        # the name the user asked for ("torch:cuda", not torch's "cuda:0"): the registry,
        # the benchmarks and the tests look backends up by it
        self.name = "torch" if dev.type == "cpu" else f"torch:{arg}"
        if dev.type == "cuda":
            self.compute_types = ("bfloat16", "float16", "tf32")
        elif dev.type == "cpu":
            self.compute_types = ("bfloat16", "float16")
        self.torch = torch
        self.xp = xp
        self.device = dev
        from .torch_fast import TorchOps

        self._ops = TorchOps(xp, torch)

    @property
    def graphs(self) -> bool:
        return self.where[0] == "cuda"

    def capture(self, fn):
        """``torch.cuda.CUDAGraph`` of ``fn`` (its own memory pool, kept with the graph:
        the arrays made while capturing are never handed to anyone else)."""
        torch = self.torch
        if not self.graphs:
            return super().capture(fn)
        torch.cuda.synchronize(self.device)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.device(self.device), torch.cuda.graph(graph):
            fn()
        return graph  # replay() launches it on the current stream

    @contextlib.contextmanager
    def tf32(self):
        matmul = self.torch.backends.cuda.matmul
        before, matmul.allow_tf32 = matmul.allow_tf32, True
        try:
            yield
        finally:
            matmul.allow_tf32 = before

    def asarray(self, host, dtype=None, copy=None):
        """As the base; a read-only NumPy array (a memory map, ``np.load(mmap_mode="r")``)
        is shared on the CPU without torch's warning about writing to it: an input is
        only ever read, and copying it would double the memory a large data set needs."""
        if isinstance(host, np.ndarray) and not host.flags.writeable:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "The given NumPy array is not writable")
                return super().asarray(host, dtype, copy)
        return super().asarray(host, dtype, copy)

    def convert(self, a, dtype=None, what="array"):
        """As the base; a tensor that requires grad comes in detached (no copy): bpgpu
        computes its own gradients, and torch would otherwise record a graph of every
        operation a fit runs on it."""
        if isinstance(a, self.torch.Tensor) and a.requires_grad:
            a = a.detach()
        return super().convert(a, dtype, what)

    def to_numpy(self, a) -> np.ndarray:
        return a.detach().cpu().numpy().copy()

    @contextlib.contextmanager
    def threads(self, work: int, sharing: int = 1):
        """On the CPU, for ``sharing`` data-parallel ranks on this machine: the cores
        shared out among them (``torch.set_num_threads``, put back afterwards), unless
        ``OMP_NUM_THREADS`` or the like is set."""
        share = threads_per_process(sharing) if self.device.type == "cpu" else None
        if share is None:
            yield
            return
        before = self.torch.get_num_threads()
        self.torch.set_num_threads(share)
        try:
            yield
        finally:
            self.torch.set_num_threads(before)

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)
        elif self.device.type == "mps":
            self.torch.mps.synchronize()

    def staging(self):
        if self.device.type != "cuda":
            return super().staging()
        return TorchStaging(self.torch, self.device)

    def gpu_key(self):
        if self.device.type != "cuda":
            return None
        from . import _mpi

        try:  # the device's UUID (torch >= 2.0), else its index
            bus = self.torch.cuda.get_device_properties(self.where[1]).uuid
        except Exception:
            bus = None
        return _mpi.gpu_key(self.where[1], bus)

    def reduction_paths(self) -> list[str]:
        if self.device.type != "cuda":
            return ["host"]
        from . import _mpi

        return _mpi.gpu_paths()

    def allreduce_arrays(self, arrays, comm):
        """On the CPU each tensor is summed in place through a NumPy view of its memory
        (DLPack: no copy); on a GPU as one flat buffer (:meth:`allreduce`)."""
        if self.device.type != "cpu":
            return super().allreduce_arrays(arrays, comm)
        return [self.allreduce(a, comm) for a in arrays]

    def allreduce(self, flat, comm):
        """In place: on the CPU through a zero-copy NumPy view, on CUDA with NCCL (the
        tensor's device pointer on torch's current stream) or CUDA-aware MPI; through
        the host otherwise (:meth:`reduction`)."""
        from mpi4py import MPI

        on_cpu = self.device.type == "cpu"
        path = "host" if on_cpu else self.reduction(comm)
        if path == "host" and not on_cpu:
            return super().allreduce(flat, comm)
        flat = flat.detach().contiguous()
        if on_cpu:
            comm.Allreduce(MPI.IN_PLACE, np.from_dlpack(flat), op=MPI.SUM)
        elif path == "nccl":
            stream = self.torch.cuda.current_stream(self.device).cuda_stream
            self._reduction[2].sum(flat.data_ptr(), flat.numel(), flat.element_size(), stream)
        else:
            self.synchronize()  # MPI reads device memory outside torch's streams
            comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)
        return flat

    def translate(self, error):
        oom = getattr(self.torch, "OutOfMemoryError", None) or getattr(
            self.torch.cuda, "OutOfMemoryError", None
        )
        if oom is not None and isinstance(error, oom):
            return DeviceMemoryError(
                f"{self.device} is out of memory: {str(error).splitlines()[0]}. Lower "
                "batch_size, use smaller layers or float32, or free memory held elsewhere"
            )
        return None

    def info(self):
        t = self.torch
        if self.device.type == "cuda":
            device = t.cuda.get_device_name(self.device)
        else:
            device = str(self.device)
        return {"name": self.name, "version": t.__version__, "device": device}


class TorchStaging(PinnedStaging):
    """Pinned buffers from torch's pinned allocator; the copy on a side CUDA stream."""

    def __init__(self, torch, device):
        super().__init__()
        self.torch, self.device = torch, device
        self.stream = torch.cuda.Stream(device)

    def _pinned(self, count, dtype):
        kind = self.torch.from_numpy(np.empty(0, dtype)).dtype
        return self.torch.empty(count, dtype=kind, pin_memory=True).numpy()

    def _copy(self, rows):
        t = self.torch
        current = t.cuda.current_stream(self.device)
        src = t.from_numpy(rows)
        out = t.empty(src.shape, dtype=src.dtype, device=self.device)
        self.stream.wait_stream(current)
        with t.cuda.stream(self.stream):
            out.copy_(src, non_blocking=True)  # asynchronous: the source is pinned
        out.record_stream(self.stream)  # the allocator may not reuse it before the copy
        done = t.cuda.Event()
        done.record(self.stream)
        current.wait_event(done)
        return out, done


def create(arg: str | None = None) -> TorchBackend:
    return TorchBackend(arg)
