"""Data-parallel scaling: the mnist workload on 1 and 2 MPI ranks, one BLAS thread each.

    python -m benchmarks.mpi_bench [--workload mnist] [--epochs 3] [--repeat 3] [--out DIR]

Starts ``mpiexec -n 1`` and ``mpiexec -n 2`` (alternating, ``--repeat`` times) on this
module's worker, which trains the workload with ``fit(comm=MPI.COMM_WORLD)`` after a
warm-up epoch and reports samples/s; every rank runs with one BLAS thread
(``BPGPU_BLAS_THREADS=1``), so 2 ranks on 2 cores is the whole machine. A single process
without MPI, with one and with every BLAS thread, is measured beside them. Then, on 2
ranks, the per-step reduction alone and the alternatives to it: MPI's Allreduce, a sum
through an MPI-3 shared-memory window, and the memory traffic they are bound by. Writes
``mpi-cpu.json`` and ``.md``: the best run of each, and the speed-up of 2 ranks over 1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

from .runner import command_line, machine, provenance, write_report
from .workloads import WORKLOADS


def worker(workload: str, epochs: int, distributed: bool, batch: int | None = None) -> None:
    """Train and print samples/s (rank 0) of the whole fit and of its epochs alone (the
    fit's setup left out); ``batch`` overrides the workload's."""
    import bpgpu

    w = WORKLOADS[workload]
    X, y = w.data()
    comm = None
    if distributed:
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
    net = bpgpu.MLP(list(w.sizes), "relu", "softmax", backend="numpy", seed=0)
    kw = dict(batch_size=batch or w.batch, optimizer=bpgpu.optimizers.SGD(lr=w.lr), comm=comm)
    net.fit(X, y, 1, seed=1, **kw)  # warm-up
    if comm is not None:
        comm.Barrier()
    t0 = time.perf_counter()
    h = net.fit(X, y, epochs, seed=2, **kw)
    seconds = time.perf_counter() - t0
    if comm is None or comm.Get_rank() == 0:
        n = epochs * len(X)
        print(json.dumps({"fit": n / seconds, "epochs": n / sum(h.time), "seconds": seconds}))


def reduce_worker(workload: str, reps: int = 400) -> None:
    """Milliseconds per step of each way to sum the workload's float32 gradients over
    the ranks of ``COMM_WORLD`` (one node), and of the plain memory traffic beside them
    (rank 0 prints them)."""
    import numpy as np
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    n = sum(a * b + a for a, b in zip(WORKLOADS[workload].sizes[1:], WORKLOADS[workload].sizes))
    g = np.random.default_rng(rank).standard_normal(n).astype(np.float32)
    w, out = np.zeros(n, np.float32), np.empty(n, np.float32)
    lo, hi = n * rank // size, n * (rank + 1) // size
    part = np.empty(hi - lo, np.float32)
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    wins = [MPI.Win.Allocate_shared(k * 4 if rank == 0 else 0, 4, comm=node) for k in (size * n, n)]
    grads = np.ndarray((size, n), np.float32, buffer=wins[0].Shared_query(0)[0])
    shared_w = np.ndarray((n,), np.float32, buffer=wins[1].Shared_query(0)[0])

    def shared_sum():  # each rank sums its slice of every rank's gradients, all read all
        grads[rank] = g
        node.Barrier()
        np.sum(grads[:, lo:hi], axis=0, out=part)
        grads[0, lo:hi] = part
        node.Barrier()
        out[:] = grads[0]
        node.Barrier()

    def shared_update():  # one copy of the weights per node: each rank updates its slice
        grads[rank] = g
        node.Barrier()
        np.sum(grads[:, lo:hi], axis=0, out=part)
        np.multiply(part, -0.01, out=part)
        np.add(shared_w[lo:hi], part, out=shared_w[lo:hi])
        node.Barrier()

    ways = {
        "MPI Allreduce, in place": lambda: comm.Allreduce(MPI.IN_PLACE, out),
        "MPI Allreduce + the SGD update": lambda: (
            comm.Allreduce(MPI.IN_PLACE, out),
            np.add(w, out, out=w),
        ),
        "shared-memory window: sum, every rank reads the sum": shared_sum,
        "shared-memory window: weights shared, each rank updates a slice": shared_update,
        "memory traffic: copy the gradients once": lambda: np.copyto(out, g),
        "memory traffic: the SGD update alone": lambda: np.add(w, g, out=w),
    }
    want = g.copy()
    comm.Allreduce(MPI.IN_PLACE, want)
    shared_sum()
    if not np.array_equal(out, want):  # the ways must compute the same sum to compare them
        raise AssertionError("the shared-memory window's sum differs from MPI's Allreduce")
    ms = {}
    for name, f in ways.items():
        for _ in range(20):
            f()
        comm.Barrier()
        t0 = time.perf_counter()
        for _ in range(reps):
            f()
        comm.Barrier()
        ms[name] = (time.perf_counter() - t0) / reps * 1e3
    for win in wins:
        win.Free()
    if rank == 0:
        print(json.dumps({"params": n, "ms": ms}))


def mpiexec_path() -> str:
    """``mpiexec`` on the PATH, else the one beside this Python (the MPICH wheel's)."""
    return shutil.which("mpiexec") or os.path.join(os.path.dirname(sys.executable), "mpiexec")


def _run(cmd: list[str], threads: str, copies: int = 1) -> list[float]:
    """Samples/s of ``cmd`` ``[whole fit, epochs alone]``; with ``copies``, that many
    started at once, summed."""
    env = {**os.environ, "BPGPU_BLAS_THREADS": threads, "BPGPU_BACKEND": "numpy"}
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(copies)
    ]
    total = [0.0, 0.0]
    for p in procs:
        out, err = p.communicate(timeout=1800)
        if p.returncode:
            raise subprocess.CalledProcessError(p.returncode, cmd, out, err)
        found = json.loads(out.strip().splitlines()[-1])
        total = [total[0] + found["fit"], total[1] + found["epochs"]]
    return total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.mpi_bench", description=__doc__.split("\n")[0]
    )
    p.add_argument("--workload", default="mnist", choices=list(WORKLOADS))
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", default="bench-results")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--distributed", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--reductions", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.reductions:
        reduce_worker(args.workload)
        return 0
    if args.worker:
        worker(args.workload, args.epochs, args.distributed, args.batch)
        return 0
    mpiexec = mpiexec_path()
    me = [
        sys.executable,
        "-m",
        "benchmarks.mpi_bench",
        "--worker",
        "--workload",
        args.workload,
        "--epochs",
        str(args.epochs),
    ]
    cores = str(os.cpu_count() or 1)
    half = ["--batch", str(WORKLOADS[args.workload].batch // 2)]
    runs = {
        "1 process, 1 BLAS thread": (me, "1", 1),
        f"1 process, {cores} BLAS threads": (me, cores, 1),
        "1 MPI rank, 1 BLAS thread": ([mpiexec, "-n", "1", *me, "--distributed"], "1", 1),
        "2 MPI ranks, 1 BLAS thread each": ([mpiexec, "-n", "2", *me, "--distributed"], "1", 1),
        # the ceiling with free communication: two half batches at once, no MPI, summed
        "2 processes at once, half batch each, no MPI": ([*me, *half], "1", 2),
    }
    rates: dict[str, list[list[float]]] = {k: [] for k in runs}
    for r in range(args.repeat):
        for name, (cmd, threads, copies) in runs.items():
            rates[name].append(_run(cmd, threads, copies))
            fit, epochs = rates[name][-1]
            print(
                f"round {r + 1}/{args.repeat}  {name:<44} {fit:>8,.0f} samples/s "
                f"({epochs:,.0f} in the epochs)",
                flush=True,
            )
    reduce_cmd = [mpiexec, "-n", "2", sys.executable, "-m", "benchmarks.mpi_bench"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    found = subprocess.run(
        [*reduce_cmd, "--reductions", "--workload", args.workload],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=True,
    )
    reductions = json.loads(found.stdout.strip().splitlines()[-1])
    best = {k: [max(r[i] for r in v) for i in (0, 1)] for k, v in rates.items()}
    one, two = best["1 MPI rank, 1 BLAS thread"], best["2 MPI ranks, 1 BLAS thread each"]
    free = best["2 processes at once, half batch each, no MPI"]
    speedup, ceiling = two[1] / one[1], free[1] / one[1]  # training throughput
    speedup_fit = two[0] / one[0]
    w = WORKLOADS[args.workload]
    info = machine()
    cmd = command_line("benchmarks.mpi_bench", argv)
    report = {
        "machine": info,
        "command": cmd,
        "workload": args.workload,
        "rates": rates,
        "best": best,
        "columns": ["whole fit", "epochs alone"],
        "speedup_2_over_1_ranks": speedup,
        "speedup_2_over_1_ranks_whole_fit": speedup_fit,
        "ceiling_without_communication": ceiling,
        "reductions_2_ranks": reductions,
        "target": 1.6,
        "met": speedup >= 1.6,
    }
    lines = [
        f"# Data-parallel scaling, {args.workload} ({'-'.join(map(str, w.sizes))}, global batch "
        f"{w.batch}, plain SGD, float32, NumPy)",
        "",
        provenance(info, cmd),
        "",
        f"Samples/s of one `fit` of {args.epochs} epochs after a warm-up fit, and of its "
        "epochs alone (`History.time`: the training throughput; the whole fit adds its "
        "setup, in which every rank of a data-parallel fit hashes the data to agree that "
        "all have the same, about 50 ms here). Best of the rounds, all rounds in the JSON.",
        "",
        "| run | samples/s, whole fit | samples/s, epochs |",
        "|---|---|---|",
        *(f"| {k} | {v[0]:,.0f} | {v[1]:,.0f} |" for k, v in best.items()),
        "",
        f"2 ranks over 1 rank, epochs: {speedup:.2f}x (target >= 1.6x: "
        f"{'met' if speedup >= 1.6 else 'NOT met'}; whole fit {speedup_fit:.2f}x); two half "
        f"batches at once without communication: {ceiling:.2f}x (the ceiling; the difference "
        "is the gradients' Allreduce and the ranks waiting for each other)",
        "",
        f"Summing one step's {reductions['params']:,} float32 gradients over 2 ranks "
        "(ms per step, the same machine, alone):",
        "",
        "| way | ms |",
        "|---|---|",
        *(f"| {k} | {v:.3f} |" for k, v in reductions["ms"].items()),
    ]
    write_report(os.path.join(args.out, "mpi-cpu"), report, "\n".join(lines) + "\n")
    print("\n".join(lines[-len(reductions["ms"]) - 6 :]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
