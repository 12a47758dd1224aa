"""Run under ``mpiexec -n 2``: a data-parallel fit of networks built with ``seed=None``.

Each rank draws its own initial weights. The fit promises every rank the same weights
(or refuses what differs between the ranks, as it refuses other data or settings): rank
0 prints ``same`` when the ranks end with bit-identical weights, ``refused`` when every
rank refused the fit, else ``differ``. Used by tests/test_trainer_edges.py.
"""

from __future__ import annotations

import numpy as np
from checks import comm, rank, same_on_every_rank

import bpgpu

rng = np.random.default_rng(0)
y = rng.integers(0, 3, size=61)
X = rng.normal(size=(61, 4)) + y[:, None]
net = bpgpu.MLP([4, 6, 3], backend="numpy", dtype="float64", seed=None)
try:
    net.fit(X, y, epochs=2, batch_size=8, comm=comm)
    refused = False
except ValueError:
    refused = True
refusals = comm.allgather(refused)
if all(refusals):
    verdict = "refused"
elif not any(refusals) and same_on_every_rank(net):
    verdict = "same"
else:
    verdict = "differ"
if rank == 0:
    print(verdict)
