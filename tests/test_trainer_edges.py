"""The edges of ``fit`` where a trainer's one-line bugs hide (issue #27 part 8): early
stopping on ties, ``min_delta``, ``patience`` and restored weights, a stop or Ctrl-C
combined with them; a data-parallel fit without a seed; streamed data whose length is not
a multiple of the chunk, with a bad value on a chunk's edge.

Only the public behaviour is tested (fit's arguments, the History, the weights), so the
tests keep guarding while the trainer is rewritten underneath. tests/MUTATIONS.md lists
the bugs each was seen to catch.
"""

from __future__ import annotations

import math
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bpgpu
from bpgpu import streaming

# ---- early stopping on a monitored value the test controls -----------------------------
#
# A one-weight linear network ``o = w x + b`` (quadratic cost) and one validation sample
# ``x = 1, t = 0``: the validation loss is a function of ``w + b`` alone. A callback sets
# the weights after each epoch's only batch, before the epoch's validation loss is taken,
# so the test scripts the loss of every epoch; ``b`` tells epochs of equal loss apart.
# Outputs are dyadic fractions, so every loss and every difference of losses is exact.

X1, Y1 = np.array([[1.0], [2.0]]), np.array([0.0, 0.0])  # one batch an epoch
XV, YV = np.array([[1.0]]), np.array([0.0])


def linear_net(backend="numpy"):
    return bpgpu.MLP(
        [1, 1], hidden=[], output="identity", cost="quadratic", backend=backend, dtype="float64"
    )


def scripted(outputs):
    """Weights ``[W, b]`` for each epoch's output ``o = w + b``; ``b`` differs per epoch."""
    return [
        [np.array([[o - 0.125 * (k + 1)]]), np.array([0.125 * (k + 1)])]
        for k, o in enumerate(outputs)
    ]


class Script(bpgpu.Callback):
    """Puts epoch ``e``'s scripted weights in after its last batch; records what each
    epoch ended with and, optionally, stops (``stop_epoch``: from ``on_epoch_end``;
    ``stop_batch = (epoch, batch)``: from ``on_batch_end``, as Ctrl-C does;
    ``sigint = (epoch, batch)``: a real Ctrl-C)."""

    def __init__(self, weights, batches=1, stop_epoch=None, stop_batch=None, sigint=None):
        self.weights, self.batches = weights, batches
        self.stop_epoch, self.stop_batch, self.sigint = stop_epoch, stop_batch, sigint
        self.epoch, self.ended, self.after_batch = 1, {}, {}

    def on_batch_end(self, net, batch):
        if batch == self.batches - 1 and self.epoch <= len(self.weights):
            net.set_weights(self.weights[self.epoch - 1])
        self.after_batch[(self.epoch, batch)] = net.get_weights()
        if self.sigint == (self.epoch, batch):
            signal.raise_signal(signal.SIGINT)
        return self.stop_batch == (self.epoch, batch)

    def on_epoch_end(self, net, epoch, logs):
        self.ended[epoch] = net.get_weights()
        self.epoch = epoch + 1
        return epoch == self.stop_epoch


def val_losses(outputs):
    twin = linear_net()
    out = []
    for w in scripted(outputs):
        twin.set_weights(w)
        out.append(twin.evaluate(XV, YV)["loss"])
    return out


def same(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def fit_scripted(outputs, epochs=None, backend="numpy", cb=None, X=X1, y=Y1, **kw):
    kw = {"batch_size": len(X), "lr": 0.01, "validation_data": (XV, YV), **kw}
    cb = cb or Script(scripted(outputs), batches=-(-len(X) // kw["batch_size"]))
    net = linear_net(backend)
    epochs = len(outputs) if epochs is None else epochs
    h = net.fit(X, y, epochs=epochs, callbacks=[cb], **kw)
    return net, h, cb


def test_the_scripted_losses_are_the_validation_losses():
    """The harness: each epoch's validation loss is its scripted output's, exactly."""
    outs = [2.0, 1.5, 1.5, 1.0, 1.25]
    _, h, _ = fit_scripted(outs)
    assert h.val_loss == val_losses(outs) == [0.5 * o * o for o in outs]


@pytest.mark.parametrize("patience", [1, 2, 3])
def test_an_exact_tie_with_the_best_is_no_improvement(patience, backend):
    """A plateau: epochs 2.. tie epoch 1's loss exactly. Epoch 1 stays the best, the fit
    stops after exactly ``patience`` epochs more, and ends with epoch 1's weights (which
    differ from the tied epochs' in ``b``)."""
    outs = [1.0] * 8
    net, h, cb = fit_scripted(outs, backend=backend.name, patience=patience)
    assert h.best_epoch == 1 and h.stopped_early and not h.interrupted
    assert h.epoch == list(range(1, patience + 2))
    assert same(net.get_weights(), scripted(outs)[0])
    assert not same(cb.ended[patience + 1], scripted(outs)[0])  # the last one was other


def test_a_tie_after_an_improvement_does_not_reset_the_wait():
    """2, 1, 1, 1, 0.5: the ties at epochs 3 and 4 are two epochs without improvement,
    so patience=2 stops after epoch 4 (a tie that reset the wait would go on to 5)."""
    outs = [2.0, 1.0, 1.0, 1.0, 0.5, 0.5]
    net, h, _ = fit_scripted(outs, patience=2)
    assert h.epoch == [1, 2, 3, 4] and h.best_epoch == 2 and h.stopped_early
    assert same(net.get_weights(), scripted(outs)[1])


def test_a_plateau_of_a_real_fit_stops_at_the_first_epoch():
    """No scripting: a learning rate so small that no update changes a loss (the biases
    move by ~1e-300, the losses do not): every epoch ties epoch 1's training and
    validation loss, so epoch 1 is the best and its weights come back."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.integers(0, 2, size=40)
    per_epoch = {}

    class Record(bpgpu.Callback):
        def on_epoch_end(self, net, epoch, logs):
            per_epoch[epoch] = net.get_weights()

    for val in ({"validation_data": (X[:10], y[:10])}, {}):  # val loss, then training loss
        net = bpgpu.MLP([3, 4, 2], backend="numpy", dtype="float64", seed=1)
        kw = dict(epochs=10, batch_size=8, lr=1e-300, patience=3, callbacks=[Record()])
        h = net.fit(X, y, **kw, **val)
        monitored = h.val_loss if val else h.loss
        assert len(set(monitored)) == 1  # the plateau is exact
        assert h.epoch == [1, 2, 3, 4] and h.best_epoch == 1 and h.stopped_early
        assert same(net.get_weights(), per_epoch[1]) and not same(per_epoch[1], per_epoch[4])


@pytest.mark.parametrize(
    "outputs, min_delta, best, stops_after",
    [
        # losses 2, 1.125, then a plateau: one decrease of 0.875
        ([2.0, 1.5, 1.5, 1.5], 0.5, 2, 4),  # larger than min_delta: an improvement
        ([2.0, 1.5, 1.5, 1.5], 1.0, 1, 3),  # smaller: none
        # exactly min_delta is not an improvement either (Keras's and Lightning's rule:
        # more than min_delta; with min_delta=0 that is what makes a tie none)
        ([2.0, 1.5, 1.5, 1.5], 0.875, 1, 3),
        # losses 2, 1.125, 0.5: decreases of 0.875, then 0.625 from the best
        ([2.0, 1.5, 1.0, 1.0, 1.0, 1.0], 0.5, 3, 5),  # both count
        ([2.0, 1.5, 1.0, 1.0, 1.0, 1.0], 0.75, 2, 4),  # 0.625 < 0.75: epoch 3 is none
    ],
)
def test_min_delta_counts_only_decreases_larger_than_it(outputs, min_delta, best, stops_after):
    net, h, _ = fit_scripted(outputs, patience=2, min_delta=min_delta)
    assert h.best_epoch == best and h.stopped_early
    assert h.epoch == list(range(1, stops_after + 1))
    assert same(net.get_weights(), scripted(outputs)[best - 1])


def test_min_delta_measures_from_the_best_not_from_the_last_epoch():
    """Steps of 0.25 each, below min_delta=0.3, add up: epoch 3 is 0.5 below the best
    (epoch 1) and counts; measured from the previous epoch it never would."""
    outs = [2.0, math.sqrt(3.5), math.sqrt(3.0), math.sqrt(3.0), math.sqrt(3.0)]
    losses = val_losses(outs)
    assert losses[0] - losses[2] > 0.3 > losses[1] - losses[2]  # the harness's arithmetic
    net, h, _ = fit_scripted(outs, patience=2, min_delta=0.3)
    assert h.best_epoch == 3 and h.epoch == [1, 2, 3, 4, 5] and h.stopped_early
    assert same(net.get_weights(), scripted(outs)[2])


def test_patience_counts_epochs_without_improvement_exactly():
    """Improvements at epochs 1, 3 and 6; patience=3 waits epochs 7, 8, 9 and stops."""
    outs = [4.0, 4.0, 3.0, 3.5, 3.0, 2.0, 2.5, 2.0, 3.0, 1.0, 1.0]
    net, h, _ = fit_scripted(outs, patience=3)
    assert h.epoch == list(range(1, 10)) and h.best_epoch == 6 and h.stopped_early
    assert h.val_loss == val_losses(outs)[:9]
    assert same(net.get_weights(), scripted(outs)[5])


@pytest.mark.parametrize("patience", [1, 4])
def test_patience_is_not_used_up_when_the_epochs_end_first(patience):
    """The fit ends by ``epochs``: not stopped early, but still ends with the best
    epoch's weights (``restore_best`` does not depend on how the fit ended)."""
    outs = [3.0, 2.0, 2.5, 2.5]
    net, h, _ = fit_scripted(outs, epochs=3, patience=patience)
    assert h.epoch == [1, 2, 3] and h.best_epoch == 2
    assert h.stopped_early == (patience == 1)
    assert same(net.get_weights(), scripted(outs)[1])


def test_restore_best_false_keeps_the_last_epochs_weights():
    outs = [3.0, 2.0, 2.5, 2.5, 2.5]
    net, h, cb = fit_scripted(outs, patience=2, restore_best=False)
    assert h.epoch == [1, 2, 3, 4] and h.best_epoch == 2 and h.stopped_early
    assert same(net.get_weights(), scripted(outs)[3]) and same(net.get_weights(), cb.ended[4])


def test_without_patience_nothing_is_restored_but_the_best_epoch_is_recorded():
    outs = [3.0, 2.0, 2.5, 2.5]
    net, h, _ = fit_scripted(outs)
    assert h.epoch == [1, 2, 3, 4] and h.best_epoch == 2 and not h.stopped_early
    assert same(net.get_weights(), scripted(outs)[3])


def test_a_callbacks_stop_at_an_epochs_end_still_restores_the_best():
    """``on_epoch_end`` returning True ends the fit after a whole epoch: not an
    interruption, so with patience the best epoch's weights come back."""
    outs = [3.0, 2.0, 2.5, 2.25, 2.25, 2.25]
    cb = Script(scripted(outs), stop_epoch=4)
    net, h, _ = fit_scripted(outs, cb=cb, patience=3)
    assert h.epoch == [1, 2, 3, 4] and h.best_epoch == 2
    assert not h.stopped_early and not h.interrupted
    assert same(net.get_weights(), scripted(outs)[1])


def test_a_callbacks_stop_on_the_epoch_where_patience_runs_out():
    """Both at once: stopped early, the best weights."""
    outs = [3.0, 2.0, 2.5, 2.5, 2.5]
    cb = Script(scripted(outs), stop_epoch=4)
    net, h, _ = fit_scripted(outs, cb=cb, patience=2)
    assert h.epoch == [1, 2, 3, 4] and h.stopped_early and not h.interrupted
    assert same(net.get_weights(), scripted(outs)[1])


class Watch(Script):
    """The scripted fit, recording what a user's callback sees at each epoch's end: the
    best epoch and whether early stopping has stopped; ``lr_at``: the epoch after which
    it lowers the optimizer's rate to 0.005."""

    def __init__(self, weights, lr_at=None):
        super().__init__(weights)
        self.lr_at, self.seen = lr_at, {}

    def on_epoch_end(self, net, epoch, logs):
        self.seen[epoch] = (self.h.best_epoch, self.h.stopped_early)
        if epoch == self.lr_at:
            self.optimizer.lr = 0.005
        return super().on_epoch_end(net, epoch, logs)

    def on_train_begin(self, net, history):
        self.h = history


def test_early_stopping_runs_before_a_users_callback_and_restores_before_its_end():
    """Early stopping is a callback the trainer puts first: a user's ``on_epoch_end``
    sees this epoch's best epoch and stop, and its ``on_train_end`` the best weights."""
    outs = [3.0, 2.0, 2.5, 2.5, 2.5]
    cb = Watch(scripted(outs))
    ended = {}
    cb.on_train_end = lambda net, h: ended.setdefault("w", net.get_weights())
    net, h, _ = fit_scripted(outs, cb=cb, patience=2)
    assert cb.seen == {1: (1, False), 2: (2, False), 3: (2, False), 4: (2, True)}
    assert same(ended["w"], scripted(outs)[1])


def test_the_checkpoint_runs_after_a_users_callback(tmp_path):
    """The checkpoint is a callback the trainer puts last: it holds the rate a user's
    callback set at that epoch's end."""
    outs = [3.0, 2.0, 2.5]
    ckpt = tmp_path / "run.ckpt.npz"
    cb = Watch(scripted(outs), lr_at=2)
    fit_scripted(outs, epochs=2, cb=cb, checkpoint=ckpt)
    cfg, _ = bpgpu.checkpoint.read(ckpt)
    assert cfg["training"]["epoch"] == 2
    assert cfg["training"]["optimizer_now"]["lr"] == 0.005


# two batches an epoch: a stop after the first is in the middle of an epoch
X2, Y2 = np.array([[1.0], [2.0], [0.5], [1.5]]), np.zeros(4)


@pytest.mark.parametrize("how", ["callback", "ctrl-c"])
@pytest.mark.parametrize("restore_best", [True, False])
def test_a_stop_in_the_middle_of_an_epoch_keeps_the_current_weights(how, restore_best):
    """Stopped after batch 1 of epoch 4 (a callback's on_batch_end, or Ctrl-C) with
    patience and a best epoch 2 behind: the fit is interrupted, not stopped early; the
    weights are those after that batch (the documented "keeps the weights"), not the
    best epoch's; epoch 4 is not in the history."""
    outs = [3.0, 2.0, 2.5, 2.5, 2.5, 2.5]
    stop = {"stop_batch": (4, 0)} if how == "callback" else {"sigint": (4, 0)}
    cb = Script(scripted(outs), batches=2, **stop)
    kw = dict(batch_size=2, shuffle=False, patience=3, restore_best=restore_best)
    net, h, _ = fit_scripted(outs, cb=cb, X=X2, y=Y2, **kw)
    assert h.interrupted and not h.stopped_early
    assert h.epoch == [1, 2, 3] and h.best_epoch == 2
    assert same(net.get_weights(), cb.after_batch[(4, 0)])
    assert not same(net.get_weights(), scripted(outs)[1])
    assert not same(net.get_weights(), cb.ended[3])  # batch 1 of epoch 4 trained


@pytest.mark.parametrize("how", ["callback", "ctrl-c"])
def test_a_stop_after_an_epochs_last_batch_keeps_that_epochs_weights(how):
    """The request comes with the epoch's last batch: the epoch is whole and recorded,
    the fit is interrupted (so the best epoch's weights are not put back), and ends with
    the weights that epoch ended with."""
    outs = [3.0, 2.0, 2.5, 2.5, 2.5, 2.5]
    stop = {"stop_batch": (4, 1)} if how == "callback" else {"sigint": (4, 1)}
    cb = Script(scripted(outs), batches=2, **stop)
    net, h, _ = fit_scripted(outs, cb=cb, X=X2, y=Y2, batch_size=2, shuffle=False, patience=3)
    assert h.interrupted and not h.stopped_early
    assert h.epoch == [1, 2, 3, 4] and h.best_epoch == 2
    assert same(net.get_weights(), scripted(outs)[3]) and same(net.get_weights(), cb.ended[4])


class CtrlCAtEpochEnd(bpgpu.Callback):
    """Ctrl-C while ``on_epoch_end`` of epoch ``at`` runs (no per-batch hook: on JAX the
    epochs stay compiled programs); records each epoch's weights."""

    per_batch = False

    def __init__(self, at):
        self.at, self.ended = at, {}

    def on_epoch_end(self, net, epoch, logs):
        self.ended[epoch] = net.get_weights()
        if epoch == self.at:
            signal.raise_signal(signal.SIGINT)


def test_ctrl_c_at_an_epochs_end_keeps_that_epochs_weights_on_every_backend(backend):
    """Between epochs, with patience and a better epoch behind (the validation labels
    disagree with the training ones, so the validation loss rises): the fit ends
    interrupted after that epoch, with its weights, not the best epoch's."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=48)
    X = rng.normal(size=(48, 4)) + 2.0 * y[:, None]
    val = (X[:16], (y[:16] + 1) % 3)
    cb = CtrlCAtEpochEnd(3)
    net = bpgpu.MLP([4, 6, 3], backend=backend, dtype="float64", seed=0)
    kw = dict(batch_size=8, lr=0.1, validation_data=val, patience=5, callbacks=[cb])
    h = net.fit(X, y, epochs=10, **kw)
    assert h.interrupted and not h.stopped_early and h.epoch == [1, 2, 3]
    assert h.best_epoch < 3
    assert same(net.get_weights(), cb.ended[3])
    assert not same(net.get_weights(), cb.ended[h.best_epoch])


def test_an_interrupted_fit_resumes_to_the_uninterrupted_early_stop(tmp_path):
    """Ctrl-C mid-epoch with a checkpoint, then resume: the wait since the best epoch and
    the best epoch's weights come back from the file, so the resumed fit stops where the
    uninterrupted one did, with the same weights. The scripted callback runs in both."""
    outs = [3.0, 2.0, 2.5, 2.5, 2.5, 2.5, 2.5]
    kw = dict(X=X2, y=Y2, batch_size=2, shuffle=False, patience=3)
    full, h_full, _ = fit_scripted(outs, **kw)
    assert h_full.epoch == [1, 2, 3, 4, 5] and h_full.stopped_early
    ckpt = tmp_path / "c.npz"
    cb = Script(scripted(outs), batches=2, sigint=(4, 0))
    _, h, _ = fit_scripted(outs, cb=cb, checkpoint=ckpt, **kw)
    assert h.interrupted and h.epoch == [1, 2, 3]
    cb2 = Script(scripted(outs), batches=2)
    cb2.epoch = 4  # the resumed fit starts in epoch 4
    again, h2, _ = fit_scripted(outs, cb=cb2, resume=ckpt, X=X2, y=Y2, batch_size=2)
    assert h2.epoch == h_full.epoch and h2.best_epoch == 2 and h2.stopped_early
    assert not h2.interrupted
    assert same(again.get_weights(), full.get_weights())
    assert same(again.get_weights(), scripted(outs)[1])


# ---- streamed data whose length is not a multiple of the chunk ---------------------------
#
# Three float64 features and batches of 4 rows: a chunk of CHUNK_BYTES = 288 bytes holds
# 3 batches, 12 rows, both when fit moves rows to the device and when it checks them on
# the host beforehand. Lengths 35, 36 and 37 end a row short of a chunk, on one, and a
# row into the next.

CHUNK, B = 12, 4


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(streaming, "CHUNK_BYTES", 288)
    assert streaming.chunk_rows(3) == CHUNK


def rows(n, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    return rng.normal(size=(n, 3)) + y[:, None], y


@pytest.mark.parametrize("n", [3 * CHUNK - 1, 3 * CHUNK, 3 * CHUNK + 1])
@pytest.mark.parametrize("shuffle", [False, True])
def test_a_streamed_fit_of_any_length_is_the_in_memory_fit(n, shuffle, small_chunks, tmp_path):
    X, y = rows(n)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    kw = dict(epochs=3, batch_size=B, optimizer="momentum", lr=0.05, shuffle=shuffle, seed=5)
    a = bpgpu.MLP([3, 5, 3], backend="numpy", dtype="float64", seed=1)
    b = a.to("numpy")
    ha = a.fit(X, y, **kw)
    hb = b.fit(str(tmp_path / "X.npy"), str(tmp_path / "y.npy"), **kw)
    assert same(a.get_weights(), b.get_weights())
    assert ha.loss == hb.loss and ha.accuracy == hb.accuracy


def test_a_streamed_length_off_the_chunk_on_every_backend(small_chunks, tmp_path, backend):
    """With a validation split: 28 of 37 rows train, the last chunk 4 rows short."""
    X, y = rows(3 * CHUNK + 1, seed=1)
    np.save(tmp_path / "X.npy", X)
    kw = dict(epochs=2, batch_size=B, optimizer="adam", validation_split=0.25, seed=2)
    a = bpgpu.MLP([3, 5, 3], backend=backend, dtype="float64", seed=1)
    b = a.to(backend)
    ha = a.fit(X, y, **kw)
    hb = b.fit(np.load(tmp_path / "X.npy", mmap_mode="r"), y, **kw)
    for p, q in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ha.loss, hb.loss, rtol=1e-12)
    np.testing.assert_allclose(ha.val_loss, hb.val_loss, rtol=1e-12)
    assert ha.accuracy == hb.accuracy


EDGE_ROWS = [0, CHUNK - 1, CHUNK, 2 * CHUNK - 1, 2 * CHUNK, 3 * CHUNK - 1, 3 * CHUNK]


@pytest.mark.parametrize("bad", EDGE_ROWS)
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_a_bad_value_on_a_chunks_edge_is_refused_as_in_memory(bad, value, small_chunks, tmp_path):
    """NaN or inf on the first or last row of a chunk (the last row of all: a chunk of
    one row): refused before training, as the in-memory fit refuses it, naming the row;
    the weights untouched."""
    n = 3 * CHUNK + 1
    X, y = rows(n)
    X[bad, 2] = value
    np.save(tmp_path / "X.npy", X)
    net = bpgpu.MLP([3, 5, 3], backend="numpy", dtype="float64", seed=1)
    before = net.get_weights()
    kw = dict(epochs=2, batch_size=B, shuffle=False)
    with pytest.raises(ValueError, match="X contains NaN or inf"):
        net.fit(X, y, **kw)
    with pytest.raises(ValueError, match=rf"X contains NaN or inf \(first at row {bad + 1}\)"):
        net.fit(str(tmp_path / "X.npy"), y, **kw)
    assert same(net.get_weights(), before)


def test_the_first_of_two_bad_rows_is_named_across_chunks(small_chunks, tmp_path):
    X, y = rows(3 * CHUNK + 1)
    X[[2 * CHUNK, CHUNK + 3], [0, 1]] = np.nan
    np.save(tmp_path / "X.npy", X)
    with pytest.raises(ValueError, match=rf"first at row {CHUNK + 4}\)"):
        bpgpu.MLP([3, 5, 3], backend="numpy").fit(str(tmp_path / "X.npy"), y, batch_size=B)


@pytest.mark.parametrize("bad", [CHUNK - 1, CHUNK, 3 * CHUNK])
def test_a_nan_target_on_a_chunks_edge_is_refused_as_in_memory(bad, small_chunks, tmp_path):
    n = 3 * CHUNK + 1
    X, _ = rows(n)
    t = X[:, 0] - X[:, 1]
    t[bad] = np.nan
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "t.npy", t)
    net = bpgpu.MLP([3, 5, 1], output="identity", cost="quadratic", backend="numpy")
    for data in ((X, t), (str(tmp_path / "X.npy"), str(tmp_path / "t.npy"))):
        with pytest.raises(ValueError, match="targets contain NaN or inf"):
            net.fit(*data, epochs=1, batch_size=B)


@pytest.mark.parametrize("first", [0, CHUNK - B, CHUNK, 3 * CHUNK])
def test_a_streamed_fit_diverges_where_the_in_memory_fit_does(first, monkeypatch, tmp_path):
    """Huge but finite inputs in one batch (the first or last batch of a chunk, or the
    last batch of all, one row) make a later loss NaN: the streamed fit names the same
    epoch and batch, and restores the same weights, as the in-memory one (float32)."""
    monkeypatch.setattr(streaming, "CHUNK_BYTES", 3 * B * 3 * 4)  # 3 batches of float32
    n = 3 * CHUNK + 1
    X, y = rows(n)
    X = X.astype(np.float32)
    X[first : first + B] = 3e36
    np.save(tmp_path / "X.npy", X)
    kw = dict(epochs=2, batch_size=B, shuffle=False, lr=0.05)
    nets = [bpgpu.MLP([3, 6, 3], hidden="identity", backend="numpy", dtype="float32", seed=4)]
    nets.append(nets[0].to("numpy"))
    msgs = []
    for net, data in zip(nets, (X, str(tmp_path / "X.npy"))):
        with np.errstate(all="ignore"), pytest.raises(FloatingPointError) as info:
            net.fit(data, y, **kw)
        msgs.append(str(info.value))
    assert msgs[0] == msgs[1]
    assert same(nets[0].get_weights(), nets[1].get_weights())
    assert all(np.all(np.isfinite(w)) for w in nets[1].get_weights())
    # and they are the right ones: those the huge batch started from, trained again
    huge, count = first // B + 1, -(-n // B)  # its number (1-based), batches an epoch
    twin = bpgpu.MLP([3, 6, 3], hidden="identity", backend="numpy", dtype="float32", seed=4)
    if huge < count:  # the next batch's loss is NaN
        assert f"epoch 1, batch {huge + 1} of {count};" in msgs[0]
        if first:
            twin.fit(X[:first], y[:first], **{**kw, "epochs": 1})
    else:  # the last batch's update: epoch 2's first loss is NaN
        assert f"epoch 2, batch 1 of {count};" in msgs[0]
        with np.errstate(all="ignore"):
            twin.fit(X, y, **{**kw, "epochs": 1})
    assert same(nets[1].get_weights(), twin.get_weights())


# ---- a data-parallel fit with no seed (mpiexec -n 2, as tests/test_distributed.py) -------

MPI_SCRIPTS = Path(__file__).parent / "mpi"


def mpiexec(script, n=2, timeout=240):
    pytest.importorskip("mpi4py")
    exe = shutil.which("mpiexec") or str(Path(sys.executable).parent / "mpiexec")
    if not Path(exe).exists():
        pytest.skip("no mpiexec (pip install -e '.[mpi]' brings the MPICH wheel)")
    return subprocess.run(
        [exe, "-n", str(n), sys.executable, str(MPI_SCRIPTS / script)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_data_parallel_fit_with_seed_none_agrees_on_one_fresh_seed():
    """``fit(seed=None, comm=...)``: one seed drawn (rank 0's) for every rank, recorded in
    the History; bit-identical ranks equal to the single-process fit with that seed; a
    second such fit draws another seed; no seed argument is the network's."""
    out = mpiexec("fit_no_seed.py")
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stdout + out.stderr


def test_a_data_parallel_fit_of_unseeded_networks_keeps_the_ranks_together():
    """Networks built with ``seed=None`` start from other weights on each rank: the fit
    must end with the same weights everywhere (rank 0's broadcast) or refuse on every
    rank, as it refuses other data or settings, never train a different model per rank."""
    out = mpiexec("unseeded_network.py")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() in ("same", "refused"), out.stdout
