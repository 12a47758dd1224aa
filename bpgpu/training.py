"""``MLP.fit``: mini-batch training with the data kept on the device, in parts.

- **settings** (:func:`resolve_settings`): fit's arguments merged with a checkpoint's,
  conflicts refused;
- **data** (:func:`prepare_data`): validated and moved to the device once, the
  validation split taken there;
- **the run** (:func:`bpgpu.epochs.start_run`): optimizer state, host RNG, history and
  early-stopping state, fresh or exactly as a checkpoint left them;
- **one epoch** (:func:`bpgpu.epochs.run_epoch`): a permutation drawn on the host (the
  same batch order on every backend), batches gathered on the device a chunk at a time
  (:mod:`bpgpu.batches`), one step each; each batch's loss and correct count stay on the
  device and are summed and read once at the end (or not computed at all with
  ``train_metrics=False``): no host sync inside the step;
- **the end of an epoch** (:func:`bpgpu.epochs.end_epoch`): divergence, interruption,
  history, early stopping, callbacks, checkpoint.

The network is reached through two narrow interfaces: its :class:`bpgpu.model.Model`
(data in, steps, evaluation, parameters) and, for files, ``net.config()``,
``net.arrays()``, ``net.set_weights`` and ``net.set_input_scaling``; callbacks get
``net`` itself.
"""

from __future__ import annotations

import logging
from typing import Any

from bpgpu import checkpoint as _ckpt
from bpgpu import optimizers as _opt
from bpgpu._host import fresh_seed, split_indices
from bpgpu.batches import Batches
from bpgpu.epochs import Data, Settings, end_epoch, run_epoch, start_run
from bpgpu.history import Callback, History
from bpgpu.recovery import interruptible

__all__ = ["Callback", "History", "fit"]

_MISSING = object()
log = logging.getLogger("bpgpu")


# ---- settings -------------------------------------------------------------------------


def _positive_int(name: str, v: Any) -> int:
    if type(v) is not int or v < 1:
        raise ValueError(f"{name} must be a positive integer; got {v!r}")
    return v


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


def resolve_settings(seed: int | None, kw: dict, saved: dict | None) -> tuple[Settings, Any]:
    """Fit's keyword arguments merged with a checkpoint's ``saved`` settings (conflicts
    are errors), validated; and the optimizer object."""
    defaults = {
        "batch_size": 32,
        "validation_split": 0.0,
        "shuffle": True,
        "patience": None,
        "min_delta": 0.0,
        "seed": seed,
    }
    merged = {}
    for k, default in defaults.items():
        given = kw[k]
        if saved is not None and given is not _MISSING and given != saved[k]:
            raise ValueError(
                f"{k}={given!r} differs from the checkpoint's {saved[k]!r}; a resumed fit keeps "
                "its settings (omit the argument, or start a new fit without resume=)"
            )
        merged[k] = saved[k] if saved is not None else (default if given is _MISSING else given)
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
    if saved is not None:
        opt = _opt.get(saved["optimizer"])
        if kw["optimizer"] is not _MISSING or kw["lr"] is not None or kw["weight_decay"]:
            asked = _build_optimizer(kw).config()
            if asked != opt.config():
                raise ValueError(
                    f"optimizer {asked} differs from the checkpoint's {opt.config()}; omit "
                    "optimizer/lr/weight_decay when resuming"
                )
    else:
        opt = _build_optimizer(kw)
    return Settings(epochs=kw["epochs"], optimizer=opt.config(), **merged), opt


# ---- data -----------------------------------------------------------------------------


def prepare_data(model, X, y, st: Settings, validation_data) -> Data:
    """Validate ``(X, y)``, move it to the device once, and take the validation part."""
    xp, backend = model.xp, model.backend
    Xd = model.input(X)
    Td = model.targets(y, Xd.shape[0])
    Xv = Tv = None
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
        Xv = model.input(validation_data[0], what="X_val")
        Tv = model.targets(validation_data[1], Xv.shape[0])
    labels = model.labels(Td) if model.has_accuracy() else None
    return Data(Xd, Td, labels, Xv, Tv)


# ---- fit ------------------------------------------------------------------------------


def fit(
    net,
    model,
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
    """Train ``net`` (whose model is ``model``) on ``(X, y)``; see :meth:`bpgpu.MLP.fit`."""
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
    ckpt = None
    if resume is not None:
        cfg, arrays = _ckpt.read(resume)
        _ckpt.check_same_network(net.config(), cfg, resume)
        ckpt = (resume, cfg, arrays)
    saved = None if ckpt is None else ckpt[1]["training"]["settings"]
    st, opt = resolve_settings(net.seed, kw, saved)
    if validation_data is not None and st.validation_split:
        raise ValueError("pass validation_data or validation_split, not both")
    if type(train_metrics) is not bool:
        raise ValueError(f"train_metrics must be True or False; got {train_metrics!r}")
    has_val = validation_data is not None or bool(st.validation_split)
    if not train_metrics and st.patience is not None and not has_val:
        raise ValueError(
            "early stopping (patience) without validation data watches the training loss, "
            "which train_metrics=False does not compute; pass validation_data or "
            "validation_split, or keep train_metrics=True"
        )
    data = prepare_data(model, X, y, st, validation_data)
    batches = Batches(model.xp, [data.X, data.T, data.labels], st.batch_size)
    run = start_run(net, model, st, opt, ckpt, batches.count)
    opts = {
        "callbacks": list(callbacks),
        "checkpoint": checkpoint,
        "train_metrics": train_metrics,
        "detect_anomaly": detect_anomaly,
    }
    for cb in opts["callbacks"]:
        cb.on_train_begin(net, run.history)
    with model.backend.context(), interruptible(handle_interrupt) as stop_flag:
        for epoch in range(run.start, st.epochs):
            ep = run_epoch(net, model, run, data, batches, st, epoch, opts, stop_flag)
            if end_epoch(net, model, run, data, batches, st, ep, opts, stop_flag):
                break
    h = run.history
    restore_best_weights = st.patience is not None and restore_best and not h.interrupted
    if restore_best_weights and run.best.params is not None:
        model.params = run.best.params
    for cb in opts["callbacks"]:
        cb.on_train_end(net, h)
    return h
