"""How a backend's device buffers reach the other ranks: NCCL, CUDA-aware MPI, or the host.

A GPU backend sums gradients over the ranks of an mpi4py communicator by the best path
that *every* rank has (a rank on NCCL and another on MPI would wait for each other
forever), chosen once per communicator by one ``allgather``:

- ``"nccl"``: an NCCL communicator (CuPy's binding, its unique id broadcast over MPI)
  sums device buffers in place on the library's current stream; any library whose
  arrays expose a device pointer uses it (torch tensors too), with CuPy installed.
- ``"cuda-aware"``: the MPI library reads and writes device memory itself (mpi4py takes
  CuPy arrays and torch tensors as buffers through ``__cuda_array_interface__`` /
  DLPack); the queued work is synchronised first.
- ``"host"``: a copy to the host, ``MPI.Allreduce``, a copy back.
"""

from __future__ import annotations

import ctypes
import os
import socket
import warnings
from typing import Any

PATHS = ("nccl", "cuda-aware", "host")  # best first


def cuda_aware_mpi() -> bool:
    """Whether the loaded MPI library moves CUDA device buffers itself.

    ``BPGPU_CUDA_AWARE_MPI=1`` or ``0`` says so (a site whose MPI cannot be asked);
    otherwise the library's own answer, ``MPIX_Query_cuda_support()`` (MPICH >= 4,
    Open MPI >= 2), and False where it has no such function.
    """
    said = os.environ.get("BPGPU_CUDA_AWARE_MPI", "").strip().lower()
    if said:
        if said not in ("0", "1", "yes", "no", "true", "false"):
            raise ValueError(
                f"BPGPU_CUDA_AWARE_MPI must be 1 or 0; got {said!r} (unset it to ask the "
                "MPI library)"
            )
        return said in ("1", "yes", "true")
    from mpi4py import MPI  # noqa: F401  (loads and initialises the library first)

    query = _mpi_function("MPIX_Query_cuda_support")
    if query is None:
        return False
    query.restype = ctypes.c_int
    return bool(query())


def _mpi_function(name: str):
    """A C function of the MPI library mpi4py loaded, or None."""
    candidates = [None]  # the process's global symbols
    try:  # Linux: the library's own file, as mpi4py loaded it
        with open("/proc/self/maps") as f:
            candidates += sorted({line.split()[-1] for line in f if "libmpi" in line})
    except OSError:
        pass
    for path in candidates:
        try:
            lib = ctypes.CDLL(path, mode=getattr(os, "RTLD_NOLOAD", 0) if path else 0)
            return getattr(lib, name)
        except (OSError, AttributeError):
            continue
    return None


def agree_on_path(comm: Any, mine: list[str], gpu: Any = None) -> str:
    """The best path in ``mine`` (this rank's, best first) that every rank has
    (collective); ``"host"`` always is. ``gpu`` names this rank's GPU (its machine and
    device, see :func:`gpu_key`; None: no GPU): NCCL takes one GPU per rank, so where
    two ranks share one it is left out, with a warning on rank 0 saying how to fix it."""
    everyone = comm.allgather((list(mine), gpu))
    common = [p for p in PATHS if all(p in theirs for theirs, _ in everyone)] + ["host"]
    used = [g for _, g in everyone if g is not None]
    shared = [r for r, (_, g) in enumerate(everyone) if g is not None and used.count(g) > 1]
    if common[0] != "nccl" or not shared:
        return common[0]
    if getattr(comm, "Get_rank", lambda: 0)() == 0:
        warnings.warn(
            f"ranks {', '.join(map(str, shared))} share a GPU ({everyone[shared[0]][1]}) and "
            f"NCCL needs one GPU per rank, so gradients are summed by {common[1]} instead; "
            "give each rank its own device: backend=bpgpu.distributed.rank_backend(comm, "
            "'cupy')",
            UserWarning,
            stacklevel=4,
        )
    return common[1]


def gpu_key(index: int, bus_id: Any) -> tuple[str, str]:
    """What tells two ranks' GPUs apart: the machine and the device's PCI bus id or UUID
    (not its index, which ``CUDA_VISIBLE_DEVICES`` renumbers per rank)."""
    return socket.gethostname(), str(bus_id if bus_id is not None else index)


class Nccl:
    """An NCCL communicator over the ranks of ``comm`` on CUDA device ``index``."""

    def __init__(self, comm: Any, index: int):
        import cupy
        from cupy.cuda import nccl

        self.nccl = nccl
        uid = comm.bcast(nccl.get_unique_id() if comm.Get_rank() == 0 else None, root=0)
        with cupy.cuda.Device(index):
            self.comm = nccl.NcclCommunicator(comm.Get_size(), uid, comm.Get_rank())

    def sum(self, ptr: int, count: int, itemsize: int, stream: int) -> None:
        """Sum ``count`` floats at device address ``ptr`` over the ranks, in place, queued
        on ``stream``."""
        kind = {4: self.nccl.NCCL_FLOAT32, 8: self.nccl.NCCL_FLOAT64}[itemsize]
        self.comm.allReduce(ptr, ptr, count, kind, self.nccl.NCCL_SUM, stream)


def gpu_paths() -> list[str]:
    """The paths a rank with CUDA arrays could use here, best first."""
    found = [("nccl", has_nccl()), ("cuda-aware", cuda_aware_mpi())]
    return [p for p, ok in found if ok] + ["host"]


def has_nccl() -> bool:
    """Whether CuPy with NCCL is importable here."""
    try:
        from cupy.cuda import nccl  # noqa: F401
    except Exception:  # no CuPy, a build without NCCL, or a broken CUDA install
        return False
    return True
