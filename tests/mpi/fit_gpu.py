"""Run under ``mpiexec -n N`` on a CUDA machine: data-parallel fits on every GPU backend
there against the single-process fit.

Each rank builds its network on ``rank_backend(comm, name)`` (its own GPU; on a machine
with fewer GPUs than ranks they share one, and the gradients take the next path every
rank has, since NCCL takes one GPU per rank). Checks, per backend and optimizer: float64
within 1e-10 of the single-process fit, every rank's weights bit-identical; then a fit
streamed from a memory map through the pinned buffers, data-parallel, against the same.
Rank 0 prints one line per backend (the path its gradients took) and ``ok``. Used by
``tests/test_distributed.py`` (marked ``gpu``).

``BPGPU_MPI_GPU_BACKENDS=torch,jax`` runs the same checks on other backends (a dry run
of this script on a machine without a GPU).
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings

import numpy as np
from checks import comm, rank, rel, same_on_every_rank

import bpgpu
from bpgpu.distributed import rank_backend

names = os.environ.get("BPGPU_MPI_GPU_BACKENDS", "cupy,torch:cuda,jax:cuda").split(",")
here = [r["name"] for r in bpgpu.list_backends() if r["available"] and r["name"] in names]
assert here, f"none of {names} can load here"
rng = np.random.default_rng(0)
y = rng.integers(0, 3, size=203)  # 203 rows: batches that do not split evenly
X = rng.normal(size=(203, 5)) + y[:, None]
folder = comm.bcast(tempfile.mkdtemp() if rank == 0 else None)
if rank == 0:
    np.save(os.path.join(folder, "X.npy"), X)
comm.Barrier()

for name in here:
    backend = rank_backend(comm, name)
    for opt in ("sgd", "adam"):
        kw = dict(epochs=2, batch_size=16, optimizer=opt, seed=4, validation_split=0.2)
        alone = bpgpu.MLP([5, 9, 3], hidden="prelu", backend=backend, dtype="float64", seed=2)
        together = alone.to(backend)
        alone.fit(X, y, **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ranks sharing one GPU: told, not an error
            together.fit(X, y, comm=comm, **kw)
        for a, b in zip(together.get_weights(), alone.get_weights()):
            assert rel(a, b) <= 1e-10, (name, opt, rel(a, b))
        assert same_on_every_rank(together), f"ranks' weights differ: {name}, {opt}"
    w = rng.uniform(0.0, 2.0, size=203)  # sample and class weights: the global batch's
    for opt in ("sgd", "adam"):
        kw = dict(epochs=2, batch_size=16, optimizer=opt, seed=4, sample_weight=w)
        alone = bpgpu.MLP([5, 9, 3], backend=backend, dtype="float64", seed=2)
        together = alone.to(backend)
        alone.fit(X, y, class_weight="balanced", **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            together.fit(X, y, comm=comm, class_weight="balanced", **kw)
        for a, b in zip(together.get_weights(), alone.get_weights()):
            assert rel(a, b) <= 1e-10, (name, opt, "weighted", rel(a, b))
        assert same_on_every_rank(together), f"ranks' weights differ: {name}, weighted"
    streamed = bpgpu.MLP([5, 9, 3], backend=backend, dtype="float64", seed=3)
    plain = streamed.to(backend)
    kw = dict(epochs=2, batch_size=16, optimizer="momentum", seed=5)
    plain.fit(X, y, **kw)
    streamed.fit(os.path.join(folder, "X.npy"), y, comm=comm, **kw)
    for a, b in zip(streamed.get_weights(), plain.get_weights()):
        assert rel(a, b) <= 1e-10, (name, "streamed", rel(a, b))
    assert same_on_every_rank(streamed), f"ranks' weights differ: {name}, streamed"
    path = together.backend.reduction(comm)
    ranks = comm.allgather(backend)
    if rank == 0:
        print(f"{name}: ranks on {', '.join(ranks)}; gradients summed by {path}")

if rank == 0:
    print("ok")
sys.stdout.flush()
