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
import math
from typing import Any

from bpgpu import checkpoint as _ckpt
from bpgpu import optimizers as _opt
from bpgpu import streaming
from bpgpu._args import integer, real
from bpgpu._host import data_fingerprint, fresh_seed, split_indices
from bpgpu.batches import Batches
from bpgpu.distributed import Distributed
from bpgpu.epochs import Data, Settings, end_epoch, fresh_run, resume_run, run_epoch
from bpgpu.history import Callback, History, PrintEpochs
from bpgpu.io import ModelFileError, prepare_output
from bpgpu.recovery import interruptible, position_of

__all__ = ["Callback", "History", "fit"]

_MISSING = object()
log = logging.getLogger("bpgpu")


# ---- settings -------------------------------------------------------------------------


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


_HOOKS = ("on_train_begin", "on_batch_end", "on_epoch_end", "on_train_end")


def _callbacks(callbacks) -> list:
    """``callbacks`` as a list of objects with the four hooks, or a TypeError that says
    what to pass."""
    if isinstance(callbacks, Callback) or not hasattr(callbacks, "__iter__"):
        raise TypeError(
            f"callbacks must be a list of Callback objects; got {callbacks!r} "
            "(for one callback pass callbacks=[cb])"
        )
    out = list(callbacks)
    for cb in out:
        missing = [h for h in _HOOKS if not callable(getattr(cb, h, None))]
        if missing:
            raise TypeError(
                f"callbacks holds {cb!r}, which has no {', '.join(missing)}; subclass "
                "bpgpu.Callback and override the hooks you need"
            )
    return out


def resolve_settings(
    seed: int | None, kw: dict, training: dict | None, fresh=fresh_seed
) -> tuple[Settings, Any, dict | None]:
    """Fit's keyword arguments merged with a checkpoint's ``training`` section (conflicts
    are errors), validated; the optimizer object; and, resuming, the hyper-parameters it
    had at the checkpoint (for :func:`_reload`, once every check has passed)."""
    saved = None if training is None else training["settings"]
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
    kw["epochs"] = integer("epochs", kw["epochs"])
    merged["batch_size"] = integer("batch_size", merged["batch_size"])
    merged["validation_split"] = real(
        "validation_split", merged["validation_split"], 0.0, 1.0, lo_open=False
    )
    if merged["patience"] is not None:
        merged["patience"] = integer("patience", merged["patience"])
    merged["min_delta"] = real("min_delta", merged["min_delta"], 0.0, lo_open=False)
    if type(merged["shuffle"]) is not bool:
        raise ValueError(f"shuffle must be True or False; got {merged['shuffle']!r}")
    if merged["seed"] is None:
        merged["seed"] = fresh()  # drawn once; data-parallel: rank 0's, for every rank
    else:
        merged["seed"] = integer("seed", merged["seed"], lo=0)
    if training is None:
        opt = _build_optimizer(kw)
        return Settings(epochs=kw["epochs"], optimizer=opt.config(), **merged), opt, None
    opt, now = _resumed_optimizer(kw, training)
    return Settings(epochs=kw["epochs"], optimizer=saved["optimizer"], **merged), opt, now


def _resumed_optimizer(kw: dict, training: dict) -> tuple[_opt.Optimizer, dict]:
    """The optimizer a resumed fit runs, and its hyper-parameters at the checkpoint.

    The object passed to fit, when one is (so that a callback holding it, a learning-rate
    schedule, goes on working, and a class of the user's own keeps its rule): it must be
    of the checkpoint's class and have the hyper-parameters the run started with, or
    those it had at the checkpoint. Otherwise a built-in built from the checkpoint; a
    checkpoint trained with a class of the user's own needs that class passed again.
    """
    first = training["settings"]["optimizer"]
    now = training.get("optimizer_now", first)  # absent before checkpoints recorded them
    cls = training.get("optimizer_class")
    numbers = isinstance(now, dict) and all(
        type(v) in (int, float) and math.isfinite(v) for k, v in now.items() if k != "name"
    )
    if not (isinstance(first, dict) and numbers and now.keys() == first.keys()):
        raise ModelFileError(
            f"the checkpoint's optimizer record is not valid ({first!r}, now {now!r})"
        )
    builtin = _opt.OPTIMIZERS.get(first.get("name"))
    ours = cls is None or (builtin is not None and builtin.__qualname__ == cls)
    if kw["optimizer"] is _MISSING and kw["lr"] is None and not kw["weight_decay"]:
        if not ours or builtin is None:
            kind = cls or first.get("name")
            raise ValueError(
                f"the checkpoint was trained with {kind}, an optimizer class of your own; "
                f"pass it again when resuming: fit(..., optimizer={kind}(...), resume=...)"
            )
        try:
            _opt.get(now)  # a built-in checks its hyper-parameters
        except (TypeError, ValueError) as e:
            raise ModelFileError(f"the checkpoint's optimizer record is not valid ({e})") from None
        return _opt.get(first), now
    opt = _build_optimizer(kw)
    if opt.config() not in (first, now):
        raise ValueError(
            f"optimizer {opt.config()} differs from the checkpoint's {first}; omit "
            "optimizer/lr/weight_decay when resuming"
        )
    if cls is not None and type(opt).__qualname__ != cls:
        raise ValueError(
            f"the checkpoint was trained with optimizer class {cls}, this is "
            f"{type(opt).__qualname__}; resume with the same class"
        )
    return opt, now


def _reload(opt: _opt.Optimizer, now: dict) -> None:
    """Give ``opt`` the hyper-parameters it had at the checkpoint (a schedule may have
    changed its learning rate since the run started), as torch's ``load_state_dict``
    gives an optimizer its param groups' rates back."""
    for k, v in now.items():
        if k != "name" and hasattr(opt, k):
            setattr(opt, k, v)


# ---- data -----------------------------------------------------------------------------


def prepare_data(model, X, y, st: Settings, validation_data) -> Data:
    """Validate ``(X, y)``, move it to the device once, and take the validation part
    (streamed data: see :mod:`bpgpu.streaming`)."""
    if streaming.streamed(X) or streaming.streamed(y):
        Xv, Tv, host = streaming.prepare(model, X, y, st.validation_split, st.seed, validation_data)
        return Data(None, None, None, Xv, Tv, host=host)
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
        Xv, Tv = streaming.validation_arrays(model, validation_data)
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
    verbose=False,
    comm=None,
) -> History:
    """Train ``net`` (whose model is ``model``) on ``(X, y)``; see :meth:`bpgpu.MLP.fit`."""
    if type(verbose) is not bool and verbose not in (0, 1):
        raise ValueError(f"verbose must be True or False; got {verbose!r}")
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
    dist = None if comm is None else Distributed(comm, model.backend)
    error, setup = None, None
    try:
        setup = _setup(
            net,
            model,
            X,
            y,
            kw,
            dist,
            validation_data,
            callbacks,
            checkpoint,
            resume,
            train_metrics,
        )
    except Exception as e:
        if dist is None:
            raise
        error = e
    if dist is not None:  # refused on one rank: refused on all, with that rank's message
        dist.check(error)
        st, data, batches, run, callbacks = setup
        dist.agree("data, network or settings", (run.data, net.config(), st.__dict__))
    st, data, batches, run, callbacks = setup
    if verbose and (dist is None or dist.root):  # one line per epoch, from rank 0
        callbacks = [*callbacks, PrintEpochs(st.epochs)]
    stop = _Stop(dist)
    opts = {
        "callbacks": callbacks,
        "checkpoint": checkpoint,
        "train_metrics": train_metrics,
        "detect_anomaly": detect_anomaly,
        "dist": dist,
        "step": _stepper(model, run, dist, stop),
    }
    for cb in opts["callbacks"]:
        cb.on_train_begin(net, run.history)
    compiled_before = getattr(model.backend, "compile_seconds", 0.0)
    work = st.batch_size * max(layer.n_in * layer.n_out for layer in model.layers)
    if dist is not None:
        work //= dist.size
    try:
        with model.backend.context(), model.backend.threads(work), model.backend.quiet():
            h = _train(net, model, run, data, batches, st, opts, handle_interrupt, stop)
    except FloatingPointError:
        raise  # decided from numbers every rank shares: raised on every rank alike
    except BaseException as e:
        if dist is not None and dist.size > 1:
            dist.abort(e)  # no rank may be left waiting in a collective
        raise
    finally:
        getattr(batches, "close", lambda: None)()  # a streaming prefetch thread
    h.compile_time += getattr(model.backend, "compile_seconds", 0.0) - compiled_before
    restore_best_weights = st.patience is not None and restore_best and not h.interrupted
    if restore_best_weights and run.best.params is not None:
        model.params = run.best.params
    for cb in opts["callbacks"]:
        cb.on_train_end(net, h)
    return h


def _setup(net, model, X, y, kw, dist, validation_data, callbacks, checkpoint, resume, metrics):
    """Settings, data, batches and the run (fresh, or the checkpoint's): everything
    checked before training starts."""
    ckpt = None
    if resume is not None:
        cfg, arrays = _ckpt.read(resume)
        _ckpt.check_same_network(net.config(), cfg, resume)
        ckpt = (resume, cfg, arrays)
    training = None if ckpt is None else ckpt[1]["training"]
    fresh = fresh_seed if dist is None else lambda: dist.bcast(fresh_seed())
    st, opt, now = resolve_settings(net.seed, kw, training, fresh)
    if validation_data is not None and st.validation_split:
        raise ValueError("pass validation_data or validation_split, not both")
    if type(metrics) is not bool:
        raise ValueError(f"train_metrics must be True or False; got {metrics!r}")
    has_val = validation_data is not None or bool(st.validation_split)
    if not metrics and st.patience is not None and not has_val:
        raise ValueError(
            "early stopping (patience) without validation data watches the training loss, "
            "which train_metrics=False does not compute; pass validation_data or "
            "validation_split, or keep train_metrics=True"
        )
    callbacks = _callbacks(callbacks)
    if checkpoint is not None and (dist is None or dist.root):
        prepare_output(checkpoint, "checkpoint")  # now, not after the first epoch
    # what the data were, so that a checkpoint is never resumed on other data (and, when
    # data-parallel, that every rank has the same)
    track = checkpoint is not None or ckpt is not None or dist is not None
    if track and (streaming.streamed(X) or streaming.streamed(y)):  # the contents, not the path
        fp = data_fingerprint(streaming.open_host(X, "X"), streaming.open_host(y, "y"))
    else:
        fp = data_fingerprint(X, y) if track else None
    undo = None
    if ckpt is not None:
        run, undo = resume_run(net, model, st, opt, ckpt, fp)
    try:
        data = prepare_data(model, X, y, st, validation_data)
        arrays = [data.X, data.T, data.labels]
        sizes = rows = None
        if dist is not None:  # each rank's stream: its share of every global batch
            sizes, rows = dist.batches(data.n, st.batch_size)
        if data.host is not None:
            batches = streaming.StreamBatches(model, *data.host, st.batch_size, sizes=sizes)
        else:
            batches = Batches(model.xp, arrays, st.batch_size, sizes=sizes)
        if rows is not None:
            batches.rows = rows
        if ckpt is None:
            run = fresh_run(model, st, opt)
        else:
            run.position = position_of(run.position, batches.count)
            _reload(opt, now)  # last: a refused resume leaves the user's object alone
    except BaseException:
        if undo is not None:
            undo()  # a refused resume leaves the network as it was
        raise
    run.data = fp
    return st, data, batches, run, callbacks


class _Stop:
    """Ctrl-C's request to stop after the batch: this process's, or, data-parallel, any
    rank's (it travels with the gradients, so every rank stops at the same batch)."""

    def __init__(self, dist):
        self.dist, self.flag, self.any = dist, None, False

    def local(self) -> bool:
        return self.flag is not None and self.flag.is_set()

    def is_set(self) -> bool:
        return self.local() if self.dist is None else self.any


def _stepper(model, run, dist, stop: _Stop):
    """One step on a batch: ``step(Xb, Tb, Lb, where, loss, rows) -> (E, Y)``, the
    batch's summed cost (None unless ``loss``) and outputs; data-parallel, the batch is
    this rank's share of a global batch of ``rows`` rows, and the gradients are summed
    over the ranks."""
    if dist is None:

        def step(Xb, Tb, Lb, where, loss, rows=None):
            run.state, E, Y = model.step(Xb, Tb, run.opt, run.state, loss, where)
            return E, Y

        return step
    xp = model.xp

    first = [True]  # the stop flag travels with a step's first reduction only

    def reduce(grads):  # once per step, or once per layer (plain SGD)
        if not first[0]:
            return dist.sum_grads(xp, grads)[0]
        first[0] = False
        grads, any_stop = dist.sum_grads(xp, grads, stop.local())
        stop.any = stop.any or any_stop
        return grads

    def step(Xb, Tb, Lb, where, loss, rows):  # Xb: this rank's share of `rows` rows
        first[0] = True
        run.state, E, Y = model.step(Xb, Tb, run.opt, run.state, loss, where, reduce, rows)
        return E, Y

    return step


def _train(net, model, run, data, batches, st, opts, handle_interrupt, stop) -> History:
    """The epochs, Ctrl-C turned into a stop after the batch."""
    with interruptible(handle_interrupt) as flag:
        stop.flag = flag
        for epoch in range(run.start, st.epochs):
            ep = run_epoch(net, model, run, data, batches, st, epoch, opts, stop)
            if end_epoch(net, model, run, data, batches, st, ep, opts, stop):
                break
    return run.history
