"""Run under ``mpiexec -n 2``: data-parallel fits with ``seed=None``.

Rank 0 draws one fresh seed and every rank trains with it: the ranks record the same
``history.seed`` and end with bit-identical weights, equal to the single-process fit
with that seed (its shuffling and validation split); two such fits draw different seeds
and train different weights. Prints ``ok`` on rank 0 (an assertion ends the job
otherwise). Used by tests/test_trainer_edges.py.
"""

from __future__ import annotations

import numpy as np
from checks import comm, digest, rank, rel, same_on_every_rank

import bpgpu

rng = np.random.default_rng(0)
y = rng.integers(0, 3, size=61)  # 61 rows: shares of 4 and 4, the last batch 5 rows
X = rng.normal(size=(61, 4)) + y[:, None]

seeds, finals = [], []
for opt, split in (("sgd", 0.0), ("adam", 0.25), ("momentum", 0.25)):
    kw = dict(epochs=3, batch_size=8, optimizer=opt, validation_split=split)
    together = bpgpu.MLP([4, 6, 3], backend="numpy", dtype="float64", seed=2)
    alone = together.to("numpy")
    h = together.fit(X, y, seed=None, comm=comm, **kw)
    assert isinstance(h.seed, int), h.seed
    assert len(set(comm.allgather(h.seed))) == 1, ("ranks drew their own seeds", opt)
    assert same_on_every_rank(together), ("ranks' weights differ", opt)
    h1 = alone.fit(X, y, seed=h.seed, **kw)  # the single-process fit with the seed drawn
    for a, b in zip(together.get_weights(), alone.get_weights()):
        assert rel(a, b) <= 1e-10, (opt, rel(a, b))
    assert np.allclose(h.loss, h1.loss, rtol=1e-10) and h.accuracy == h1.accuracy, opt
    assert np.allclose(h.val_loss, h1.val_loss, rtol=1e-10, equal_nan=True), opt
    seeds.append(h.seed)
    finals.append(digest(together.get_weights()))

# fresh seeds each fit (a fixed or reused one would repeat): another sgd fit differs
again = bpgpu.MLP([4, 6, 3], backend="numpy", dtype="float64", seed=2)
h = again.fit(X, y, epochs=3, batch_size=8, optimizer="sgd", seed=None, comm=comm)
assert h.seed not in seeds, (h.seed, seeds)
assert same_on_every_rank(again)
assert digest(again.get_weights()) != finals[0], "two unseeded fits trained the same weights"

# no seed argument at all: the network's seed, as in one process
net = bpgpu.MLP([4, 6, 3], backend="numpy", dtype="float64", seed=7)
assert net.fit(X, y, epochs=1, batch_size=8, comm=comm).seed == 7

if rank == 0:
    print("ok")
