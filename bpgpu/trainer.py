"""The one epoch loop: :class:`Trainer` runs the epochs of every kind of fit.

``MLP.fit``, the scikit-learn estimators, data-parallel ranks, streamed data and JAX's
compiled epochs all train through one :class:`Trainer`: it owns the run state (the data
and its batches, the :class:`~bpgpu.runstate.Run`, the position, the stop flag) and has
a method for an epoch, the end of an epoch, and the loop. What differs between callers
is what they hand it (settings, data, the run, callbacks). What happens between epochs
is a :class:`~bpgpu.Callback`: fit's early stopping and checkpoint
(:mod:`bpgpu.run_callbacks`, added by the trainer from its settings), progress lines,
the scikit-learn estimators' ``tol`` and adaptive learning rate, and a user's own.

A step (``Trainer.step``): one optimizer step on a device batch; data-parallel, on
this rank's share of a global batch, with the gradients summed over the ranks.
"""

from __future__ import annotations

import logging
import math
import time

from bpgpu.callbacks import Callback, has_batch_hook
from bpgpu.epochs import (
    Epoch,
    Numbers,
    Tally,
    batch_losses,
    compiled_epoch,
    epoch_sum,
)
from bpgpu.history import History
from bpgpu.optimizers import lr_text
from bpgpu.recovery import diverged, interruptible, restore, snapshot
from bpgpu.run_callbacks import Checkpointing, EarlyStopping
from bpgpu.runstate import Data, Run
from bpgpu.sample_weights import batch_shares
from bpgpu.settings import Settings
from bpgpu.sharded import sharded_update
from bpgpu.spans import ProgramSpans

log = logging.getLogger("bpgpu")


class Stop:
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

    def check(self):
        """:meth:`is_set` as one callable for a loop to ask every batch: in one process
        the flag's own ``is_set``, a call fewer."""
        if self.dist is None and self.flag is not None:
            return self.flag.is_set
        return self.is_set


class Trainer(ProgramSpans):
    """The epochs of one fit.

    Parameters
    ----------
    net : MLP
        The network callbacks are given (and checkpoints describe).
    run : Run
        Optimizer and its state, host RNG, history, early stopping, start epoch.
    data : Data
        The training (and validation) data on the device.
    batches : Batches or StreamBatches
        The epoch's batches of ``data``.
    settings : Settings
    callbacks : list of Callback
        The caller's; the trainer puts early stopping before them and the checkpoint
        after them (:mod:`bpgpu.run_callbacks`).
    checkpoint : path or None
        Where the run is saved after every epoch (and when interrupted).
    restore_best : bool
        With ``settings.patience``: the best epoch's weights are the network's at the end.
    train_metrics, detect_anomaly : bool
        As :meth:`bpgpu.MLP.fit` takes them.
    graphs : bool
        Replay the full batches' steps from a captured CUDA graph where the backend
        can (:mod:`bpgpu.graphs`); where it cannot, say why once and run eagerly.
    dist : Distributed or None
        Data-parallel ranks.
    """

    def __init__(
        self,
        net,
        run: Run,
        data: Data,
        batches,
        settings: Settings,
        *,
        callbacks=(),
        checkpoint=None,
        restore_best: bool = True,
        train_metrics: bool = True,
        detect_anomaly: bool = False,
        dist=None,
        graphs: bool = False,
    ):
        self.net, self.model = net, net.model
        self.run, self.data, self.batches, self.settings = run, data, batches, settings
        self.early = EarlyStopping(run, settings, data.Xv is not None, restore_best)
        self.callbacks = [self.early, *callbacks]
        self.checkpoint = None
        if checkpoint is not None:
            self.checkpoint = Checkpointing(checkpoint, run, settings, dist)
            self.callbacks.append(self.checkpoint)
        self.metrics, self.anomaly, self.dist = train_metrics, detect_anomaly, dist
        self.stop = Stop(dist)
        self._first_reduce = True  # data-parallel: the stop flag rides on a step's first sum
        # step(Xb, Tb, where, loss, rows, weights) -> (E, Y): one optimizer step on a
        # batch, E its summed cost (None unless ``loss``) and Y its outputs; ``where =
        # (epoch, batch)`` in anomaly mode; ``weights`` each row's share of its batch's
        self.shards = sharded_update(net.model, run.opt, dist, detect_anomaly)
        self.step = self._local_step() if dist is None else self._ranks_step
        if self.shards is not None:  # each rank updates its slice of the weights
            self.step = self._sharded_step
        self.graph = self._graph() if graphs else None

    # ---- one step -----------------------------------------------------------------------

    def _local_step(self):
        """The step of a fit no other rank shares, with the model and the run bound once
        (on a small network a lookup is a noticeable part of a step)."""
        model, run = self.model, self.run
        eager = model.eager_step()  # None: the backend compiles its step

        def step(Xb, Tb, where, loss, rows=None, weights=None):
            if eager is not None and where is None:
                run.state, E, Y = eager(Xb, Tb, run.opt, run.state, loss, weights)
            else:
                run.state, E, Y = model.step(
                    Xb, Tb, run.opt, run.state, loss, where, weights=weights
                )
            return E, Y

        return step

    def _ranks_step(self, Xb, Tb, where, loss: bool, rows=None, weights=None):
        """The data-parallel step: ``Xb`` is this rank's share of a global batch of
        ``rows`` rows, the gradients are summed over the ranks (:meth:`_reduce`)."""
        run = self.run
        self._first_reduce = True
        run.state, E, Y = self.model.step(
            Xb, Tb, run.opt, run.state, loss, where, self._reduce, rows, weights
        )
        return E, Y

    def _sharded_step(self, Xb, Tb, where, loss: bool, rows=None, weights=None):
        """The data-parallel step with the optimizer update shared out over the ranks
        (:mod:`bpgpu.sharded`); the stop request travels with it."""
        E, Y, any_stop = self.shards.step(self.run, Xb, Tb, loss, rows, weights, self.stop.local())
        self.stop.any = self.stop.any or any_stop
        return E, Y

    def _reduce(self, grads):
        """The gradients summed over the ranks (once per step, or once per layer for
        plain SGD); the first sum of a step carries this rank's stop request."""
        xp = self.model.xp
        if not self._first_reduce:
            return self.dist.sum_grads(xp, grads)[0]
        self._first_reduce = False
        grads, any_stop = self.dist.sum_grads(xp, grads, self.stop.local())
        self.stop.any = self.stop.any or any_stop
        return grads

    # ---- one epoch ----------------------------------------------------------------------

    def epoch(self, index: int) -> Epoch:
        """Train epoch ``index`` (0-based; from a checkpoint's position, if it stopped
        mid-epoch), with no host read inside: each batch's loss and correct count stay
        on the device."""
        t0 = time.perf_counter()
        run, model, data, batches = self.run, self.model, self.data, self.batches
        rng_before = run.rng.state()  # a mid-epoch checkpoint redraws this permutation
        perm = self._order()
        saved = snapshot(model, run.state)
        first, before, correct_before = self._resumed_position()
        losses, rights, done = [], [], batches.count
        first_eager = first
        full = data.n // self.settings.batch_size  # full batches: one program on JAX
        spans = None
        if compiled_epoch(model, data, self) and first < full:
            spans = self._compiled_spans(perm, first, full)
        elif self.graph is not None and first < full:
            spans = self._replayed(perm, first)
        if spans is not None:
            E, right, first_eager = spans
            if self.metrics:
                losses += E  # per-batch vectors: summed, or read, like the scalars
                rights += right
            if self.stop.is_set() and first_eager < batches.count:  # after a compiled span
                done = first_eager
        eager = batches.epoch(perm, first_eager) if done == batches.count else ()
        tally = Tally(model)
        # what runs for every batch, looked up once: on a small network the loop's own
        # work is a noticeable part of a step
        step, metrics, rows, stopped = self.step, self.metrics, batches.rows, self.stop.check()
        hooks = [cb for cb in self.callbacks if has_batch_hook(cb)]
        anomaly, last = self.anomaly, batches.count - 1
        for bi, (Xb, Tb, Lb, Wb) in enumerate(eager, start=first_eager):
            E, Y = step(Xb, Tb, (index + 1, bi + 1) if anomaly else None, metrics, rows[bi], Wb)
            if metrics:
                losses.append(E)
                if Lb is not None:
                    tally.add(Y, Lb)
            for cb in hooks:
                if cb.on_batch_end(self.net, bi):
                    self.stop.request()  # as Ctrl-C does: stop after this batch
            if bi < last and stopped():
                done = bi + 1
                break
        rights += tally.counts()
        if self.shards is not None:  # the optimizer state whole again on every rank
            self.shards.gather_state()
        return Epoch(
            index, t0, first, done, losses, rights, before, correct_before, perm, saved, rng_before
        )

    def _order(self):
        """This epoch's permutation (None: in order), drawn on the host and, for data
        kept on the device, moved there; the rows' shares of their batches' weights."""
        run, model, data, batches = self.run, self.model, self.data, self.batches
        perm = run.rng.permutation(data.n) if self.settings.shuffle else None
        host = getattr(batches, "host_perm", False)  # streamed rows are gathered on the host
        if data.w is not None:  # each row's share of its (global) batch's weight
            batches.set_shares(batch_shares(data.w, perm, batches.rows), model)
        if self.dist is not None:  # this rank's share of every batch, gathered alone
            perm = self.dist.local_order(perm, data.n, self.settings.batch_size)
        if perm is None or host:
            return perm
        return model.backend.asarray(perm)

    def _resumed_position(self) -> tuple[int, list | None, int]:
        """``(first batch, the finished batches' device losses, correct so far)`` of an
        epoch a checkpoint stopped in the middle of; ``(0, [], 0)`` otherwise. The
        losses are None when that fit ran without train_metrics."""
        run, model = self.run, self.model
        if run.position is None:
            return 0, [], 0
        pos, run.position = run.position, None
        losses = pos["losses"]
        if losses is not None and self.dist is not None and not self.dist.root:
            losses = []  # the global values, summed over the ranks at the epoch's end: once
        if losses is not None:
            dtype, dev = model.backend.dtype(model.dtype), model.backend.device
            losses = [model.xp.asarray(v, dtype=dtype, device=dev) for v in losses]
        return pos["batch"], losses, pos["correct"]

    # ---- the end of an epoch ------------------------------------------------------------

    def numbers(self, ep: Epoch) -> Numbers:
        """Ask for ``ep``'s end-of-epoch numbers, before anything else takes the weights
        (the next epoch's program donates them on JAX); read in :meth:`end_epoch`."""
        ops = self.model.backend.ops
        right = epoch_sum(ops, ep.rights) if ep.rights else None
        total = epoch_sum(ops, (ep.before or []) + ep.losses) if self.metrics else None
        return Numbers(self.model.finite_flag(), right, total)

    def end_epoch(self, ep: Epoch, nums: Numbers) -> bool:
        """Divergence, interruption, history, then the callbacks (early stopping first,
        the checkpoint last): True when training stops here."""
        total, correct = self._read(ep, nums)
        if ep.done < self.batches.count:  # interrupted: keep the weights, the position
            self._interrupted(ep, correct)
            return True
        h, data = self.run.history, self.data
        known = self.metrics and ep.before is not None  # the whole epoch's loss is known
        val_loss = val_acc = math.nan
        if data.Xv is not None:
            val_loss, val_acc = self.model.evaluate(
                data.Xv, data.Tv, accuracy=data.accuracy, weights=data.Wv
            )
        h.epoch.append(ep.index + 1)
        h.loss.append(total / data.n if known else math.nan)
        counted = data.accuracy is not None and correct is not None
        h.accuracy.append(correct / data.n if counted else math.nan)
        h.val_loss.append(val_loss)
        h.val_accuracy.append(val_acc)
        h.time.append(time.perf_counter() - ep.t0)
        scaler = self.run.state.get("scaler")
        if scaler is not None:  # float16: the steps its loss scaling skipped, so far
            h.skipped_steps = int(scaler[2])
        logs = {k: v[-1] for k, v in h.history.items()}
        stop = False
        for cb in self.callbacks:  # a Ctrl-C in one is seen by the next (the checkpoint)
            h.interrupted = self.stop.is_set()
            if cb.on_epoch_end(self.net, ep.index + 1, logs):
                stop = True
        h.interrupted = self.stop.is_set()
        if self.dist is not None:  # a callback's stop on any rank stops them all
            stop = bool(self.dist.sum_numbers([float(stop)])[0])
        return stop or h.interrupted

    def _read(self, ep: Epoch, nums: Numbers) -> tuple[float, int | None]:
        """The epoch's summed loss (NaN without metrics) and correct count (None when
        unknown), read once; a loss or weights that are not finite restore the last
        weights known finite and raise."""
        metrics, dist, model = self.metrics, self.dist, self.model
        right = 0 if nums.right is None else int(nums.right)
        if metrics:
            total = float(nums.total)  # the epoch's read
            if dist is not None:  # the ranks' shares summed: once per epoch
                total, right = dist.sum_numbers([total, right])
                right = int(right)
            finite = math.isfinite(total) and bool(nums.ok)  # finite loss, bad update: caught
        else:  # no losses: the weights tell whether training diverged (one read)
            total, finite = math.nan, bool(nums.ok)
        if not finite and not metrics:
            restore(model, ep.saved)
            raise FloatingPointError(
                f"the weights became NaN or inf in epoch {ep.index + 1}; the weights at its "
                f"start are restored. Lower the learning rate (now {lr_text(self.run.opt.lr)}), "
                "standardise the inputs, or fit with train_metrics=True (names the batch) "
                "or detect_anomaly=True (names the layer)"
            )
        if not finite:
            host = batch_losses(model, ep.losses, dist)  # read only for a failed epoch
            diverged(self, ep.saved, host, ep.first, ep.perm, ep.index + 1)
        known = metrics and ep.before is not None
        correct = ep.correct_before + right if known and ep.correct_before is not None else None
        return total, correct

    def _interrupted(self, ep: Epoch, correct: int | None) -> None:
        """A stop in the middle of ``ep``: the weights kept, the position saved."""
        self.run.history.interrupted = True
        known = self.metrics and ep.before is not None
        losses = batch_losses(self.model, ep.before + ep.losses, self.dist) if known else None
        position = {"batch": ep.done, "losses": losses, "correct": correct, "epoch": ep.index}
        if self.checkpoint is not None:
            self.checkpoint.save(self.net, position, ep.rng_before)
        log.warning(
            "bpgpu: fit %s in epoch %d after batch %d of %d",
            "stopped by a callback" if self.stop.requested else "interrupted",
            ep.index + 1,
            ep.done,
            self.batches.count,
        )

    # ---- the loop -----------------------------------------------------------------------

    def looks_ahead(self) -> bool:
        """Whether the next epoch's program may be dispatched before this epoch's numbers
        are read, so that an asynchronous device never waits for the fit's work between
        epochs. Only where that work cannot tell the difference: compiled epochs, no
        validation, early stopping, checkpoint or callback that looks at the network at
        an epoch's end (early stopping with patience and the checkpoint do). A stop at
        the epoch's end undoes the next epoch."""
        if not compiled_epoch(self.model, self.data, self) or self.data.Xv is not None:
            return False
        return all(
            not cb.sees_network or type(cb).on_epoch_end is Callback.on_epoch_end
            for cb in self.callbacks
        )

    def train(self, handle_interrupt: bool = True) -> History:
        """The epochs from the run's start to ``settings.epochs``; the first Ctrl-C stops
        after the batch (``handle_interrupt``). Returns the run's history."""
        run, st = self.run, self.settings
        if run.history.stopped_early or (run.start >= st.epochs and run.position is None):
            # a checkpoint of a finished fit: the uninterrupted run trains no further
            log.info(
                "bpgpu: the checkpoint's fit is finished (epoch %d); nothing to train", run.start
            )
            run.history.interrupted = False
            return run.history
        model = self.model
        work = st.batch_size * max(layer.n_in * layer.n_out for layer in model.layers)
        sharing = 1  # processes training on this machine's cores at once
        if self.dist is not None:
            work //= self.dist.size
            sharing = self.dist.ranks_here
        with model.backend.threads(work, sharing), model.backend.quiet():
            with interruptible(handle_interrupt) as flag:
                self.stop.flag = flag
                self._epochs()
        return run.history

    def _epochs(self) -> None:
        """The loop itself: an epoch, its numbers, (on JAX, the next epoch dispatched
        behind them), its end."""
        ahead, count = self.looks_ahead(), self.batches.count
        ep = None
        for index in range(self.run.start, self.settings.epochs):
            if ep is None:
                ep = self.epoch(index)
            nums = self.numbers(ep)  # before the next epoch takes the weights
            nxt = None
            last = index + 1 >= self.settings.epochs
            if ahead and not last and ep.done == count and not self.stop.is_set():
                nxt = self.epoch(index + 1)  # dispatched behind this epoch's work
            try:
                done = self.end_epoch(ep, nums)
            except FloatingPointError:
                raise  # diverged in `ep`: its start is restored already
            except BaseException:  # a callback's error, a raw Ctrl-C: the weights of `ep`
                if nxt is not None:
                    restore(self.model, nxt.saved)
                raise
            if done:
                if nxt is not None:  # stopped after `ep`: the next epoch did not happen
                    self.run.state = restore(self.model, nxt.saved)
                return
            ep = nxt
