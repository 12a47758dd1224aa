"""Learning-rate schedules (bpgpu.schedules): optax's values, one rate per step on every
backend and inside JAX's compiled epochs, through checkpoints; ReduceLROnPlateau."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest
from conftest import StopAfter, load_backend, rel_norm

import bpgpu
from bpgpu import optimizers, schedules


def blobs(n=120, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    centers = rng.normal(scale=4.0, size=(k, d))
    return centers[y] + rng.normal(size=(n, d)), y


# ---- the values: optax's documented definitions, written out here ---------------------


def ref_exponential(count, init, steps, rate, begin=0, staircase=False, end=None):
    # optax.exponential_decay: p = (count - transition_begin) / transition_steps,
    # floor(p) with staircase; init before transition_begin; clipped at end_value
    if count <= begin:
        value = init
    else:
        p = (count - begin) / steps
        value = init * rate ** (math.floor(p) if staircase else p)
    if end is not None:
        value = max(value, end) if rate < 1 else min(value, end)
    return value


def ref_cosine(count, init, steps, alpha=0.0, exponent=1.0):
    # optax.cosine_decay_schedule: init * ((1 - alpha) * cosine**exponent + alpha),
    # cosine = 0.5 * (1 + cos(pi * min(count, decay_steps) / decay_steps))
    cosine = 0.5 * (1 + math.cos(math.pi * min(count, steps) / steps))
    return init * ((1 - alpha) * cosine**exponent + alpha)


def ref_warmup_cosine(count, init, peak, warmup, steps, end=0.0, exponent=1.0):
    # optax.warmup_cosine_decay_schedule: linear init -> peak over warmup_steps, then
    # cosine_decay_schedule(peak, decay_steps - warmup_steps, alpha=end / peak, exponent)
    # on count - warmup_steps
    if count < warmup:
        return init + (peak - init) * count / warmup
    return ref_cosine(count - warmup, peak, steps - warmup, end / peak, exponent)


CASES = [
    (schedules.constant(0.3), lambda c: 0.3),
    (schedules.step_decay(0.1, step_size=3, factor=0.5), lambda c: 0.1 * 0.5 ** (c // 3)),
    (
        schedules.exponential_decay(0.1, transition_steps=4, decay_rate=0.5),
        lambda c: ref_exponential(c, 0.1, 4, 0.5),
    ),
    (
        schedules.exponential_decay(
            0.1, 4, 0.5, transition_begin=3, staircase=True, end_value=0.02
        ),
        lambda c: ref_exponential(c, 0.1, 4, 0.5, 3, True, 0.02),
    ),
    (
        schedules.exponential_decay(0.1, 5, 1.5, transition_begin=2, end_value=0.2),
        lambda c: ref_exponential(c, 0.1, 5, 1.5, 2, False, 0.2),
    ),
    (schedules.cosine_decay(0.2, decay_steps=10), lambda c: ref_cosine(c, 0.2, 10)),
    (
        schedules.cosine_decay(0.2, decay_steps=10, alpha=0.1, exponent=2.0),
        lambda c: ref_cosine(c, 0.2, 10, 0.1, 2.0),
    ),
    (
        schedules.warmup_cosine_decay(0.0, 0.1, warmup_steps=4, decay_steps=12, end_value=0.01),
        lambda c: ref_warmup_cosine(c, 0.0, 0.1, 4, 12, 0.01),
    ),
    (
        schedules.warmup_cosine_decay(0.02, 0.1, 3, 9, exponent=1.5),
        lambda c: ref_warmup_cosine(c, 0.02, 0.1, 3, 9, 0.0, 1.5),
    ),
    (schedules.cosine_decay(0.2, 10) * 0.5, lambda c: 0.5 * ref_cosine(c, 0.2, 10)),
]
STEPS = [0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 25, 1000]
IDS = [f"{type(s).__name__}-{i}" for i, (s, _) in enumerate(CASES)]


@pytest.mark.parametrize("schedule, ref", CASES, ids=IDS)
def test_each_schedule_gives_optax_s_rate_at_every_step(schedule, ref):
    for c in STEPS:
        got = schedule(c)
        assert type(got) is float
        assert got == pytest.approx(ref(c), rel=1e-14, abs=1e-17), c
    assert schedule(np.int64(5)) == schedule(5)  # NumPy integers are counts too


@pytest.mark.parametrize("schedule, ref", CASES, ids=IDS)
def test_an_array_count_gives_the_host_rates(schedule, ref):
    """The path a compiled program takes (a traced count, in the array's namespace)."""
    xp = pytest.importorskip("array_api_strict")
    for c in STEPS:
        got = schedule(xp.asarray(c, dtype=xp.int64))
        assert got.dtype == xp.float64 and got.shape == ()
        assert float(got) == pytest.approx(ref(c), rel=1e-14, abs=1e-17), c


def test_a_traced_count_inside_jit_gives_the_host_rates():
    load_backend("jax")  # x64 on, or a skip
    import jax
    import jax.numpy as jnp

    for schedule, ref in CASES:
        rate = jax.jit(schedule)
        for c in STEPS:
            assert float(rate(jnp.asarray(c, dtype=jnp.int64))) == pytest.approx(
                ref(c), rel=1e-13, abs=1e-17
            )


@pytest.mark.parametrize("schedule", [s for s, _ in CASES], ids=IDS)
def test_a_schedule_is_rebuilt_from_its_config_and_pickles(schedule):
    config = json.loads(json.dumps(schedule.config()))
    assert schedules.from_config(config) == schedule
    assert pickle.loads(pickle.dumps(schedule)) == schedule
    assert hash(schedules.from_config(config)) == hash(schedule)  # a program cache key
    opt = optimizers.Adam(lr=schedule)
    again = optimizers.get(json.loads(json.dumps(opt.config())))
    assert type(again) is optimizers.Adam and again.lr == schedule


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: schedules.cosine_decay(0.1, decay_steps=0), "decay_steps must be a positive"),
        (lambda: schedules.cosine_decay(-0.1, 10), "init_value must be a finite number > 0"),
        (lambda: schedules.cosine_decay(0.1, 10, alpha=-1), "alpha must be"),
        (lambda: schedules.cosine_decay(0.1, 10.5), "decay_steps must be a positive integer"),
        (lambda: schedules.step_decay(0.1, 0, 0.5), "step_size must be a positive"),
        (lambda: schedules.step_decay(0.1, 5, 0), "factor must be a finite number > 0"),
        (lambda: schedules.exponential_decay(0.1, 0, 0.5), "use bpgpu.schedules.constant"),
        (lambda: schedules.exponential_decay(0.1, 5, 0.5, staircase=1), "True or False"),
        (lambda: schedules.exponential_decay(0.1, 5, 0.5, transition_begin=-1), ">= 0"),
        (lambda: schedules.warmup_cosine_decay(0.0, 0.1, 10, 10), "counts the warmup too"),
        (lambda: schedules.warmup_cosine_decay(0.0, 0.0, 1, 10), "peak_value must be"),
        (lambda: schedules.constant(math.nan), "value must be a finite number"),
        (lambda: schedules.constant(0.1) * -2, "factor must be a finite number > 0"),
        (lambda: schedules.from_config({"name": "linear"}), "names one of constant"),
        (lambda: schedules.from_config({"name": "constant", "rate": 1}), "config is not valid"),
        (lambda: schedules.constant(0.1)(-1), "step count is >= 0"),
        (lambda: optimizers.SGD(lr="fast"), "lr must be a finite number > 0"),
        (lambda: optimizers.SGD(lr=np.ones(3)), "lr must be a number > 0 or a schedule"),
    ],
)
def test_bad_arguments_are_refused_saying_what_to_pass(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# ---- the optimizer's rate for a step ----------------------------------------------------


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_the_update_after_count_steps_uses_the_rate_at_count(name):
    """optax's meaning: the first update (count 0) uses schedule(0); the state's step
    count before the update is the count."""
    lr = schedules.step_decay(0.5, step_size=1, factor=0.1)  # a new rate every step
    opt = optimizers.get(name, lr=lr)
    g = [np.full((2, 2), 1.0)]
    for count in (0, 3):
        fixed = optimizers.get(name, lr=lr(count))
        a, sa = opt.update(g, {**opt.init(g), "t": count}, g)
        b, sb = fixed.update(g, {**fixed.init(g), "t": count}, g)
        assert np.array_equal(a[0], b[0]) and sa["t"] == sb["t"] == count + 1
    assert opt.lr is lr  # the schedule stays the optimizer's


def test_the_ops_and_their_fused_paths_get_the_rate_not_the_schedule(monkeypatch):
    """A backend's optimizer_step (CuPy's fused kernels read ``opt.hyper(t)``) and the
    prescaled SGD step (``lr / B`` folded into the output error) see this step's rate as
    a Python float."""
    X, y = blobs()
    lr = schedules.exponential_decay(0.1, transition_steps=2, decay_rate=0.5)
    net = bpgpu.MLP([4, 6, 3], backend="numpy", dtype="float64", seed=1)
    ops_class = type(net.backend.ops)
    real_step, seen = ops_class.optimizer_step, []

    def optimizer_step(self, opt, rule, params, grads, state):
        seen.append((rule, state["t"], opt.lr, opt.hyper(state["t"] + 1)["step"]))
        return real_step(self, opt, rule, params, grads, state)

    monkeypatch.setattr(ops_class, "optimizer_step", optimizer_step)
    net.fit(X, y, epochs=1, batch_size=40, optimizer=optimizers.Adam(lr=lr))
    assert [(r, t) for r, t, *_ in seen] == [("adam", 0), ("adam", 1), ("adam", 2)]
    for _, t, rate, step in seen:
        assert type(rate) is float and rate == lr(t)
        assert step == rate / (1 - 0.9 ** (t + 1))
    scaled = []
    real_output = bpgpu.core.output

    def output(ops, layers, cost, params, Xs, T, scale, *rest):
        scaled.append(scale)
        return real_output(ops, layers, cost, params, Xs, T, scale, *rest)

    monkeypatch.setattr(bpgpu.core, "output", output)
    net.fit(X, y, epochs=1, batch_size=40, optimizer=optimizers.SGD(lr=lr))
    assert scaled == [lr(t) / 40 for t in range(3)]


def test_a_step_schedule_trains_what_a_callback_that_decays_each_epoch_trains(backend):
    """SGD with ``step_decay`` by the batches of an epoch is the callback schedule of
    test_training (a tenth of the rate after each epoch), on every backend's own path
    (NumPy and torch's prescaled step, JAX's compiled epoch)."""
    X, y = blobs()
    kw = dict(batch_size=16, seed=3, shuffle=False)
    per_epoch = math.ceil(len(X) / 16)
    net = bpgpu.MLP([4, 6, 3], backend=backend, dtype="float64", seed=1)
    ref = net.to(backend)
    lr = schedules.step_decay(0.5, step_size=per_epoch, factor=0.1)
    net.fit(X, y, epochs=2, optimizer=optimizers.SGD(lr=lr), **kw)
    for rate in (0.5, 0.5 * 0.1):
        ref.fit(X, y, epochs=1, optimizer=optimizers.SGD(lr=rate), **kw)
    for a, b in zip(net.get_weights(), ref.get_weights()):
        assert rel_norm(a, b) <= 1e-12


@pytest.mark.parametrize("name", ["sgd", "nesterov", "adam"])
def test_a_fit_with_a_schedule_gives_numpy_s_weights_on_every_backend(name, backend):
    X, y = blobs()
    lr = schedules.warmup_cosine_decay(0.0, 0.3, warmup_steps=5, decay_steps=30, end_value=0.01)
    kw = dict(epochs=4, batch_size=16, seed=2)
    ref = bpgpu.MLP([4, 6, 3], backend="numpy", dtype="float64", seed=1)
    net = ref.to(backend)
    for m in (ref, net):
        m.fit(X, y, optimizer=optimizers.get(name, lr=lr), **kw)
    for a, b in zip(net.get_weights(), ref.get_weights()):
        assert rel_norm(a, b) <= 1e-12
    fixed = bpgpu.MLP([4, 6, 3], backend="numpy", dtype="float64", seed=1)
    fixed.fit(X, y, optimizer=optimizers.get(name, lr=0.3), **kw)
    assert rel_norm(fixed.get_weights()[0], ref.get_weights()[0]) > 1e-3  # it scheduled


def test_a_plain_function_works_eagerly_and_a_checkpoint_of_it_is_refused_up_front(tmp_path):
    X, y = blobs()
    schedule = schedules.exponential_decay(0.2, transition_steps=7, decay_rate=0.5)
    kw = dict(epochs=2, batch_size=16, seed=2)
    obj = bpgpu.MLP([4, 6, 3], backend="numpy", dtype="float64", seed=1)
    fn = obj.to("numpy")
    obj.fit(X, y, optimizer=optimizers.Adam(lr=schedule), **kw)
    fn.fit(X, y, optimizer=optimizers.Adam(lr=lambda count: 0.2 * 0.5 ** (count / 7)), **kw)
    for a, b in zip(fn.get_weights(), obj.get_weights()):
        assert rel_norm(a, b) <= 1e-14
    before = fn.get_weights()
    ckpt = tmp_path / "c.npz"
    with pytest.raises(ValueError, match="a checkpoint cannot record; use a schedule of bpgpu"):
        fn.fit(X, y, optimizer=optimizers.Adam(lr=lambda c: 0.1), checkpoint=ckpt, **kw)
    assert not ckpt.exists()
    assert all(np.array_equal(a, b) for a, b in zip(fn.get_weights(), before))


# ---- JAX: the rate computed inside the compiled programs ----------------------------------


def test_jax_compiles_a_fit_with_a_schedule_once(caplog):
    """The step count is traced, the schedule's hyper-parameters are constants: four
    epochs compile the epoch program and the last short batch's step once each, and a
    callback that scales the schedule (as ReduceLROnPlateau does) compiles nothing."""
    from test_jax import training_compiles

    be = load_backend("jax")
    X, y = blobs(n=200)
    lr = schedules.cosine_decay(0.3, decay_steps=40, alpha=0.05)

    class Halve(bpgpu.Callback):
        per_batch = False

        def on_epoch_end(self, net, epoch, logs):
            self.optimizer.lr /= 2  # a Scaled schedule

    ref = bpgpu.MLP([4, 7, 3], backend="numpy", dtype="float64", seed=2)
    net = ref.to(be)
    with training_compiles(caplog) as compiled:
        net.fit(X, y, epochs=4, batch_size=16, optimizer=optimizers.Adam(lr=lr), seed=1)
    assert compiled == ["jit(run)", "jit(step)"]
    with training_compiles(caplog) as again:
        opt = optimizers.Adam(lr=lr)
        net.fit(X, y, epochs=3, batch_size=16, optimizer=opt, seed=1, callbacks=[Halve()])
    assert again == [] and opt.lr == lr * 0.125
    ref.fit(X, y, epochs=4, batch_size=16, optimizer=optimizers.Adam(lr=lr), seed=1)
    ref.fit(
        X, y, epochs=3, batch_size=16, optimizer=optimizers.Adam(lr=lr), seed=1, callbacks=[Halve()]
    )
    for a, b in zip(net.get_weights(), ref.get_weights()):
        assert rel_norm(a, b) <= 1e-12


# ---- checkpoints -------------------------------------------------------------------------


class Tenth(bpgpu.Callback):
    """A callback that lowers the rate after epoch 1: a schedule is scaled."""

    per_batch = False

    def on_epoch_end(self, net, epoch, logs):
        if epoch == 1:
            self.optimizer.lr *= 0.1


@pytest.mark.parametrize("name", ["numpy", "jax"])
@pytest.mark.parametrize("scaled", [False, True])
def test_a_fit_with_a_schedule_resumed_from_a_checkpoint_is_the_uninterrupted_fit(
    name, scaled, tmp_path
):
    be = load_backend(name)
    X, y = blobs()
    lr = schedules.warmup_cosine_decay(0.0, 0.2, warmup_steps=6, decay_steps=40)
    kw = dict(epochs=4, batch_size=16, seed=2)
    more = [Tenth()] if scaled else []

    def run(net, *cbs, **extra):
        opt = optimizers.Adam(lr=lr)
        net.fit(X, y, optimizer=opt, callbacks=[*more, *cbs], **kw, **extra)
        return opt

    full = bpgpu.MLP([4, 6, 3], backend=be, dtype="float64", seed=1)
    whole = run(full)
    ckpt = tmp_path / "c.npz"
    run(bpgpu.MLP([4, 6, 3], backend=be, dtype="float64", seed=1), StopAfter(2), checkpoint=ckpt)
    again = bpgpu.MLP([4, 6, 3], backend=be, dtype="float64", seed=5)
    opt = run(again, resume=ckpt)  # the script run again: a fresh optimizer, its schedule
    assert opt.lr == whole.lr == (lr * 0.1 if scaled else lr)
    for a, b in zip(again.get_weights(), full.get_weights()):
        assert np.array_equal(a, b)
    if not scaled:  # no optimizer given: the checkpoint's, its schedule rebuilt
        built = bpgpu.MLP([4, 6, 3], backend=be, dtype="float64", seed=5)
        built.fit(X, y, epochs=4, resume=ckpt)
        for a, b in zip(built.get_weights(), full.get_weights()):
            assert np.array_equal(a, b)


def test_resuming_with_another_schedule_is_refused(tmp_path):
    X, y = blobs()
    ckpt = tmp_path / "c.npz"
    net = bpgpu.MLP([4, 6, 3], backend="numpy", dtype="float64", seed=1)
    lr = schedules.cosine_decay(0.1, 30)
    net.fit(X, y, epochs=2, batch_size=16, optimizer=optimizers.SGD(lr=lr), checkpoint=ckpt)
    other = optimizers.SGD(lr=schedules.cosine_decay(0.1, 31))
    with pytest.raises(ValueError, match="differs from the checkpoint's"):
        net.fit(X, y, epochs=3, batch_size=16, optimizer=other, resume=ckpt)


# ---- ReduceLROnPlateau ---------------------------------------------------------------------


def plateau(losses, lr=1.0, steps=0, **kw):
    """The rate after each epoch of a ReduceLROnPlateau fed ``losses`` as val_loss."""
    cb = bpgpu.ReduceLROnPlateau(**kw)
    opt = optimizers.SGD(lr=lr)
    cb.set_optimizer(opt, lambda: steps)
    cb.on_train_begin(None, bpgpu.History())
    rates = []
    for i, v in enumerate(losses):
        cb.on_epoch_end(None, i + 1, {"loss": 9.0, "val_loss": v})
        rates.append(opt.lr)
    return rates, cb


def test_reduce_on_plateau_waits_exactly_patience_epochs():
    rates, cb = plateau([1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5], factor=0.5, patience=3)
    assert rates == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5]  # epochs 3, 4, 5 did not improve
    assert cb.reductions == [5]
    # an improvement smaller than min_delta is none; a larger one resets the wait
    rates, _ = plateau([1.0, 0.99995, 0.9999, 0.5, 0.4999], factor=0.5, patience=2)
    assert rates == [1.0, 1.0, 0.5, 0.5, 0.5]
    rates, _ = plateau([1.0, 0.9, 1.0, 0.8, 1.0, 1.0], factor=0.5, patience=2, min_delta=0.05)
    assert rates == [1.0, 1.0, 1.0, 1.0, 1.0, 0.5]


def test_reduce_on_plateau_respects_cooldown_and_min_lr():
    flat = [1.0] + [1.0] * 9
    assert plateau(flat, factor=0.5, patience=1)[1].reductions == list(range(2, 11))
    rates, cb = plateau(flat, factor=0.5, patience=1, cooldown=3)
    # reduced after epoch 2; Keras's arithmetic: the cooldown counts down in epochs 3,
    # 4 and 5 and the epoch that brings it to 0 is counted again
    assert cb.reductions == [2, 5, 8]
    assert rates[:5] == [1.0, 0.5, 0.5, 0.5, 0.25]
    assert plateau(flat, factor=0.5, patience=1, cooldown=2)[1].reductions == [2, 4, 6, 8, 10]
    rates, cb = plateau(flat, factor=0.1, patience=1, min_lr=0.05)
    assert rates[:4] == [1.0, 0.1, 0.05, 0.05] and cb.reductions == [2, 3]


def test_reduce_on_plateau_scales_a_schedule_at_the_current_step():
    lr = schedules.cosine_decay(1.0, decay_steps=100)
    cb = bpgpu.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_lr=0.2)
    opt = optimizers.SGD(lr=lr)
    cb.set_optimizer(opt, lambda: 50)  # rate 0.5 at step 50
    cb.on_train_begin(None, bpgpu.History())
    for epoch in (1, 2):
        cb.on_epoch_end(None, epoch, {"loss": 1.0, "val_loss": math.nan})
    assert opt.lr == lr * 0.5 and opt.lr(50) == pytest.approx(0.25)
    cb.on_epoch_end(None, 3, {"loss": 1.0, "val_loss": math.nan})
    assert opt.lr(50) == pytest.approx(0.2)  # min_lr at this step: scaled by 0.8, not 0.5
    cb.on_epoch_end(None, 4, {"loss": 1.0, "val_loss": math.nan})
    assert opt.lr(50) == pytest.approx(0.2) and cb.reductions == [2, 3]


def test_reduce_on_plateau_in_a_fit_watches_the_loss_without_validation_data(backend):
    X, y = blobs()
    cb = bpgpu.ReduceLROnPlateau(factor=0.5, patience=1, min_delta=10.0)  # never improves
    opt = optimizers.Adam(lr=0.01)
    net = bpgpu.MLP([4, 6, 3], backend=backend, dtype="float64", seed=1)
    with pytest.warns(UserWarning, match="no validation data, so val_loss is NaN; watching loss"):
        net.fit(X, y, epochs=4, batch_size=16, optimizer=opt, callbacks=[cb])
    assert cb.reductions == [2, 3, 4] and opt.lr == pytest.approx(0.01 / 8)
    # the same rates as a fit told them by a callback: the reduction reaches the next epoch
    ref = bpgpu.MLP([4, 6, 3], backend="numpy", dtype="float64", seed=1)

    class Rates(bpgpu.Callback):
        per_batch = False

        def on_epoch_end(self, net, epoch, logs):
            if epoch >= 2:
                self.optimizer.lr *= 0.5

    ref.fit(X, y, epochs=4, batch_size=16, optimizer=optimizers.Adam(lr=0.01), callbacks=[Rates()])
    for a, b in zip(net.get_weights(), ref.get_weights()):
        assert rel_norm(a, b) <= 1e-12


def test_reduce_on_plateau_refuses_bad_arguments():
    with pytest.raises(ValueError, match="factor must be a finite number > 0 and < 1"):
        bpgpu.ReduceLROnPlateau(factor=1.0)
    with pytest.raises(ValueError, match="monitor must be one of"):
        bpgpu.ReduceLROnPlateau(monitor="val_acc")
    with pytest.raises(ValueError, match="patience must be a positive integer"):
        bpgpu.ReduceLROnPlateau(patience=0)
    cb = bpgpu.ReduceLROnPlateau(patience=1)
    cb.set_optimizer(optimizers.SGD(lr=lambda c: 0.1), lambda: 0)
    cb.on_train_begin(None, bpgpu.History())
    cb.on_epoch_end(None, 1, {"val_loss": 1.0})
    with pytest.raises(TypeError, match="use a schedule of bpgpu.schedules"):
        cb.on_epoch_end(None, 2, {"val_loss": 1.0})
