"""Data-parallel training over MPI: one Allreduce of a flat gradient buffer per step.

Every rank holds the same weights and the same data. Each global batch (the permutation
comes from the shared host seed) is split into contiguous shares, one per rank; each rank
computes the gradients of the *global* batch mean on its share, and one Allreduce sums
them (plus one number: whether any rank was asked to stop), so every rank takes the same
optimizer step and the weights stay bit-identical. The result equals the single-process
fit with the same global batch size, to rounding (the sum runs in another order).

Everything else is decided together: the epoch's loss and correct count are summed once
per epoch (divergence and early stopping follow from the same numbers on every rank), a
stop requested on any rank (Ctrl-C, a callback) stops all of them at the same batch,
files are written by rank 0 only, and arguments are checked collectively at the start
(data, network and settings must be the same on every rank). An exception on one rank
during training ends the whole job (``MPI.Abort``) with that rank's message, so no rank
waits forever in a collective.

The reduction itself is the backend's (``Backend.allreduce``): in place on NumPy and on
torch CPU tensors (a zero-copy view), and for GPU arrays the best path every rank has:
NCCL, CUDA-aware MPI, or host staging (``bpgpu.backends._mpi``).
"""

from __future__ import annotations

import logging
import sys
import traceback
from typing import Any

log = logging.getLogger("bpgpu")


class Distributed:
    """The ranks of an mpi4py communicator, as ``fit`` uses them."""

    def __init__(self, comm: Any, backend):
        if not all(hasattr(comm, m) for m in ("Get_rank", "Get_size", "Allreduce", "allgather")):
            raise TypeError(
                f"comm must be an mpi4py communicator (e.g. MPI.COMM_WORLD); got {comm!r}"
            )
        self.comm, self.backend = comm, backend
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.ranks_here = ranks_on_this_machine(comm)  # they share its cores

    @property
    def root(self) -> bool:
        return self.rank == 0

    def share(self, rows: int) -> tuple[int, int]:
        """This rank's contiguous share ``[lo, hi)`` of a batch of ``rows`` rows."""
        return rows * self.rank // self.size, rows * (self.rank + 1) // self.size

    def batches(self, n: int, batch_size: int) -> tuple[list[int], list[int]]:
        """``(sizes, rows)``: this rank's share of every global batch, and the global
        batches' sizes (the last one shorter)."""
        rows = [min(batch_size, n - s) for s in range(0, n, batch_size)]
        return [hi - lo for lo, hi in map(self.share, rows)], rows

    def local_order(self, perm, n: int, batch_size: int):
        """This rank's rows of an epoch, batch after batch: its share of every global
        batch of the host permutation ``perm`` (None: in order). Each rank gathers only
        its own rows."""
        import numpy as np

        order = np.arange(n) if perm is None else perm
        parts = []
        for s in range(0, n, batch_size):
            lo, hi = self.share(min(batch_size, n - s))
            parts.append(order[s + lo : s + hi])
        return np.concatenate(parts)

    def agree(self, parts: dict[str, Any]) -> None:
        """Refuse, on every rank, ``parts`` (the data, the network, the settings, by name)
        that are not the same on all of them, naming the first that differs and how."""
        gathered = self.comm.allgather(parts)
        for r, theirs in enumerate(gathered):
            for name, value in theirs.items():
                first = gathered[0][name]
                if value != first:
                    raise ValueError(
                        f"rank {r} passed other {name} than rank 0 ({_difference(value, first)}); "
                        "every rank must pass the same data, network and settings to a "
                        "data-parallel fit"
                    )

    def check(self, error: BaseException | None) -> None:
        """Collective: when any rank failed (``error``), raise on every rank with the
        first failing rank's message (so a refused fit is refused everywhere)."""
        found = self.comm.allgather(None if error is None else f"{type(error).__name__}: {error}")
        for r, msg in enumerate(found):
            if msg is not None:
                if error is not None and r == self.rank:
                    raise error
                raise ValueError(f"rank {r} refused the fit: {msg}")

    def bcast(self, value: Any) -> Any:
        return self.comm.bcast(value, root=0)

    def sum_grads(self, xp, grads: list, stop: bool | None = None) -> tuple[list, bool]:
        """The gradients summed over the ranks (the backend's Allreduce: one flat buffer,
        or one bucket per array where that copies less) and whether any rank asked to
        stop (one more number in the same reduction; ``stop=None``: no flag, False)."""
        if stop is None:
            return self.backend.allreduce_arrays(list(grads), self.comm), False
        flag = xp.asarray([1.0 if stop else 0.0], dtype=grads[0].dtype, device=self.backend.device)
        *out, flag = self.backend.allreduce_arrays(list(grads) + [flag], self.comm)
        return out, bool(flag[0] > 0)

    def sum_numbers(self, values: list[float]) -> list[float]:
        """Host numbers summed over the ranks (the epoch's metrics: once per epoch)."""
        return [sum(v) for v in zip(*self.comm.allgather(list(values)))]

    def abort(self, error: BaseException) -> None:
        """End the whole job: this rank's message on stderr, then ``MPI.Abort``."""
        print(
            f"bpgpu rank {self.rank} of {self.size}: {type(error).__name__}: {error}\n"
            + "".join(traceback.format_exception(error)[-3:]),
            file=sys.stderr,
            flush=True,
        )
        self.comm.Abort(1)


def ranks_on_this_machine(comm: Any) -> int:
    """How many ranks of ``comm`` run on this rank's machine (collective; 1 for a
    communicator that cannot tell, a stand-in of the tests)."""
    try:
        from mpi4py import MPI

        machine = comm.Split_type(MPI.COMM_TYPE_SHARED)
    except (ImportError, AttributeError, NotImplementedError):
        return 1
    try:
        return machine.Get_size()
    finally:
        machine.Free()


def rank_backend(comm: Any, backend: str | None = None) -> str | None:
    """The backend this rank should build its network on: one GPU per rank, by its rank
    among the ranks on its machine (collective).

    ``"cupy"`` becomes ``"cupy:N"``, ``"torch:cuda"`` ``"torch:cuda:N"`` and
    ``"jax:cuda"`` ``"jax:cuda:N"``, ``N`` the local rank modulo the machine's GPU count;
    ``"auto"`` (and None, which reads ``$BPGPU_BACKEND`` or means auto) does so with CuPy
    where it works and is ``"numpy"`` otherwise; any other name comes back as it is::

        comm = MPI.COMM_WORLD
        net = bpgpu.MLP([784, 256, 10], backend=rank_backend(comm, "cupy"))
        net.fit(X, y, comm=comm)
    """
    import os

    from mpi4py import MPI

    from bpgpu import backends

    machine = comm.Split_type(MPI.COMM_TYPE_SHARED)  # collective on every rank
    local = machine.Get_rank()
    machine.Free()
    name = backend or os.environ.get("BPGPU_BACKEND") or "auto"
    if name not in ("auto", "cupy", "torch:cuda", "jax:cuda"):
        return backend
    try:
        b = backends.get_backend("cupy" if name == "auto" else name)
    except backends.BackendUnavailable:
        if name == "auto":
            return "numpy"
        raise
    if b.library == "cupy":
        return f"cupy:{local % b.cupy.cuda.runtime.getDeviceCount()}"
    if b.library == "jax":
        return f"jax:cuda:{local % len(b.jax.devices('gpu'))}"
    return f"torch:cuda:{local % b.torch.cuda.device_count()}"


def describe(comm: Any, backend) -> str:
    """Which MPI library, how many ranks, which device each rank uses and how its
    gradients are summed (collective)."""
    try:
        from mpi4py import MPI

        library = MPI.Get_library_version().splitlines()[0].strip()
    except Exception as e:  # a stand-in communicator, or no MPI library
        library = f"unknown ({type(e).__name__})"
    info = backend.info()
    host = "MPI in host memory" if backend.where[0] == "cpu" else "MPI through host copies"
    way = {"nccl": "NCCL", "cuda-aware": "CUDA-aware MPI", "host": host}[backend.reduction(comm)]
    mine = f"rank {comm.Get_rank()}: {backend.name} on {info['device']}; gradients summed by {way}"
    ranks = comm.allgather(mine)
    return f"MPI: {library}; {comm.Get_size()} ranks\n" + "\n".join(ranks)


def _difference(mine: Any, rank0: Any) -> str:
    """What differs between two records (dicts: the first key, recursively), shortly."""
    if isinstance(mine, dict) and isinstance(rank0, dict):
        for key in sorted(set(mine) | set(rank0), key=str):
            if mine.get(key) != rank0.get(key):
                return f"{key}: {_difference(mine.get(key), rank0.get(key))}"
    return f"{mine!r:.80} vs {rank0!r:.80}"
