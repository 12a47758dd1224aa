"""CUDA-graph replay (bpgpu.graphs), its orchestration tested on the CPU.

A fake graph stands in for CUDA's: ``capture(fn)`` records ``fn`` without running it,
``replay()`` calls it again. On NumPy, whose steps update arrays in place as CuPy's and
torch's do, a replayed fit then runs exactly the work a captured graph would: the batch
gathered on the device from the static permutation at ``pos``, the step, the results
written back into the graph's arrays, the cost and correct count recorded at ``pos``.
Anything the orchestration gets wrong (a stale buffer, a missed write-back, a batch
skipped or run twice, a learning rate baked in) makes the replayed fit differ from the
eager one, which these tests compare bit for bit in float64.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from conftest import StopAfter

import bpgpu
from bpgpu import graphs as G
from bpgpu import schedules


class FakeGraph:
    def __init__(self, fn, log):
        self.fn, self.log = fn, log

    def replay(self):
        self.log["replays"] += 1
        self.fn()


@pytest.fixture
def fake(monkeypatch):
    """NumPy with a fake CUDA graph; counts captures and replays."""
    backend = bpgpu.get_backend("numpy")
    log = {"captures": 0, "replays": 0}

    def capture(fn):
        log["captures"] += 1
        return FakeGraph(fn, log)

    monkeypatch.setattr(backend, "graphs", True, raising=False)
    monkeypatch.setattr(backend, "capture", capture, raising=False)
    G_said = set()
    monkeypatch.setattr("bpgpu.spans._SAID", G_said)
    return log


def data(n=100, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    X = rng.normal(size=(n, d)) + 1.5 * np.eye(k, d)[y]
    return X, y


def net(seed=0, hidden="tanh"):
    return bpgpu.MLP([5, 7, 3], hidden=hidden, backend="numpy", dtype="float64", seed=seed)


def same(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b))


def fit_both(fake, **kw):
    """(eager network, its history, replayed network, its history) of one fit."""
    X, y = data()
    kw = {"epochs": 3, "batch_size": 16, **kw}
    eager, replayed = net(), net()
    h1 = eager.fit(X, y, graphs=False, **kw)
    h2 = replayed.fit(X, y, graphs=True, **kw)
    return eager, h1, replayed, h2


OPTIMIZERS = [
    "sgd",
    {"name": "momentum", "lr": 0.05},
    {"name": "nesterov", "lr": 0.05},
    {"name": "adam", "lr": 0.01},
]


@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=lambda o: str(o)[:20])
@pytest.mark.parametrize("shuffle", [True, False])
def test_a_replayed_fit_is_the_eager_fit_bit_for_bit(fake, optimizer, shuffle):
    """100 rows in batches of 16: six full batches replayed, the short seventh eager."""
    eager, h1, replayed, h2 = fit_both(fake, optimizer=optimizer, shuffle=shuffle)
    assert same(eager.get_weights(), replayed.get_weights())
    assert h1.accuracy == h2.accuracy
    np.testing.assert_allclose(h2.loss, h1.loss, rtol=1e-14)
    # captured once (its warm-up ran the first batch for real), then replayed: six
    # full batches an epoch, all of them replays after the first
    assert fake["captures"] == 1 and fake["replays"] == 3 * 6 - 1


def test_weight_decay_sample_weights_and_validation_replay_alike(fake):
    X, y = data()
    w = np.random.default_rng(1).uniform(0.2, 2.0, size=len(y))
    kw = dict(
        optimizer={"name": "momentum", "lr": 0.05},
        weight_decay=1e-3,
        sample_weight=w,
        validation_split=0.2,
    )
    eager, h1, replayed, h2 = fit_both(fake, **kw)
    assert same(eager.get_weights(), replayed.get_weights())
    np.testing.assert_allclose(h2.val_loss, h1.val_loss, rtol=1e-14)


def test_without_train_metrics_and_with_a_prelu_slope(fake):
    X, y = data()
    eager, replayed = net(hidden="prelu"), net(hidden="prelu")
    kw = dict(epochs=2, batch_size=16, optimizer="adam", train_metrics=False)
    eager.fit(X, y, graphs=False, **kw)
    replayed.fit(X, y, graphs=True, **kw)
    assert same(eager.get_weights(), replayed.get_weights())


def test_a_schedule_is_read_from_the_device_count_each_replay(fake):
    """The rate of every step comes from the step count the graph advances, not from
    the count at capture: a schedule that decays within an epoch replays as eagerly."""
    sched = schedules.exponential_decay(0.1, transition_steps=2, decay_rate=0.5)
    opt = lambda: bpgpu.optimizers.SGD(lr=sched)  # noqa: E731
    X, y = data()
    eager, replayed = net(), net()
    eager.fit(X, y, epochs=2, batch_size=16, optimizer=opt(), graphs=False)
    replayed.fit(X, y, epochs=2, batch_size=16, optimizer=opt(), graphs=True)
    np.testing.assert_allclose(
        np.concatenate([w.ravel() for w in replayed.get_weights()]),
        np.concatenate([w.ravel() for w in eager.get_weights()]),
        rtol=1e-13,
        atol=1e-15,
    )
    assert fake["captures"] == 1


class LowerRate(bpgpu.Callback):
    """Halves the rate after each epoch (a device scalar: nothing captured again);
    ``momentum_at``: changes the momentum there (a constant: captured again)."""

    per_batch = False

    def __init__(self, momentum_at=None):
        self.momentum_at = momentum_at

    def on_epoch_end(self, net, epoch, logs):
        self.optimizer.lr *= 0.5
        if epoch == self.momentum_at:
            self.optimizer.momentum = 0.5


def test_a_rate_a_callback_lowers_reaches_the_graph_without_a_new_capture(fake):
    X, y = data()
    eager, replayed = net(), net()
    for n, g in ((eager, False), (replayed, True)):
        opt = bpgpu.optimizers.Momentum(lr=0.1)
        n.fit(X, y, epochs=4, batch_size=16, optimizer=opt, callbacks=[LowerRate()], graphs=g)
    assert same(eager.get_weights(), replayed.get_weights())
    assert fake["captures"] == 1


def test_a_changed_constant_captures_the_step_again(fake):
    X, y = data()
    eager, replayed = net(), net()
    for n, g in ((eager, False), (replayed, True)):
        opt = bpgpu.optimizers.Momentum(lr=0.1)
        cb = LowerRate(momentum_at=2)
        n.fit(X, y, epochs=4, batch_size=16, optimizer=opt, callbacks=[cb], graphs=g)
    assert same(eager.get_weights(), replayed.get_weights())
    assert fake["captures"] == 2  # epochs 1-2, then 3-4 with the new momentum


class StopAtBatch(bpgpu.Callback):
    def __init__(self, epoch, batch):
        self.at, self.epoch, self.seen = (epoch, batch), 1, []

    def on_batch_end(self, net, batch):
        self.seen.append((self.epoch, batch))
        return (self.epoch, batch) == self.at

    def on_epoch_end(self, net, epoch, logs):
        self.epoch = epoch + 1


def test_per_batch_callbacks_see_every_replayed_batch_and_a_stop_resumes_alike(fake, tmp_path):
    """A callback's stop after batch 3 of epoch 2 (a replayed one), checkpointed and
    resumed with graphs, ends where the uninterrupted eager fit does."""
    X, y = data()
    kw = dict(batch_size=16, optimizer="adam")
    eager = net()
    cb_eager = StopAtBatch(9, 0)  # never: sees every batch
    eager.fit(X, y, epochs=3, graphs=False, callbacks=[cb_eager], **kw)
    replayed = net()
    cb = StopAtBatch(2, 3)
    ckpt = tmp_path / "run.ckpt.npz"
    h = replayed.fit(X, y, epochs=3, graphs=True, callbacks=[cb], checkpoint=ckpt, **kw)
    assert h.interrupted and cb.seen == cb_eager.seen[: len(cb.seen)]
    assert cb.seen[-1] == (2, 3)
    replayed.fit(X, y, epochs=3, graphs=True, resume=ckpt, **kw)
    assert same(eager.get_weights(), replayed.get_weights())


def test_a_refused_capture_runs_eagerly_and_says_why_once(fake, monkeypatch, caplog):
    backend = bpgpu.get_backend("numpy")

    def refuse(fn):
        fake["captures"] += 1
        raise NotImplementedError("cuBLAS refused the capture")

    monkeypatch.setattr(backend, "capture", refuse)
    with caplog.at_level(logging.WARNING, logger="bpgpu"):
        eager, _, replayed, _ = fit_both(fake, optimizer="adam")
        X, y = data()
        net().fit(X, y, epochs=1, graphs=True)  # the same reason again: not said again
    assert same(eager.get_weights(), replayed.get_weights())
    said = [r.getMessage() for r in caplog.records if "graphs=True" in r.getMessage()]
    assert len(said) == 1 and "cuBLAS refused the capture" in said[0]
    assert fake["captures"] == 2  # one try per fit, none after a refusal


def test_a_backend_without_graphs_says_so_and_trains_eagerly(caplog, monkeypatch):
    monkeypatch.setattr("bpgpu.spans._SAID", set())
    X, y = data()
    eager, asked = net(), net()
    eager.fit(X, y, epochs=2)
    with caplog.at_level(logging.WARNING, logger="bpgpu"):
        asked.fit(X, y, epochs=2, graphs=True)
    assert same(eager.get_weights(), asked.get_weights())
    assert any("numpy has no CUDA graphs" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("lr", [0.5, 1.0, 5.0])  # diverges in epochs 3, 2 and 1
def test_divergence_in_a_replayed_epoch_names_the_batch_as_eagerly(fake, lr):
    """The weights blow up inside a replayed span: the same batch named, the same
    weights restored (the graph's arrays hold them after the restore)."""
    X = np.random.default_rng(0).normal(size=(100, 5))
    errors = []
    for g in (False, True):
        n = bpgpu.MLP([5, 7, 3], output="identity", backend="numpy", dtype="float64", seed=0)
        with pytest.raises(FloatingPointError) as info:
            n.fit(X, 3 * X[:, :3], epochs=3, batch_size=16, lr=lr, graphs=g)
        errors.append((str(info.value), n.get_weights()))
    assert "the training loss became inf" in errors[0][0]
    assert errors[0][0] == errors[1][0]
    assert same(errors[0][1], errors[1][1])


def test_weights_set_between_epochs_are_the_ones_replayed(fake):
    """A callback that puts other arrays in (set_weights) between epochs: the graph
    copies them into its own before the next replay."""

    class Reset(bpgpu.Callback):
        per_batch = False

        def __init__(self, weights):
            self.weights = weights

        def on_epoch_end(self, net, epoch, logs):
            if epoch == 1:
                net.set_weights(self.weights)

    X, y = data()
    start = net(seed=5).get_weights()
    eager, replayed = net(), net()
    eager.fit(X, y, epochs=3, batch_size=16, callbacks=[Reset(start)], graphs=False)
    replayed.fit(X, y, epochs=3, batch_size=16, callbacks=[Reset(start)], graphs=True)
    assert same(eager.get_weights(), replayed.get_weights())


@pytest.mark.parametrize(
    "value, expected", [("1", True), ("0", False), ("", False), ("on", True), ("no", False)]
)
def test_the_environment_switch(monkeypatch, value, expected):
    monkeypatch.setenv(G.ENV, value)
    assert G.wanted(None) is expected
    assert G.wanted(True) is True and G.wanted(False) is False


def test_bad_switches_are_refused_before_anything_changes(monkeypatch):
    X, y = data()
    n = net()
    before = n.get_weights()
    with pytest.raises(ValueError, match="graphs must be True, False or None"):
        n.fit(X, y, epochs=1, graphs="yes")
    monkeypatch.setenv(G.ENV, "maybe")
    with pytest.raises(ValueError, match="BPGPU_GRAPHS must be 1 or 0"):
        n.fit(X, y, epochs=1)
    assert same(before, n.get_weights())


@pytest.mark.parametrize(
    "kw, reason",
    [
        (dict(detect_anomaly=True), "detect_anomaly"),
        (dict(optimizer=bpgpu.optimizers.SGD(lr=lambda t: 0.1)), "plain function"),
    ],
)
def test_fits_a_graph_cannot_hold_run_eagerly_with_the_reason(fake, caplog, kw, reason):
    X, y = data()
    with caplog.at_level(logging.WARNING, logger="bpgpu"):
        net().fit(X, y, epochs=1, graphs=True, **kw)
    assert fake["captures"] == 0
    assert any(reason in r.getMessage() for r in caplog.records)


def test_stop_after_an_epoch_keeps_the_graphs_weights(fake):
    X, y = data()
    eager, replayed = net(), net()
    eager.fit(X, y, epochs=5, callbacks=[StopAfter(2)], graphs=False)
    replayed.fit(X, y, epochs=5, callbacks=[StopAfter(2)], graphs=True)
    assert same(eager.get_weights(), replayed.get_weights())


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["cupy", "torch:cuda"])
def test_on_a_gpu_a_replayed_fit_equals_the_eager_one(name):
    try:
        backend = bpgpu.get_backend(name)
    except bpgpu.BackendUnavailable as e:
        pytest.skip(str(e))
    X, y = data(n=1000)
    kw = dict(epochs=3, batch_size=32, optimizer="adam")
    eager = bpgpu.MLP([5, 64, 3], backend=backend, dtype="float32", seed=0)
    replayed = bpgpu.MLP([5, 64, 3], backend=backend, dtype="float32", seed=0)
    eager.fit(X, y, graphs=False, **kw)
    replayed.fit(X, y, graphs=True, **kw)
    for a, b in zip(eager.get_weights(), replayed.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_the_estimators_replay_with_the_environment_switch(fake, monkeypatch):
    """The scikit-learn estimators train through the same trainer: BPGPU_GRAPHS=1
    replays their steps, with the eager estimator's coefficients."""
    pytest.importorskip("sklearn")
    from bpgpu.sklearn import BPClassifier

    X, y = data()
    kw = dict(hidden_layer_sizes=(7,), max_iter=4, batch_size=16, random_state=0)
    kw.update(backend="numpy", dtype="float64", solver="adam", tol=0.0)
    eager = BPClassifier(**kw).fit(X, y)
    assert fake["replays"] == 0
    monkeypatch.setenv(G.ENV, "1")
    replayed = BPClassifier(**kw).fit(X, y)
    assert fake["replays"] > 0
    # the estimators' optimizers compute their factors from the step count: from a host
    # int eagerly, from the device count in the graph (the last bits may differ)
    for a, b in zip(eager.coefs_ + eager.intercepts_, replayed.coefs_ + replayed.intercepts_):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-15)


def test_a_mixed_precision_fit_replays_as_it_runs_eagerly(monkeypatch):
    """bfloat16 on torch (CPU) with the fake graph: the replayed fit is the eager one
    to float32's rounding; float16 (its loss scale reads a flag a step) runs eagerly."""
    torch = pytest.importorskip("torch")  # noqa: F841
    backend = bpgpu.get_backend("torch")
    log = {"captures": 0, "replays": 0}

    def capture(fn):
        log["captures"] += 1
        return FakeGraph(fn, log)

    monkeypatch.setattr(type(backend), "graphs", True)  # a property on torch: the class
    monkeypatch.setattr(backend, "capture", capture, raising=False)
    monkeypatch.setattr("bpgpu.spans._SAID", set())
    X, y = data()
    kw = dict(epochs=2, batch_size=16, optimizer="adam", lr=1e-2)
    nets = [bpgpu.MLP([5, 7, 3], backend=backend, seed=0, precision="bfloat16") for _ in "ab"]
    nets[0].fit(X, y, graphs=False, **kw)
    nets[1].fit(X, y, graphs=True, **kw)
    assert log["replays"] > 0
    # float32 master weights: the replay's factors are float32 device scalars where
    # the eager step rounds float64 host numbers once (equal to float32's rounding)
    for a, b in zip(nets[0].get_weights(), nets[1].get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    half = bpgpu.MLP([5, 7, 3], backend=backend, seed=0, precision="float16")
    before = log["captures"]
    half.fit(X, y, graphs=True, **kw)
    assert log["captures"] == before
