"""Bad input, divergence, interruption, device memory: clear errors, nothing changed."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
from conftest import load_backend, rel_norm

import bpgpu
from bpgpu.backends.numpy_backend import NumpyBackend
from bpgpu.backends.numpy_fast import NumpyOps


def blobs(n=96, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    return (rng.normal(size=(n, d)) + 3 * np.eye(k, d)[y]).astype(np.float32), y


def same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b))


BAD_X = [
    (np.full((4, 4), np.nan), ValueError, "NaN or inf"),
    (np.full((4, 4), np.inf), ValueError, "NaN or inf"),
    (np.ones((4, 4, 1)), ValueError, "2-D"),
    (np.ones((4, 5)), ValueError, "5 features, the network expects 4"),
    (np.ones((0, 4)), ValueError, "empty"),
    (np.array([["a", "b", "c", "d"]]), TypeError, "real numbers"),
    (np.ones((4, 4), dtype=complex), TypeError, "real numbers"),
    ([[1.0, 2.0], [1.0]], ValueError, "numeric array"),
    (None, TypeError, "got None for X"),
]


def entries(net, X, y):
    """Every public entry that takes inputs, as (name, call)."""
    return {
        "forward": lambda: net.forward(X),
        "predict": lambda: net.predict(X),
        "classify": lambda: net.classify(X),
        "evaluate": lambda: net.evaluate(X, y),
        "loss": lambda: net.loss(X, y),
        "gradients": lambda: net.gradients(X, y),
        "deltas": lambda: net.deltas(X, y),
        "sgd_step": lambda: net.sgd_step(X, y),
        "fit": lambda: net.fit(X, y, epochs=1),
        "fit(validation_data)": lambda: net.fit(*blobs(), epochs=1, validation_data=(X, y)),
    }


@pytest.mark.parametrize("X,err,match", BAD_X)
@pytest.mark.parametrize("entry", list(entries(None, None, None)))
def test_bad_inputs_are_refused_everywhere_and_change_nothing(entry, X, err, match, backend):
    net = bpgpu.MLP([4, 5, 3], backend=backend)
    before = net.get_weights()
    y = np.zeros(len(X) if hasattr(X, "__len__") else 1, dtype=np.int64)
    with pytest.raises(err, match=match):
        entries(net, X, y)[entry]()
    assert same(net.get_weights(), before)


BAD_Y = [
    (np.array([0, 1, 2]), "4 samples but the targets have 3"),
    (np.array([0, 1, 3, 1]), r"labels must lie in 0..2"),
    (np.array([0, -1, 2, 1]), r"labels must lie in 0..2"),
    (np.array([0.0, 1.5, 2.0, 1.0]), "whole numbers 0..2; these float64 targets hold other"),
    (np.ones((4, 5)), r"expected \(4, 3\)"),
    (np.array([[0.0, np.nan, 1.0]] * 4), "NaN or inf"),
    # text labels: before any fit the network has no classes to map them through; a fit
    # takes them from the labels, and 4 of them do not fit 3 outputs
    (np.array(["a", "b", "c", "d"]), r"no classes yet|4 classes .* for a network of 3 outputs"),
    (np.array([[1.0, 1.0, 0.0]] * 4), "row 0 sums to 2"),  # Y - T needs rows summing to 1
    (np.array([[1.5, -0.5, 0.0]] * 4), ">= 0"),
]


@pytest.mark.parametrize("y,match", BAD_Y)
@pytest.mark.parametrize("entry", ["evaluate", "loss", "gradients", "deltas", "sgd_step", "fit"])
def test_bad_targets_are_refused_and_change_nothing(entry, y, match):
    net = bpgpu.MLP([4, 5, 3], backend="numpy")
    before = net.get_weights()
    with pytest.raises((ValueError, TypeError), match=match):
        entries(net, np.ones((4, 4)), y)[entry]()
    assert same(net.get_weights(), before)
    assert net.classes is None


def test_divergence_names_epoch_and_batch_and_restores_the_last_finite_weights():
    X, y = blobs()
    X[40:48] = 3e36  # batch 3 (of 6, batch size 16, no shuffling): huge but finite loss,
    # and an update that makes batch 4's loss NaN
    kw = dict(batch_size=16, shuffle=False, lr=0.05)
    net = bpgpu.MLP([4, 6, 3], hidden="identity", backend="numpy", dtype="float32")
    twin = net.to("numpy")
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError) as info:
        net.fit(X, y, epochs=2, **kw)
    msg = str(info.value)
    assert "epoch 1, batch 4 of 6" in msg and "that batch 3 of epoch 1 started from" in msg
    assert "learning rate" in msg
    twin.fit(X[:32], y[:32], epochs=1, **kw)  # the weights batch 3 started from
    assert same(net.get_weights(), twin.get_weights())


@pytest.mark.parametrize("name", ["numpy", "array_api_strict"])
def test_a_diverging_fit_says_so_once_without_numpys_warnings(name):
    """NumPy's overflow warnings before fit's own error were noise (torch, JAX and CuPy
    print none); a NumPy error mode the user chose is kept, and the mode is put back."""
    load_backend(name)
    X, y = blobs()
    X[40:48] = 3e36
    kw = dict(epochs=2, batch_size=16, shuffle=False, lr=0.05)
    net = bpgpu.MLP([4, 6, 3], hidden="identity", backend=name, dtype="float32")
    before = np.geterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test, but bpgpu's own on
        warnings.filterwarnings("ignore", "the inputs are far from unit scale")  # 3e36
        with pytest.raises(FloatingPointError, match="epoch 1, batch 4 of 6"):
            net.fit(X, y, **kw)
    assert np.geterr() == before
    net = bpgpu.MLP([4, 6, 3], hidden="identity", backend=name, dtype="float32")
    with np.errstate(over="raise"), pytest.raises(FloatingPointError, match="overflow"):
        net.fit(X, y, **kw)  # NumPy's own error, as the user asked


def test_an_update_that_overflows_with_a_finite_loss_is_caught_in_its_epoch():
    """The last batch of an epoch: its loss is finite, its update is not. The weights it
    started from come back, not the non-finite ones the next epoch would start from."""
    net = bpgpu.MLP([1, 1], hidden=[], output="identity", cost="quadratic", backend="numpy")
    net.set_weights([np.array([[1e-38]]), np.array([0.0])])
    X, y = np.array([[1.0], [3e38]]), np.array([0.0, 0.0])  # x * D overflows float32
    kw = dict(batch_size=1, lr=1.0, shuffle=False)
    twin = net.to("numpy")
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError) as info:
        net.fit(X, y, epochs=3, **kw)
    msg = str(info.value)
    assert "in the update of batch 2 of 2 in epoch 2 (its loss was finite)" in msg
    twin.fit(X, y, epochs=1, **kw)
    twin.fit(X[:1], y[:1], epochs=1, **kw)  # epoch 2 up to the batch that overflowed
    assert all(np.all(np.isfinite(w)) for w in net.get_weights())
    assert same(net.get_weights(), twin.get_weights())


def test_anomaly_mode_names_the_first_layer():
    X, y = blobs()
    X[40:48] = 3e38
    net = bpgpu.MLP([4, 6, 3], hidden="identity", backend="numpy", dtype="float32")
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError) as info:
        net.fit(X, y, epochs=1, batch_size=16, shuffle=False, detect_anomaly=True)
    assert "epoch 1, batch 3" in str(info.value)
    assert "X^1 of layer 1 (identity)" in str(info.value)


class InterruptAt(bpgpu.Callback):
    """Sends SIGINT to this process after a given batch of a given epoch (n times)."""

    def __init__(self, epoch, batch, times=1):
        self.epoch, self.batch, self.times, self.current = epoch, batch, times, 1

    def on_epoch_end(self, net, epoch, logs):
        self.current = epoch + 1

    def on_batch_end(self, net, batch):
        if self.current == self.epoch and batch == self.batch:
            for _ in range(self.times):
                signal.raise_signal(signal.SIGINT)


def test_ctrl_c_stops_after_the_batch_and_resume_is_exact(tmp_path):
    X, y = blobs()
    kw = dict(batch_size=16, optimizer="adam", validation_split=0.25, seed=3)
    full = bpgpu.MLP([4, 6, 3], backend="numpy", dtype="float64")
    h_full = full.fit(X, y, epochs=4, **kw)

    net = bpgpu.MLP([4, 6, 3], backend="numpy", dtype="float64")
    ckpt = tmp_path / "c.npz"
    h = net.fit(X, y, epochs=4, checkpoint=ckpt, callbacks=[InterruptAt(2, 1)], **kw)
    assert h.interrupted and h.epoch == [1]
    assert all(np.all(np.isfinite(w)) for w in net.get_weights())
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored

    again = bpgpu.MLP([4, 6, 3], backend="numpy", dtype="float64", seed=9)
    h2 = again.fit(X, y, epochs=4, resume=ckpt)
    assert same(again.get_weights(), full.get_weights())
    assert h2.loss == h_full.loss and h2.val_loss == h_full.val_loss and not h2.interrupted


def test_resume_of_a_fit_without_train_metrics_is_exact(tmp_path):
    X, y = blobs()
    kw = dict(batch_size=16, optimizer="momentum", seed=3)
    full = bpgpu.MLP([4, 6, 3], backend="numpy", dtype="float64")
    h_full = full.fit(X, y, epochs=3, **kw)
    net = bpgpu.MLP([4, 6, 3], backend="numpy", dtype="float64")
    ckpt = tmp_path / "c.npz"
    net.fit(X, y, 3, checkpoint=ckpt, callbacks=[InterruptAt(2, 1)], train_metrics=False, **kw)
    again = bpgpu.MLP([4, 6, 3], backend="numpy", dtype="float64")
    h2 = again.fit(X, y, epochs=3, resume=ckpt)  # with metrics again
    assert same(again.get_weights(), full.get_weights())
    # epoch 1 ran without metrics, epoch 2 only partly with them: unknown; epoch 3 known
    assert math.isnan(h2.loss[0]) and math.isnan(h2.loss[1]) and math.isnan(h2.accuracy[1])
    assert h2.loss[2] == h_full.loss[2] and h2.accuracy[2] == h_full.accuracy[2]


def test_a_process_that_ignores_ctrl_c_keeps_ignoring_it():
    """A background job of a script starts with SIGINT ignored: fit leaves it so."""
    X, y = blobs()
    kw = dict(epochs=3, batch_size=16, seed=1)
    plain = bpgpu.MLP([4, 6, 3], backend="numpy", dtype="float64")
    plain.fit(X, y, **kw)
    net = bpgpu.MLP([4, 6, 3], backend="numpy", dtype="float64")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the fixture puts Python's back
    h = net.fit(X, y, callbacks=[InterruptAt(1, 0, times=2)], **kw)
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    assert not h.interrupted and h.epoch == [1, 2, 3]
    for a, b in zip(net.get_weights(), plain.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_second_ctrl_c_aborts_at_once():
    X, y = blobs()
    net = bpgpu.MLP([4, 6, 3], backend="numpy")
    with pytest.raises(KeyboardInterrupt):
        net.fit(X, y, epochs=3, batch_size=16, callbacks=[InterruptAt(1, 0, times=2)])


def test_bpgpu_train_saves_a_checkpoint_on_ctrl_c(tmp_path):
    args = ["train", "--epochs", "100000", "--no-plot", "-o", str(tmp_path / "m.npz")]
    # `bpgpu ...` as from a terminal: a runner started in the background hands its
    # children SIGINT ignored, and fit (rightly) keeps ignoring it then
    run = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        f"from bpgpu.cli import main; sys.exit(main({args!r}))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", run],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "BPGPU_BACKEND": "numpy"},
    )
    for line in proc.stdout:
        if line.startswith("epoch"):
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted after" in out and "--resume" in out
    resumed = bpgpu.load(tmp_path / "m.ckpt.npz")
    assert resumed.sizes == [64, 256, 10]


SAVER = """
import sys, numpy as np, bpgpu
net = bpgpu.MLP([256, 512, 512, 10], backend="numpy", seed=0)
w0 = net.get_weights(); w1 = [w + 1 for w in w0]
net.save(sys.argv[1]); print("ready", flush=True)
i = 0
while True:
    net.set_weights(w1 if i % 2 else w0); net.save(sys.argv[1]); i += 1
"""


def test_sigkill_during_save_never_leaves_an_unreadable_file(tmp_path):
    target = tmp_path / "m.npz"
    ref = bpgpu.MLP([256, 512, 512, 10], backend="numpy", seed=0).get_weights()
    rng = np.random.default_rng(0)
    for _ in range(8):
        proc = subprocess.Popen(
            [sys.executable, "-c", SAVER, str(target)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.3))
        proc.kill()
        proc.wait()
        w = bpgpu.load(target).get_weights()  # old or new, never half
        assert same(w, ref) or same(w, [r + 1 for r in ref])


class FakeOOM(Exception):
    pass


class OutOfMemoryOps(NumpyOps):
    def bias_act(self, *args):
        raise FakeOOM("Out of memory allocating 1,073,741,824 bytes")


class TightMemory(NumpyBackend):
    """NumPy whose fused forward 'runs out of memory', translated like CuPy's."""

    def __init__(self):
        super().__init__()
        self.name = "tight"
        self._ops = OutOfMemoryOps(self.xp)

    def translate(self, error):
        if isinstance(error, FakeOOM):
            return bpgpu.DeviceMemoryError(f"out of memory: {error}. Lower batch_size")
        return None


def test_out_of_device_memory_is_a_clear_error():
    X, y = blobs()
    net = bpgpu.MLP([4, 6, 3], backend=TightMemory())
    with pytest.raises(bpgpu.DeviceMemoryError, match="1,073,741,824 bytes.*batch_size"):
        net.fit(X, y, epochs=1)


@pytest.mark.gpu
def test_cupy_out_of_memory_names_bytes_and_batch_size():
    """A real CuPy out-of-memory error inside fit becomes DeviceMemoryError. The network
    is built first (its 64 MiB first layer must fit); only then is the pool capped a
    little above what it holds, so that moving the 128 MiB of data is what fails."""
    from conftest import load_backend

    cp = load_backend("cupy")
    pool = cp.cupy.get_default_memory_pool()
    old = pool.get_limit()
    net = bpgpu.MLP([4096, 4096, 10], backend=cp)
    X = np.ones((8192, 4096), np.float32)
    try:
        with cp.device:
            pool.free_all_blocks()
            pool.set_limit(size=pool.total_bytes() + (16 << 20))
        with pytest.raises(bpgpu.DeviceMemoryError, match="bytes.*batch_size"):
            net.fit(X, np.zeros(8192, np.int64), epochs=1, batch_size=8192)
    finally:
        with cp.device:
            pool.set_limit(size=old)


def test_a_snapshot_restores_every_parameter_and_optimizer_slot_in_its_place(backend):
    """``snapshot`` copies the parameters, each optimizer slot and a device step count
    in one call (one program on JAX); ``restore`` puts each back where it came from,
    however many steps ran in between, and leaves the snapshot usable again."""
    from bpgpu import optimizers
    from bpgpu.recovery import restore, snapshot

    net = bpgpu.MLP([3, 4, 2], backend=backend, dtype="float64", seed=0)
    model, opt = net.model, optimizers.get("adam", lr=0.01)
    rng = np.random.default_rng(0)
    X = backend.asarray(rng.normal(size=(8, 3)))
    T = backend.asarray(np.eye(2)[rng.integers(0, 2, 8)])
    host = backend.to_numpy

    def steps(state, n):
        for _ in range(n):
            grads = net.gradients(X, T)
            updates, state = opt.update(grads, state, model.params)
            model.params = [p + u for p, u in zip(model.params, updates)]
        return state

    state = steps(opt.init(model.params), 2)
    state["t"] = backend.asarray(np.asarray(state["t"]))  # as a compiled step leaves it
    want = [host(p) for p in model.params], {k: [host(a) for a in state[k]] for k in ("m", "v")}
    saved = snapshot(model, state)
    for _ in range(2):
        steps(dict(state, t=int(host(state["t"]))), 3)  # params, m and v all move on
        back = restore(model, saved)
        assert all(np.array_equal(host(p), w) for p, w in zip(model.params, want[0]))
        for k in ("m", "v"):
            assert all(np.array_equal(host(a), w) for a, w in zip(back[k], want[1][k])), k
        assert int(host(back["t"])) == 2


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov"])
def test_a_fit_that_diverges_in_a_later_epoch_restores_the_same_weights_on_every_backend(
    backend, optimizer
):
    """Divergence in epoch 2 or later, on every backend and optimizer: the same message
    and the same restored weights as NumPy's. (JAX's compiled step deletes the buffers
    it is given, the step count among them: the epoch's saved state kept that count by
    reference, and restoring it raised "Array has been deleted" instead.)"""
    X = np.full((40, 1), 10.0)  # plain SGD multiplies w by (1 - lr x^2) = -99 a step:
    y = np.zeros(40)  # the loss overflows after about 77 steps, in epoch 2
    kw = dict(epochs=4, batch_size=1, shuffle=False, lr=1.0, optimizer=optimizer)
    start = [np.array([[1.0]]), np.array([0.0])]
    got = {}
    for name in ("numpy", backend.name):
        net = bpgpu.MLP(
            [1, 1], hidden=[], output="identity", cost="quadratic", backend=name, dtype="float64"
        )
        net.set_weights(start)
        with np.errstate(all="ignore"), pytest.raises(FloatingPointError) as info:
            net.fit(X, y, **kw)
        got[name] = str(info.value), net.get_weights()
    msg, ref = got["numpy"]
    assert "epoch 1," not in msg and "epoch 1 " not in msg, msg  # a later epoch
    assert got[backend.name][0] == msg
    assert all(np.all(np.isfinite(w)) for w in got[backend.name][1])
    assert all(rel_norm(a, b) <= 1e-12 for a, b in zip(got[backend.name][1], ref))
