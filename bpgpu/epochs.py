"""One epoch of ``fit`` and what carries over between epochs.

:class:`Run` is everything a checkpoint holds, in memory (optimizer state, host RNG,
history, early stopping); :func:`start_run` makes it fresh or puts a checkpoint back,
:func:`save_checkpoint` writes it. :func:`run_epoch` trains the batches of one epoch
with no host read inside (each batch's loss and correct count stay on the device);
:func:`end_epoch` reads them once and handles divergence, interruption, the history,
early stopping, callbacks and the checkpoint. Driven by :func:`bpgpu.training.fit`.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

from bpgpu import checkpoint as _ckpt
from bpgpu._host import HostRNG, batch_shares
from bpgpu.batches import Batches, row_bytes
from bpgpu.history import Callback, History
from bpgpu.io import ModelFileError
from bpgpu.optimizers import lr_text
from bpgpu.recovery import diverged, restore, snapshot

log = logging.getLogger("bpgpu")


# ---- the run: optimizer state, RNG, history, early stopping ----------------------------


@dataclass
class Settings:
    """What a fit needs to be resumed exactly; stored in checkpoints."""

    epochs: int
    batch_size: int
    validation_split: float
    shuffle: bool
    patience: int | None
    min_delta: float
    seed: int
    optimizer: dict


@dataclass
class Data:
    """The training data on the device, validated, and the validation data (or None)."""

    X: Any
    T: Any
    labels: Any  # class labels of T, once, when accuracy is defined
    Xv: Any = None
    Tv: Any = None
    host: tuple | None = None  # streamed: (X, T, training rows or None) on the host
    accuracy: str | None = "classes"  # what it means for the targets (Model.accuracy_kind)
    w: Any = None  # each training row's sample weight, on the host (None: unweighted)
    Wv: Any = None  # the validation rows' sample weights, on the device (None: unweighted)

    @property
    def n(self) -> int:
        if self.host is not None:
            X, _, rows = self.host
            return X.shape[0] if rows is None else len(rows)
        return self.X.shape[0]


@dataclass
class Best:
    """Early stopping: the best monitored value, its weights (with patience) and the
    epochs waited since."""

    value: float = math.inf
    params: list | None = None
    wait: int = 0


@dataclass
class Run:
    """Everything a checkpoint holds, in memory."""

    opt: Any
    state: dict
    rng: HostRNG
    history: History
    best: Best = field(default_factory=Best)
    start: int = 0  # epochs already done
    position: dict | None = None  # where a mid-epoch checkpoint stopped
    data: dict | None = None  # rows and fingerprint of the training data, for checkpoints


def fresh_run(model, st: Settings, opt) -> Run:
    """A run from the start: zeroed optimizer state, the settings' seed."""
    return Run(opt, opt.init(model.params), HostRNG(st.seed), History(seed=st.seed))


def resume_run(net, model, st: Settings, opt, ckpt, fingerprint: dict | None):
    """The checkpoint ``ckpt = (path, config, arrays)`` put back: ``(run, undo)``.

    Everything in the file is checked before the network changes; then the network gets
    the checkpoint's weights and input scaling (so the data are standardised as they
    were), and ``undo()`` puts the old ones back if a later check refuses the resume.
    ``fingerprint`` (of the data given now) must match the one the checkpoint recorded.
    """
    path, cfg, arrays = ckpt
    try:
        tr = cfg["training"]
        start = int(tr["epoch"])
        history = History.from_json(tr["history"])
        rng = HostRNG(st.seed)
        rng.set_state(tr["rng"])
        best = Best(
            value=math.inf if tr["best_value"] is None else float(tr["best_value"]),
            wait=int(tr["wait"]),
        )
        t = int(tr["optimizer_t"])
        saved_data = tr.get("data")  # None in checkpoints written before it was recorded
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ModelFileError(
            f"{path}: the checkpoint's training section is not valid ({type(e).__name__}: {e})"
        ) from None
    if start > st.epochs:  # start == epochs: the fit is done, its result as it is
        raise ValueError(
            f"the checkpoint is at epoch {start}, past the epochs={st.epochs} asked for; "
            f"pass epochs > {start} to train further (epochs={start}: its result)"
        )
    if saved_data is not None and fingerprint is not None and saved_data != fingerprint:
        raise ValueError(
            f"{path} was written training on other data ({saved_data.get('rows')} rows, "
            f"fingerprint {saved_data.get('fingerprint')}; these are {fingerprint['rows']} "
            f"rows, fingerprint {fingerprint['fingerprint']}): resume with the data it was "
            "trained on, or start a new fit without resume="
        )
    weights, scaling = net.get_weights(), net.input_scaling

    def undo() -> None:
        net.set_weights(weights)
        net.set_input_scaling(*(scaling or (None, None)))

    try:
        net.set_weights([arrays[n] for n in model.names])
        if cfg.get("input_scaling"):
            net.set_input_scaling(arrays["x_mean"], arrays["x_scale"])
        else:
            net.set_input_scaling(None, None)
    except (KeyError, TypeError, ValueError) as e:
        undo()
        raise ModelFileError(f"{path}: the checkpoint's weights are not valid ({e})") from None
    device = model.backend.asarray
    slots = _ckpt.slots_of(arrays, model.names, opt.slots)
    state = {"t": t, **{s: [device(a, model.dtype) for a in v] for s, v in slots.items()}}
    saved_best = _ckpt.best_of(arrays, model.names, cfg)
    if saved_best is not None:
        best.params = [device(a, model.dtype) for a in saved_best]
    return Run(opt, state, rng, history, best, start, tr.get("position")), undo


def save_checkpoint(path, net, model, run: Run, st: Settings, position=None, rng_state=None):
    """Write the run to ``path``: after an epoch, or mid-epoch at ``position`` (then
    ``rng_state`` is the generator before that epoch's permutation, drawn again on
    resume). The data's fingerprint (``run.data``) goes with it."""
    h = run.history
    host = model.backend.to_numpy
    training = {
        "settings": st.__dict__,
        "epoch": h.epoch[-1] if h.epoch else 0,
        "optimizer_t": int(run.state["t"]),  # a device scalar after a compiled step
        # its hyper-parameters now (a schedule changes the rate), class and state slots
        "optimizer_now": run.opt.config(),
        "optimizer_class": type(run.opt).__qualname__,
        "optimizer_slots": list(run.opt.slots),
        "rng": run.rng.state() if rng_state is None else rng_state,
        "position": position,
        "history": h.to_json(),
        "best_value": run.best.value if math.isfinite(run.best.value) else None,
        "wait": run.best.wait,
        "data": run.data,
    }
    slots = {s: [host(v) for v in run.state[s]] for s in run.opt.slots}
    best = None if run.best.params is None else [host(p) for p in run.best.params]
    _ckpt.write(path, net.config(), net.arrays(), model.names, slots, best, training)


# ---- one epoch --------------------------------------------------------------------------


@dataclass
class Epoch:
    """What one pass over the batches leaves for the end of the epoch."""

    index: int  # 0-based
    t0: float
    first: int  # the batch it started from (a mid-epoch resume starts later)
    done: int  # batches finished (fewer than all: interrupted)
    losses: list  # per-batch summed costs, device scalars (with train_metrics)
    rights: list  # per-batch correct counts, device scalars
    before: list | None  # a resumed epoch's earlier losses (None: unknown)
    correct_before: int | None
    perm: Any  # the device permutation (None: in order)
    saved: tuple  # parameters and optimizer state at the epoch's start
    rng_before: dict  # the generator before this epoch's permutation


def run_epoch(net, model, run: Run, data: Data, batches: Batches, st, epoch: int, opts, stop_flag):
    """Train one epoch (from a checkpoint's position, if it stopped mid-epoch)."""
    t0 = time.perf_counter()
    rng_before = run.rng.state()  # a mid-epoch checkpoint redraws this permutation
    perm = run.rng.permutation(data.n) if st.shuffle else None
    host = getattr(batches, "host_perm", False)  # streamed rows are gathered on the host
    if data.w is not None:  # each row's share of its (global) batch's weight, this epoch
        shares = batch_shares(data.w, perm, batches.rows)
        if host:
            batches.shares = shares  # gathered with the rows
        else:
            batches.arrays[3] = model.backend.asarray(shares, model.dtype)
    dist = opts["dist"]
    if dist is not None:  # this rank's share of every batch, gathered alone
        perm = dist.local_order(perm, data.n, st.batch_size)
    perm_d = None if perm is None or host else model.backend.asarray(perm)
    perm_d = perm if host else perm_d
    saved = snapshot(model, run.state)
    first, before, correct_before = 0, [], 0
    if run.position is not None:  # resuming in the middle of this epoch
        pos, run.position = run.position, None
        first, correct_before = pos["batch"], pos["correct"]
        # the finished batches' losses, so the epoch sums the very same values
        # (None: that fit ran without train_metrics, so this epoch's are unknown)
        dtype = model.backend.dtype(model.dtype)
        dev = model.backend.device
        losses = pos["losses"]
        if losses is not None and dist is not None and not dist.root:
            losses = []  # the global values, summed over the ranks at the epoch's end: once
        before = (
            None
            if losses is None
            else [model.xp.asarray(v, dtype=dtype, device=dev) for v in losses]
        )
    metrics, n_batches = opts["train_metrics"], batches.count
    anomaly, callbacks, step = opts["detect_anomaly"], opts["callbacks"], opts["step"]
    losses, rights, done = [], [], n_batches
    full = data.n // st.batch_size  # full batches: one compiled program on JAX
    first_eager = first
    if _compiled_epoch(model, data, opts) and first < full:
        order = perm_d
        if order is None:  # unshuffled: the rows in order
            order = model.xp.arange(data.n, device=model.backend.device)
        run.state, E, right, first_eager = model.epoch_spans(
            data.X,
            data.T,
            data.labels,
            order,
            st.batch_size,
            first,
            full,
            run.opt,
            run.state,
            metrics,
            stop_flag.is_set,
            batches.arrays[3],
        )
        if metrics:
            losses += E  # per-batch vectors: summed, or read, like the scalars
            rights += right
        if stop_flag.is_set() and first_eager < n_batches:  # Ctrl-C: after a compiled span
            done = first_eager
    eager = batches.epoch(perm_d, first_eager) if done == n_batches else ()
    tally = Tally(model)
    for bi, (Xb, Tb, Lb, Wb) in enumerate(eager, start=first_eager):
        where = (epoch + 1, bi + 1) if anomaly else None
        E, Y = step(Xb, Tb, Lb, where, metrics, batches.rows[bi], Wb)
        if metrics:
            losses.append(E)
            if Lb is not None:
                tally.add(Y, Lb)
        for cb in callbacks:
            if cb.on_batch_end(net, bi):
                stop_flag.request()  # as Ctrl-C does: stop after this batch
        if stop_flag.is_set() and bi + 1 < n_batches:
            done = bi + 1
            break
    rights += tally.counts()
    return Epoch(
        epoch, t0, first, done, losses, rights, before, correct_before, perm_d, saved, rng_before
    )


class Tally:
    """Correct predictions of many batches, counted a group at a time: the outputs and
    labels of the batches are kept (at most ``BYTES`` of outputs) and counted in one
    argmax, one comparison and one count, instead of three operations a step (a small
    network trains 2.5% faster on NumPy, 8% on torch's CPU, NOTES 19; on a GPU three
    kernel launches a step fewer). The counts are integers: the same totals in any
    grouping."""

    BYTES = 4 << 20

    def __init__(self, model):
        self.model, self.Ys, self.Ls, self.rows, self.found = model, [], [], 0, []
        self.limit = None  # rows of outputs held at most, from the first batch's row size

    def add(self, Y, labels) -> None:
        if self.limit is None:
            self.limit = max(1, self.BYTES // row_bytes(self.model.xp, Y))
        self.Ys.append(Y)
        self.Ls.append(labels)
        self.rows += Y.shape[0]
        if self.rows >= self.limit:
            self._count()

    def counts(self) -> list:
        """The device counts of the groups so far (0-d integer arrays)."""
        self._count()
        return self.found

    def _count(self) -> None:
        if self.Ys:
            xp = self.model.xp
            Y = self.Ys[0] if len(self.Ys) == 1 else xp.concat(self.Ys)
            L = self.Ls[0] if len(self.Ls) == 1 else xp.concat(self.Ls)
            self.found.append(self.model.correct(Y, L))
            self.Ys, self.Ls, self.rows = [], [], 0


def _compiled_epoch(model, data: Data, opts) -> bool:
    """Whether the epoch's full batches run as one compiled program: on a compiling
    backend (JAX), unless a callback wants every batch (``on_batch_end``; one may say
    otherwise with ``per_batch = False``), anomaly mode checks every layer, the fit is
    data-parallel, or the data are streamed."""
    if not model.backend.compiles or opts["detect_anomaly"] or opts["dist"] is not None:
        return False
    if data.host is not None:
        return False
    for cb in opts["callbacks"]:
        per_batch = getattr(cb, "per_batch", None)
        if per_batch is None:
            per_batch = type(cb).on_batch_end is not Callback.on_batch_end
        if per_batch:
            return False
    return True


def _sum(xp, values: list):
    """The sum of device scalars and per-batch vectors alike (a compiled epoch gives
    vectors; one of them, the usual case there, is summed without a reshape and a
    concatenation: two operations fewer an epoch)."""
    if len(values) == 1 and values[0].ndim <= 1:
        return xp.sum(values[0])
    return xp.sum(xp.concat([xp.reshape(v, (-1,)) for v in values]))


def looks_ahead(model, data: Data, st, opts) -> bool:
    """Whether the next epoch's program may be dispatched before this epoch's numbers
    are read, so that an asynchronous device never waits for the fit's work between
    epochs (about 4 ms an epoch on JAX on an H200, NOTES 23). Only where that work
    cannot tell the difference: compiled epochs, no validation, early stopping,
    checkpoint or callback that looks at the network at an epoch's end. A stop at the
    epoch's end (Ctrl-C, a callback) undoes the next epoch; divergence restores as
    before."""
    if not _compiled_epoch(model, data, opts) or data.Xv is not None:
        return False
    if st.patience is not None or opts["checkpoint"] is not None:
        return False
    return all(
        not cb.sees_network or type(cb).on_epoch_end is Callback.on_epoch_end
        for cb in opts["callbacks"]
    )


# ---- the end of an epoch -----------------------------------------------------------------


@dataclass
class Numbers:
    """An epoch's end-of-epoch numbers on the device, asked for and not read yet: every
    one before the first is read, so that on an asynchronous device they are computed
    behind the epoch's work, not one round trip each after it."""

    ok: Any  # every parameter finite
    right: Any  # correct predictions (None: not counted)
    total: Any  # summed costs (None: without train_metrics)


def numbers(model, ep: Epoch, opts) -> Numbers:
    """Ask for ``ep``'s numbers: before anything else takes the weights (the next
    epoch's program donates them on JAX)."""
    xp = model.xp
    right = _sum(xp, ep.rights) if ep.rights else None
    total = _sum(xp, (ep.before or []) + ep.losses) if opts["train_metrics"] else None
    return Numbers(model.finite_flag(), right, total)


def end_epoch(
    net, model, run: Run, data: Data, batches: Batches, st, ep: Epoch, opts, stop_flag, nums
) -> bool:
    """Divergence, interruption, history, early stopping, callbacks, checkpoint: True
    when training stops here. ``nums``: the epoch's :func:`numbers`, asked for when the
    epoch was dispatched."""
    metrics, n_batches = opts["train_metrics"], batches.count
    dist = opts["dist"]
    known = metrics and ep.before is not None  # the whole epoch's metrics are known
    ok, right_d, total_d = nums.ok, nums.right, nums.total
    right = 0 if right_d is None else int(right_d)
    if metrics:
        total = float(total_d)  # the epoch's read
        if dist is not None:  # the ranks' shares summed: once per epoch
            total, right = dist.sum_numbers([total, right])
            right = int(right)
        finite = math.isfinite(total) and bool(ok)  # finite loss, bad update: caught
    else:  # no losses: the weights tell whether training diverged (one read)
        total, finite = math.nan, bool(ok)
    correct = None
    if known and ep.correct_before is not None:
        correct = ep.correct_before + right
    if not finite and not metrics:
        restore(model, ep.saved)
        raise FloatingPointError(
            f"the weights became NaN or inf in epoch {ep.index + 1}; the weights at its "
            f"start are restored. Lower the learning rate (now {lr_text(run.opt.lr)}), "
            "standardise the inputs, or fit with train_metrics=True (names the batch) "
            "or detect_anomaly=True (names the layer)"
        )
    if not finite:
        host = _batch_losses(model, ep.losses, dist)  # read only for a failed epoch
        diverged(model, run, ep.saved, host, ep.first, ep.perm, batches, ep.index + 1, opts)
    h = run.history
    if ep.done < n_batches:  # interrupted: keep the weights, remember the position
        h.interrupted = True
        losses = _batch_losses(model, ep.before + ep.losses, dist) if known else None
        if opts["checkpoint"] is not None and (dist is None or dist.root):
            position = {
                "batch": ep.done,
                "losses": losses,
                "correct": correct,
                "epoch": ep.index,
            }
            save_checkpoint(opts["checkpoint"], net, model, run, st, position, ep.rng_before)
        if opts["checkpoint"] is not None and dist is not None:
            dist.comm.Barrier()  # every rank may resume from it once fit returns
        log.warning(
            "bpgpu: fit %s in epoch %d after batch %d of %d",
            "stopped by a callback" if stop_flag.requested else "interrupted",
            ep.index + 1,
            ep.done,
            n_batches,
        )
        return True
    val_loss = val_acc = math.nan
    if data.Xv is not None:
        val_loss, val_acc = model.evaluate(
            data.Xv, data.Tv, accuracy=data.accuracy, weights=data.Wv
        )
    h.epoch.append(ep.index + 1)
    h.loss.append(total / data.n if known else math.nan)
    known = data.accuracy is not None and correct is not None
    h.accuracy.append(correct / data.n if known else math.nan)
    h.val_loss.append(val_loss)
    h.val_accuracy.append(val_acc)
    h.time.append(time.perf_counter() - ep.t0)
    stop = _early_stopping(model, run, st, val_loss if data.Xv is not None else h.loss[-1])
    logs = {k: v[-1] for k, v in h.history.items()}
    for cb in opts["callbacks"]:
        if cb.on_epoch_end(net, ep.index + 1, logs):
            stop = True
    if dist is not None:  # a callback's stop on any rank stops them all
        stop = bool(dist.sum_numbers([float(stop)])[0])
    h.interrupted = stop_flag.is_set()
    if opts["checkpoint"] is not None and (dist is None or dist.root):
        save_checkpoint(opts["checkpoint"], net, model, run, st)
    if opts["checkpoint"] is not None and dist is not None:
        dist.comm.Barrier()  # written before any rank goes on (and may read it)
    return stop or h.interrupted


def _batch_losses(model, losses: list, dist) -> list[float]:
    """Per-batch summed costs as host floats (scalars, or a compiled epoch's vectors),
    summed over the ranks when data-parallel."""
    host = [float(x) for v in losses for x in model.backend.to_numpy(v).reshape(-1).tolist()]
    return host if dist is None else dist.sum_numbers(host)


def _early_stopping(model, run: Run, st: Settings, monitored: float) -> bool:
    """Track the best epoch; True when ``patience`` epochs went by without improving."""
    best, h = run.best, run.history
    if monitored < best.value - st.min_delta:
        best.value, best.wait = monitored, 0
        best.params = model.copy(model.params) if st.patience is not None else None
        h.best_epoch = h.epoch[-1]
    else:
        best.wait += 1
    if st.patience is not None and best.wait >= st.patience:
        h.stopped_early = True
    return h.stopped_early
