"""``MLP.fit``: mini-batch training with the data kept on the device, in parts.

- **settings** (:func:`bpgpu.settings.resolve_settings`): fit's arguments merged with a
  checkpoint's, conflicts refused, and the optimizer the fit runs;
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

from bpgpu import checkpoint as _ckpt
from bpgpu import streaming
from bpgpu._host import data_fingerprint, fresh_seed, split_indices
from bpgpu.batches import Batches
from bpgpu.distributed import Distributed
from bpgpu.epochs import (
    Data,
    Settings,
    end_epoch,
    fresh_run,
    looks_ahead,
    numbers,
    resume_run,
    run_epoch,
)
from bpgpu.history import Callback, History, PrintEpochs
from bpgpu.inputs import class_labels, row_weights
from bpgpu.io import prepare_output
from bpgpu.recovery import interruptible, position_of, restore
from bpgpu.settings import (
    MISSING,
    callback_list,
    check_saveable,
    reload_optimizer,
    resolve_settings,
)

__all__ = ["Callback", "History", "fit"]

log = logging.getLogger("bpgpu")


# ---- data -----------------------------------------------------------------------------


def prepare_data(model, X, y, st: Settings, validation_data, weighting=(None, None)) -> Data:
    """Validate ``(X, y)``, move it to the device once, and take the validation part
    (streamed data: see :mod:`bpgpu.streaming`); ``weighting``: ``(sample_weight,
    class_weight)``, made into one host weight per training row."""
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
    accuracy = model.accuracy_kind(Td)  # None for regression targets
    labels = None if accuracy is None else model.target_labels(Td, accuracy)
    return Data(Xd, Td, labels, Xv, Tv, accuracy=accuracy, w=w, Wv=Wv)


# ---- fit ------------------------------------------------------------------------------


def fit(
    net,
    model,
    X,
    y,
    epochs: int = 10,
    *,
    batch_size=MISSING,
    optimizer=MISSING,
    lr=None,
    weight_decay=0.0,
    validation_data=None,
    validation_split=MISSING,
    shuffle=MISSING,
    patience=MISSING,
    min_delta=MISSING,
    restore_best=True,
    callbacks=(),
    checkpoint=None,
    resume=None,
    seed=MISSING,
    detect_anomaly=False,
    handle_interrupt=True,
    train_metrics=True,
    verbose=False,
    comm=None,
    sample_weight=None,
    class_weight=None,
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
            (sample_weight, class_weight),
        )
    except Exception as e:
        if dist is None:
            raise
        error = e
    if dist is not None:  # refused on one rank: refused on all, with that rank's message
        dist.check(error)
        st, data, batches, run, callbacks = setup
        dist.agree({"data": run.data, "network": net.config(), "settings": st.__dict__})
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
    _begin(net, run, opts["callbacks"])
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


def _begin(net, run, callbacks) -> None:
    """Each callback gets the optimizer the fit runs and its step count
    (``Callback.set_optimizer``), then ``on_train_begin``."""
    for cb in callbacks:
        tell = getattr(cb, "set_optimizer", None)  # duck-typed callbacks may lack it
        if tell is not None:
            tell(run.opt, lambda: int(run.state["t"]))
        cb.on_train_begin(net, run.history)


def _setup(
    net, model, X, y, kw, dist, validation_data, callbacks, checkpoint, resume, metrics, weighting
):
    """Settings, data, batches and the run (fresh, or the checkpoint's): everything
    checked before training starts."""
    ckpt = None
    if resume is not None:
        cfg, arrays = _ckpt.read(resume, net._objects())  # its own objects by name too
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
    callbacks = callback_list(callbacks)
    if checkpoint is not None:
        net._check_nameable("a checkpoint")  # on every rank: all refuse together
        check_saveable(opt)
    if checkpoint is not None and (dist is None or dist.root):
        prepare_output(checkpoint, "checkpoint")  # now, not after the first epoch
    # what the data were, so that a checkpoint is never resumed on other data (and, when
    # data-parallel, that every rank has the same)
    track = checkpoint is not None or ckpt is not None or dist is not None
    sample_weight, class_weight = weighting
    if streaming.streamed(sample_weight):  # a .npy path: its array, a memory map
        sample_weight = streaming.open_host(sample_weight, "sample_weight")
        weighting = (sample_weight, class_weight)
    weighed = [] if sample_weight is None else [sample_weight]  # other weights: other data
    if class_weight is not None:
        weighed.append(
            repr(sorted(class_weight.items()) if isinstance(class_weight, dict) else class_weight)
        )
    if track and (streaming.streamed(X) or streaming.streamed(y)):  # the contents, not the path
        fp = data_fingerprint(streaming.open_host(X, "X"), streaming.open_host(y, "y"), *weighed)
    else:
        fp = data_fingerprint(X, y, *weighed) if track else None
    undo = None
    if ckpt is not None:
        run, undo = resume_run(net, model, st, opt, ckpt, fp)
    try:
        data = prepare_data(model, X, y, st, validation_data, weighting)
        arrays = [data.X, data.T, data.labels, None]  # the last: each epoch's row shares
        sizes = rows = None
        if dist is not None:  # each rank's stream: its share of every global batch
            sizes, rows = dist.batches(data.n, st.batch_size)
        if data.host is not None:
            batches = streaming.StreamBatches(
                model, *data.host, st.batch_size, sizes=sizes, accuracy=data.accuracy
            )
        else:
            batches = Batches(model.xp, arrays, st.batch_size, sizes=sizes)
        if rows is not None:
            batches.rows = rows
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
    return st, data, batches, run, callbacks


class _Stop:
    """A request to stop after the batch (Ctrl-C, or a callback's ``on_batch_end``
    returning True): this process's, or, data-parallel, any rank's (it travels with the
    gradients, so every rank stops at the same batch)."""

    def __init__(self, dist):
        self.dist, self.flag, self.any, self.requested = dist, None, False, False

    def request(self) -> None:
        """A callback's stop: the flag Ctrl-C sets."""
        self.requested = True
        self.flag.set()

    def local(self) -> bool:
        return self.flag is not None and self.flag.is_set()

    def is_set(self) -> bool:
        return self.local() if self.dist is None else self.any


def _stepper(model, run, dist, stop: _Stop):
    """One step on a batch: ``step(Xb, Tb, Lb, where, loss, rows, weights) -> (E, Y)``,
    the batch's summed cost (None unless ``loss``) and outputs; data-parallel, the batch
    is this rank's share of a global batch of ``rows`` rows, and the gradients are
    summed over the ranks; ``weights``: each row's share of the batch's weight."""
    if dist is None:

        def step(Xb, Tb, Lb, where, loss, rows=None, weights=None):
            run.state, E, Y = model.step(Xb, Tb, run.opt, run.state, loss, where, weights=weights)
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

    def step(Xb, Tb, Lb, where, loss, rows, weights=None):  # Xb: a share of `rows` rows
        first[0] = True
        opt = run.opt
        run.state, E, Y = model.step(Xb, Tb, opt, run.state, loss, where, reduce, rows, weights)
        return E, Y

    return step


def _train(net, model, run, data, batches, st, opts, handle_interrupt, stop) -> History:
    """The epochs, Ctrl-C turned into a stop after the batch."""
    if run.history.stopped_early or (run.start >= st.epochs and run.position is None):
        # a checkpoint of a finished fit (early stopping ended it, or every epoch is
        # done): the uninterrupted run trains no further, so neither does this one
        log.info("bpgpu: the checkpoint's fit is finished (epoch %d); nothing to train", run.start)
        run.history.interrupted = False
        return run.history
    with interruptible(handle_interrupt) as flag:
        stop.flag = flag
        ahead = looks_ahead(model, data, st, opts)
        ep = None
        for epoch in range(run.start, st.epochs):
            if ep is None:
                ep = run_epoch(net, model, run, data, batches, st, epoch, opts, stop)
            nums = numbers(model, ep, opts)  # before the next epoch takes the weights
            nxt = None
            if ahead and epoch + 1 < st.epochs and ep.done == batches.count and not stop.is_set():
                # dispatched behind this epoch's work: the device does not wait while
                # this epoch's numbers are read and recorded
                nxt = run_epoch(net, model, run, data, batches, st, epoch + 1, opts, stop)
            try:
                done = end_epoch(net, model, run, data, batches, st, ep, opts, stop, nums)
            except FloatingPointError:
                raise  # diverged in `ep`: its start is restored already
            except BaseException:  # a callback's error, a raw Ctrl-C: the weights of `ep`
                if nxt is not None:
                    restore(model, nxt.saved)
                raise
            if done:
                if nxt is not None:  # stopped after `ep`: the next epoch did not happen
                    run.state = restore(model, nxt.saved)
                break
            ep = nxt
    return run.history
