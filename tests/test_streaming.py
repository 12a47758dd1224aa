"""Data larger than the device: fit streams rows from host memory maps in chunks, with
the in-memory result and bounded memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import bpgpu
from bpgpu import streaming


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=1000)
    X = (rng.normal(size=(1000, 6)) + y[:, None]).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    return X, y, tmp_path


@pytest.mark.parametrize("opt", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("split", [0.0, 0.2])
def test_streaming_equals_the_in_memory_fit(files, opt, split, monkeypatch, backend):
    """Many small chunks (so the prefetch thread works): the same weights and history as
    the fit of the same data in memory, on every backend."""
    monkeypatch.setattr(streaming, "CHUNK_BYTES", 4096)
    X, y, folder = files
    kw = dict(epochs=3, batch_size=32, optimizer=opt, validation_split=split, seed=3)
    a = bpgpu.MLP([6, 8, 3], hidden="prelu", backend=backend, dtype="float64", seed=1)
    b = a.to(backend)
    ha = a.fit(X, y, **kw)
    memmap = np.load(folder / "X.npy", mmap_mode="r")
    hb = b.fit(memmap if split else str(folder / "X.npy"), np.load(folder / "y.npy"), **kw)
    assert ha.accuracy == hb.accuracy
    if backend.compiles:  # in memory the epoch is one XLA program: equal to its last bits
        for p, q in zip(a.get_weights(), b.get_weights()):
            np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(ha.loss, hb.loss, rtol=1e-13)
        np.testing.assert_allclose(ha.val_loss, hb.val_loss, rtol=1e-13)
        return
    for p, q in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(p, q)
    assert ha.loss == hb.loss
    np.testing.assert_array_equal(ha.val_loss, hb.val_loss)


def test_streaming_resumes_and_refuses_other_files(files, tmp_path):
    X, y, folder = files
    path = str(folder / "X.npy")
    full = bpgpu.MLP([6, 8, 3], backend="numpy", dtype="float64")
    full.fit(path, y, epochs=4, batch_size=32, seed=1)
    first = bpgpu.MLP([6, 8, 3], backend="numpy", dtype="float64")
    first.fit(path, y, epochs=2, batch_size=32, seed=1, checkpoint=tmp_path / "c.npz")
    again = bpgpu.MLP([6, 8, 3], backend="numpy", dtype="float64")
    again.fit(path, y, epochs=4, resume=tmp_path / "c.npz")
    for p, q in zip(full.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(p, q)
    other = X.copy()
    other[5, 1] += 1
    np.save(tmp_path / "other.npy", other)
    with pytest.raises(ValueError, match="other data"):
        bpgpu.MLP([6, 8, 3], backend="numpy", dtype="float64").fit(
            str(tmp_path / "other.npy"), y, epochs=4, resume=tmp_path / "c.npz"
        )


def test_streaming_memory_is_bounded_by_the_chunk(tmp_path, monkeypatch):
    """A 48 MiB data set in memory costs its size again on the device (the float64
    copy); streamed in 1 MiB chunks the peak stays a few chunks."""
    monkeypatch.setattr(streaming, "CHUNK_BYTES", 1 << 20)
    rng = np.random.default_rng(1)
    n, d = 50_000, 128
    X = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float64, shape=(n, d))
    for s in range(0, n, 10_000):
        X[s : s + 10_000] = rng.normal(size=(min(10_000, n - s), d))
    X.flush()
    y = rng.integers(0, 4, size=n)
    net = bpgpu.MLP([d, 16, 4], backend="numpy", dtype="float64")
    tracemalloc.start()
    try:
        net.fit(str(tmp_path / "X.npy"), y, epochs=1, batch_size=256, train_metrics=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 12 << 20, peak  # the data are 48.8 MiB
    assert net.evaluate(np.asarray(X[:1000]), y[:1000])["loss"] < 10


@pytest.mark.parametrize(
    "X, match",
    [
        (np.zeros((10, 5), np.float32), "5 features, the network expects 6"),
        (np.full((10, 6), np.nan, np.float32), r"NaN or inf \(first at row 1\)"),
    ],
)
def test_streamed_data_are_checked_before_training(tmp_path, X, match):
    np.save(tmp_path / "bad.npy", X)
    net = bpgpu.MLP([6, 8, 3], backend="numpy")
    before = net.get_weights()
    with pytest.raises(ValueError, match=match):
        net.fit(str(tmp_path / "bad.npy"), np.zeros(10, dtype=int), epochs=1)
    assert all(np.array_equal(a, b) for a, b in zip(net.get_weights(), before))
    with pytest.raises(ValueError, match="not a readable .npy"):
        net.fit(str(tmp_path / "missing.npy"), np.zeros(10, dtype=int), epochs=1)


@pytest.mark.parametrize("cost", ["categorical_cross_entropy", "cross_entropy"])
def test_streamed_chunks_are_not_checked_again_on_the_device(files, monkeypatch, cost):
    """The values were checked on the host before training: the chunks' trip to the
    device reads nothing back (on a GPU each check would wait for the device)."""
    from bpgpu import inputs

    monkeypatch.setattr(streaming, "CHUNK_BYTES", 4096)
    X, y, folder = files
    T = np.eye(3)[y] if cost == "cross_entropy" else y  # per-unit targets: a range check
    np.save(folder / "T.npy", T)
    chunks, reads = [], []
    gather = streaming.StreamBatches._gather

    def chunk(self, perm, k):
        chunks.append(k)
        return gather(self, perm, k)

    monkeypatch.setattr(streaming.StreamBatches, "_gather", chunk)
    for name in ("_finite", "_check_domain", "_check_distributions"):
        real = getattr(inputs, name)

        def spy(*args, _real=real, _name=name):
            if chunks and not (len(args) > 3 and args[3]):  # ``checked`` reads nothing
                reads.append(_name)
            return _real(*args)

        monkeypatch.setattr(inputs, name, spy)
    net = bpgpu.MLP([6, 8, 3], output="sigmoid" if T.ndim == 2 else "softmax", cost=cost)
    net.fit(str(folder / "X.npy"), str(folder / "T.npy"), epochs=2, batch_size=32)
    assert len(set(chunks)) > 3 and reads == []


class _Copies:
    """A stand-in CUDA stream whose copies run late: only when an event recorded after
    them is waited on from the host, as a real asynchronous copy may."""

    def __init__(self, non_blocking=False):
        self.queue, self.done = [], 0

    def record(self):
        return _Event(self, len(self.queue))

    def wait_event(self, event):
        pass  # device-side ordering: nothing the host sees

    def run(self, upto):
        for dst, rows in self.queue[self.done : upto]:
            dst.data[...] = rows
        self.done = max(self.done, upto)


class _Event:
    def __init__(self, stream, upto):
        self.stream, self.upto = stream, upto

    def synchronize(self):
        self.stream.run(self.upto)


class _DeviceArray:
    def __init__(self, shape, dtype):
        self.data = np.full(shape, np.nan, dtype)

    def set(self, rows, stream):
        stream.queue.append((self, rows))


def test_pinned_staging_reuses_a_buffer_only_after_its_copy(monkeypatch):
    """CuPy's streamed rows: chunk k goes through pinned buffer k % 2, refilled only once
    the copy out of it has finished (with late-running copies, a buffer refilled too
    early would hand the device the next chunk's rows)."""
    import types

    from bpgpu.backends.cupy_backend import CupyStaging

    current = _Copies()
    fake = types.SimpleNamespace(
        cuda=types.SimpleNamespace(Stream=_Copies, get_current_stream=lambda: current),
        empty=_DeviceArray,
    )
    monkeypatch.setitem(
        __import__("sys").modules,
        "cupyx",
        types.SimpleNamespace(empty_pinned=lambda shape, dtype: np.empty(shape, dtype)),
    )
    stage = CupyStaging(fake)
    src = np.arange(66.0).reshape(22, 3)
    perm = np.random.default_rng(0).permutation(22)
    chunks = [perm[s : s + 5] for s in range(0, 22, 5)]  # the last one shorter
    out = []
    for k, idx in enumerate(chunks):
        out.append(stage.to_device(stage.fill(src, idx, k)))
    stage.stream.run(len(stage.stream.queue))
    for idx, dev in zip(chunks, out):
        np.testing.assert_array_equal(dev.data, src[idx])
    assert len({id(s[0]) for s in stage.slots}) == 2  # two buffers, reused


def test_predict_classify_and_evaluate_read_large_data_a_chunk_at_a_time(
    tmp_path, monkeypatch, backend
):
    """The memory map (or .npy path) a fit streamed can be scored too: read a chunk of
    rows at a time (never the whole set on the device), with the in-memory results."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(2500, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    net = bpgpu.MLP([3, 16, 2], backend=backend, dtype="float64", seed=3)
    net.set_input_scaling(X.mean(axis=0), X.std(axis=0))
    Y, labels, scores = net.predict(X), net.classify(X), net.evaluate(X, y)
    monkeypatch.setattr(streaming, "CHUNK_BYTES", 16 * 8 * 1024)  # 1,024 rows a chunk
    seen = []
    real = net.model.input
    monkeypatch.setattr(
        net.model, "input", lambda A, *a, **k: (seen.append(len(A)), real(A, *a, **k))[1]
    )
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    for source in (tmp_path / "X.npy", str(tmp_path / "X.npy"), mapped):
        seen.clear()
        got = net.predict(source)
        assert seen == [1024, 1024, 452]
        a, b = bpgpu.to_numpy(got), bpgpu.to_numpy(Y)  # GEMMs of other heights: last bits
        assert a.shape == b.shape and np.linalg.norm(a - b) <= 1e-12 * np.linalg.norm(b)
        assert bpgpu.to_numpy(net.classify(source)).tolist() == bpgpu.to_numpy(labels).tolist()
    got = net.evaluate(tmp_path / "X.npy", tmp_path / "y.npy")
    assert got["accuracy"] == scores["accuracy"]
    assert abs(got["loss"] - scores["loss"]) <= 1e-12 * scores["loss"]
    with pytest.raises(ValueError, match="2500 samples but the targets have 10 rows"):
        net.evaluate(mapped, y[:10])
    with pytest.raises(ValueError, match="2500 samples but the targets have a scalar"):
        net.evaluate(mapped, np.array(1))
    with pytest.raises(ValueError, match=r"X is the path .*\.csv'; pass an array or a \.npy"):
        net.predict(tmp_path / "X.csv")


def test_validation_data_may_be_npy_paths_and_memory_maps(tmp_path, backend):
    """As X and y may be: the same validation losses as from arrays, streamed or not."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(120, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    kw = dict(epochs=2, batch_size=16, seed=1)

    def val_loss(data, val):
        net = bpgpu.MLP([3, 8, 2], backend=backend, dtype="float64", seed=0)
        return net.fit(*data, validation_data=val, **kw).val_loss

    want = val_loss((X, y), (X[:40], y[:40]))
    np.save(tmp_path / "Xv.npy", X[:40])
    np.save(tmp_path / "yv.npy", y[:40])
    for val in [
        (tmp_path / "Xv.npy", str(tmp_path / "yv.npy")),
        (np.load(tmp_path / "Xv.npy", mmap_mode="r"), y[:40]),
    ]:
        assert val_loss((X, y), val) == want
        assert val_loss((tmp_path / "X.npy", tmp_path / "y.npy"), val) == want
