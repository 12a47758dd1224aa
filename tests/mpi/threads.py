"""Run under ``mpiexec -n 2``: while a data-parallel fit trains, each rank's BLAS (NumPy)
and torch run as many threads as the machine's cores shared out among its ranks; after
it, as many as before. Rank 0 prints JSON: what each rank saw."""

from __future__ import annotations

import json

import numpy as np
import torch
from mpi4py import MPI
from threadpoolctl import threadpool_info

import bpgpu


def blas_threads() -> int:
    return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")


class Seen(bpgpu.Callback):
    per_batch = False

    def __init__(self, read):
        self.read, self.seen = read, []

    def on_epoch_end(self, net, epoch, logs):
        self.seen.append(self.read())


comm = MPI.COMM_WORLD
X = np.random.default_rng(0).normal(size=(256, 64))
y = np.arange(256) % 10
report = {}
for backend, read in (("numpy", blas_threads), ("torch", torch.get_num_threads)):
    before = read()
    seen = Seen(read)
    # 256 x 1024 x 1024 / 2 madds a rank: above the one-thread size of small products
    net = bpgpu.MLP([64, 1024, 1024, 10], backend=backend, dtype="float32")
    net.fit(X, y, epochs=2, batch_size=256, comm=comm, callbacks=[seen], verbose=False)
    report[backend] = {"before": before, "during": seen.seen, "after": read()}
found = comm.gather(report)
if comm.Get_rank() == 0:
    print(json.dumps(found))
