"""Data-parallel scaling: the mnist workload on 1 and 2 MPI ranks, one BLAS thread each.

    python -m benchmarks.mpi_bench [--workload mnist] [--epochs 3] [--repeat 3] [--out DIR]

Starts ``mpiexec -n 1`` and ``mpiexec -n 2`` (alternating, ``--repeat`` times) on this
module's worker, which trains the workload with ``fit(comm=MPI.COMM_WORLD)`` after a
warm-up epoch and reports samples/s; every rank runs with one BLAS thread
(``BPGPU_BLAS_THREADS=1``), so 2 ranks on 2 cores is the whole machine. A single process
without MPI, with one and with every BLAS thread, is measured beside them. Writes
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
    """Train and print samples/s (rank 0); ``batch`` overrides the workload's."""
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
    net.fit(X, y, epochs, seed=2, **kw)
    seconds = time.perf_counter() - t0
    if comm is None or comm.Get_rank() == 0:
        print(json.dumps({"samples_per_s": epochs * len(X) / seconds, "seconds": seconds}))


def _run(cmd: list[str], threads: str, copies: int = 1) -> float:
    """Samples/s of ``cmd``; with ``copies``, that many started at once, summed."""
    env = {**os.environ, "BPGPU_BLAS_THREADS": threads, "BPGPU_BACKEND": "numpy"}
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(copies)
    ]
    total = 0.0
    for p in procs:
        out, err = p.communicate(timeout=1800)
        if p.returncode:
            raise subprocess.CalledProcessError(p.returncode, cmd, out, err)
        total += json.loads(out.strip().splitlines()[-1])["samples_per_s"]
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
    args = p.parse_args(argv)
    if args.worker:
        worker(args.workload, args.epochs, args.distributed, args.batch)
        return 0
    mpiexec = shutil.which("mpiexec") or os.path.join(os.path.dirname(sys.executable), "mpiexec")
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
    rates: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(args.repeat):
        for name, (cmd, threads, copies) in runs.items():
            rates[name].append(_run(cmd, threads, copies))
            print(
                f"round {r + 1}/{args.repeat}  {name:<34} {rates[name][-1]:>10,.0f} samples/s",
                flush=True,
            )
    best = {k: max(v) for k, v in rates.items()}
    one = best["1 MPI rank, 1 BLAS thread"]
    speedup = best["2 MPI ranks, 1 BLAS thread each"] / one
    ceiling = best["2 processes at once, half batch each, no MPI"] / one
    w = WORKLOADS[args.workload]
    info = machine()
    cmd = command_line("benchmarks.mpi_bench", argv)
    report = {
        "machine": info,
        "command": cmd,
        "workload": args.workload,
        "rates": rates,
        "best": best,
        "speedup_2_over_1_ranks": speedup,
        "ceiling_without_communication": ceiling,
        "target": 1.6,
        "met": speedup >= 1.6,
    }
    lines = [
        f"# Data-parallel scaling, {args.workload} ({'-'.join(map(str, w.sizes))}, global batch "
        f"{w.batch}, plain SGD, float32, NumPy)",
        "",
        provenance(info, cmd),
        "",
        "Samples/s over the training epochs after a warm-up (best of the rounds, all rounds "
        "in the JSON).",
        "",
        "| run | samples/s |",
        "|---|---|",
        *(f"| {k} | {v:,.0f} |" for k, v in best.items()),
        "",
        f"2 ranks over 1 rank: {speedup:.2f}x "
        f"(target >= 1.6x: {'met' if speedup >= 1.6 else 'NOT met'}); two half batches "
        f"at once without communication: {ceiling:.2f}x (the ceiling; the difference is the "
        "gradients' Allreduce and the ranks waiting for each other)",
    ]
    write_report(os.path.join(args.out, "mpi-cpu"), report, "\n".join(lines) + "\n")
    print("\n".join(lines[-1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
