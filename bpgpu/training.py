"""``MLP.fit``: mini-batch training with the data kept on the device.

The whole training set is moved to the device once. Each epoch draws a permutation on
the host (so every backend sees the same batch order for the same seed), moves it to
the device, and gathers the batches there with ``take``, several at a time
(:mod:`bpgpu.batches`). Each batch's loss and correct count stay on the device and are
summed and read once per epoch (or not computed at all with ``train_metrics=False``):
there is no host sync inside the step. Parameters are updated in place, so the best
epoch's weights (early stopping) and the epoch start's (divergence recovery) are device
copies taken once per epoch.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

from bpgpu import optimizers as _opt
from bpgpu._host import HostRNG, fresh_seed, split_indices
from bpgpu.batches import Batches
from bpgpu.checkpoint import (
    check_same_network,
    checkpoint_shapes,
    param_names_of,
    write_checkpoint,
)
from bpgpu.checkpoint import (
    restore as restore_checkpoint,
)
from bpgpu.recovery import diverged, interruptible, position_of, restore_epoch

_MISSING = object()
log = logging.getLogger("bpgpu")


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
    interrupted: bool = False  # Ctrl-C: stopped after a batch, weights consistent
    seed: int | None = None

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
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> History:
        return cls(**d)

    def __repr__(self) -> str:
        if not self.epoch:
            return "History(no epochs)"
        return (
            f"History({len(self.epoch)} epochs, loss {self.loss[-1]:.4g}, "
            f"val_loss {self.val_loss[-1]:.4g}, best epoch {self.best_epoch})"
        )


class Callback:
    """Hooks into :meth:`MLP.fit`; override the ones you need.

    ``on_epoch_end`` gets ``logs`` = ``{"epoch", "loss", "accuracy", "val_loss",
    "val_accuracy", "time"}`` and may return True to stop training.
    ``on_batch_end`` gets no loss on purpose: reading it would sync the device.
    """

    def on_train_begin(self, net, history: History) -> None: ...

    def on_batch_end(self, net, batch: int) -> None: ...

    def on_epoch_end(self, net, epoch: int, logs: dict[str, float]) -> bool | None: ...

    def on_train_end(self, net, history: History) -> None: ...


def _positive_int(name: str, v: Any) -> int:
    if type(v) is not int or v < 1:
        raise ValueError(f"{name} must be a positive integer; got {v!r}")
    return v


@dataclass
class _Settings:
    """What a fit needs to be resumed exactly; stored in checkpoints."""

    epochs: int
    batch_size: int
    validation_split: float
    shuffle: bool
    patience: int | None
    min_delta: float
    seed: int
    optimizer: dict


def _settings(net, kw: dict, ckpt: dict | None) -> _Settings:
    """Merge fit's keyword arguments with a checkpoint's; conflicts are errors."""
    defaults = {
        "batch_size": 32,
        "validation_split": 0.0,
        "shuffle": True,
        "patience": None,
        "min_delta": 0.0,
        "seed": net.seed,
    }
    saved = ckpt or {}
    merged = {}
    for k, default in defaults.items():
        given = kw[k]
        if ckpt is not None and given is not _MISSING and given != saved[k]:
            raise ValueError(
                f"{k}={given!r} differs from the checkpoint's {saved[k]!r}; a resumed fit keeps "
                "its settings (omit the argument, or start a new fit without resume=)"
            )
        merged[k] = saved[k] if ckpt is not None else (default if given is _MISSING else given)
    _positive_int("epochs", kw["epochs"])
    _positive_int("batch_size", merged["batch_size"])
    vs = merged["validation_split"]
    if not (isinstance(vs, (int, float)) and 0 <= vs < 1):
        raise ValueError(f"validation_split must be in [0, 1); got {vs!r}")
    if merged["patience"] is not None:
        _positive_int("patience", merged["patience"])
    if not (isinstance(merged["min_delta"], (int, float)) and merged["min_delta"] >= 0):
        raise ValueError(f"min_delta must be >= 0; got {merged['min_delta']!r}")
    if merged["seed"] is None:
        merged["seed"] = fresh_seed()
    elif type(merged["seed"]) is not int or merged["seed"] < 0:
        raise ValueError(f"seed must be a non-negative integer; got {merged['seed']!r}")
    if ckpt is not None:
        opt = _opt.get(saved["optimizer"])
        if kw["optimizer"] is not _MISSING or kw["lr"] is not None or kw["weight_decay"]:
            asked = _build_optimizer(kw).config()
            if asked != opt.config():
                raise ValueError(
                    f"optimizer {asked} differs from the checkpoint's {opt.config()}; omit "
                    "optimizer/lr/weight_decay when resuming"
                )
        merged["optimizer"] = saved["optimizer"]
    else:
        merged["optimizer"] = _build_optimizer(kw).config()
    return _Settings(epochs=kw["epochs"], **merged)


def _build_optimizer(kw: dict) -> _opt.Optimizer:
    spec = "sgd" if kw["optimizer"] is _MISSING else kw["optimizer"]
    extra = {}
    if kw["lr"] is not None:
        extra["lr"] = kw["lr"]
    if kw["weight_decay"]:
        extra["weight_decay"] = kw["weight_decay"]
    if isinstance(spec, _opt.Optimizer):
        if extra:
            raise ValueError("set lr and weight_decay on the optimizer object, not in fit()")
        return spec
    return _opt.get(spec, **extra)


def fit(
    net,
    X,
    y,
    epochs: int = 10,
    *,
    batch_size=_MISSING,
    optimizer=_MISSING,
    lr=None,
    weight_decay=0.0,
    validation_data=None,
    validation_split=_MISSING,
    shuffle=_MISSING,
    patience=_MISSING,
    min_delta=_MISSING,
    restore_best=True,
    callbacks=(),
    checkpoint=None,
    resume=None,
    seed=_MISSING,
    detect_anomaly=False,
    handle_interrupt=True,
    train_metrics=True,
) -> History:
    """Train ``net`` on ``(X, y)``; see :meth:`bpgpu.MLP.fit` for the parameters."""
    from bpgpu import io

    kw = dict(
        epochs=epochs,
        batch_size=batch_size,
        optimizer=optimizer,
        lr=lr,
        weight_decay=weight_decay,
        validation_split=validation_split,
        shuffle=shuffle,
        patience=patience,
        min_delta=min_delta,
        seed=seed,
    )
    ckpt_cfg = ckpt_arrays = None
    if resume is not None:
        ckpt_cfg, ckpt_arrays = io.read_archive(resume, checkpoint_shapes)
        check_same_network(net, ckpt_cfg, resume)
    st = _settings(net, kw, None if ckpt_cfg is None else ckpt_cfg["training"]["settings"])
    if validation_data is not None and st.validation_split:
        raise ValueError("pass validation_data or validation_split, not both")
    if type(train_metrics) is not bool:
        raise ValueError(f"train_metrics must be True or False; got {train_metrics!r}")
    if (
        not train_metrics
        and st.patience is not None
        and not (validation_data is not None or st.validation_split)
    ):
        raise ValueError(
            "early stopping (patience) without validation data watches the training loss, "
            "which train_metrics=False does not compute; pass validation_data or "
            "validation_split, or keep train_metrics=True"
        )
    xp, backend = net.xp, net.backend
    callbacks = list(callbacks)

    # -- data: validated once, moved to the device once
    Xd = net._input(X)
    Td = net._targets(y, Xd.shape[0])
    if st.validation_split:
        keep, held = split_indices(Xd.shape[0], st.validation_split, st.seed)
        if keep.size == 0 or held.size == 0:
            raise ValueError(
                f"validation_split={st.validation_split} leaves no training or no validation "
                f"samples out of {Xd.shape[0]}"
            )
        keep_d, held_d = backend.asarray(keep), backend.asarray(held)
        Xv, Tv = xp.take(Xd, held_d, axis=0), xp.take(Td, held_d, axis=0)
        Xd, Td = xp.take(Xd, keep_d, axis=0), xp.take(Td, keep_d, axis=0)
    elif validation_data is not None:
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise ValueError("validation_data must be a pair (X_val, y_val)")
        Xv = net._input(validation_data[0], what="X_val")
        Tv = net._targets(validation_data[1], Xv.shape[0])
    else:
        Xv = Tv = None
    n = Xd.shape[0]
    labels = net._labels(Td) if net._has_accuracy() else None  # once, not per batch
    n_batches = -(-n // st.batch_size)
    pos = None if ckpt_cfg is None else position_of(ckpt_cfg["training"].get("position"), n_batches)

    # -- optimizer, host RNG, history: fresh, or exactly as the checkpoint left them
    opt = _opt.get(st.optimizer)
    decay = [name.startswith("W") for name in param_names_of(net)]
    rng = HostRNG(st.seed)
    history = History(seed=st.seed)
    best = {"value": math.inf, "params": None, "wait": 0}
    start = 0
    if ckpt_cfg is not None:
        weights, scaling = net.get_weights(), net.input_scaling
        try:
            start, state = restore_checkpoint(net, opt, rng, history, best, ckpt_cfg, ckpt_arrays)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            net.set_weights(weights)  # a refused checkpoint changes nothing
            net.set_input_scaling(*(scaling or (None, None)))
            raise io.ModelFileError(
                f"{resume}: the checkpoint's training section is not valid "
                f"({type(e).__name__}: {e})"
            ) from None
    else:
        state = opt.init_state(xp, net._params)
    if start >= st.epochs:
        raise ValueError(
            f"the checkpoint is at epoch {start}; pass epochs > {start} to train further"
        )
    for cb in callbacks:
        cb.on_train_begin(net, history)

    dtype = backend.dtype(net.dtype)
    stop = False

    batch = Batches(xp, [Xd, Td, labels], st.batch_size)

    with backend.context(), interruptible(handle_interrupt) as interrupted:
        for epoch in range(start, st.epochs):
            t0 = time.perf_counter()
            rng_before = rng.state()  # a mid-epoch checkpoint redraws this permutation
            perm = rng.permutation(n) if st.shuffle else None
            perm_d = backend.asarray(perm) if perm is not None else None
            snapshot = (
                net._snapshot(net._params),
                {k: net._snapshot(v) for k, v in state.items()},
                opt.t,
            )
            first, before, correct_before = 0, [], 0
            if pos is not None:  # resuming in the middle of this epoch
                first, correct_before = pos["batch"], pos["correct"]
                # the finished batches' losses, so the epoch sums the very same values
                # (None: that fit ran without train_metrics, so this epoch's are unknown)
                if pos["losses"] is None:
                    before = None
                else:
                    before = [
                        xp.asarray(v, dtype=dtype, device=backend.device) for v in pos["losses"]
                    ]
                pos = None
            # per-batch device scalars, summed once at the end of the epoch (one
            # reduction instead of two additions per batch; no sync inside the loop)
            losses, rights = [], []
            done = n_batches
            for bi, (Xb, Tb, Lb) in enumerate(batch.epoch(perm_d, first), start=first):
                where = (epoch + 1, bi + 1) if detect_anomaly else None
                loss_sum, right = net._train_step(
                    Xb, Tb, Lb, opt, state, decay, where, train_metrics
                )
                if train_metrics:
                    losses.append(loss_sum)
                    if right is not None:
                        rights.append(right)
                for cb in callbacks:
                    cb.on_batch_end(net, bi)
                if interrupted.is_set() and bi + 1 < n_batches:
                    done = bi + 1
                    break
            known = train_metrics and before is not None  # the whole epoch's metrics
            if train_metrics:
                total = float(xp.sum(xp.stack((before or []) + losses)))  # the epoch's read
                # a finite loss with weights gone bad: the last update overflowed
                finite = math.isfinite(total) and net._finite_weights()
            else:  # no losses: the weights tell whether training diverged (one read)
                finite = net._finite_weights()
            loss_sum_host = total if known else math.nan
            correct = None
            if known and correct_before is not None:
                correct = correct_before + (int(xp.sum(xp.stack(rights))) if rights else 0)
            if not finite and not train_metrics:
                restore_epoch(net, opt, state, snapshot)
                raise FloatingPointError(
                    f"the weights became NaN or inf in epoch {epoch + 1}; the weights at its "
                    f"start are restored. Lower the learning rate (now {opt.lr:g}), "
                    "standardise the inputs, or fit with train_metrics=True (names the batch) "
                    "or detect_anomaly=True (names the layer)"
                )
            if not finite:
                diverged(
                    net,
                    opt,
                    state,
                    snapshot,
                    losses,
                    first,
                    perm_d,
                    batch,
                    decay,
                    epoch + 1,
                    n_batches,
                )
            if done < n_batches:  # interrupted: keep the weights, remember the position
                history.interrupted = True
                position = {
                    "batch": done,
                    "losses": [float(v) for v in before + losses] if known else None,
                    "correct": correct,
                    "epoch": epoch,
                }
                if checkpoint is not None:
                    write_checkpoint(
                        checkpoint,
                        net,
                        opt,
                        state,
                        rng,
                        history,
                        best,
                        st,
                        position=position,
                        rng_state=rng_before,
                    )
                log.warning(
                    "bpgpu: fit interrupted in epoch %d after batch %d of %d",
                    epoch + 1,
                    done,
                    n_batches,
                )
                break
            loss = loss_sum_host / n
            acc = correct / n if net._has_accuracy() and correct is not None else math.nan
            val_loss = val_acc = math.nan
            if Xv is not None:
                val_loss, val_acc = net._evaluate_device(Xv, Tv)
            history.epoch.append(epoch + 1)
            history.loss.append(loss)
            history.accuracy.append(acc)
            history.val_loss.append(val_loss)
            history.val_accuracy.append(val_acc)
            history.time.append(time.perf_counter() - t0)

            monitored = val_loss if Xv is not None else loss
            if monitored < best["value"] - st.min_delta:
                params = net._snapshot(net._params) if st.patience is not None else None
                best.update(value=monitored, params=params, wait=0)
                history.best_epoch = epoch + 1
            else:
                best["wait"] += 1
            if st.patience is not None and best["wait"] >= st.patience:
                history.stopped_early = stop = True
            logs = {k: v[-1] for k, v in history.history.items()}
            for cb in callbacks:
                if cb.on_epoch_end(net, epoch + 1, logs):
                    stop = True
            stop = stop or interrupted.is_set()
            history.interrupted = interrupted.is_set()
            if checkpoint is not None:
                write_checkpoint(checkpoint, net, opt, state, rng, history, best, st)
            if stop:
                break
    restore = st.patience is not None and restore_best and not history.interrupted
    if restore and best["params"] is not None:
        net._params = best["params"]
    for cb in callbacks:
        cb.on_train_end(net, history)
    return history
