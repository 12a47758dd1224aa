"""The hooks a fit calls (:class:`Callback`) and the callbacks that ship with bpgpu: the
progress lines of ``verbose=True`` (:class:`PrintEpochs`) and :class:`ReduceLROnPlateau`
(Keras's meaning)."""

from __future__ import annotations

import math
import warnings
from typing import Any

from bpgpu import schedules
from bpgpu._args import integer, real
from bpgpu.history import History
from bpgpu.optimizers import lr_text

__all__ = ["Callback", "PrintEpochs", "ReduceLROnPlateau", "epoch_line", "has_batch_hook"]


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

    Examples
    --------
    >>> import numpy as np
    >>> import bpgpu
    >>> class StopBelow(bpgpu.Callback):
    ...     def on_epoch_end(self, net, epoch, logs):
    ...         return logs["loss"] < 0.6   # True: stop after this epoch
    >>> X, y = np.random.default_rng(0).normal(size=(40, 2)), np.arange(40) % 2
    >>> net = bpgpu.MLP([2, 8, 2], backend="numpy", seed=0)
    >>> h = net.fit(X, y, epochs=50, lr=0.5, callbacks=[StopBelow()])
    >>> len(h.loss) < 50 or h.loss[-1] >= 0.6
    True
    """

    per_batch: bool | None = None  # None: True when on_batch_end is overridden
    sees_network: bool = True  # on_epoch_end looks at the network's weights or outputs
    optimizer: Any = None  # the optimizer the fit runs (set_optimizer)

    def set_optimizer(self, opt, steps) -> None:
        """Give the callback the fit's optimizer; called before :meth:`on_train_begin`.

        Keras's ``set_model``. A callback may change ``self.optimizer.lr`` (a number,
        or a schedule of :mod:`bpgpu.schedules`); the next step uses it.

        Parameters
        ----------
        opt : Optimizer
            The optimizer the fit runs (the object passed, or the one built from a
            name), kept as ``self.optimizer``.
        steps : callable
            ``steps()`` is the number of updates applied so far, a schedule's
            ``count`` (a device read on a compiling backend), kept as
            ``self.optimizer_steps``.

        Examples
        --------
        >>> import numpy as np
        >>> import bpgpu
        >>> class HalveEachEpoch(bpgpu.Callback):
        ...     def on_epoch_end(self, net, epoch, logs):
        ...         self.optimizer.lr = self.optimizer.lr / 2
        >>> net = bpgpu.MLP([2, 4, 2], seed=0)
        >>> cb = HalveEachEpoch()
        >>> X, y = np.ones((8, 2)), np.arange(8) % 2
        >>> _ = net.fit(X, y, epochs=3, lr=0.4, callbacks=[cb], verbose=False)
        >>> cb.optimizer.lr, cb.optimizer_steps()
        (0.05, 3)
        """
        self.optimizer, self.optimizer_steps = opt, steps

    def on_train_begin(self, net, history: History) -> None:
        """Called once before the first epoch (after :meth:`set_optimizer`).

        Parameters
        ----------
        net : MLP
            The network being trained.
        history : History
            The history this fit fills in (with the earlier epochs on a resume).

        Examples
        --------
        >>> import numpy as np
        >>> import bpgpu
        >>> class Announce(bpgpu.Callback):
        ...     def on_train_begin(self, net, history):
        ...         print("training", net.n_params, "parameters")
        >>> net = bpgpu.MLP([2, 4, 2], seed=0)
        >>> _ = net.fit(np.ones((8, 2)), np.arange(8) % 2, epochs=1, callbacks=[Announce()],
        ...             verbose=False)
        training 22 parameters
        """

    def on_batch_end(self, net, batch: int) -> bool | None:
        """Called after every batch's update; return True to stop after it.

        Overriding it makes a compiling backend (JAX) run one step at a time; set
        ``per_batch = False`` on a callback that does not need every batch.

        Parameters
        ----------
        net : MLP
            The network being trained.
        batch : int
            The batch's index in the epoch, from 0. No loss is given on purpose:
            reading it would wait for the device.

        Returns
        -------
        bool or None
            True stops the fit after this batch, as Ctrl-C does
            (``history.interrupted`` is set, a checkpoint of the position written).

        Examples
        --------
        >>> import numpy as np
        >>> import bpgpu
        >>> class ThreeBatches(bpgpu.Callback):
        ...     def on_batch_end(self, net, batch):
        ...         return batch == 2
        >>> net = bpgpu.MLP([2, 4, 2], seed=0)
        >>> h = net.fit(np.ones((64, 2)), np.arange(64) % 2, epochs=5, batch_size=8,
        ...             callbacks=[ThreeBatches()], verbose=False)
        >>> h.interrupted
        True
        """

    def on_epoch_end(self, net, epoch: int, logs: dict[str, float]) -> bool | None:
        """Called after every epoch; return True to stop training.

        Parameters
        ----------
        net : MLP
            The network being trained.
        epoch : int
            The epoch just finished, from 1.
        logs : dict
            ``"epoch"``, ``"loss"``, ``"accuracy"``, ``"val_loss"``, ``"val_accuracy"``
            (NaN where not measured) and ``"time"`` (the epoch's seconds).

        Returns
        -------
        bool or None
            True stops the fit after this epoch (``history.stopped_early`` stays
            False: that flag belongs to ``early_stopping``).

        Examples
        --------
        The class's example stops a fit from here; the base class does nothing:

        >>> import bpgpu
        >>> bpgpu.Callback().on_epoch_end(None, 1, {}) is None   # the base does nothing
        True
        """

    def on_train_end(self, net, history: History) -> None:
        """Called once after the last epoch, also after a stop or Ctrl-C.

        Parameters
        ----------
        net : MLP
            The trained network (best weights restored, where the fit restores them).
        history : History
            The fit's complete history.

        Examples
        --------
        >>> import numpy as np
        >>> import bpgpu
        >>> class Report(bpgpu.Callback):
        ...     def on_train_end(self, net, history):
        ...         print(len(history.loss), "epochs")
        >>> net = bpgpu.MLP([2, 4, 2], seed=0)
        >>> _ = net.fit(np.ones((8, 2)), np.arange(8) % 2, epochs=3, callbacks=[Report()],
        ...             verbose=False)
        3 epochs
        """


def has_batch_hook(cb) -> bool:
    """Whether a callback has an ``on_batch_end`` of its own.

    Parameters
    ----------
    cb : Callback
        The callback.

    Returns
    -------
    bool
        False where ``on_batch_end`` is the base class's, which does nothing.

    Examples
    --------
    >>> import bpgpu
    >>> from bpgpu.callbacks import has_batch_hook
    >>> class Every(bpgpu.Callback):
    ...     def on_batch_end(self, net, batch):
    ...         pass
    >>> has_batch_hook(Every()), has_batch_hook(bpgpu.ReduceLROnPlateau())
    (True, False)
    """
    return getattr(type(cb), "on_batch_end", None) is not Callback.on_batch_end


# the numbers of an epoch line, and their names there
_SHOWN = (
    ("loss", "loss"),
    ("accuracy", "acc"),
    ("val_loss", "val_loss"),
    ("val_accuracy", "val_acc"),
)


def epoch_line(epoch: int, epochs: int, logs: dict[str, float]) -> str:
    """A fit's progress as one line, what ``verbose=True`` prints.

    Parameters
    ----------
    epoch : int
        The epoch, from 1.
    epochs : int
        The fit's last epoch.
    logs : dict
        The epoch's logs (:meth:`Callback.on_epoch_end`); the numbers that are NaN
        (not measured) are left out.

    Returns
    -------
    str
        ``epoch   3/50  loss 0.2193  acc 0.9539  val_loss 0.2842  val_acc 0.9278  0.01s``.

    Examples
    --------
    >>> from bpgpu.callbacks import epoch_line
    >>> nan = float("nan")
    >>> epoch_line(3, 50, {"loss": 0.2193, "accuracy": 0.9539, "val_loss": nan,
    ...                    "val_accuracy": nan, "time": 0.0123})
    'epoch   3/50  loss 0.2193  acc 0.9539  0.01s'
    """
    line = f"epoch {epoch:>3}/{epochs}"
    for key, name in _SHOWN:
        if not math.isnan(logs[key]):
            line += f"  {name} {logs[key]:.4f}"
    return line + f"  {logs['time']:.2f}s"


class PrintEpochs(Callback):
    """The progress lines of ``fit(verbose=True)``: :func:`epoch_line` after every epoch.

    It prints numbers the fit reads anyway, so it adds no wait for the device.

    Parameters
    ----------
    epochs : int
        The fit's last epoch, shown in each line.

    Examples
    --------
    >>> import numpy as np
    >>> import bpgpu
    >>> from bpgpu.callbacks import PrintEpochs
    >>> net = bpgpu.MLP([2, 4, 2], seed=0)
    >>> _ = net.fit(np.ones((8, 2)), np.arange(8) % 2, epochs=2, verbose=False,
    ...             callbacks=[PrintEpochs(2)])
    epoch   1/2  loss ...  acc ...s
    epoch   2/2  loss ...  acc ...s
    """

    per_batch = False
    sees_network = False  # the logs only

    def __init__(self, epochs: int):
        self.epochs = epochs

    def on_epoch_end(self, net, epoch: int, logs: dict[str, float]) -> None:
        print(epoch_line(epoch, self.epochs, logs), flush=True)


class ReduceLROnPlateau(Callback):
    """Multiply the optimizer's learning rate by ``factor`` when the monitored number has
    not improved for ``patience`` epochs (Keras's ``ReduceLROnPlateau``).

    An epoch improves on the best so far when its value is below ``best - min_delta``
    (above ``best + min_delta`` for an accuracy). After ``patience`` epochs without an
    improvement the rate becomes ``max(rate * factor, min_lr)`` (nothing changes once it
    is at ``min_lr``), and the wait starts again after a cooldown: the next ``cooldown``
    epochs count it down, and the epoch that brings it to 0 is counted again (Keras's
    arithmetic: with ``patience=1``, ``cooldown=2`` and a flat loss the rate is reduced
    after epochs 2, 4, 6, ...).
    With a schedule (:mod:`bpgpu.schedules`) the whole schedule is scaled, so it keeps
    its shape: its rate at the current step becomes ``max(rate * factor, min_lr)`` and
    every later rate is scaled by the same factor. The reduced rate (or scaled schedule)
    is part of a checkpoint; the callback's own counters start again on resume.

    Parameters
    ----------
    monitor : str, default "val_loss"
        A key of the epoch's logs: "loss", "accuracy", "val_loss", "val_accuracy".
        Without validation data a ``val_`` key falls back to the training number, with a
        warning.
    factor : float, default 0.1
        What a reduction multiplies the rate by (> 0 and < 1).
    patience : int, default 10
        Epochs without improvement before a reduction (>= 1).
    min_delta : float, default 1e-4
        The least change that counts as an improvement (>= 0).
    cooldown : int, default 0
        Epochs after a reduction during which epochs are not counted (>= 0).
    min_lr : float, default 0.0
        The rate a reduction never goes below (>= 0).
    mode : {"auto", "min", "max"}, default "auto"
        Whether lower or higher is better; "auto": higher for an accuracy.
    verbose : bool, default False
        Print a line at each reduction.

    Examples
    --------
    With ``min_delta`` larger than any change, no epoch improves on the first, so the
    rate is halved after every later epoch:

    >>> import bpgpu
    >>> X, y = bpgpu.datasets.load_digits()
    >>> net = bpgpu.MLP([64, 32, 10], seed=0)
    >>> cb = bpgpu.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=10.0)
    >>> _ = net.fit(X / 16, y, epochs=4, lr=0.4, callbacks=[cb], verbose=False)
    >>> cb.reductions, cb.optimizer.lr
    ([2, 3, 4], 0.05)
    """

    per_batch = False  # looks at epochs only: JAX keeps its compiled epoch
    # not False: the rate it sets must reach the next epoch, which look-ahead (for
    # callbacks that only read logs) would already have dispatched
    sees_network = True

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
        mode: str = "auto",
        verbose: bool = False,
    ):
        keys = ("loss", "accuracy", "val_loss", "val_accuracy")
        if monitor not in keys:
            raise ValueError(f"monitor must be one of {', '.join(keys)}; got {monitor!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max'; got {mode!r}")
        self.monitor = monitor
        self.factor = real("factor", factor, 0.0, 1.0)
        self.patience = integer("patience", patience)
        self.min_delta = real("min_delta", min_delta, 0.0, lo_open=False)
        self.cooldown = integer("cooldown", cooldown, 0)
        self.min_lr = real("min_lr", min_lr, 0.0, lo_open=False)
        self.mode = mode
        self.verbose = bool(verbose)
        self.on_train_begin(None, History())

    def on_train_begin(self, net, history: History) -> None:
        self.best = math.nan  # nothing seen yet
        self.wait = 0
        self.cooldown_left = 0
        self._watching = self.monitor
        self.reductions: list[int] = []  # the epochs after which the rate was reduced

    def _better(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if math.isnan(self.best):
            return True
        higher = self.mode == "max" or (self.mode == "auto" and "acc" in self._watching)
        if higher:
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def on_epoch_end(self, net, epoch: int, logs: dict[str, float]) -> None:
        value = logs[self._watching]
        if math.isnan(value) and self._watching.startswith("val_"):
            self._watching = self._watching[4:]
            warnings.warn(
                f"ReduceLROnPlateau: no validation data, so {self.monitor} is NaN; watching "
                f"{self._watching} (pass validation_data or validation_split)",
                stacklevel=2,
            )
            value = logs[self._watching]
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.wait = 0
        if self._better(value):
            self.best, self.wait = value, 0
        elif self.cooldown_left == 0:
            self.wait += 1
            if self.wait >= self.patience:
                if self._reduce():
                    self.reductions.append(epoch)
                    if self.verbose:
                        print(f"epoch {epoch}: learning rate now {lr_text(self.optimizer.lr)}")
                self.cooldown_left, self.wait = self.cooldown, 0

    def _reduce(self) -> bool:
        """Lower the optimizer's rate (or scale its schedule); False at ``min_lr``."""
        opt = self.optimizer
        if opt is None:
            raise RuntimeError("ReduceLROnPlateau runs inside fit(callbacks=[...]) only")
        lr: Any = opt.lr
        schedule = isinstance(lr, schedules.Schedule)
        if callable(lr) and not schedule:
            raise TypeError(
                f"ReduceLROnPlateau scales the optimizer's rate; its lr {lr!r} is a plain "
                "function, which cannot be scaled: use a schedule of bpgpu.schedules"
            )
        old = lr(self.optimizer_steps()) if schedule else float(lr)
        if not old > self.min_lr:
            return False
        if not schedule:
            opt.lr = max(old * self.factor, self.min_lr)
        elif old * self.factor >= self.min_lr:
            opt.lr = lr * self.factor
        else:
            opt.lr = lr * (self.min_lr / old)
        return True
