"""fit, the optimizers, early stopping, callbacks, checkpoints and resume."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import StopAfter

import bpgpu
from bpgpu import optimizers


def blobs(n=120, d=4, k=3, seed=0):
    """k well-separated Gaussian blobs."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    centers = rng.normal(scale=4.0, size=(k, d))
    return centers[y] + rng.normal(size=(n, d)), y


def weights_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b))


def test_fit_lowers_the_loss_on_every_backend(backend):
    X, y = blobs()
    net = bpgpu.MLP([4, 8, 3], backend=backend, dtype="float64", seed=0)
    before = net.loss(X, y)
    h = net.fit(X, y, epochs=5, batch_size=16, lr=0.1)
    assert h.epoch == [1, 2, 3, 4, 5]
    assert net.loss(X, y) < 0.5 * before
    assert h.loss[-1] < h.loss[0]
    assert net.evaluate(X, y)["accuracy"] > 0.9


def test_same_seed_same_training_on_every_backend(backend):
    """Host permutations: the batch order, so the weights, do not depend on the backend."""
    X, y = blobs()
    kw = dict(epochs=3, batch_size=16, optimizer="momentum", lr=0.05, validation_split=0.2)
    a = bpgpu.MLP([4, 8, 3], backend=backend, dtype="float64")
    b = bpgpu.MLP([4, 8, 3], backend="numpy", dtype="float64")
    a.fit(X, y, **kw)
    b.fit(X, y, **kw)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-10, atol=1e-12)


def one_step(opt_name, steps=1, **hyper):
    """Weights after `steps` full-batch steps of fit, and the hand-computed ones."""
    X, y = blobs(n=16)
    net = bpgpu.MLP([4, 5, 3], hidden="prelu", backend="numpy", dtype="float64", seed=1)
    w = net.get_weights()
    ref = net.to("numpy")
    opt = optimizers.get(opt_name, **hyper)
    net.fit(X, y, epochs=steps, batch_size=16, shuffle=False, optimizer=opt)
    return net.get_weights(), w, ref, X, y


def grads_at(ref, w, X, y):
    ref.set_weights(w)
    return [np.asarray(g) for g in ref.gradients(X, y)]


@pytest.mark.parametrize("wd", [0.0, 0.01])  # 0: lr folded into the output error
def test_sgd_step_by_hand(wd):
    got, w, ref, X, y = one_step("sgd", lr=0.2, weight_decay=wd)
    g = grads_at(ref, w, X, y)
    decayed = [True, False, False, True, False]  # W1 b1 a1 W2 b2: only W is decayed
    want = [p - 0.2 * (gi + (wd * p if d else 0)) for p, gi, d in zip(w, g, decayed)]
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", ["momentum", "nesterov"])
def test_momentum_two_steps_by_hand(name):
    got, w, ref, X, y = one_step(name, steps=2, lr=0.1, momentum=0.8)
    g1 = grads_at(ref, w, X, y)
    v1 = g1  # v = 0.8 * 0 + g
    w1 = [p - 0.1 * (gi + 0.8 * vi if name == "nesterov" else vi) for p, gi, vi in zip(w, g1, v1)]
    g2 = grads_at(ref, w1, X, y)
    v2 = [0.8 * vi + gi for vi, gi in zip(v1, g2)]
    want = [
        p - 0.1 * (gi + 0.8 * vi if name == "nesterov" else vi) for p, gi, vi in zip(w1, g2, v2)
    ]
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_adam_two_steps_by_hand():
    got, w, ref, X, y = one_step("adam", steps=2, lr=0.01, beta1=0.9, beta2=0.99, eps=1e-8)
    p, m, v = w, [0 * x for x in w], [0 * x for x in w]
    for t in (1, 2):
        g = grads_at(ref, p, X, y)
        m = [0.9 * mi + 0.1 * gi for mi, gi in zip(m, g)]
        v = [0.99 * vi + 0.01 * gi**2 for vi, gi in zip(v, g)]
        mhat = [mi / (1 - 0.9**t) for mi in m]
        vhat = [vi / (1 - 0.99**t) for vi in v]
        p = [pi - 0.01 * mh / (np.sqrt(vh) + 1e-8) for pi, mh, vh in zip(p, mhat, vhat)]
    for a, b in zip(got, p):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize(
    "name,hyper,torch_cls,torch_kw",
    [
        ("sgd", {"lr": 0.1}, "SGD", {"lr": 0.1}),
        ("momentum", {"lr": 0.1, "momentum": 0.9}, "SGD", {"lr": 0.1, "momentum": 0.9}),
        (
            "nesterov",
            {"lr": 0.1, "momentum": 0.9},
            "SGD",
            {"lr": 0.1, "momentum": 0.9, "nesterov": True},
        ),
        ("adam", {"lr": 0.01}, "Adam", {"lr": 0.01}),
    ],
)
def test_optimizers_match_torch_optim(name, hyper, torch_cls, torch_kw):
    """Four full-batch steps against torch.optim with autograd gradients, float64."""
    torch = pytest.importorskip("torch")
    X, y = blobs(n=16)
    net = bpgpu.MLP([4, 6, 3], hidden="tanh", backend="numpy", dtype="float64", seed=2)
    params = [torch.tensor(w, requires_grad=True) for w in net.get_weights()]
    opt = getattr(torch.optim, torch_cls)(params, **torch_kw)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    for _ in range(4):
        opt.zero_grad()
        W1, b1, W2, b2 = params
        logits = torch.tanh(Xt @ W1.T + b1) @ W2.T + b2
        torch.nn.functional.cross_entropy(logits, yt).backward()
        opt.step()
    opt = optimizers.get(name, **hyper)
    net.fit(X, y, epochs=4, batch_size=16, shuffle=False, optimizer=opt)
    for a, p in zip(net.get_weights(), params):
        np.testing.assert_allclose(a, p.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_optimizer_objects_and_names():
    assert isinstance(optimizers.get("adam"), optimizers.Adam)
    assert optimizers.get({"name": "momentum", "lr": 0.3}).config() == {
        "name": "momentum",
        "lr": 0.3,
        "weight_decay": 0.0,
        "momentum": 0.9,
    }
    with pytest.raises(ValueError, match="did you mean 'adam'"):
        optimizers.get("adma")
    for bad in ({"lr": -1}, {"lr": float("nan")}, {"beta1": 1.0}, {"weight_decay": -0.1}):
        with pytest.raises(ValueError):
            optimizers.Adam(**bad)


def test_early_stopping_restores_the_best_weights():
    X, y = blobs(n=90)
    Xv, yv = X[:30], (y[:30] + 1) % 3  # validation labels that disagree: val loss rises
    per_epoch = {}

    class Record(bpgpu.Callback):
        def on_epoch_end(self, net, epoch, logs):
            per_epoch[epoch] = net.get_weights()

    net = bpgpu.MLP([4, 8, 3], backend="numpy", dtype="float64")
    h = net.fit(
        X,
        y,
        epochs=50,
        batch_size=16,
        lr=0.1,
        validation_data=(Xv, yv),
        patience=3,
        callbacks=[Record()],
    )
    assert h.stopped_early and len(h.epoch) < 50
    best = int(np.argmin(h.val_loss)) + 1
    assert h.best_epoch == best and len(h.epoch) == best + 3
    assert weights_equal(net.get_weights(), per_epoch[best])


def test_a_callback_can_stop_training():
    class StopAt2(bpgpu.Callback):
        def on_epoch_end(self, net, epoch, logs):
            return epoch == 2

    X, y = blobs()
    h = bpgpu.MLP([4, 3], backend="numpy").fit(X, y, epochs=10, callbacks=[StopAt2()])
    assert h.epoch == [1, 2]


def test_history_records_every_epoch():
    X, y = blobs()
    h = bpgpu.MLP([4, 8, 3], backend="numpy").fit(X, y, epochs=3, validation_split=0.25)
    assert set(h.history) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "time"}
    assert all(len(v) == 3 for v in h.history.values())
    assert all(0 <= a <= 1 for a in h.accuracy + h.val_accuracy)
    assert all(t > 0 for t in h.time)


def test_no_validation_gives_nan_and_monitors_training_loss():
    X, y = blobs()
    h = bpgpu.MLP([4, 8, 3], backend="numpy").fit(X, y, epochs=2, patience=1)
    assert all(math.isnan(v) for v in h.val_loss)
    assert h.best_epoch is not None


@pytest.mark.parametrize("opt", ["sgd", "momentum", "nesterov", "adam"])
def test_resume_equals_the_uninterrupted_run(opt, tmp_path, backend):
    X, y = blobs()
    kw = dict(batch_size=16, optimizer=opt, validation_split=0.2, patience=10, seed=7)
    full = bpgpu.MLP([4, 8, 3], hidden="prelu", backend=backend, dtype="float64")
    h_full = full.fit(X, y, epochs=6, **kw)

    ckpt = tmp_path / "run.ckpt.npz"
    first = bpgpu.MLP([4, 8, 3], hidden="prelu", backend=backend, dtype="float64")
    first.fit(X, y, epochs=3, checkpoint=ckpt, **kw)
    second = bpgpu.MLP([4, 8, 3], hidden="prelu", backend=backend, dtype="float64", seed=99)
    h = second.fit(X, y, epochs=6, resume=ckpt)
    assert weights_equal(second.get_weights(), full.get_weights())
    assert h.epoch == h_full.epoch and h.loss == h_full.loss and h.val_loss == h_full.val_loss


def test_resume_refuses_changed_settings_and_other_networks(tmp_path):
    X, y = blobs()
    ckpt = tmp_path / "c.npz"
    bpgpu.MLP([4, 8, 3], backend="numpy").fit(X, y, epochs=2, batch_size=16, checkpoint=ckpt)
    net = bpgpu.MLP([4, 8, 3], backend="numpy")
    with pytest.raises(ValueError, match="batch_size=8 differs"):
        net.fit(X, y, epochs=4, batch_size=8, resume=ckpt)
    with pytest.raises(ValueError, match="optimizer .* differs"):
        net.fit(X, y, epochs=4, optimizer="adam", resume=ckpt)
    with pytest.raises(ValueError, match="different network"):
        bpgpu.MLP([4, 9, 3], backend="numpy").fit(X, y, epochs=4, resume=ckpt)
    with pytest.raises(ValueError, match="at epoch 2, past the epochs=1 asked for"):
        net.fit(X, y, epochs=1, resume=ckpt)


def test_resuming_from_a_model_file_says_it_is_not_a_checkpoint(tmp_path):
    """A model file holds no optimizer state, batch order or history; resuming from one
    said "checkpoint 'training' section is invalid ('NoneType' object has no attribute
    'get')"."""
    X, y = blobs()
    net = bpgpu.MLP([4, 8, 3], backend="numpy")
    net.save(tmp_path / "m.npz")
    before = net.get_weights()
    with pytest.raises(bpgpu.ModelFileError, match="m.npz: this is a model file, not a check"):
        net.fit(X, y, epochs=2, resume=tmp_path / "m.npz")
    assert weights_equal(net.get_weights(), before)


def test_checkpoint_is_a_loadable_model(tmp_path):
    X, y = blobs()
    net = bpgpu.MLP([4, 8, 3], backend="numpy")
    net.fit(X, y, epochs=2, checkpoint=tmp_path / "c.npz")
    assert weights_equal(bpgpu.load(tmp_path / "c.npz").get_weights(), net.get_weights())


def test_divergence_stops_with_weights_restored():
    X, y = blobs()
    X[:, 0] *= 1e30  # with lr=1e30 the first epoch overflows
    net = bpgpu.MLP([4, 8, 3], hidden="identity", backend="numpy", dtype="float32")
    before = net.get_weights()
    with pytest.raises(FloatingPointError, match="epoch 1.*smaller|Lower the learning rate"):
        with np.errstate(all="ignore"):
            net.fit(X, y, epochs=3, lr=1e30)
    assert weights_equal(net.get_weights(), before)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"validation_split": 1.0}, "validation_split"),
        ({"lr": -0.1}, "lr"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"patience": 0}, "patience"),
        ({"optimizer": "sgdd"}, "did you mean 'sgd'"),
        ({"optimizer": "NAG"}, "did you mean 'nesterov'"),
        ({"seed": -3}, "seed must be"),
        ({"validation_split": 0.2, "validation_data": ([[0.0] * 4], [0])}, "not both"),
        ({"train_metrics": "no"}, "train_metrics must be True or False"),
        ({"train_metrics": False, "patience": 2}, "pass validation_data"),
    ],
)
def test_bad_fit_arguments_change_nothing(kwargs, match):
    X, y = blobs()
    net = bpgpu.MLP([4, 8, 3], backend="numpy")
    before = net.get_weights()
    args = {"epochs": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        net.fit(X, y, **args)
    assert weights_equal(net.get_weights(), before)


def test_classify_argmax_and_threshold():
    net = bpgpu.MLP([2, 3], output="softmax", backend="numpy", dtype="float64")
    net.set_weights([np.array([[1.0, 0], [0, 1], [0, 0]]), np.zeros(3)])
    assert list(net.classify(np.array([[2.0, 1.0], [-1.0, 3.0], [-1.0, -2.0]]))) == [0, 1, 2]
    one = bpgpu.MLP([1, 1], output="sigmoid", backend="numpy", dtype="float64")
    one.set_weights([np.array([[1.0]]), np.array([0.0])])
    assert list(one.classify(np.array([[-2.0], [0.5]]))) == [0, 1]
    r = one.evaluate(np.array([[-2.0], [0.5], [3.0]]), np.array([0, 1, 0]))
    assert r["accuracy"] == pytest.approx(2 / 3)


def test_a_tampered_checkpoint_is_refused(tmp_path):
    import json
    import zipfile

    X, y = blobs()
    good = tmp_path / "c.npz"
    bpgpu.MLP([4, 8, 3], backend="numpy").fit(X, y, epochs=2, checkpoint=good)
    for change in (
        lambda t: t.update(rng="not a state"),
        lambda t: t["history"].update(unknown=1),
        lambda t: t.update(position={"batch": 10**6, "losses": [1.0], "correct": 0}),
        lambda t: t.update(position={"batch": 1, "losses": [], "correct": 0}),
        lambda t: t.update(position={"batch": 1, "losses": [float("nan")], "correct": 0}),
    ):
        bad = tmp_path / "bad.npz"
        with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w") as zout:
            for name in zin.namelist():
                data = zin.read(name)
                if name == "config.json":
                    cfg = json.loads(data)
                    change(cfg["training"])
                    data = json.dumps(cfg).encode()
                zout.writestr(name, data)
        net = bpgpu.MLP([4, 8, 3], backend="numpy")
        before = net.get_weights()
        with pytest.raises(bpgpu.ModelFileError):
            net.fit(X, y, epochs=4, resume=bad)
        assert weights_equal(net.get_weights(), before)


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_train_metrics_off_trains_the_same_weights(opt, backend):
    X, y = blobs()
    kw = dict(epochs=3, batch_size=16, optimizer=opt, validation_split=0.25, patience=5)
    on = bpgpu.MLP([4, 8, 3], backend=backend, dtype="float64")
    off = bpgpu.MLP([4, 8, 3], backend=backend, dtype="float64")
    h_on, h_off = on.fit(X, y, **kw), off.fit(X, y, **kw, train_metrics=False)
    assert weights_equal(on.get_weights(), off.get_weights())
    assert all(math.isnan(v) for v in h_off.loss + h_off.accuracy)
    assert all(math.isfinite(v) for v in h_on.loss + h_on.accuracy)
    assert h_off.val_loss == h_on.val_loss and h_off.best_epoch == h_on.best_epoch


class EveryBatch(bpgpu.Callback):
    """A callback that needs every batch (JAX then runs step by step, as the others)."""

    def on_batch_end(self, net, batch):
        pass


@pytest.mark.parametrize("limit", [1, 40, 1 << 30])  # rows of outputs held: per batch .. all
def test_training_accuracy_counted_in_groups_is_each_batchs_count(limit, backend, monkeypatch):
    """The epoch's correct predictions are counted a group of batches at a time: the
    same totals as counting after every batch with that batch's outputs, for any group
    size (groups that end inside an epoch, at its end, or hold it whole)."""
    from bpgpu import epochs

    X, y = blobs()
    kw = dict(epochs=3, batch_size=16, optimizer="adam", validation_split=0.25, seed=2)
    net = bpgpu.MLP([4, 8, 3], backend=backend, dtype="float64")
    seen = []  # (correct, rows) of every step, counted right after it

    def watched(real_step):
        if real_step is None:  # a compiling backend has no eager step
            return None

        def step(Xb, Tb, *args, **kwargs):
            state, E, Y = real_step(Xb, Tb, *args, **kwargs)
            seen.append((int(net.model.correct(Y, net.model.labels(Tb))), Xb.shape[0]))
            return state, E, Y

        return step

    # the step as the trainer calls it: one process, eager (NumPy, torch) or not (JAX)
    monkeypatch.setattr(net.model, "step", watched(net.model.step))
    real_eager = net.model.eager_step
    monkeypatch.setattr(net.model, "eager_step", lambda: watched(real_eager()))
    monkeypatch.setattr(epochs.Tally, "BYTES", limit * 3 * 8)
    hist = net.fit(X, y, callbacks=[EveryBatch()], **kw)
    per_epoch = len(seen) // 3
    for e in range(3):
        right, rows = np.sum(seen[e * per_epoch : (e + 1) * per_epoch], axis=0)
        assert hist.accuracy[e] == right / rows, (e, hist.accuracy[e], right / rows)


def test_train_metrics_off_still_stops_a_diverging_fit():
    X, y = blobs()
    net = bpgpu.MLP([4, 8, 3], backend="numpy", dtype="float32")
    net.fit(X, y, epochs=1, batch_size=16)
    start = net.get_weights()
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError) as info:
        net.fit(X, y, epochs=3, batch_size=16, lr=1e30, train_metrics=False)
    assert "NaN or inf in epoch 1" in str(info.value) and "train_metrics=True" in str(info.value)
    assert weights_equal(net.get_weights(), start)  # the epoch's start, all finite


@pytest.mark.parametrize("metrics", [True, False])
def test_fit_reads_the_device_a_fixed_number_of_times_per_epoch(metrics, monkeypatch):
    """No host sync inside the step: the values fit reads back (bool, float, int of a
    device array, or a host copy) do not grow with the number of batches."""
    import array_api_strict

    Array = type(array_api_strict.asarray([0.0]))
    reads = {"n": 0}
    for name in ("__bool__", "__float__", "__int__", "__index__", "__array__", "__dlpack__"):
        original = getattr(Array, name)

        def counting(self, *args, _original=original, **kwargs):
            reads["n"] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Array, name, counting)
    X, y = blobs(n=128)

    def reads_for(batch_size):
        net = bpgpu.MLP([4, 8, 3], backend="array_api_strict", seed=0)
        reads["n"] = 0
        net.fit(X, y, epochs=2, batch_size=batch_size, train_metrics=metrics)
        return reads["n"]

    assert reads_for(64) == reads_for(8) > 0  # 2 batches an epoch, then 16


def test_a_refused_resume_leaves_the_network_as_it_was(tmp_path):
    """Epochs already reached, other data, a bad position: refused before, or undone
    after, the checkpoint's weights and scaling reach the network."""
    X, y = blobs()
    ckpt = tmp_path / "c.npz"
    trained = bpgpu.MLP([4, 8, 3], backend="numpy", seed=1)
    trained.set_input_scaling(X.mean(0), X.std(0))
    trained.fit(X, y, epochs=3, batch_size=16, checkpoint=ckpt)
    net = bpgpu.MLP([4, 8, 3], backend="numpy", seed=5)
    before = net.get_weights()
    other = X.copy()
    other[7, 2] += 1.0  # same rows, one value changed
    for call, match in (
        (lambda: net.fit(X, y, epochs=2, resume=ckpt), "epochs > 3"),
        (lambda: net.fit(X[:-8], y[:-8], epochs=5, resume=ckpt), "other data.*112 rows"),
        (lambda: net.fit(other, y, epochs=5, resume=ckpt), "other data"),
        (lambda: net.fit(X, (y + 1) % 3, epochs=5, resume=ckpt), "other data"),
    ):
        with pytest.raises(ValueError, match=match):
            call()
        assert weights_equal(net.get_weights(), before) and net.input_scaling is None


def test_a_mid_epoch_checkpoint_is_never_resumed_on_other_rows(tmp_path):
    """Its position holds the finished batches' losses: other data would mix them in."""
    X, y = blobs()
    ckpt = tmp_path / "c.npz"

    class StopAfter(bpgpu.Callback):
        def on_batch_end(self, net, batch):
            if batch == 2:
                import os
                import signal

                os.kill(os.getpid(), signal.SIGINT)

    net = bpgpu.MLP([4, 8, 3], backend="numpy")
    h = net.fit(X, y, epochs=2, batch_size=16, checkpoint=ckpt, callbacks=[StopAfter()])
    assert h.interrupted
    shuffled = np.random.default_rng(1).permutation(len(X))
    with pytest.raises(ValueError, match="other data"):
        bpgpu.MLP([4, 8, 3], backend="numpy").fit(X[shuffled], y[shuffled], epochs=2, resume=ckpt)
    resumed = bpgpu.MLP([4, 8, 3], backend="numpy")
    assert resumed.fit(X, y, epochs=2, resume=ckpt).epoch == [1, 2]


def test_resume_takes_the_checkpoints_input_scaling_for_the_data(tmp_path):
    """A network built without scaling resumes a run that had it: the data must be
    standardised as they were, so the result is the uninterrupted run's."""
    X, y = blobs()
    X = 10 * X + 3
    kw = dict(batch_size=16, optimizer="momentum", seed=3)
    full = bpgpu.MLP([4, 8, 3], backend="numpy", dtype="float64")
    full.set_input_scaling(X.mean(0), X.std(0))
    full.fit(X, y, epochs=4, **kw)
    first = bpgpu.MLP([4, 8, 3], backend="numpy", dtype="float64")
    first.set_input_scaling(X.mean(0), X.std(0))
    first.fit(X, y, epochs=2, checkpoint=tmp_path / "c.npz", **kw)
    second = bpgpu.MLP([4, 8, 3], backend="numpy", dtype="float64")  # no scaling set
    second.fit(X, y, epochs=4, resume=tmp_path / "c.npz")
    assert weights_equal(second.get_weights(), full.get_weights())


def test_resume_keeps_the_early_stopping_count(tmp_path):
    """Patience counts epochs without improvement across a resume: the resumed fit
    stops at the epoch the uninterrupted one stops at, with the same weights."""
    X, y = blobs(n=90)
    Xv, yv = X[:30], (y[:30] + 1) % 3  # validation labels that disagree: val loss rises
    kw = dict(batch_size=16, lr=0.1, validation_data=(Xv, yv), patience=4, seed=2)
    full = bpgpu.MLP([4, 8, 3], backend="numpy", dtype="float64")
    h_full = full.fit(X, y, epochs=40, **kw)
    assert h_full.stopped_early
    stop = len(h_full.epoch)
    cut = h_full.best_epoch + 2  # two epochs into the wait
    assert cut < stop
    first = bpgpu.MLP([4, 8, 3], backend="numpy", dtype="float64")
    first.fit(X, y, epochs=cut, checkpoint=tmp_path / "c.npz", **kw)
    second = bpgpu.MLP([4, 8, 3], backend="numpy", dtype="float64")
    h = second.fit(X, y, epochs=40, resume=tmp_path / "c.npz", validation_data=(Xv, yv))
    assert h.epoch == h_full.epoch and h.stopped_early and h.best_epoch == h_full.best_epoch
    assert weights_equal(second.get_weights(), full.get_weights())


class Count(bpgpu.Callback):
    """The epochs whose end a fit reached."""

    def __init__(self):
        self.seen = []

    def on_epoch_end(self, net, epoch, logs):
        self.seen.append(epoch)


def test_a_finished_fit_resumes_to_its_result_and_trains_no_further(tmp_path):
    """Running the same script again on the checkpoint of a finished fit: one that early
    stopping ended trained one more epoch (a history longer than the uninterrupted
    run's), one that ran every epoch was refused. Both now give the fit's result."""
    X, y = blobs(n=90)
    Xv, yv = X[:30], (y[:30] + 1) % 3  # validation labels that disagree: val loss rises
    kw = dict(batch_size=16, lr=0.1, validation_data=(Xv, yv), patience=3, seed=2)
    for epochs in (40, 3):  # early stopping ends the first, the epochs the second
        ckpt = tmp_path / f"c{epochs}.npz"
        full = bpgpu.MLP([4, 8, 3], backend="numpy", dtype="float64")
        h_full = full.fit(X, y, epochs=epochs, checkpoint=ckpt, **kw)
        assert h_full.stopped_early == (epochs == 40)
        count = Count()
        again = bpgpu.MLP([4, 8, 3], backend="numpy", dtype="float64", seed=7)
        h = again.fit(X, y, epochs=epochs, resume=ckpt, callbacks=[count], **kw)
        assert count.seen == [] and h.epoch == h_full.epoch and h.val_loss == h_full.val_loss
        assert h.stopped_early == h_full.stopped_early and h.best_epoch == h_full.best_epoch
        assert weights_equal(again.get_weights(), full.get_weights())  # best ones restored


def test_every_epoch_draws_a_new_batch_order(monkeypatch):
    """The same permutation every epoch would still train, and silently worse."""
    from bpgpu.batches import Batches

    seen = []
    real = Batches.epoch

    def spy(self, perm, first=0):
        seen.append(None if perm is None else bpgpu.to_numpy(perm).copy())
        return real(self, perm, first)

    monkeypatch.setattr(Batches, "epoch", spy)
    X, y = blobs()
    bpgpu.MLP([4, 8, 3], backend="numpy").fit(X, y, epochs=3, batch_size=16, seed=4)
    assert len(seen) == 3
    for p in seen:
        assert sorted(p.tolist()) == list(range(len(X)))
    assert not np.array_equal(seen[0], seen[1]) and not np.array_equal(seen[1], seen[2])
    seen.clear()
    bpgpu.MLP([4, 8, 3], backend="numpy").fit(X, y, epochs=2, batch_size=16, shuffle=False)
    assert seen == [None, None]


class Decay(bpgpu.Callback):
    """A step schedule: the optimizer object passed to fit gets a tenth of its rate after
    every epoch (what the README shows)."""

    per_batch = False  # looks at epochs only: JAX keeps its compiled epoch

    def __init__(self, opt):
        self.opt = opt

    def on_epoch_end(self, net, epoch, logs):
        self.opt.lr *= 0.1


def test_a_callback_schedules_the_learning_rate(backend):
    X, y = blobs()
    kw = dict(batch_size=16, seed=3)
    net = bpgpu.MLP([4, 6, 3], backend=backend, dtype="float64", seed=1)
    steps = net.to(backend)
    sgd = optimizers.SGD(lr=0.5)
    net.fit(X, y, epochs=2, optimizer=sgd, callbacks=[Decay(sgd)], shuffle=False, **kw)
    # the same two epochs as two fits, the second at the decayed rate (plain SGD has no
    # state to lose between fits)
    for lr in (0.5, 0.05):
        steps.fit(X, y, epochs=1, optimizer=optimizers.SGD(lr=lr), shuffle=False, **kw)
    for a, b in zip(net.get_weights(), steps.get_weights()):
        assert np.linalg.norm(a - b) <= 1e-12 * np.linalg.norm(b)
    # a stateful optimizer on this backend against NumPy's, both decayed
    adam = bpgpu.MLP([4, 6, 3], backend=backend, dtype="float64", seed=1)
    ref = adam.to("numpy")
    for m in (adam, ref):
        opt = optimizers.Adam(lr=0.05)
        m.fit(X, y, epochs=3, optimizer=opt, callbacks=[Decay(opt)], **kw)
        assert opt.lr == pytest.approx(0.05e-3)
    for a, b in zip(adam.get_weights(), ref.get_weights()):
        assert np.linalg.norm(a - b) <= 1e-12 * np.linalg.norm(b)
    undecayed = bpgpu.MLP([4, 6, 3], backend="numpy", dtype="float64", seed=1)
    undecayed.fit(X, y, epochs=3, optimizer=optimizers.Adam(lr=0.05), **kw)
    assert not np.allclose(undecayed.get_weights()[0], ref.get_weights()[0])


class Halved(optimizers.SGD):
    """A user's rule under a built-in's name: half the SGD step."""

    def rule(self, grads, slots, t):
        return [-0.5 * self.lr * g for g in grads], {}


class Tracked(optimizers.Momentum):
    """A user's optimizer with a name and a state of its own."""

    name = "tracked"
    slots = ("velocity", "seen")

    def rule(self, grads, slots, t):
        updates, state = super().rule(grads, {"velocity": slots["velocity"]}, t)
        return updates, {**state, "seen": [s + g * g for s, g in zip(slots["seen"], grads)]}


@pytest.mark.parametrize("cls", [Halved, Tracked])
def test_resume_runs_the_users_optimizer_class_not_a_builtin(cls, tmp_path):
    """Resuming built the optimizer from its name: a subclass named "sgd" went on as
    plain SGD (other weights, silently), and a name of the user's own could not resume
    nor even load."""
    X, y = blobs()
    kw = dict(batch_size=16, seed=2)
    full = bpgpu.MLP([4, 6, 3], backend="numpy", dtype="float64", seed=1)
    full.fit(X, y, epochs=4, optimizer=cls(lr=0.2), **kw)
    ckpt = tmp_path / "c.npz"
    part = bpgpu.MLP([4, 6, 3], backend="numpy", dtype="float64", seed=1)
    part.fit(X, y, epochs=4, optimizer=cls(lr=0.2), callbacks=[StopAfter(2)], checkpoint=ckpt, **kw)
    assert bpgpu.load(ckpt).sizes == [4, 6, 3]  # loadable, slots of its own included
    net = bpgpu.MLP([4, 6, 3], backend="numpy", dtype="float64", seed=5)
    before = net.get_weights()
    with pytest.raises(ValueError, match=f"trained with {cls.__name__}, an optimizer class of"):
        net.fit(X, y, epochs=4, resume=ckpt)
    with pytest.raises(ValueError, match=f"(class {cls.__name__}, this is|differs)"):
        net.fit(X, y, epochs=4, optimizer=optimizers.SGD(lr=0.2), resume=ckpt)
    assert weights_equal(net.get_weights(), before)
    h = net.fit(X, y, epochs=4, optimizer=cls(lr=0.2), resume=ckpt)
    assert h.epoch == [1, 2, 3, 4]
    assert weights_equal(net.get_weights(), full.get_weights())


def test_a_learning_rate_schedule_resumes_where_it_stopped(tmp_path, backend):
    """The checkpoint keeps the rate the schedule had reached; the script run again
    (a fresh optimizer at the first rate, its schedule callback) continues exactly."""
    X, y = blobs()
    kw = dict(batch_size=16, seed=2)

    def run(net, epochs, stop=None, **more):
        opt = optimizers.Adam(lr=0.05)
        cbs = [Decay(opt)] + ([StopAfter(stop)] if stop else [])
        net.fit(X, y, epochs=epochs, optimizer=opt, callbacks=cbs, **kw, **more)
        return opt

    full = bpgpu.MLP([4, 6, 3], backend=backend, dtype="float64", seed=1)
    run(full, 4)
    ckpt = tmp_path / "c.npz"
    run(bpgpu.MLP([4, 6, 3], backend=backend, dtype="float64", seed=1), 4, stop=2, checkpoint=ckpt)
    net = bpgpu.MLP([4, 6, 3], backend=backend, dtype="float64", seed=5)
    refused = optimizers.Adam(lr=0.05)
    with pytest.raises(ValueError, match="epochs > 2"):
        net.fit(X, y, epochs=1, optimizer=refused, resume=ckpt)
    assert refused.lr == 0.05  # a refused resume leaves the user's object alone
    opt = run(net, 4, resume=ckpt)
    assert opt.lr == pytest.approx(0.05e-4)  # at 5e-4 after the checkpoint, two decays
    for a, b in zip(net.get_weights(), full.get_weights()):
        assert np.linalg.norm(a - b) <= 1e-12 * np.linalg.norm(b)


def test_history_repr_shows_what_the_fit_measured():
    X, y = blobs()
    plain = bpgpu.MLP([4, 6, 3], backend="numpy").fit(X, y, epochs=2, batch_size=16)
    text = repr(plain)
    assert text.startswith("History(2 epochs, loss ") and "accuracy" in text
    assert "val_" not in text and "nan" not in text  # no validation data: none shown
    held = bpgpu.MLP([4, 6, 3], backend="numpy").fit(X, y, epochs=1, validation_split=0.25)
    assert "val_loss" in repr(held) and "val_accuracy" in repr(held)
    assert repr(held).startswith("History(1 epoch, loss ")
    assert repr(bpgpu.History()) == "History(no epochs)"


def test_verbose_prints_a_line_per_epoch_and_the_default_prints_nothing(capsys, backend):
    X, y = blobs()
    net = bpgpu.MLP([4, 6, 3], backend=backend)
    net.fit(X, y, epochs=2, batch_size=16, validation_split=0.25)
    assert capsys.readouterr().out == ""
    h = net.fit(X, y, epochs=2, batch_size=16, validation_split=0.25, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert [x.split()[:2] for x in lines] == [["epoch", "1/2"], ["epoch", "2/2"]]
    assert f"val_loss {h.val_loss[1]:.4f}" in lines[1] and f"loss {h.loss[1]:.4f}" in lines[1]
    net.fit(X, y, epochs=1, batch_size=16, train_metrics=False, validation_split=0.25, verbose=1)
    assert " loss " not in capsys.readouterr().out  # not measured: not shown as nan
    with pytest.raises(ValueError, match="verbose must be True or False"):
        net.fit(X, y, epochs=1, verbose="yes")


class StopAfterBatch(bpgpu.Callback):
    """Asks to stop from ``on_batch_end`` after a given batch of a given epoch."""

    def __init__(self, epoch, batch):
        self.epoch, self.batch, self.current, self.heard = epoch, batch, 1, []

    def on_epoch_end(self, net, epoch, logs):
        self.current = epoch + 1

    def on_batch_end(self, net, batch):
        self.heard.append((self.current, batch))
        return self.current == self.epoch and batch == self.batch


def test_on_batch_end_returning_true_stops_after_that_batch(backend, tmp_path, caplog):
    """As Ctrl-C does, on every backend (JAX runs step by step for such a callback): no
    batch after it, the weights of the batches before, ``history.interrupted``, and a
    checkpoint of that position whose resume equals the uninterrupted fit."""
    X, y = blobs()  # 120 rows: 8 batches of 16 a epoch
    kw = dict(batch_size=16, optimizer="adam", seed=3)
    full = bpgpu.MLP([4, 6, 3], backend=backend.name, dtype="float64")
    full.fit(X, y, epochs=3, **kw)
    net = bpgpu.MLP([4, 6, 3], backend=backend.name, dtype="float64")
    cb, ckpt = StopAfterBatch(2, 4), tmp_path / "c.npz"
    with caplog.at_level("WARNING", logger="bpgpu"):
        h = net.fit(X, y, epochs=3, callbacks=[cb], checkpoint=ckpt, **kw)
    assert cb.heard[-1] == (2, 4) and len(cb.heard) == 8 + 5
    assert h.interrupted and h.epoch == [1]
    assert "stopped by a callback in epoch 2 after batch 5 of 8" in caplog.text
    again = bpgpu.MLP([4, 6, 3], backend=backend.name, dtype="float64", seed=9)
    again.fit(X, y, epochs=3, resume=ckpt)
    assert weights_equal(again.get_weights(), full.get_weights())


def test_a_callback_stops_a_fit_in_a_process_that_ignores_ctrl_c():
    """The request is the callback's, not a signal's: it works where SIGINT is ignored
    (a background job) and in a thread, where fit installs no Ctrl-C handler."""
    import signal
    import threading

    X, y = blobs()
    out = {}
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        net = bpgpu.MLP([4, 6, 3], backend="numpy")
        h = net.fit(X, y, epochs=3, batch_size=16, callbacks=[StopAfterBatch(1, 2)])
        thread = threading.Thread(
            target=lambda: out.setdefault(
                "h", net.fit(X, y, epochs=3, batch_size=16, callbacks=[StopAfterBatch(2, 0)])
            )
        )
        thread.start()
        thread.join()
    finally:
        signal.signal(signal.SIGINT, before)
    assert h.interrupted and h.epoch == []
    assert out["h"].interrupted and out["h"].epoch == [1]


def test_regression_targets_have_no_accuracy_and_class_targets_keep_it(backend, tmp_path):
    """Several unbounded outputs (identity) trained on numeric targets: the history and
    evaluate said "accuracy 0.39" (the argmax of two regression targets); now NaN. The
    same network on class labels, and a bounded output on any targets, keep it."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(96, 4))
    Y = np.c_[X @ [1.0, 2.0, 3.0, 4.0], X @ [1.0, -1.0, 0.0, 2.0]]
    y = (X[:, 0] > 0).astype(int)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Y.npy", Y)
    kw = dict(epochs=2, batch_size=16, validation_split=0.25)
    for data, classes in (
        ((X, Y), False),
        ((str(tmp_path / "X.npy"), str(tmp_path / "Y.npy")), False),  # streamed
        ((X, y), True),
        ((X, np.eye(2)[y]), True),  # one-hot rows are classes too
    ):
        net = bpgpu.MLP([4, 6, 2], output="identity", cost="quadratic", backend=backend)
        h = net.fit(*data, **kw)
        scores = [*h.accuracy, *h.val_accuracy, net.evaluate(*data)["accuracy"]]
        assert all(math.isnan(a) != classes for a in scores), (data[1], scores)
        assert all(math.isfinite(v) for v in [*h.loss, *h.val_loss])
    bounded = bpgpu.MLP([4, 6, 2], output="sigmoid", cost="quadratic", backend=backend)
    h = bounded.fit(X, (Y > 0).astype(float) * 0.8, **kw)  # two 0/1-like units: argmax
    assert all(math.isfinite(a) for a in [*h.accuracy, *h.val_accuracy])


def test_multilabel_targets_count_a_row_right_when_every_label_is(backend, tmp_path, monkeypatch):
    """Sigmoid outputs trained on 0/1 rows that tag a sample with any number of labels
    (the seed's per-unit cross-entropy): the history and evaluate gave the argmax of the
    outputs against the argmax of the targets (0.68 for a net whose every label was right
    on 98% of the rows). A row is now right when every unit is, as ``classify(X,
    multilabel=True)`` says: in memory and streamed, in a compiled epoch and per batch."""
    from bpgpu import streaming

    rng = np.random.default_rng(0)
    X = rng.normal(size=(2500, 5))
    T = (X[:, :3] + 0.3 * X[:, 3:4] > 0).astype(float)  # rows with 0 to 3 labels
    for part in (slice(0, 1100), slice(-300, None)):  # one label each: whole chunks one-hot
        T[part] = np.eye(3)[T[part].argmax(1)]
    net = bpgpu.MLP(
        [5, 8, 3],
        hidden="tanh",
        output="sigmoid",
        cost="cross_entropy",
        backend=backend,
        dtype="float64",
        seed=0,
    )
    tags = bpgpu.to_numpy(net.classify(X, multilabel=True))
    assert tags.shape == (2500, 3) and set(np.unique(tags)) <= {0, 1}
    subset = float(np.mean(np.all(tags == T, axis=1)))
    argmax = float(np.mean(bpgpu.to_numpy(net.classify(X)) == T.argmax(1)))
    assert abs(subset - argmax) > 0.05  # the two measures tell apart here
    kw = dict(epochs=1, batch_size=64, lr=1e-300)  # a step that leaves the weights as they are
    h = net.fit(X, T, **kw)
    assert h.accuracy[0] == pytest.approx(subset, abs=1e-12)
    assert net.evaluate(X, T)["accuracy"] == pytest.approx(subset, abs=1e-12)
    monkeypatch.setattr(streaming, "CHUNK_BYTES", 4096)  # chunks of 1,024 rows
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "T.npy", T)
    files = str(tmp_path / "X.npy"), str(tmp_path / "T.npy")
    assert net.fit(*files, **kw).accuracy == h.accuracy
    assert net.evaluate(*files)["accuracy"] == pytest.approx(subset, abs=1e-12)
    # validation rows are judged alike; one-hot rows stay classes (argmax)
    hv = net.fit(X[:2000], T[:2000], validation_data=(X[2000:], T[2000:]), **kw)
    want = float(np.mean(np.all(tags[2000:] == T[2000:], axis=1)))
    assert hv.val_accuracy[0] == pytest.approx(want, abs=1e-12)
    one_hot = np.eye(3)[T.argmax(1)]
    assert net.evaluate(X, one_hot)["accuracy"] == pytest.approx(argmax, abs=1e-12)
    # tanh outputs: the ends of the range are -1 and 1
    pm = bpgpu.MLP([5, 8, 3], output="tanh", cost="quadratic", backend=backend, seed=0)
    signs = 2 * bpgpu.to_numpy(pm.classify(X, multilabel=True)) - 1
    got = pm.evaluate(X, 2 * T - 1)["accuracy"]
    assert got == pytest.approx(float(np.mean(np.all(signs == 2 * T - 1, axis=1))), abs=1e-6)
    with pytest.raises(ValueError, match="multilabel must be True or False"):
        net.classify(X, multilabel="yes")


@pytest.mark.parametrize("opt", ["sgd", "momentum", "adam"])
def test_a_sample_weight_counts_a_sample_that_often(backend, opt):
    """One batch an epoch: whole-number sample weights train the fit of the data with
    each sample repeated that often (weight 0: left out), weights and losses alike."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 4)), rng.integers(0, 3, size=40)
    k = rng.integers(0, 4, size=40)
    a = bpgpu.MLP([4, 6, 3], hidden="tanh", backend=backend, dtype="float64", seed=1)
    b = a.to(backend)
    ha = a.fit(X, y, epochs=3, batch_size=40, optimizer=opt, sample_weight=k, seed=0)
    rep = np.repeat(np.arange(40), k)
    hb = b.fit(X[rep], y[rep], epochs=3, batch_size=len(rep), optimizer=opt, seed=0)
    for p, q in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(p, q, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ha.loss, hb.loss, rtol=1e-10)


def test_equal_sample_weights_train_the_unweighted_fit(backend):
    """Every sample weighing 3: the unweighted fit, in shuffled mini-batches with a short
    last one (on JAX the full ones run as a compiled epoch, the last one alone)."""
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(90, 4)), rng.integers(0, 3, size=90)
    a = bpgpu.MLP([4, 6, 3], hidden="relu", backend=backend, dtype="float64", seed=1)
    b = a.to(backend)
    kw = dict(epochs=2, batch_size=16, optimizer="momentum", seed=3)
    ha = a.fit(X, y, **kw)
    hb = b.fit(X, y, sample_weight=np.full(90, 3.0), **kw)
    for p, q in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(p, q, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(ha.loss, hb.loss, rtol=1e-12)
    assert ha.accuracy == hb.accuracy


def test_weighted_fits_stream_resume_exactly_and_refuse_other_weights(tmp_path):
    """A fit with sample and class weights: streamed from .npy files it is the in-memory
    fit bit for bit; its checkpoint resumes to the uninterrupted result; other weights
    are other data, refused on resume."""
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, size=150)
    X = rng.normal(size=(150, 5)) + y[:, None]
    w = rng.uniform(0, 2, size=150)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    kw = dict(batch_size=16, optimizer="adam", validation_split=0.2, seed=5)
    kw.update(sample_weight=w, class_weight="balanced")
    net = bpgpu.MLP([5, 7, 3], backend="numpy", dtype="float64", seed=3)
    full = net.to("numpy")
    h = full.fit(X, y, epochs=3, **kw)
    streamed = net.to("numpy")
    np.save(tmp_path / "w.npy", w)  # the weights from a file too
    files = str(tmp_path / "X.npy"), str(tmp_path / "y.npy")
    hs = streamed.fit(*files, epochs=3, **{**kw, "sample_weight": str(tmp_path / "w.npy")})
    assert hs.loss == h.loss and hs.val_loss == h.val_loss
    for p, q in zip(full.get_weights(), streamed.get_weights()):
        np.testing.assert_array_equal(p, q)
    first = net.to("numpy")
    first.fit(X, y, epochs=2, checkpoint=tmp_path / "c.npz", **kw)
    again = net.to("numpy")
    hr = again.fit(X, y, epochs=3, resume=tmp_path / "c.npz", **kw)
    assert hr.loss == h.loss
    for p, q in zip(full.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(p, q)
    other = net.to("numpy")
    with pytest.raises(ValueError, match="written training on other data"):
        other.fit(X, y, epochs=3, resume=tmp_path / "c.npz", **{**kw, "sample_weight": 2 * w})


def test_class_weight_is_a_sample_weight_per_class():
    """``class_weight`` (a dict, or "balanced") trains the fit of the sample weights it
    stands for, from labels or one-hot rows, times any sample_weight; refused where the
    targets are not classes, or the table is not one."""
    rng = np.random.default_rng(3)
    y = np.r_[np.zeros(60, int), np.ones(25, int), np.full(15, 2)]
    X = rng.normal(size=(100, 4)) + y[:, None]
    w = rng.uniform(0.5, 1.5, size=100)
    net = bpgpu.MLP([4, 6, 3], backend="numpy", dtype="float64", seed=0)
    kw = dict(epochs=2, batch_size=16, seed=1)

    def fitted(targets, **weights):
        m = net.to("numpy")
        return m.fit(X, targets, **kw, **weights).loss, m.get_weights()

    balanced = 100 / (3 * np.bincount(y))[y]
    for got, want in [
        (fitted(y, class_weight="balanced"), fitted(y, sample_weight=balanced)),
        (fitted(y, class_weight={1.0: 3}), fitted(y, sample_weight=np.where(y == 1, 3.0, 1))),
        (
            fitted(np.eye(3)[y], class_weight={2: 0.5}, sample_weight=w),
            fitted(y, sample_weight=w * np.where(y == 2, 0.5, 1)),
        ),
    ]:
        np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
        for p, q in zip(got[1], want[1]):
            np.testing.assert_allclose(p, q, rtol=1e-10, atol=1e-13)
    before = net.get_weights()
    reg = bpgpu.MLP([4, 2], output="identity", cost="quadratic", backend="numpy")
    tags = bpgpu.MLP([4, 3], output="sigmoid", cost="cross_entropy", backend="numpy")
    for model, targets, weights, error, match in [
        (reg, X[:, :2], {"class_weight": {0: 2.0}}, ValueError, "numbers, not classes"),
        (
            tags,
            (X[:, :3] > 1).astype(float),
            {"class_weight": "balanced"},
            ValueError,
            "multi-label rows",
        ),
        (net, y, {"class_weight": {5: 2.0}}, ValueError, r"names class 5; the classes are 0..2"),
        (net, y, {"class_weight": {0.5: 2.0}}, ValueError, r"names class 0.5; the classes"),
        (net, y, {"class_weight": "balance"}, ValueError, "or 'balanced'; got 'balance'"),
        (net, y, {"class_weight": [1, 2, 3]}, TypeError, "got list"),
        (net, y, {"class_weight": {0: -1.0}}, ValueError, "finite and >= 0"),
        (net, y, {"class_weight": {0: 0, 1: 0, 2: 0}}, ValueError, "no sample that counts"),
        (net, y, {"sample_weight": -w}, ValueError, "finite and >= 0"),
        (net, y, {"sample_weight": np.where(y == 0, np.nan, w)}, ValueError, "finite"),
        (net, y, {"sample_weight": w[:99]}, ValueError, r"shape \(99,\); pass one weight per"),
        (net, y, {"sample_weight": np.zeros(100)}, ValueError, "zero for every sample"),
        (net, y, {"sample_weight": "heavy"}, TypeError, "must be numbers"),
    ]:
        with pytest.raises(error, match=match):
            model.fit(X, targets, epochs=1, **weights)
    for p, q in zip(before, net.get_weights()):
        np.testing.assert_array_equal(p, q)


def test_evaluate_and_validation_weigh_samples_as_fit_does(backend, monkeypatch):
    """``evaluate(X, y, sample_weight=)``: the weighted mean loss and accuracy
    (scikit-learn's ``score``), whole or a chunk at a time (a chunk whose weights are all
    0 included); whole-number weights are repeated rows. In ``fit`` the validation loss
    is weighted by the validation rows' weights (``validation_split``'s held-out rows, or
    ``(X_val, y_val, w_val)``), the accuracies are not."""
    from bpgpu import streaming

    rng = np.random.default_rng(7)
    X, y = rng.normal(size=(2600, 4)), rng.integers(0, 3, size=2600)
    w = rng.integers(0, 4, size=2600).astype(float)
    w[:1100] = 0.0  # the first chunk weighs nothing
    net = bpgpu.MLP([4, 6, 3], backend=backend, dtype="float64", seed=0)
    P = bpgpu.to_numpy(net.predict(X))
    E = -np.log(P[np.arange(len(y)), y])
    want = {"loss": (w * E).sum() / w.sum(), "accuracy": (w * (P.argmax(1) == y)).sum() / w.sum()}
    rep = np.repeat(np.arange(len(y)), w.astype(int))
    for got in (
        net.evaluate(X, y, sample_weight=w),
        net.evaluate(X[rep], y[rep]),
    ):
        assert got == pytest.approx(want, rel=1e-10)
    monkeypatch.setattr(streaming, "CHUNK_BYTES", 4096)  # 1,024 rows a chunk
    assert net.evaluate(X, y, sample_weight=w) == pytest.approx(want, rel=1e-10)
    with pytest.raises(ValueError, match="finite and >= 0"):
        net.evaluate(X, y, sample_weight=-w)
    # fit: the validation loss weighted, the accuracies not
    Xv, yv, wv = X[:300], y[:300], rng.uniform(0.1, 3.0, size=300)
    h = net.fit(X[300:], y[300:], epochs=1, validation_data=(Xv, yv, wv), seed=1)
    assert h.val_loss[0] == pytest.approx(net.evaluate(Xv, yv, sample_weight=wv)["loss"], rel=1e-9)
    assert h.val_accuracy[0] == pytest.approx(net.evaluate(Xv, yv)["accuracy"], rel=1e-12)
    from bpgpu.host_rng import split_indices

    keep, held = split_indices(2600, 0.25, 3)
    ws = w + 1.0
    h = net.fit(X, y, epochs=1, validation_split=0.25, seed=3, sample_weight=ws)
    got = net.evaluate(X[held], y[held], sample_weight=ws[held])["loss"]
    assert h.val_loss[0] == pytest.approx(got, rel=1e-9)
    with pytest.raises(ValueError, match="a pair \\(X_val, y_val\\) or a triple"):
        net.fit(X, y, epochs=1, validation_data=(Xv, yv, wv, wv))
