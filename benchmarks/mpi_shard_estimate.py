"""What sharding the optimizer update over MPI ranks (ZeRO-1) would gain: an estimate.

    mpiexec -n 2 python -m benchmarks.mpi_shard_estimate shard
    mpiexec -n 2 python -m benchmarks.mpi_shard_estimate replicated
    python -m benchmarks.mpi_shard_estimate single

A stand-alone NumPy model of one data-parallel step of the job of
``benchmarks.mpi_threads`` (64-1024-1024-10 ReLU, global batch 128, Adam, float32): the
forward and backward products of each rank's share of the batch, an in-place Allreduce
per gradient, then Adam either on every parameter on every rank (``replicated``: what
bpgpu does) or on each rank's slice of every parameter followed by an ``Allgatherv``
of the weights (``shard``); ``single``: one process, 2 BLAS threads. Prints
milliseconds per step (rank 0) over 100 steps after 20 of warm-up. Not bpgpu's code:
it measures whether the sharded update is worth writing (NOTES 27).
"""

from __future__ import annotations

import sys
import time

import numpy as np


def main(mode: str) -> None:
    from mpi4py import MPI
    from threadpoolctl import threadpool_limits

    c = MPI.COMM_WORLD
    R, r = c.Get_size(), c.Get_rank()
    rng = np.random.default_rng(0)
    sizes = [64, 1024, 1024, 10]
    W = [rng.normal(size=(o, i)).astype(np.float32) * 0.03 for i, o in zip(sizes, sizes[1:])]
    b = [np.zeros(o, np.float32) for o in sizes[1:]]
    params = [p for pair in zip(W, b) for p in pair]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    X = rng.normal(size=(128 // R, 64)).astype(np.float32)

    def grads():
        Ys = [X]
        for Wl, bl in zip(W, b):
            Ys.append(np.maximum(Ys[-1] @ Wl.T + bl, 0))
        D, gs = Ys[-1] - 0.1, []
        for l in range(len(W) - 1, -1, -1):
            gs = [D.T @ Ys[l], D.sum(0), *gs]
            if l:
                D = (D @ W[l]) * (Ys[l] > 0)
        return gs

    def adam(ps, gs, ms, vs, t, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
        for p, g, mm, vv in zip(ps, gs, ms, vs):
            mm[...] = b1 * mm + (1 - b1) * g
            vv[...] = b2 * vv + (1 - b2) * g * g
            p[...] = p - lr * (mm / (1 - b1**t)) / (np.sqrt(vv / (1 - b2**t)) + eps)

    def share(n: int, k: int) -> tuple[int, int]:
        return n * k // R, n * (k + 1) // R

    with threadpool_limits(1 if R > 1 else 2, user_api="blas"):
        for it in range(120):
            if it == 20:
                c.Barrier()
                t0 = time.perf_counter()
            gs = grads()
            if R > 1:
                for g in gs:
                    c.Allreduce(MPI.IN_PLACE, g, op=MPI.SUM)
            if mode == "shard" and R > 1:
                views = []
                for arrays in zip(params, gs, m, v):
                    lo, hi = share(arrays[0].size, r)
                    views.append([a.reshape(-1)[lo:hi] for a in arrays])
                adam(*zip(*views), it + 1)
                for p in params:
                    n = p.size
                    counts = [share(n, k)[1] - share(n, k)[0] for k in range(R)]
                    displs = [share(n, k)[0] for k in range(R)]
                    c.Allgatherv(MPI.IN_PLACE, [p.reshape(-1), counts, displs, MPI.FLOAT])
            else:
                adam(params, gs, m, v, it + 1)
        ms = (time.perf_counter() - t0) / 100 * 1e3
    if r == 0:
        print(f"{mode} on {R} rank(s): {ms:.2f} ms/step")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "single")
