"""Run under ``mpiexec -n 2``: rank 1 fails in the middle of training; the whole job must
end (non-zero), with rank 1's message, instead of rank 0 waiting forever."""

from __future__ import annotations

import numpy as np
from mpi4py import MPI

import bpgpu


class FailOnRankOne(bpgpu.Callback):
    def on_batch_end(self, net, batch):
        if MPI.COMM_WORLD.Get_rank() == 1 and batch == 3:
            raise RuntimeError("rank one lost its disk")


rng = np.random.default_rng(0)
y = rng.integers(0, 3, size=400)
X = rng.normal(size=(400, 5)) + y[:, None]
net = bpgpu.MLP([5, 9, 3], backend="numpy")
net.fit(X, y, epochs=50, batch_size=8, comm=MPI.COMM_WORLD, callbacks=[FailOnRankOne()])
print("finished: the failure was not noticed")
