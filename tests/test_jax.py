"""The JAX backend: the core's own training step compiled into one XLA program."""

from __future__ import annotations

import collections
import contextlib

import numpy as np
import pytest
from conftest import load_backend, rel_norm

import bpgpu
from bpgpu import core


@pytest.fixture(autouse=True)
def fresh_programs(monkeypatch):
    """Each test starts with no compiled program, as a new process does: programs are
    shared by every network of one structure, so a test before this one may have
    compiled this one's already."""
    from bpgpu import programs

    monkeypatch.setattr(programs, "PROGRAMS", collections.OrderedDict())


def training_programs() -> list[str]:
    """The kinds of training program compiled so far ("step", "epoch", "parallel")."""
    from bpgpu import programs

    return [k[0] for k in programs.PROGRAMS if k[0] != "program"]


def blobs(n=200):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=n)
    return rng.normal(size=(n, 5)) + y[:, None], y


@pytest.mark.parametrize("opt", ["sgd", "momentum", "nesterov", "adam"])
def test_the_compiled_step_trains_what_numpy_trains(opt, monkeypatch):
    """The step's Python runs twice in three epochs: traced once inside the epoch
    program (the full batches, one ``lax.scan``) and once for the shorter last batch;
    float64 equal to NumPy's eager step to rounding."""
    be = load_backend("jax")
    traced = []
    real = core.train_step
    monkeypatch.setattr(
        core, "train_step", lambda *a, **k: (traced.append(a[4].shape), real(*a, **k))[1]
    )
    X, y = blobs()
    ref = bpgpu.MLP([5, 9, 3], hidden="prelu", backend="numpy", dtype="float64", seed=2)
    net = ref.to(be)
    kw = dict(epochs=3, batch_size=16, optimizer=opt, weight_decay=0.01, seed=1)
    h_ref = ref.fit(X, y, **kw)
    traced.clear()  # NumPy runs the step's Python every step; JAX only to trace it
    h = net.fit(X, y, **kw)
    assert sorted(traced) == [(8, 5), (16, 5)]  # 200 rows = 12 x 16 + 8
    for a, b in zip(net.get_weights(), ref.get_weights()):
        assert rel_norm(a, b) <= 1e-12
    np.testing.assert_allclose(h.loss, h_ref.loss, rtol=1e-12)
    assert h.compile_time > 0 and h_ref.compile_time == 0


class EveryBatch(bpgpu.Callback):
    def __init__(self):
        self.seen = 0

    def on_batch_end(self, *args, **kwargs):
        self.seen += 1


@pytest.mark.parametrize("shuffle", [True, False])
def test_the_compiled_epoch_equals_the_step_by_step_fit(shuffle):
    """A callback that wants every batch turns the one-program epoch off; both ways give
    the same weights and history to rounding (XLA fuses the scanned step differently from
    the single step: last bits only); also when the batches divide the rows (no eager last
    batch) and unshuffled."""
    be = load_backend("jax")
    X, y = blobs(192)
    a = bpgpu.MLP([5, 9, 3], hidden="prelu", backend=be, dtype="float64", seed=2)
    b = a.to(be)
    kw = dict(epochs=3, batch_size=16, optimizer="adam", seed=1, shuffle=shuffle)
    kw.update(validation_split=0.25)
    ha = a.fit(X, y, **kw)
    cb = EveryBatch()
    hb = b.fit(X, y, callbacks=[cb], **kw)
    assert cb.seen == 3 * 9  # 144 training rows, 9 batches, each seen by the callback
    for p, q in zip(a.get_weights(), b.get_weights()):
        assert rel_norm(p, q) <= 1e-13
    np.testing.assert_allclose(ha.loss, hb.loss, rtol=1e-13)
    np.testing.assert_allclose(ha.val_loss, hb.val_loss, rtol=1e-13)
    assert ha.accuracy == hb.accuracy


def test_a_callback_can_keep_the_compiled_epoch():
    """``per_batch = False``: the full batches stay one program and the callback hears only
    the batches run step by step (here the shorter last one)."""
    be = load_backend("jax")
    X, y = blobs()  # 200 rows: 12 full batches of 16 and one of 8
    cb = EveryBatch()
    cb.per_batch = False
    bpgpu.MLP([5, 9, 3], backend=be).fit(X, y, epochs=2, batch_size=16, callbacks=[cb])
    assert cb.seen == 2


@pytest.mark.parametrize("per_batch", [False, True])
@pytest.mark.parametrize("opt", ["sgd", "momentum", "nesterov", "adam"])
def test_float32_weights_stay_float32(opt, per_batch):
    """The traced step count (Adam's bias correction) is int64 under x64: its factors must
    not promote float32 weights to float64, in the compiled epoch or step by step; the
    result equals NumPy's float32 fit to float32 rounding."""
    be = load_backend("jax")
    X, y = blobs()
    ref = bpgpu.MLP([5, 9, 3], backend="numpy", dtype="float32", seed=2)
    net = ref.to(be)
    kw = dict(epochs=2, batch_size=16, optimizer=opt, weight_decay=1e-3, seed=1)
    ref.fit(X, y, **kw)
    net.fit(X, y, callbacks=[EveryBatch()] if per_batch else [], **kw)
    assert [str(p.dtype) for p in net.model.params] == ["float32"] * 4
    for a, b in zip(net.get_weights(), ref.get_weights()):
        assert a.dtype == np.float32 and rel_norm(a, b) <= 1e-5


def test_anomaly_mode_and_gradients_run_eagerly():
    be = load_backend("jax")
    X, y = blobs()
    net = bpgpu.MLP([5, 9, 3], backend=be, dtype="float64")
    net.fit(X, y, epochs=1, batch_size=50, detect_anomaly=True)
    assert not training_programs()  # every layer checked between operations: none compiled
    assert bpgpu.gradcheck(net, X[:10], y[:10]) < 1e-6
    assert len(net.deltas(X[:4], y[:4])) == 2


def test_synchronize_waits_for_queued_computations():
    """Every timing stops the clock after ``synchronize()``: on JAX, whose calls return
    before their results exist, it must wait for them."""
    b = load_backend("jax")
    x = b.asarray(np.ones((1500, 1500), np.float32))
    power = b.compile(lambda x: x @ x @ x @ x)
    power(x).block_until_ready()  # compiled: the call below only computes
    y = power(x)
    b.synchronize()
    assert y.is_ready()


def test_float64_needs_and_gets_jax_x64():
    be = load_backend("jax")  # skips without JAX
    assert be.jax.config.jax_enable_x64
    net = bpgpu.MLP([5, 3], backend=be, dtype="float64")
    assert str(net.forward(np.zeros((2, 5))).dtype) == "float64"


def _trained_and_fresh(epochs: int):
    """A float64 network trained uninterrupted with Adam (12 full batches of 16, then one
    of 8, each epoch) and a copy of its starting weights, to be trained otherwise."""
    be = load_backend("jax")
    X, y = blobs()
    kw = dict(batch_size=16, optimizer="adam", seed=4)
    whole = bpgpu.MLP([5, 9, 3], backend=be, dtype="float64", seed=3)
    fresh = whole.to(be)
    whole.fit(X, y, epochs=epochs, **kw)
    return be, X, y, kw, whole, fresh


def test_ctrl_c_in_a_compiled_epoch_stops_after_its_full_batches(tmp_path, monkeypatch):
    """The SIGINT arrives while the epoch's program runs: the program finishes, the fit
    stops before the eager last batch with that position checkpointed, and the resumed
    fit ends where an uninterrupted one does."""
    import signal

    from bpgpu import model as model_module

    be, X, y, kw, whole, first = _trained_and_fresh(epochs=3)
    real, calls = model_module.Model.epoch, []

    def epoch(self, *args, **kwargs):
        out = real(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 2:
            signal.raise_signal(signal.SIGINT)
        return out

    monkeypatch.setattr(model_module.Model, "epoch", epoch)
    ckpt = tmp_path / "c.npz"
    h = first.fit(X, y, epochs=3, checkpoint=ckpt, **kw)
    assert h.interrupted and len(calls) == 2 and h.epoch == [1]
    monkeypatch.setattr(model_module.Model, "epoch", real)
    again = bpgpu.MLP([5, 9, 3], backend=be, dtype="float64", seed=9)
    h2 = again.fit(X, y, epochs=3, resume=ckpt)
    assert h2.epoch == [1, 2, 3]
    for a, b in zip(again.get_weights(), whole.get_weights()):
        assert rel_norm(a, b) <= 1e-12


@contextlib.contextmanager
def training_compiles(caplog):
    """The training programs JAX compiles inside the block, sorted, as its compile log
    names them: ``jit(run)`` (an epoch's full batches), ``jit(step)`` (one batch), and
    data-parallel ``jit(grads)`` and ``jit(update)``."""
    import logging

    import jax

    start = len(caplog.records)
    names: list[str] = []
    with jax.log_compiles(True), caplog.at_level(logging.WARNING):
        yield names
    for r in caplog.records[start:]:
        words = r.getMessage().split()
        programs = ("jit(run)", "jit(step)", "jit(grads)", "jit(update)")
        if words[:1] == ["Compiling"] and words[1] in programs:
            names.append(words[1])
    names.sort()


def test_a_data_parallel_fit_runs_two_compiled_programs_a_step(caplog):
    """Data-parallel on JAX: the gradients (one program per batch shape), their sum over
    the ranks between programs, the update (one program); on one rank the plain fit's
    result (the mpiexec tests compare 2 and 3 ranks)."""
    MPI = pytest.importorskip("mpi4py.MPI")
    be = load_backend("jax")
    X, y = blobs()  # 200 rows: 12 batches of 16 and one of 8
    net = bpgpu.MLP([5, 9, 3], hidden="prelu", backend=be, dtype="float64", seed=2)
    alone = net.to(be)
    kw = dict(epochs=2, batch_size=16, optimizer="adam", seed=1)
    with training_compiles(caplog) as compiled:
        net.fit(X, y, comm=MPI.COMM_SELF, **kw)
    assert compiled == ["jit(grads)", "jit(grads)", "jit(update)"]
    alone.fit(X, y, **kw)
    for a, b in zip(net.get_weights(), alone.get_weights()):
        assert rel_norm(a, b) <= 1e-12


def test_each_program_compiles_once(caplog):
    """The epoch program and the last batch's step compile once for a network and batch
    shape, in the first fit: not again in its later epochs or in the next fit (a step
    count not committed to the device cost every fit a second, uncounted compile)."""
    be = load_backend("jax")
    X, y = blobs()
    net = bpgpu.MLP([5, 9, 3], backend=be, seed=2)
    with training_compiles(caplog) as compiled:
        h1 = net.fit(X, y, epochs=3, batch_size=16, optimizer="momentum")
        h2 = net.fit(X, y, epochs=2, batch_size=16, optimizer="momentum")
    assert compiled == ["jit(run)", "jit(step)"]
    assert h1.compile_time > 0 and h2.compile_time == 0


def test_large_batches_are_gathered_inside_the_loop(monkeypatch):
    """Batches larger than ``UPFRONT_BATCH_BYTES`` are gathered one by one inside the
    program (no copy of the whole span): the whole epoch is then one program, with the
    weights of the eager NumPy fit."""
    from bpgpu import compiled_training
    from bpgpu import model as model_module

    be = load_backend("jax")
    X, y = blobs()
    ref = bpgpu.MLP([5, 9, 3], hidden="prelu", backend="numpy", dtype="float64", seed=2)
    net = ref.to(be)
    kw = dict(epochs=2, batch_size=16, optimizer="nesterov", seed=1)
    ref.fit(X, y, **kw)
    monkeypatch.setattr(compiled_training, "UPFRONT_BATCH_BYTES", 0)
    real, seen = model_module.Model.epoch, []

    def epoch(self, X, T, L, idx, batch_size, opt, state, loss, upfront, W=None):
        seen.append((idx.shape[0], upfront))
        return real(self, X, T, L, idx, batch_size, opt, state, loss, upfront, W)

    monkeypatch.setattr(model_module.Model, "epoch", epoch)
    net.fit(X, y, **kw)
    assert seen == [(192, False)] * 2
    for a, b in zip(net.get_weights(), ref.get_weights()):
        assert rel_norm(a, b) <= 1e-12


@pytest.mark.parametrize("stop", [False, True])
def test_a_large_epoch_runs_in_spans_of_bounded_gathers(tmp_path, monkeypatch, stop):
    """A program gathers its batches' rows up front, so where the shuffled training set
    would take more than ``GATHER_BYTES`` the epoch's full batches run as several
    programs (the last span shorter): the weights of the one-program epoch, to rounding.
    Ctrl-C stops after the span it arrives in, and the resumed fit ends where the
    uninterrupted one does."""
    import signal

    from bpgpu import compiled_training
    from bpgpu import model as model_module

    be, X, y, kw, whole, spans = _trained_and_fresh(epochs=2)
    row = 5 * 8 + 3 * 8 + 8  # float64 inputs and one-hot targets, and a label
    monkeypatch.setattr(compiled_training, "GATHER_BYTES", 5 * 16 * row)  # 5 batches a span
    real, sizes = model_module.Model.epoch, []

    def epoch(self, X, T, L, idx, *args, **kwargs):
        out = real(self, X, T, L, idx, *args, **kwargs)
        sizes.append(idx.shape[0])
        if stop and len(sizes) == 2:
            signal.raise_signal(signal.SIGINT)
        return out

    monkeypatch.setattr(model_module.Model, "epoch", epoch)
    ckpt = tmp_path / "c.npz"
    h = spans.fit(X, y, epochs=2, checkpoint=ckpt, **kw)
    if stop:
        assert h.interrupted and sizes == [80, 80]
        spans = bpgpu.MLP([5, 9, 3], backend=be, dtype="float64", seed=9)
        spans.fit(X, y, epochs=2, resume=ckpt)
        assert sizes[2:] == [32, 80, 80, 32]  # the rest of epoch 1, then all of epoch 2
    else:
        assert sizes == [80, 80, 32] * 2
    for a, b in zip(spans.get_weights(), whole.get_weights()):
        assert rel_norm(a, b) <= 1e-12


class Halve(bpgpu.Callback):
    """A learning-rate schedule: the optimizer's ``lr`` halved after every epoch."""

    per_batch = False

    def __init__(self, opt):
        self.opt = opt

    def on_epoch_end(self, net, epoch, logs):
        self.opt.lr /= 2


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_a_learning_rate_schedule_does_not_compile_again(name, caplog):
    """A built-in optimizer's learning rate is an argument of the compiled programs, not
    part of them: a schedule that changes it every epoch trains what NumPy trains with
    the same schedule, compiling each program once."""
    be = load_backend("jax")
    X, y = blobs()
    ref = bpgpu.MLP([5, 9, 3], backend="numpy", dtype="float64", seed=2)
    net = ref.to(be)
    fits = []
    with training_compiles(caplog) as compiled:
        for model in (ref, net):
            opt = bpgpu.optimizers.get(name, lr=0.2)
            fits.append(
                model.fit(X, y, epochs=4, batch_size=16, optimizer=opt, callbacks=[Halve(opt)])
            )
            assert opt.lr == 0.2 / 16
    assert compiled == ["jit(run)", "jit(step)"]
    for a, b in zip(net.get_weights(), ref.get_weights()):
        assert rel_norm(a, b) <= 1e-12
    np.testing.assert_allclose(fits[1].loss, fits[0].loss, rtol=1e-12)


def test_the_data_checks_run_as_one_program_each(caplog):
    """Checking and standardising X, and turning labels into one-hot rows, ran ~16
    eager operations on JAX, each compiled at its first call per shape (a third of a
    first fit's time on the digits); now one program each, with the same values and the
    same refusals as the eager path."""
    import logging

    be = load_backend("jax")  # skips without JAX, before JAX is imported
    import jax

    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(37, 5)) * 3 + 1, rng.integers(0, 3, size=37)
    net = bpgpu.MLP([5, 9, 3], backend=be, seed=2)
    net.set_input_scaling(X.mean(axis=0), X.std(axis=0))
    start, names = len(caplog.records), []
    with jax.log_compiles(True), caplog.at_level(logging.WARNING):
        Xd = net.model.input(X)
        Td = net.model.targets(y, 37)
    for r in caplog.records[start:]:
        words = r.getMessage().split()
        if words[:1] == ["Compiling"]:
            names.append(words[1])
    assert sorted(names) == ["jit(labels)", "jit(prepare)"], names
    ref = net.to("numpy")
    np.testing.assert_array_equal(bpgpu.to_numpy(Td), bpgpu.to_numpy(ref.model.targets(y, 37)))
    assert rel_norm(Xd, ref.model.input(X)) <= 1e-6
    for bad, match in [
        (np.where(np.arange(5) == 2, np.nan, X), "X contains NaN or inf"),
        (np.where(np.arange(5) == 2, 1e39, X), "beyond float32's range"),
    ]:
        with pytest.raises(ValueError, match=match):
            net.model.input(bad)
    with pytest.raises(ValueError, match="got labels from 0 to 3"):
        net.model.targets(np.where(np.arange(37) == 5, 3, y), 37)


def test_networks_of_one_structure_share_their_compiled_programs(caplog, monkeypatch):
    """A second network of the same layers and cost (another seed, a clone in a grid
    search, the next fold of a cross-validation) runs the programs the first compiled:
    nothing compiles again, and it trains its own weights (they are the programs'
    arguments). Another structure compiles its own. The programs do not keep a network
    alive, and only the most recently used ``LIMIT`` are kept."""
    import gc
    import weakref

    from bpgpu import programs

    be = load_backend("jax")
    X, y = blobs()
    kw = dict(epochs=2, batch_size=16, optimizer="adam", seed=3)
    nets = [bpgpu.MLP([5, 9, 3], backend=be, dtype="float64", seed=s) for s in (1, 2)]
    twins = [net.to("numpy") for net in nets]
    with training_compiles(caplog) as compiled:
        h1, h2 = (net.fit(X, y, **kw) for net in nets)
    assert compiled == ["jit(run)", "jit(step)"]
    assert h1.compile_time > 0 and h2.compile_time == 0
    for net, twin in zip(nets, twins):
        twin.fit(X, y, **kw)
        assert all(rel_norm(a, b) <= 1e-12 for a, b in zip(net.get_weights(), twin.get_weights()))
    with training_compiles(caplog) as compiled:
        other = bpgpu.MLP([5, 9, 3], hidden="tanh", backend=be, dtype="float64")
        other.fit(X, y, **kw)
        other.evaluate(X, y)
    assert compiled == ["jit(run)", "jit(step)"]
    for momentum, decay in ((0.5, 0.0), (0.9, 0.01)):  # other settings: other programs
        net = bpgpu.MLP([5, 9, 3], backend=be, dtype="float64", seed=1)
        twin = net.to("numpy")
        for n in (net, twin):
            opt = bpgpu.optimizers.Momentum(lr=0.1, momentum=momentum, weight_decay=decay)
            n.fit(X, y, epochs=2, batch_size=16, seed=3, optimizer=opt)
        assert all(rel_norm(a, b) <= 1e-12 for a, b in zip(net.get_weights(), twin.get_weights()))
    gone = weakref.ref(nets[0].model)
    del nets, h1, h2
    gc.collect()
    assert gone() is None  # no program holds the network
    monkeypatch.setattr(programs, "LIMIT", 3)
    bpgpu.MLP([5, 4, 3], backend=be).fit(X, y, epochs=1, batch_size=16)
    assert len(programs.PROGRAMS) == 3


def test_the_validation_split_and_the_labels_are_one_program_each(caplog):
    """The split of the data into training and validation rows (four gathers) and the
    class labels were eager operations, each compiled at its first call per shape;
    each is one program now, with the same rows as on NumPy."""
    import logging

    be = load_backend("jax")  # skips without JAX, before JAX is imported
    import jax

    X, y = blobs()  # 200 rows; 160 train in 10 batches of 16: no eager last batch
    kw = dict(epochs=2, batch_size=16, validation_split=0.2, seed=4)
    net = bpgpu.MLP([5, 9, 3], backend=be, dtype="float64", seed=2)
    ref = net.to("numpy")
    start, names = len(caplog.records), []
    with jax.log_compiles(True), caplog.at_level(logging.WARNING):
        h = net.fit(X, y, **kw)
    for r in caplog.records[start:]:
        words = r.getMessage().split()
        if words[:1] == ["Compiling"]:
            names.append(words[1])
    assert names.count("jit(split)") == 1 and "jit(_take)" not in names, names
    assert "jit(_argmax)" not in names, names
    h_ref = ref.fit(X, y, **kw)
    np.testing.assert_allclose(h.val_loss, h_ref.val_loss, rtol=1e-12)
    assert h.val_accuracy == h_ref.val_accuracy and h.accuracy == h_ref.accuracy


def _precision_recorder(seen: list):
    """tanh as an activation of the user's own that records, each time it is traced or
    run, the matrix-product precision JAX is set to at that moment."""
    import dataclasses

    from bpgpu import activations

    def f(xp, X, a=None):
        import jax

        seen.append(jax.config.jax_default_matmul_precision)
        return xp.tanh(X)

    plain = dict(f=f, vjp_fn=None, c_f=None, c_vjp=None)
    return dataclasses.replace(activations.get("tanh"), **plain)


def test_float32_products_run_at_full_precision_in_every_method():
    """JAX's default lets a GPU multiply float32 in TF32 (bpgpu check measured 1e-2 on
    an H200 against the 1e-5 every backend meets): every method of a network runs with
    float32 products, traced into its compiled programs, and JAX's setting outside
    bpgpu's calls is left as it was."""
    be = load_backend("jax")
    jax = be.jax
    seen: list = []
    X, y = blobs(64)
    net = bpgpu.MLP([5, 8, 3], hidden=_precision_recorder(seen), backend=be, dtype="float32")
    net.fit(X, y, epochs=2, batch_size=16)  # the compiled epoch

    class EveryBatch(bpgpu.Callback):
        def on_batch_end(self, net, batch):
            return False

    net.fit(X, y, epochs=1, batch_size=16, callbacks=[EveryBatch()])  # step by step
    assert {"step", "epoch"} <= set(training_programs())
    net.predict(X)
    net.gradients(X[:8], y[:8])
    net.deltas(X[:8], y[:8])
    net.evaluate(X, y)
    assert seen and set(seen) == {"float32"}, set(seen)
    assert jax.config.jax_default_matmul_precision is None  # not left set in the process
    with be.context():  # "float32" is HIGHEST in the program XLA gets
        a = be.asarray(np.ones((2, 2), np.float32))
        assert "HIGHEST" in jax.jit(lambda p, q: p @ q).lower(a, a).as_text()


def test_a_precision_the_user_chose_for_jax_is_kept():
    """TF32 stays off unless asked for: a user who asks (JAX's own setting, in a context
    or process-wide) gets it in bpgpu's programs too."""
    be = load_backend("jax")
    jax = be.jax
    seen: list = []
    X, y = blobs(32)
    net = bpgpu.MLP([5, 8, 3], hidden=_precision_recorder(seen), backend=be, dtype="float32")
    with jax.default_matmul_precision("tensorfloat32"):
        net.fit(X, y, epochs=1, batch_size=16)
        net.predict(X)
    assert seen and set(seen) == {"tensorfloat32"}, set(seen)


def test_bpgpu_backends_names_a_jax_gpu_by_its_model(monkeypatch):
    """The first GPU run listed ``jax:cuda ... cuda:0`` beside CuPy's and torch's
    "NVIDIA H200": a GPU is named by its model, and its index kept."""
    be = load_backend("jax")
    assert be.info()["device"] == str(be.device)  # the CPU: as JAX names it

    class Gpu:
        device_kind = "NVIDIA H200"

        def __str__(self):
            return "cuda:0"

    monkeypatch.setattr(be, "device", Gpu())
    monkeypatch.setattr(be, "where", ("cuda", 0))
    assert be.info()["device"] == "NVIDIA H200 (cuda:0)"


class _Watch(bpgpu.Callback):
    """Stops after epoch ``at`` (None: never); ``sees_network`` as given."""

    def __init__(self, sees_network: bool, at=None):
        self.sees_network, self.at = sees_network, at

    def on_epoch_end(self, net, epoch, logs):
        return epoch == self.at


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_the_next_epoch_runs_while_this_ones_numbers_are_read(opt, monkeypatch):
    """On JAX the fit dispatches epoch e + 1 before it reads epoch e's loss, accuracy and
    finite check (the GPU waited about 4 ms an epoch for them, NOTES 23). The order is
    seen by wrapping the two halves of an epoch, and the fit is the one that reads first,
    bit for bit: weights and history. A callback that looks at the network at an
    epoch's end keeps the plain order."""
    from bpgpu.trainer import Trainer

    load_backend("jax")
    X, y = blobs()
    calls = []
    for name in ("epoch", "end_epoch"):
        real = getattr(Trainer, name)

        def spy(self, *a, _real=real, _name=name):
            calls.append(
                ("run" if _name == "epoch" else "end", a[0] if _name == "epoch" else a[0].index)
            )
            return _real(self, *a)

        monkeypatch.setattr(Trainer, name, spy)
    kw = dict(epochs=4, batch_size=32, optimizer=opt, lr=0.05, seed=1)
    got = {}
    for sees in (False, True):
        calls.clear()
        net = bpgpu.MLP([5, 8, 3], backend="jax", dtype="float64", seed=0)
        h = net.fit(X, y, callbacks=[_Watch(sees)], **kw)
        got[sees] = net.get_weights(), h.loss, h.accuracy, list(calls)
    ahead, plain = got[False], got[True]
    assert ahead[3] == [("run", 0), ("run", 1), ("end", 0), ("run", 2), ("end", 1)] + [
        ("run", 3),
        ("end", 2),
        ("end", 3),
    ]
    assert plain[3] == [(k, e) for e in range(4) for k in ("run", "end")]
    assert all(np.array_equal(a, b) for a, b in zip(ahead[0], plain[0]))
    assert ahead[1:3] == plain[1:3] and all(np.isfinite(ahead[1]))


def test_a_stop_at_an_epochs_end_undoes_the_epoch_already_running():
    """A stop asked for at epoch 2's end, with epoch 3 already dispatched: the weights,
    optimizer state and history are those of a fit that ran two epochs."""
    load_backend("jax")
    X, y = blobs()
    kw = dict(batch_size=32, optimizer="adam", lr=0.05, seed=1)
    nets = {}
    for key, cb in (("ahead", _Watch(False, at=2)), ("plain", _Watch(True, at=2))):
        nets[key] = bpgpu.MLP([5, 8, 3], backend="jax", dtype="float64", seed=0)
        h = nets[key].fit(X, y, epochs=5, callbacks=[cb], **kw)
        assert h.epoch == [1, 2]
    two = bpgpu.MLP([5, 8, 3], backend="jax", dtype="float64", seed=0)
    two.fit(X, y, epochs=2, **kw)
    for key in ("ahead", "plain"):
        assert all(np.array_equal(a, b) for a, b in zip(nets[key].get_weights(), two.get_weights()))


def test_an_error_at_an_epochs_end_leaves_that_epochs_weights():
    """A callback that raises at epoch 2's end, with epoch 3 already dispatched: the
    network holds the weights after epoch 2, as when the epochs ran one by one."""
    load_backend("jax")
    X, y = blobs()
    kw = dict(batch_size=32, optimizer="sgd", lr=0.05, seed=1)

    class Fails(_Watch):
        def on_epoch_end(self, net, epoch, logs):
            if epoch == 2:
                raise RuntimeError("the callback's own error")

    net = bpgpu.MLP([5, 8, 3], backend="jax", dtype="float64", seed=0)
    with pytest.raises(RuntimeError, match="own error"):
        net.fit(X, y, epochs=5, callbacks=[Fails(False)], **kw)
    two = bpgpu.MLP([5, 8, 3], backend="jax", dtype="float64", seed=0)
    two.fit(X, y, epochs=2, **kw)
    assert all(np.array_equal(a, b) for a, b in zip(net.get_weights(), two.get_weights()))
