"""What a fit reports: the per-epoch History, and the Callback hooks it calls.

Plain data, below training and the network: checkpoints store a History as JSON, the
command line prints it, callbacks receive it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class History:
    """Per-epoch results of a fit (``val_*`` are NaN without validation data)."""

    epoch: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    time: list[float] = field(default_factory=list)  # seconds spent in each epoch
    best_epoch: int | None = None
    stopped_early: bool = False
    interrupted: bool = False  # Ctrl-C or on_batch_end: stopped after a batch, weights consistent
    seed: int | None = None
    compile_time: float = 0.0  # seconds a compiling backend (JAX) spent compiling in fit

    @property
    def history(self) -> dict[str, list]:
        """Keras-style ``{"loss": [...], "val_loss": [...], ...}``."""
        keys = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "time")
        return {k: list(getattr(self, k)) for k in keys}

    def to_json(self) -> dict[str, Any]:
        return {
            **self.history,
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
            "interrupted": self.interrupted,
            "seed": self.seed,
            "compile_time": self.compile_time,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> History:
        return cls(**d)

    def __repr__(self) -> str:
        if not self.epoch:
            return "History(no epochs)"
        n = len(self.epoch)
        parts = [f"{n} epoch" if n == 1 else f"{n} epochs"]
        for name in ("loss", "accuracy", "val_loss", "val_accuracy"):  # those it measured
            value = getattr(self, name)[-1]
            if not math.isnan(value):
                parts.append(f"{name} {value:.4g}")
        parts.append(f"best epoch {self.best_epoch}")
        if self.interrupted:
            parts.append("interrupted")
        return f"History({', '.join(parts)})"


class Callback:
    """Hooks into :meth:`MLP.fit`; override the ones you need.

    ``on_epoch_end`` gets ``logs`` = ``{"epoch", "loss", "accuracy", "val_loss",
    "val_accuracy", "time"}`` and may return True to stop training.
    ``on_batch_end`` gets the batch's 0-based index and no loss on purpose: reading it
    would sync the device. It may return True to stop after that batch, as Ctrl-C does
    (``history.interrupted`` set, a checkpoint of that position written; data-parallel,
    every rank stops after the next batch, when the request has reached them all). On a
    compiling backend (JAX) an epoch's full batches run as one program, which a callback
    that overrides ``on_batch_end`` turns back into one step at a time; set
    ``per_batch = False`` on a callback that does not need every batch. A callback
    whose ``on_epoch_end`` uses only its ``logs`` (not the network) may set
    ``sees_network = False``: on JAX, fit then runs the next epoch's program while the
    callback is called (a stop it asks for undoes that epoch).
    """

    per_batch: bool | None = None  # None: True when on_batch_end is overridden
    sees_network: bool = True  # on_epoch_end looks at the network's weights or outputs
    optimizer: Any = None  # the optimizer the fit runs (set_optimizer)

    def set_optimizer(self, opt, steps) -> None:
        """Called by fit before ``on_train_begin`` (Keras's ``set_model``): ``opt`` is the
        optimizer the fit runs (the object passed, or the one built from a name), whose
        ``lr`` a callback may change; ``steps()`` is the number of updates applied so
        far, a schedule's ``count`` (a device read on a compiling backend)."""
        self.optimizer, self.optimizer_steps = opt, steps

    def on_train_begin(self, net, history: History) -> None: ...

    def on_batch_end(self, net, batch: int) -> bool | None: ...

    def on_epoch_end(self, net, epoch: int, logs: dict[str, float]) -> bool | None: ...

    def on_train_end(self, net, history: History) -> None: ...


# the numbers of an epoch line, and their names there
_SHOWN = (
    ("loss", "loss"),
    ("accuracy", "acc"),
    ("val_loss", "val_loss"),
    ("val_accuracy", "val_acc"),
)


def epoch_line(epoch: int, epochs: int, logs: dict[str, float]) -> str:
    """A fit's progress as one line: ``epoch   3/50  loss 0.2193  acc 0.9539  val_loss
    0.2842  val_acc 0.9278  0.01s`` (what the fit did not measure is left out)."""
    line = f"epoch {epoch:>3}/{epochs}"
    for key, name in _SHOWN:
        if not math.isnan(logs[key]):
            line += f"  {name} {logs[key]:.4f}"
    return line + f"  {logs['time']:.2f}s"


class PrintEpochs(Callback):
    """``fit(verbose=True)``: :func:`epoch_line` on stdout after every epoch (numbers the
    fit reads anyway: no device sync of its own)."""

    per_batch = False
    sees_network = False  # the logs only

    def __init__(self, epochs: int):
        self.epochs = epochs

    def on_epoch_end(self, net, epoch: int, logs: dict[str, float]) -> None:
        print(epoch_line(epoch, self.epochs, logs), flush=True)
