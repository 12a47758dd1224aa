"""The pieces of one epoch that :class:`bpgpu.trainer.Trainer` puts together.

:class:`Epoch` is what one pass over the batches leaves for the end of the epoch;
:class:`Numbers` the end-of-epoch numbers asked for and not read yet; :class:`Tally`
counts correct predictions a group of batches at a time; :func:`compiled_epoch` says
when the full batches run as one compiled program.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bpgpu.batches import row_bytes
from bpgpu.callbacks import has_batch_hook


@dataclass
class Epoch:
    """What one pass over the batches leaves for the end of the epoch."""

    index: int  # 0-based
    t0: float
    first: int  # the batch it started from (a mid-epoch resume starts later)
    done: int  # batches finished (fewer than all: interrupted)
    losses: list  # per-batch summed costs, device scalars (with train_metrics)
    rights: list  # per-batch correct counts, device scalars
    before: list | None  # a resumed epoch's earlier losses (None: unknown)
    correct_before: int | None
    perm: Any  # the device permutation (None: in order)
    saved: tuple  # parameters and optimizer state at the epoch's start
    rng_before: dict  # the generator before this epoch's permutation


class Tally:
    """Correct predictions of many batches, counted a group at a time: the outputs and
    labels of the batches are kept (at most ``BYTES`` of outputs) and counted in one
    argmax, one comparison and one count instead of three operations a step, which on
    a small network are a noticeable part of the step (and on a GPU, three kernel
    launches). The counts are integers: the same totals in any grouping."""

    BYTES = 4 << 20

    def __init__(self, model):
        self.model, self.Ys, self.Ls, self.rows, self.found = model, [], [], 0, []
        self.limit = None  # rows of outputs held at most, from the first batch's row size

    def add(self, Y, labels) -> None:
        if self.limit is None:
            self.limit = max(1, self.BYTES // row_bytes(self.model.xp, Y))
        self.Ys.append(Y)
        self.Ls.append(labels)
        self.rows += Y.shape[0]
        if self.rows >= self.limit:
            self._count()

    def counts(self) -> list:
        """The device counts of the groups so far (0-d integer arrays)."""
        self._count()
        return self.found

    def _count(self) -> None:
        if self.Ys:
            xp = self.model.xp
            Y = self.Ys[0] if len(self.Ys) == 1 else xp.concat(self.Ys)
            L = self.Ls[0] if len(self.Ls) == 1 else xp.concat(self.Ls)
            self.found.append(self.model.correct(Y, L))
            self.Ys, self.Ls, self.rows = [], [], 0


def compiled_epoch(model, data, trainer) -> bool:
    """Whether the epoch's full batches run as one compiled program: on a compiling
    backend (JAX), unless a callback wants every batch (``on_batch_end``; one may say
    otherwise with ``per_batch = False``), anomaly mode checks every layer, the fit is
    data-parallel, or the data are streamed."""
    if not model.backend.compiles or trainer.anomaly or trainer.dist is not None:
        return False
    if data.host is not None:
        return False
    for cb in trainer.callbacks:
        per_batch = getattr(cb, "per_batch", None)
        if per_batch is None:
            per_batch = has_batch_hook(cb)
        if per_batch:
            return False
    return True


def epoch_sum(ops, values: list):
    """The sum of device scalars and per-batch vectors alike (a compiled epoch gives
    vectors; one of them, the usual case there, is summed without a reshape and a
    concatenation: two operations fewer an epoch)."""
    xp = ops.xp
    if len(values) == 1 and values[0].ndim <= 1:
        return xp.sum(values[0])
    if all(v.ndim == 0 for v in values):  # an eager epoch's scalars
        return ops.sum_scalars(values)
    return xp.sum(xp.concat([xp.reshape(v, (-1,)) for v in values]))


@dataclass
class Numbers:
    """An epoch's end-of-epoch numbers on the device, asked for and not read yet: every
    one before the first is read, so that on an asynchronous device they are computed
    behind the epoch's work, not one round trip each after it."""

    ok: Any  # every parameter finite
    right: Any  # correct predictions (None: not counted)
    total: Any  # summed costs (None: without train_metrics)


def batch_losses(model, losses: list, dist) -> list[float]:
    """Per-batch summed costs as host floats (scalars, or a compiled epoch's vectors),
    summed over the ranks when data-parallel."""
    host = [float(x) for v in losses for x in model.backend.to_numpy(v).reshape(-1).tolist()]
    return host if dist is None else dist.sum_numbers(host)
