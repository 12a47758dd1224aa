"""Run under ``mpiexec -n N``: the data-parallel fit against the single-process one.

Every rank trains the same network on the same data with ``comm=MPI.COMM_WORLD`` and,
alone, without it; prints one line ``ok`` on rank 0 when every check holds (an assertion
error ends the job otherwise). Used by tests/test_distributed.py.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile

import numpy as np
from checks import comm, digest, rank, rel, same_on_every_rank

import bpgpu
from bpgpu import checkpoint, sharded

# Ctrl-C is tested below: take Python's handler even where mpiexec ran in the background
signal.signal(signal.SIGINT, signal.default_int_handler)

rng = np.random.default_rng(0)
y = rng.integers(0, 3, size=203)  # 203 rows: batches that do not split evenly
X = rng.normal(size=(203, 5)) + y[:, None]
writes = []
real_write = checkpoint.write
checkpoint.write = lambda *a, **k: (writes.append(a[0]), real_write(*a, **k))[1]
folder = comm.bcast(tempfile.mkdtemp() if rank == 0 else None)
# the optimizers with state update their slice of the weights on each rank (ZeRO-1)
steps = {"sharded": 0}
real_step = sharded.ShardedUpdate.step
sharded.ShardedUpdate.step = lambda *a, **k: (
    steps.__setitem__("sharded", steps["sharded"] + 1),
    real_step(*a, **k),
)[1]

for opt in ("sgd", "momentum", "adam"):
    kw = dict(epochs=3, batch_size=16, optimizer=opt, validation_split=0.2, seed=4, patience=5)
    alone = bpgpu.MLP([5, 9, 3], hidden="prelu", backend="numpy", dtype="float64", seed=2)
    together = alone.to("numpy")
    h1 = alone.fit(X, y, **kw)
    h2 = together.fit(X, y, comm=comm, checkpoint=os.path.join(folder, f"{opt}.npz"), **kw)
    for a, b in zip(together.get_weights(), alone.get_weights()):
        assert rel(a, b) <= 1e-10, (opt, rel(a, b))
    assert np.allclose(h1.loss, h2.loss, rtol=1e-10) and h1.accuracy == h2.accuracy, opt
    assert np.allclose(h1.val_loss, h2.val_loss, rtol=1e-10), opt
    hashes = comm.allgather(digest(together.get_weights()))
    assert len(set(hashes)) == 1, f"ranks' weights differ after {opt}"

# momentum and adam: 3 epochs of 11 steps (162 training rows, batches of 16), sharded
assert steps["sharded"] == 66, steps

# sample and class weights: each row's share of its *global* batch's weight, and the
# weighted loss summed over the ranks, as one process computes them
w = rng.uniform(0.0, 2.0, size=203)
for opt in ("sgd", "adam"):
    kw = dict(epochs=3, batch_size=16, optimizer=opt, seed=4, validation_split=0.2)
    kw.update(sample_weight=w, class_weight={1: 3.0})
    alone = bpgpu.MLP([5, 9, 3], hidden="prelu", backend="numpy", dtype="float64", seed=2)
    together = alone.to("numpy")
    h1 = alone.fit(X, y, **kw)
    h2 = together.fit(X, y, comm=comm, **kw)
    for a, b in zip(together.get_weights(), alone.get_weights()):
        assert rel(a, b) <= 1e-10, ("weighted", opt, rel(a, b))
    assert np.allclose(h1.loss, h2.loss, rtol=1e-10), ("weighted", opt, h1.loss, h2.loss)
    assert len(set(comm.allgather(digest(together.get_weights())))) == 1

# torch CPU tensors are summed in place through NumPy views (DLPack): the same contract
try:
    import torch  # noqa: F401

    torch_here = True
except ImportError:
    torch_here = False
for opt in ("sgd", "adam") if torch_here else ():
    kw = dict(epochs=2, batch_size=16, optimizer=opt, seed=4)
    alone = bpgpu.MLP([5, 9, 3], hidden="prelu", backend="torch", dtype="float64", seed=2)
    together = alone.to("torch")
    alone.fit(X, y, **kw)
    together.fit(X, y, comm=comm, **kw)
    for a, b in zip(together.get_weights(), alone.get_weights()):
        assert rel(a, b) <= 1e-10, ("torch", opt, rel(a, b))
    hashes = comm.allgather(digest(together.get_weights()))
    assert len(set(hashes)) == 1, f"ranks' torch weights differ after {opt}"

# files come from rank 0 only
counts = comm.allgather(len(writes))
assert counts[0] == 9 and all(c == 0 for c in counts[1:]), counts

# a resumed data-parallel run equals the uninterrupted one
net = bpgpu.MLP([5, 9, 3], backend="numpy", dtype="float64", seed=3)
full = net.to("numpy")
kw = dict(batch_size=16, optimizer="adam", seed=1)
full.fit(X, y, epochs=4, comm=comm, **kw)
ck = os.path.join(folder, "resume.npz")
net.fit(X, y, epochs=2, comm=comm, checkpoint=ck, **kw)
again = bpgpu.MLP([5, 9, 3], backend="numpy", dtype="float64", seed=3)
again.fit(X, y, epochs=4, comm=comm, resume=ck)
for a, b in zip(again.get_weights(), full.get_weights()):
    assert np.array_equal(a, b)

# streamed from a memory map, data-parallel: still the in-memory single-process fit
if rank == 0:
    np.save(os.path.join(folder, "X.npy"), X)
comm.Barrier()
streamed = bpgpu.MLP([5, 9, 3], backend="numpy", dtype="float64", seed=3)
plain = streamed.to("numpy")
kw = dict(epochs=2, batch_size=16, optimizer="momentum", seed=5, validation_split=0.1)
plain.fit(X, y, **kw)
streamed.fit(os.path.join(folder, "X.npy"), y, comm=comm, **kw)
for a, b in zip(streamed.get_weights(), plain.get_weights()):
    assert rel(a, b) <= 1e-10, rel(a, b)


# Ctrl-C on the last rank only stops every rank at the same batch: its request
# travels with the next step's gradients (plain SGD reduces layer by layer, Adam once)
class Interrupt(bpgpu.Callback):
    def __init__(self, at, me):
        self.at, self.me = at, me

    def on_batch_end(self, net, batch):
        if batch == self.at and self.me:
            os.kill(os.getpid(), signal.SIGINT)


for opt in ("sgd", "adam"):
    kw = dict(epochs=2, batch_size=16, optimizer=opt, seed=6)
    alone = bpgpu.MLP([5, 9, 3], hidden="prelu", backend="numpy", dtype="float64", seed=2)
    together = alone.to("numpy")
    h1 = alone.fit(X, y, callbacks=[Interrupt(4, True)], **kw)
    last = rank == comm.Get_size() - 1
    h2 = together.fit(X, y, comm=comm, callbacks=[Interrupt(3, last)], **kw)
    assert h1.interrupted and h2.interrupted and len(h1.loss) == len(h2.loss), opt
    for a, b in zip(together.get_weights(), alone.get_weights()):
        assert rel(a, b) <= 1e-10, (opt, rel(a, b))
    hashes = comm.allgather(digest(together.get_weights()))
    assert len(set(hashes)) == 1, f"ranks' weights differ after an interrupted {opt} fit"


# a callback's on_batch_end returning True on one rank stops every rank, as Ctrl-C does
class StopAt(bpgpu.Callback):
    def __init__(self, at, me):
        self.at, self.me = at, me

    def on_batch_end(self, net, batch):
        return batch == self.at and self.me


kw = dict(epochs=2, batch_size=16, optimizer="adam", seed=6)
alone = bpgpu.MLP([5, 9, 3], backend="numpy", dtype="float64", seed=2)
together = alone.to("numpy")
h1 = alone.fit(X, y, callbacks=[StopAt(4, True)], **kw)
h2 = together.fit(X, y, comm=comm, callbacks=[StopAt(3, rank == 0)], **kw)
assert h1.interrupted and h2.interrupted and h1.epoch == h2.epoch == []
assert all(rel(a, b) <= 1e-10 for a, b in zip(together.get_weights(), alone.get_weights()))
assert same_on_every_rank(together), "ranks' weights differ after a callback's stop"

# divergence in a later epoch: every rank stops at the single-process fit's batch, with
# its message and its restored weights
for opt in ("sgd", "momentum"):
    ones = np.full((40, 1), 10.0)  # SGD multiplies w by -99 a step: inf in epoch 4
    kw = dict(epochs=5, batch_size=2, shuffle=False, lr=1.0, optimizer=opt)
    got = []
    for c in (None, comm):
        net = bpgpu.MLP([1, 1], hidden=[], output="identity", cost="quadratic", dtype="float64")
        net.set_weights([np.array([[1.0]]), np.array([0.0])])
        try:
            net.fit(ones, np.zeros(40), comm=c, **kw)
            raise AssertionError(f"{opt}: the diverging fit did not stop")
        except FloatingPointError as e:
            got.append((str(e), net.get_weights()))
    assert got[0][0] == got[1][0] and "epoch 4, batch 18 of 20" in got[0][0], got[1][0]
    assert all(rel(a, b) <= 1e-10 for a, b in zip(got[1][1], got[0][1])), opt
    assert same_on_every_rank(net), f"ranks' weights differ after a diverged {opt} fit"

# a rank with other data is refused on every rank, at the start
other = X.copy()
if rank == comm.Get_size() - 1:
    other[0, 0] += 1.0
probe = bpgpu.MLP([5, 9, 3], backend="numpy", seed=3)
before = probe.get_weights()
try:
    probe.fit(other, y, epochs=1, comm=comm)
    raise AssertionError("different data on one rank were not refused")
except ValueError as e:
    assert "every rank must pass the same" in str(e), e
    assert "passed other data than rank 0 (fingerprint: " in str(e), e
assert all(np.array_equal(a, b) for a, b in zip(probe.get_weights(), before))

# other settings, or another network, on one rank: named, with both values
last = comm.Get_size() - 1
for kw, said in (
    ({"batch_size": 16 + (rank == last)}, f"other settings than rank 0 (batch_size: {17} vs 16)"),
    ({"patience": 3 if rank == last else None}, "(patience: 3 vs None)"),
):
    try:
        probe.fit(X, y, epochs=1, comm=comm, **kw)
        raise AssertionError(f"{kw} differing on one rank was not refused")
    except ValueError as e:
        assert f"rank {last} passed " in str(e) and said in str(e), e
wider = bpgpu.MLP([5, 9 + (rank == last), 3], backend="numpy", seed=3)
try:
    wider.fit(X, y, epochs=1, comm=comm)
    raise AssertionError("another network on one rank was not refused")
except ValueError as e:
    assert "other network than rank 0 (sizes: [5, 10, 3] vs [5, 9, 3])" in str(e), e

# an argument refused on one rank only is refused on all, with its message
bad = 16 if rank == 0 else 0
try:
    probe.fit(X, y, epochs=1, batch_size=bad, comm=comm)
    raise AssertionError("a batch size refused on one rank was not refused on all")
except ValueError as e:
    assert "batch_size must be a positive integer" in str(e), e

# the diagnostic: library, ranks, devices
from bpgpu.distributed import describe  # noqa: E402

text = describe(comm, bpgpu.get_backend("numpy"))
if rank == 0:
    assert text.startswith("MPI: ") and f"{comm.Get_size()} ranks" in text, text
    print("ok")
sys.stdout.flush()
