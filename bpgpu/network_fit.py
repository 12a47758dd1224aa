"""``MLP.fit``: its signature and documentation, every option keyword-only.

:class:`Fitting` is the half of :class:`bpgpu.MLP` that trains it: the options are
checked by name (a misspelt one gets "did you mean"), packed into a frozen
:class:`~bpgpu.settings.FitOptions` and handed to :func:`bpgpu.training.fit`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from bpgpu._errors import keywords_checked
from bpgpu.callbacks import Callback
from bpgpu.history import History
from bpgpu.network_weights import on_device
from bpgpu.optimizers import Optimizer
from bpgpu.settings import NETWORK_SEED, FitOptions
from bpgpu.training import fit as _fit


class Fitting:
    """Training: a base of :class:`bpgpu.MLP` (``fit`` needs its ``_learn_classes``)."""

    @keywords_checked
    @on_device
    def fit(
        self,
        X: Any,
        y: Any,
        epochs: int = 10,
        *,
        batch_size: int = 32,
        optimizer: str | dict | Optimizer | None = None,
        lr: float | None = None,
        weight_decay: float = 0.0,
        validation_data: tuple | None = None,
        validation_split: float = 0.0,
        shuffle: bool = True,
        patience: int | None = None,
        min_delta: float = 0.0,
        restore_best: bool = True,
        callbacks: Sequence[Callback] = (),
        checkpoint: str | os.PathLike | None = None,
        resume: str | os.PathLike | None = None,
        seed: int | None = NETWORK_SEED,
        detect_anomaly: bool = False,
        handle_interrupt: bool = True,
        train_metrics: bool = True,
        verbose: bool = False,
        comm: Any = None,
        sample_weight: Any = None,
        class_weight: dict | str | None = None,
        graphs: bool | None = None,
        standardize: bool = False,
    ) -> History:
        """Train by mini-batch gradient descent on each batch's mean loss, the seed's (10)-(11).

        Every option is keyword-only; a misspelt one is refused with the closest name.
        Resuming (``resume=``), an option left at its default takes the checkpoint's
        value, and one given must equal it (``batch_size``, ``optimizer``, ``lr``,
        ``weight_decay``, ``validation_split``, ``shuffle``, ``patience``,
        ``min_delta``, ``seed``).

        Parameters
        ----------
        X, y : arrays
            Training inputs ``(N, n_0)`` and targets (as :meth:`loss` takes them).
        epochs : int
            Train until this many epochs are done (counting a resumed checkpoint's).
        batch_size : int, default 32
            Samples per step (the last batch of an epoch may be smaller);
            data-parallel, the global batch split across the ranks.
        optimizer : str, dict or Optimizer, optional
            ``"sgd"`` (the default), ``"momentum"``, ``"nesterov"``, ``"adam"``, or an
            object such as ``bpgpu.optimizers.Adam(lr=1e-3)``.
        lr : float, optional
            Learning rate (default 0.1, Adam 0.001).
        weight_decay : float, default 0
            L2 coefficient on the weight matrices.
        validation_data : (X_val, y_val) or (X_val, y_val, w_val), optional
            Data to report the validation loss and accuracy on after every epoch (and
            to stop early on); ``w_val``: their sample weights (the loss weighted).
        validation_split : float, default 0
            Hold out this fraction of ``(X, y)`` (a seeded random subset) for validation.
        shuffle : bool, default True
            Draw a new batch order each epoch from the host generator.
        patience : int, optional
            Early stopping: stop after this many epochs without improvement of the
            validation loss (the training loss without validation data).
        min_delta : float, default 0
            An improvement is a decrease of more than ``min_delta`` (a tie is none).
        restore_best : bool, default True
            With ``patience``, end with the weights of the best epoch (an interrupted
            fit keeps the weights it stopped with).
        callbacks : sequence of Callback
            Objects whose hooks the fit calls (:class:`bpgpu.Callback`), such as
            :class:`bpgpu.ReduceLROnPlateau`; one may stop the fit.
        checkpoint : path, optional
            Save weights, optimizer state, RNG state and history after every epoch.
        resume : path, optional
            Continue from a checkpoint; the result equals an uninterrupted run on the
            same backend.
        seed : int or None, optional
            Seed of the shuffling and of the validation split; left out, the network's
            (``MLP(seed=...)``); None, a fresh one (recorded in ``history.seed``;
            data-parallel, rank 0's for every rank).
        detect_anomaly : bool, default False
            Check every layer's values and gradients each batch (a sync per tensor, so
            slow) and stop naming the first that is not finite.
        handle_interrupt : bool, default True
            The first Ctrl-C stops training after the current batch (weights
            consistent, ``history.interrupted`` set, a checkpoint written when
            ``checkpoint`` is given); a second one aborts at once.
        train_metrics : bool, default True
            Compute the training loss and accuracy of every batch (a few small array
            operations per step, summed on the device and read once per epoch).
            False skips them for speed: ``history.loss`` and ``history.accuracy`` are
            NaN, early stopping needs validation data, and divergence is found from
            the weights at the end of the epoch (the epoch's start is restored).
        verbose : bool, default False
            Print one line per epoch (loss, accuracy, validation loss and accuracy,
            seconds), as ``bpgpu train`` does; data-parallel, from rank 0.
        comm : mpi4py communicator, optional
            Data-parallel training (:mod:`bpgpu.distributed`): every rank passes the same
            data and arguments; ``batch_size`` is the global batch, split across the
            ranks; the gradients are summed with one Allreduce per step, so the result
            is the single-process fit's and every rank's weights are the same.
            Checkpoints are written by rank 0; an exception on one rank ends the job.
        sample_weight : array of shape (n,), optional
            How much each sample counts (finite, >= 0, not all zero; an array, a memory
            map, a ``.npy`` path, or a number): each batch's loss is the weighted mean
            of its samples' (each one's error times its weight over the batch's total
            weight; data-parallel, the global batch's). The validation loss is weighted
            by the validation rows' weights (``validation_split``'s held-out samples',
            or ``validation_data=(X_val, y_val, w_val)``); the accuracies are not.
        class_weight : dict or "balanced", optional
            A weight per class (``{class: weight}``, classes 0..K-1 as the labels or the
            one-hot columns give them; a class left out weighs 1), multiplied into
            ``sample_weight``; ``"balanced"`` weighs each class ``n / (K * its count)``
            (scikit-learn's). Class targets only.
        graphs : bool or None, default None
            Replay each full batch's step from a CUDA graph captured once (CuPy, or
            torch on a CUDA device; :mod:`bpgpu.graphs`): one launch a step instead of
            one per kernel. None reads ``$BPGPU_GRAPHS`` (``1`` on); off by default
            until a GPU run has shown replayed fits equal to eager ones. Where the
            backend, the fit (data-parallel, streamed, ``detect_anomaly``, a plain
            function as the learning rate) or a capture cannot, the fit says why once
            and runs eagerly.
        standardize : bool, default False
            Set the network's input scaling (:meth:`set_input_scaling`) to the training
            data's mean and standard deviation per feature before training: saved with
            the model, so a loaded network takes raw inputs (what ``bpgpu train`` does).
            Without it the inputs are taken as they are, and a fit on inputs far from
            unit scale (a feature whose root mean square passes 100) says so once with
            this fix. Not with ``resume`` (the checkpoint has its scaling) nor on a
            network that has a scaling already (clear it: ``set_input_scaling(None,
            None)``).

        Returns
        -------
        History
            The loss, accuracy and seconds of every epoch (validation too, where
            given), the best epoch, and whether early stopping or an interruption
            ended the fit.

        Raises
        ------
        FloatingPointError
            The loss became NaN or inf; the message names the epoch and batch, and the
            weights are those of the last batch whose loss was finite.
        DeviceMemoryError
            The GPU ran out of memory; lower ``batch_size``.

        Examples
        --------
        >>> import bpgpu
        >>> X, y = bpgpu.datasets.load_digits()
        >>> net = bpgpu.MLP([64, 32, 10], seed=0)
        >>> hist = net.fit(X, y, epochs=20, batch_size=64, optimizer="adam", lr=0.01,
        ...                validation_split=0.2, patience=3, standardize=True)
        >>> hist.best_epoch is not None, hist.val_accuracy[hist.best_epoch - 1] > 0.9
        (True, True)
        """
        self._learn_classes(y)  # text labels: net.classes, so training takes their indices
        options = FitOptions(
            epochs=epochs,
            batch_size=batch_size,
            optimizer=optimizer,
            lr=lr,
            weight_decay=weight_decay,
            validation_data=validation_data,
            validation_split=validation_split,
            shuffle=shuffle,
            patience=patience,
            min_delta=min_delta,
            restore_best=restore_best,
            callbacks=callbacks,
            checkpoint=checkpoint,
            resume=resume,
            seed=seed,
            detect_anomaly=detect_anomaly,
            handle_interrupt=handle_interrupt,
            train_metrics=train_metrics,
            verbose=verbose,
            comm=comm,
            sample_weight=sample_weight,
            class_weight=class_weight,
            graphs=graphs,
            standardize=standardize,
        )
        return _fit(self, X, y, options)
