"""NumPy on the CPU: the reference backend and the laptop fallback."""

from __future__ import annotations

import contextlib
import os
import platform

import numpy as np

from ._base import Backend, threads_per_process
from .numpy_fast import NumpyOps
from .numpy_xp import namespace

xp = namespace()


class NumpyBackend(Backend):
    """NumPy through array-api-compat (its hot reductions called directly, see
    :mod:`.numpy_xp`); synchronous, so ``synchronize`` is a no-op."""

    library = "numpy"

    def __init__(self, arg: str | None = None):
        if arg not in (None, "", "cpu"):
            raise ValueError(f"backend 'numpy' runs on the CPU only; got device {arg!r}")
        self.name = "numpy"
        self.xp = xp
        self.device = "cpu"
        self._ops = NumpyOps(xp)

    # Below this many multiply-adds in the largest product of a step, one BLAS thread:
    # a second one gains little on products this small, and when another process keeps
    # the other core busy OpenBLAS's spinning threads slow such a fit many times over.
    SINGLE_THREAD_BELOW = 8_000_000

    def threads(self, work: int, sharing: int = 1):
        """One BLAS thread for small products, and for ``sharing`` data-parallel ranks on
        this machine the cores shared out among them (unless ``OMP_NUM_THREADS`` or the
        like is set); ``BPGPU_BLAS_THREADS=N`` sets N instead (``auto`` or unset: as
        said), through threadpoolctl; a null context without it."""
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            return contextlib.nullcontext()
        want = os.environ.get("BPGPU_BLAS_THREADS", "auto").strip() or "auto"
        if want != "auto":
            try:
                n = int(want)
            except ValueError:
                raise ValueError(
                    f"BPGPU_BLAS_THREADS must be a positive integer or 'auto'; got {want!r}"
                ) from None
            return threadpool_limits(max(1, n), user_api="blas")
        if work < self.SINGLE_THREAD_BELOW:
            return threadpool_limits(1, user_api="blas")
        share = threads_per_process(sharing)
        if share is not None:  # ranks would oversubscribe the cores, thread for thread
            return threadpool_limits(share, user_api="blas")
        return contextlib.nullcontext()

    def allreduce(self, flat, comm):
        """In place: ``flat`` is a fresh host buffer already."""
        from mpi4py import MPI

        flat = np.ascontiguousarray(flat)
        comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)
        return flat

    def allreduce_arrays(self, arrays, comm):
        """In place, one collective per array: no flat copy (the arrays are fresh
        gradients, contiguous), which on a large network costs more than the sums."""
        from mpi4py import MPI

        out = []
        for a in arrays:
            a = a if a.flags.c_contiguous and a.flags.writeable else np.ascontiguousarray(a)
            comm.Allreduce(MPI.IN_PLACE, a, op=MPI.SUM)
            out.append(a)
        return out

    def info(self):
        return {
            "name": self.name,
            "version": np.__version__,
            "device": f"CPU ({platform.machine() or 'unknown'})",
        }


def create(arg: str | None = None) -> NumpyBackend:
    return NumpyBackend(arg)
