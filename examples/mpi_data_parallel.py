"""Data-parallel training over MPI: every rank passes the same data; the result is the
single-process fit's.

    pip install -e '.[mpi]'; mpiexec -n 2 python examples/mpi_data_parallel.py
"""

import numpy as np
from mpi4py import MPI

import bpgpu
from bpgpu import datasets
from bpgpu.distributed import rank_backend

comm = MPI.COMM_WORLD
X, y = datasets.load_digits()
net = bpgpu.MLP([64, 64, 10], backend=rank_backend(comm, "numpy"), dtype="float64", seed=0)
one = bpgpu.MLP([64, 64, 10], backend="numpy", dtype="float64", seed=0)
kw = dict(epochs=3, batch_size=64, optimizer="adam", seed=1, standardize=True)
net.fit(X, y, comm=comm, **kw)  # the global batch of 64 split over the ranks
one.fit(X, y, **kw)  # every rank also trains alone, to compare
gap = max(np.abs(a - b).max() for a, b in zip(net.get_weights(), one.get_weights()))
if comm.Get_rank() == 0:
    print(f"{comm.Get_size()} ranks; largest difference from one process: {gap:.1e}")
assert gap < 1e-10
