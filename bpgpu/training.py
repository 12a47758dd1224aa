"""``MLP.fit``: its arguments and data made into a :class:`~bpgpu.trainer.Trainer`.

- **settings** (:func:`bpgpu.settings.resolve_settings`): fit's arguments merged with a
  checkpoint's, conflicts refused, and the optimizer the fit runs;
- **data** (:func:`prepare_data`): validated and moved to the device once, the
  validation split taken there;
- **the run** (:mod:`bpgpu.runstate`): optimizer state, host RNG, history and
  early-stopping state, fresh or exactly as a checkpoint left them;
- **the epochs** (:class:`bpgpu.trainer.Trainer`): the one epoch loop, shared with the
  scikit-learn estimators (:func:`train_epochs`).

The network is reached through its :class:`bpgpu.model.Model` (data in, steps,
evaluation, parameters) and, for files, ``net.config()``, ``net.arrays()``,
``net.set_weights`` and ``net.set_input_scaling``; callbacks get ``net`` itself.
"""

from __future__ import annotations

import logging

from bpgpu import checkpoint as _ckpt
from bpgpu import input_scale, streaming
from bpgpu.batches import Batches
from bpgpu.callbacks import Callback, PrintEpochs
from bpgpu.distributed import Distributed
from bpgpu.fingerprints import data_fingerprint
from bpgpu.graphs import wanted
from bpgpu.history import History
from bpgpu.host_rng import fresh_seed, split_indices
from bpgpu.inputs import class_labels, row_weights
from bpgpu.io import prepare_output
from bpgpu.recovery import position_of
from bpgpu.runstate import Data, Run, fresh_run, resume_run
from bpgpu.settings import (
    FitOptions,
    Settings,
    callback_list,
    check_saveable,
    reload_optimizer,
    resolve_settings,
)
from bpgpu.trainer import Trainer

__all__ = ["Callback", "History", "fit"]

log = logging.getLogger("bpgpu")


# ---- data -----------------------------------------------------------------------------


def prepare_data(
    model, X, y, st: Settings, validation_data, weighting=(None, None), count_correct=True
) -> Data:
    """Validate ``(X, y)``, move it to the device once, and take the validation part
    (streamed data: see :mod:`bpgpu.streaming`); ``weighting``: ``(sample_weight,
    class_weight)``, made into one host weight per training row; ``count_correct``:
    whether the epochs count correct predictions (where the targets are classes)."""
    if streaming.streamed(X) or streaming.streamed(y):
        Xv, Tv, Wv, host, accuracy, w = streaming.prepare(
            model, X, y, st.validation_split, st.seed, validation_data, weighting
        )
        return Data(None, None, None, Xv, Tv, host=host, accuracy=accuracy, w=w, Wv=Wv)
    backend = model.backend
    Xd = model.input(X)
    Td = model.targets(y, Xd.shape[0])
    w = row_weights(model, Td.shape[0], *weighting, lambda: class_labels(model, Td))
    Xv = Tv = Wv = None
    if st.validation_split:
        keep, held = split_indices(Xd.shape[0], st.validation_split, st.seed)
        if keep.size == 0 or held.size == 0:
            raise ValueError(
                f"validation_split={st.validation_split} leaves no training or no validation "
                f"samples out of {Xd.shape[0]}"
            )
        Xd, Td, Xv, Tv = model.split(Xd, Td, backend.asarray(keep), backend.asarray(held))
        if w is not None:  # the held-out rows' weights weigh the validation loss
            Wv = backend.asarray(w[held], model.dtype)
            w = w[keep]
    elif validation_data is not None:
        Xv, Tv, Wv = streaming.validation_arrays(model, validation_data)
    accuracy = model.accuracy_kind(Td) if count_correct else None  # None: regression
    labels = None if accuracy is None else model.target_labels(Td, accuracy)
    return Data(Xd, Td, labels, Xv, Tv, accuracy=accuracy, w=w, Wv=Wv)


# ---- fit ------------------------------------------------------------------------------


def fit(net, X, y, opts: FitOptions) -> History:
    """Train ``net`` on ``(X, y)`` with ``opts``; see :meth:`bpgpu.MLP.fit`."""
    model = net.model
    if type(opts.verbose) is not bool and opts.verbose not in (0, 1):
        raise ValueError(f"verbose must be True or False; got {opts.verbose!r}")
    dist = None if opts.comm is None else Distributed(opts.comm, model.backend)
    error, trainer = None, None
    try:
        trainer = _trainer(net, X, y, opts, dist)
    except Exception as e:
        if dist is None:
            raise
        error = e
    if dist is not None:  # refused on one rank: refused on all, with that rank's message
        dist.check(error)
        record = {"data": trainer.run.data, "network": net.config()}
        dist.agree({**record, "settings": trainer.settings.record()})
        if opts.resume is None:  # every rank starts from rank 0's weights (its own
            # differ for a network built with seed=None); a resume reads them from a file
            net.set_weights(dist.bcast(net.get_weights()))
    run, callbacks = trainer.run, trainer.callbacks
    _begin(net, run, callbacks)
    compiled_before = getattr(model.backend, "compile_seconds", 0.0)
    try:
        with model.backend.context():
            h = trainer.train(opts.handle_interrupt)
    except FloatingPointError:
        raise  # decided from numbers every rank shares: raised on every rank alike
    except BaseException as e:
        if dist is not None and dist.size > 1:
            dist.abort(e)  # no rank may be left waiting in a collective
        raise
    finally:
        getattr(trainer.batches, "close", lambda: None)()  # a streaming prefetch thread
    h.compile_time += getattr(model.backend, "compile_seconds", 0.0) - compiled_before
    for cb in callbacks:  # early stopping's first: the best weights back
        cb.on_train_end(net, h)
    return h


def _trainer(net, X, y, opts: FitOptions, dist) -> Trainer:
    """The fit's trainer: settings, data, batches and the run (fresh, or the
    checkpoint's), everything checked before training starts."""
    model = net.model
    graphs = wanted(opts.graphs)  # a bad value refused before anything happens
    ckpt = _checkpoint_to_resume(net, opts.resume)
    training = None if ckpt is None else ckpt[1]["training"]
    fresh = fresh_seed if dist is None else lambda: dist.bcast(fresh_seed())
    st, opt, now = resolve_settings(net.seed, opts.settings_kw(), training, fresh)
    _check_options(net, opts, st, opt, dist)
    callbacks = callback_list(opts.callbacks)
    if opts.verbose and (dist is None or dist.root):  # one line per epoch, from rank 0
        callbacks.append(PrintEpochs(st.epochs))
    sample_weight = opts.sample_weight
    if streaming.streamed(sample_weight):  # a .npy path: its array, a memory map
        sample_weight = streaming.open_host(sample_weight, "sample_weight")
    weighting = (sample_weight, opts.class_weight)
    # what the data were, so that a checkpoint is never resumed on other data (and, when
    # data-parallel, that every rank has the same)
    track = opts.checkpoint is not None or ckpt is not None or dist is not None
    fp = _fingerprint(X, y, weighting) if track else None
    undo = None
    if ckpt is not None:
        run, undo = resume_run(net, model, st, opt, ckpt, fp)
    elif opts.standardize is True:
        scaling = net.input_scaling
        held_out = st.validation_split and not streaming.streamed(X)
        rows = split_indices(len(X), st.validation_split, st.seed)[0] if held_out else None
        input_scale.standardize(net, X, rows)  # on the rows it trains on

        def undo() -> None:
            net.set_input_scaling(*(scaling or (None, None)))
    elif dist is None or dist.root:
        input_scale.warn_if_badly_scaled(net, X)
    try:
        data = prepare_data(model, X, y, st, opts.validation_data, weighting)
        batches = _batches(model, data, st, dist, opts.train_metrics is True)
        if ckpt is None:
            run = fresh_run(model, st, opt)
        else:
            run.position = position_of(run.position, batches.count)
            reload_optimizer(opt, now)  # last: a refused resume leaves the user's object alone
    except BaseException:
        if undo is not None:
            undo()  # a refused resume leaves the network as it was
        raise
    run.data = fp
    return Trainer(
        net,
        run,
        data,
        batches,
        st,
        callbacks=callbacks,
        checkpoint=opts.checkpoint,
        restore_best=opts.restore_best,
        train_metrics=opts.train_metrics,
        detect_anomaly=opts.detect_anomaly,
        dist=dist,
        graphs=graphs,
    )


def _begin(net, run, callbacks) -> None:
    """Each callback gets the optimizer the fit runs and its step count
    (``Callback.set_optimizer``), then ``on_train_begin``."""
    for cb in callbacks:
        tell = getattr(cb, "set_optimizer", None)  # duck-typed callbacks may lack it
        if tell is not None:
            tell(run.opt, lambda: int(run.state["t"]))
        cb.on_train_begin(net, run.history)


def _checkpoint_to_resume(net, resume):
    """``(path, config, arrays)`` of the checkpoint to resume from, checked to be of
    this network; None for a fresh fit."""
    if resume is None:
        return None
    cfg, arrays = _ckpt.read(resume, net._objects())  # its own objects by name too
    _ckpt.check_same_network(net.config(), cfg, resume)
    return resume, cfg, arrays


def _check_options(net, opts: FitOptions, st: Settings, opt, dist) -> None:
    """Options that only make sense together, refused before anything happens; the
    checkpoint's folder made now, not after the first epoch."""
    _check_standardize(net, opts)
    if opts.validation_data is not None and st.validation_split:
        raise ValueError("pass validation_data or validation_split, not both")
    if type(opts.train_metrics) is not bool:
        raise ValueError(f"train_metrics must be True or False; got {opts.train_metrics!r}")
    has_val = opts.validation_data is not None or bool(st.validation_split)
    if not opts.train_metrics and st.patience is not None and not has_val:
        raise ValueError(
            "early stopping (patience) without validation data watches the training loss, "
            "which train_metrics=False does not compute; pass validation_data or "
            "validation_split, or keep train_metrics=True"
        )
    mixed = net.model.precision
    if dist is not None and mixed is not None and net.model.backend.compiles:
        raise ValueError(
            f"precision={mixed.name!r} in a data-parallel fit on {net.model.backend.name} is "
            "not supported yet (its two programs a step run in full precision); use "
            "torch or cupy ranks, or precision=None"
        )
    if opts.checkpoint is not None:
        _ckpt.check_path(opts.checkpoint)
        net._check_nameable("a checkpoint")  # on every rank: all refuse together
        check_saveable(opt)
    if opts.checkpoint is not None and (dist is None or dist.root):
        prepare_output(opts.checkpoint, "checkpoint")


def _check_standardize(net, opts: FitOptions) -> None:
    if type(opts.standardize) is not bool:
        raise ValueError(f"standardize must be True or False; got {opts.standardize!r}")
    if opts.standardize and opts.resume is not None:
        raise ValueError(
            "standardize=True does not apply to resume=: the checkpoint has its input scaling"
        )
    if opts.standardize and net.input_scaling is not None:
        raise ValueError(
            "standardize=True would replace the network's input scaling; clear it first "
            "(net.set_input_scaling(None, None)) to standardise on these data"
        )


def _fingerprint(X, y, weighting) -> dict:
    """What the data are (their contents, not a path's name), with their weights."""
    sample_weight, class_weight = weighting
    weighed = [] if sample_weight is None else [sample_weight]  # other weights: other data
    if class_weight is not None:
        weighed.append(
            repr(sorted(class_weight.items()) if isinstance(class_weight, dict) else class_weight)
        )
    if streaming.streamed(X) or streaming.streamed(y):
        X, y = streaming.open_host(X, "X"), streaming.open_host(y, "y")
    return data_fingerprint(X, y, *weighed)


def _batches(model, data: Data, st: Settings, dist, metrics: bool = True):
    """The epochs' batches of ``data``: gathered on the device, or streamed from host
    memory; data-parallel, this rank's share of every global batch. The class labels
    come with them only for ``metrics`` (the correct counts)."""
    sizes = rows = None
    if dist is not None:
        sizes, rows = dist.batches(data.n, st.batch_size)
    if data.host is not None:
        batches = streaming.StreamBatches(
            model, *data.host, st.batch_size, sizes=sizes, accuracy=data.accuracy
        )
    else:  # the last array: each epoch's row shares of the batches' weights
        arrays = [data.X, data.T, data.labels if metrics else None, None]
        batches = Batches(model.xp, arrays, st.batch_size, sizes=sizes)
    if rows is not None:
        batches.rows = rows
    return batches


def train_epochs(net, X, T, st: Settings, run: Run, callbacks, sample_weight=None) -> History:
    """Train ``run`` on ``(X, T)`` for ``st.epochs`` epochs through the one trainer, for
    callers that keep their own run between calls and decide between epochs with
    callbacks (the scikit-learn estimators: their optimizer state and generator, their
    ``tol``, adaptive learning rate and early stopping). No correct counts."""
    model = net.model
    with model.backend.context():
        data = prepare_data(model, X, T, st, None, (sample_weight, None), count_correct=False)
        batches = _batches(model, data, st, None, metrics=False)
        graphs = wanted(None)  # $BPGPU_GRAPHS: the estimators have no option of their own
        trainer = Trainer(net, run, data, batches, st, callbacks=callbacks, graphs=graphs)
        _begin(net, run, callbacks)
        h = trainer.train()
        for cb in callbacks:
            cb.on_train_end(net, h)
    return h
