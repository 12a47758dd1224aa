"""The callbacks a :class:`~bpgpu.trainer.Trainer` adds from fit's own options: early
stopping (``patience``, ``min_delta``, ``restore_best``) and the checkpoint
(``checkpoint=``). They keep their state in the fit's :class:`~bpgpu.runstate.Run`, so
that a checkpoint holds it and a resume carries on where the run stopped.

The trainer calls them as it calls a user's callbacks: early stopping first (a user's
``on_epoch_end`` sees ``history.best_epoch`` and ``stopped_early`` of this epoch, and
the best weights are back before a user's ``on_train_end``), the checkpoint last (it
holds what every other callback decided).
"""

from __future__ import annotations

from bpgpu.callbacks import Callback
from bpgpu.history import History
from bpgpu.runstate import Run, save_checkpoint
from bpgpu.settings import Settings


class EarlyStopping(Callback):
    """Track the best epoch by the validation loss (the training loss without validation
    data) and stop after ``settings.patience`` epochs without an improvement larger than
    ``settings.min_delta``; with ``restore_best``, the best epoch's weights are the
    network's when the fit ends (not after an interruption: those weights are kept).

    Without ``patience`` it only records ``history.best_epoch`` (and reads the logs
    alone). The state (best value, epochs waited, best weights) is ``run.best``.
    """

    per_batch = False

    def __init__(self, run: Run, settings: Settings, validation: bool, restore_best=True):
        self.run, self.validation = run, validation
        self.patience, self.min_delta = settings.patience, settings.min_delta
        self.restore_best = bool(restore_best)
        self.sees_network = self.patience is not None  # it copies the best weights

    def on_epoch_end(self, net, epoch: int, logs: dict[str, float]) -> bool:
        best, h = self.run.best, self.run.history
        monitored = logs["val_loss"] if self.validation else logs["loss"]
        if monitored < best.value - self.min_delta:
            best.value, best.wait = monitored, 0
            best.params = net.model.copy(net.model.params) if self.sees_network else None
            h.best_epoch = epoch
        else:
            best.wait += 1
        if self.patience is not None and best.wait >= self.patience:
            h.stopped_early = True
        return h.stopped_early

    def on_train_end(self, net, history: History) -> None:
        best = self.run.best.params
        if self.restore_best and not history.interrupted and best is not None:
            net.model.params = best


class Checkpointing(Callback):
    """Write the run to ``path`` after every epoch (:meth:`on_epoch_end`) and where an
    interruption stopped it (:meth:`save` with the position); data-parallel, rank 0
    writes and every rank waits for the file."""

    per_batch = False

    def __init__(self, path, run: Run, settings: Settings, dist=None):
        self.path, self.run, self.settings, self.dist = path, run, settings, dist

    def on_epoch_end(self, net, epoch: int, logs: dict[str, float]) -> None:
        self.save(net)

    def save(self, net, position=None, rng_state=None) -> None:
        """The run as it is now; mid-epoch, ``position`` is where the epoch stopped and
        ``rng_state`` the generator before its permutation."""
        dist = self.dist
        if dist is None or dist.root:
            save_checkpoint(self.path, net, net.model, self.run, self.settings, position, rng_state)
        if dist is not None:
            dist.comm.Barrier()
