"""What a fit reports: the per-epoch :class:`History`.

Plain data, below training and the network: checkpoints store a History as JSON, the
command line prints it, callbacks (:mod:`bpgpu.callbacks`) receive it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class History:
    """Per-epoch results of a fit (``val_*`` are NaN without validation data).

    :meth:`bpgpu.MLP.fit` returns one; ``history`` gives the per-epoch lists as one dict
    (Keras's ``History.history``).

    Parameters
    ----------
    epoch : list of int
        The epochs trained, from 1 (a resumed fit goes on from the checkpoint's).
    loss, accuracy : list of float
        The training loss (weighted, with sample weights) and accuracy of each epoch
        (NaN with ``train_metrics=False``; accuracy NaN where targets are no classes).
    val_loss, val_accuracy : list of float
        The same on the validation data (NaN without).
    time : list of float
        Seconds spent in each epoch.
    best_epoch : int or None
        The epoch whose weights early stopping kept (the best validation loss).
    stopped_early : bool
        Whether ``patience`` ended the fit.
    interrupted : bool
        Whether Ctrl-C or a callback stopped it after a batch (the weights consistent).
    seed : int or None
        The seed the fit's batch order and split came from.
    compile_time : float
        Seconds a compiling backend (JAX) spent compiling during the fit.
    skipped_steps : int
        Steps skipped by float16 loss scaling (gradients that were not finite).

    Examples
    --------
    >>> import numpy as np
    >>> import bpgpu
    >>> X, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2
    >>> h = bpgpu.MLP([3, 4, 2], backend="numpy", seed=0).fit(X, y, epochs=2, validation_split=0.2)
    >>> h.epoch, len(h.val_loss), sorted(h.history)[:3]
    ([1, 2], 2, ['accuracy', 'epoch', 'loss'])
    """

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
    skipped_steps: int = 0  # float16 loss scaling: steps skipped for non-finite gradients

    @property
    def history(self) -> dict[str, list]:
        """The per-epoch numbers as one dict, Keras's ``History.history``.

        Returns
        -------
        dict
            ``{"epoch": [...], "loss": [...], "accuracy": [...], "val_loss": [...],
            "val_accuracy": [...], "time": [...]}``, copies of the lists.

        Examples
        --------
        >>> from bpgpu import History
        >>> History(epoch=[1, 2], loss=[0.9, 0.5]).history["loss"]
        [0.9, 0.5]
        """
        keys = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "time")
        return {k: list(getattr(self, k)) for k in keys}

    def to_json(self) -> dict[str, Any]:
        """The whole history as JSON data (what the CLI's ``--history`` file holds).

        Returns
        -------
        dict
            :attr:`history`'s lists and ``best_epoch``, ``stopped_early``,
            ``interrupted``, ``seed``, ``compile_time``, ``skipped_steps``.

        Examples
        --------
        >>> import json
        >>> from bpgpu import History
        >>> h = History(epoch=[1], loss=[0.5], accuracy=[0.8], val_loss=[0.6],
        ...             val_accuracy=[0.7], time=[0.01], best_epoch=1)
        >>> History.from_json(json.loads(json.dumps(h.to_json()))) == h
        True
        """
        return {
            **self.history,
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
            "interrupted": self.interrupted,
            "seed": self.seed,
            "compile_time": self.compile_time,
            "skipped_steps": self.skipped_steps,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> History:
        """The history that :meth:`to_json` wrote.

        Parameters
        ----------
        d : dict
            :meth:`to_json`'s dict (read back from a JSON file).

        Returns
        -------
        History
            A history equal to the one that wrote ``d``.

        Examples
        --------
        >>> from bpgpu import History
        >>> History.from_json({"epoch": [1, 2], "loss": [0.9, 0.5]}).loss
        [0.9, 0.5]
        """
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
