"""The sharded optimizer update of data-parallel fits (:mod:`bpgpu.sharded`), in one
process: where it is used, how the ranks' slices tile the weights, and one step of it
equal to the replicated step. The real ranks: tests/mpi/fit_parallel.py."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import bpgpu
from bpgpu import optimizers
from bpgpu.sharded import ShardedUpdate, sharding


class Ranks:
    """A stand-in communicator of ``size`` ranks as rank ``rank`` sees it: with one rank
    the collectives copy (nothing to sum or gather)."""

    def __init__(self, rank=0, size=1):
        self.rank, self.size = rank, size

    def Reduce_scatter(self, send, recv, recvcounts, op=None):
        assert self.size == 1
        recv[...] = send

    def Allreduce(self, send, recv, op=None):
        pass

    def Allgatherv(self, send, recv):
        pass


def ranks(rank=0, size=2, comm=None):
    return SimpleNamespace(rank=rank, size=size, comm=comm or Ranks(rank, size))


class MyAdam(optimizers.Adam):
    pass


def net(backend="numpy"):
    return bpgpu.MLP([5, 9, 3], hidden="prelu", backend=backend, dtype="float64", seed=2)


@pytest.mark.parametrize(
    "backend, opt, dist, anomaly, why",
    [
        ("numpy", "adam", ranks(), False, None),
        ("numpy", "momentum", ranks(), False, None),
        ("numpy", "nesterov", ranks(), False, None),
        ("numpy", "adam", ranks(size=1), False, "one rank"),
        ("numpy", "sgd", ranks(), False, "not a built-in optimizer with state"),
        ("numpy", MyAdam(), ranks(), False, "not a built-in optimizer with state"),
        ("numpy", "adam", ranks(), True, "anomaly mode"),
        ("numpy", "adam", ranks(comm=object()), False, "no Reduce_scatter"),
        ("array_api_strict", "adam", ranks(), False, "not host memory"),
    ],
)
def test_the_update_is_sharded_only_where_it_can_be(backend, opt, dist, anomaly, why):
    got = sharding(net(backend).model, optimizers.get(opt), dist, anomaly)
    assert (got is None) if why is None else (why in got), got


def test_sharding_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("BPGPU_SHARDED_UPDATE", "0")
    assert sharding(net().model, optimizers.get("adam"), ranks(), False) == (
        "BPGPU_SHARDED_UPDATE=0"
    )


@pytest.mark.parametrize("size", [2, 3, 7, 200])
def test_the_ranks_slices_tile_the_weights_once(size):
    model = net().model
    sizes = [p.size for p in model.params]
    covered = np.zeros(sum(sizes), int)
    for r in range(size):
        shard = ShardedUpdate(ranks(r, size), model)
        for (lo, hi, at, matrix), piece in zip(shard.mine, shard._slice(shard.P)):
            covered[lo:hi] += 1
            assert at == lo - shard.lo and piece.size == hi - lo
            assert piece.ndim == (2 if matrix else 1)  # weight decay finds matrices by ndim
        assert sum(hi - lo for lo, hi, _, _ in shard.mine) == shard.counts[r]
    assert (covered == 1).all()


@pytest.mark.parametrize("opt", ["adam", "momentum", "nesterov"])
def test_a_sharded_step_is_the_replicated_step(opt):
    pytest.importorskip("mpi4py", reason="the step names MPI's SUM and IN_PLACE")
    X = np.random.default_rng(0).normal(size=(16, 5))
    T = np.eye(3)[np.arange(16) % 3]
    a, b = net(), net()
    o = optimizers.get(opt, weight_decay=0.01)
    run = SimpleNamespace(opt=o, state=o.init(a.model.params))
    b_state = o.init(b.model.params)
    shard = ShardedUpdate(ranks(0, 1), a.model)
    for _ in range(3):
        E, Y, stop = shard.step(run, X, T, True, 16, None, False)
        b_state, E2, Y2 = b.model.step(X, T, o, b_state, True)
        assert not stop and float(E) == float(E2) and np.array_equal(Y, Y2)
    assert run.state["t"] == b_state["t"] == 3
    for p, q in zip(a.get_weights(), b.get_weights()):
        assert np.array_equal(p, q)
    for s in o.slots:
        for m, n in zip(run.state[s], b_state[s]):
            assert np.array_equal(m, n)
    # weights set from outside (a callback, a restored epoch) are taken, not overwritten
    fresh = [w + 1 for w in a.get_weights()]
    a.set_weights(fresh)
    shard._adopt(run)
    assert all(np.array_equal(p, q) for p, q in zip(a.get_weights(), fresh))
