"""Threads per MPI rank: ``bpgpu train --distributed`` on 2 ranks against 1 process.

    python -m benchmarks.mpi_threads [--epochs 20] [--repeat 3] [--out DIR]

Times the command of the issue that found it, ``bpgpu train --hidden 1024,1024
--batch-size 128 --epochs 20`` on the digits (NumPy), as one process and as
``mpiexec -n 2 ... --distributed``: with bpgpu's default (the ranks share the machine's
cores: one BLAS thread each on 2 cores), and with every rank given every core
(``BPGPU_BLAS_THREADS=<cores>``: what each rank did before, a BLAS thread per core);
and the default with the optimizer update replicated on every rank
(``BPGPU_SHARDED_UPDATE=0``: what the ranks did before :mod:`bpgpu.sharded`).
Rounds alternate; the best of each is reported, with the seconds of training the
command prints (``trained N epochs in S s``) and of the whole command. Writes
``mpi-threads-cpu.json`` and ``.md``; the target: 2 ranks at most 1.10x the time of one
process.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

from .mpi_bench import mpiexec_path
from .runner import command_line, machine, provenance, write_report

TARGET = 1.10  # 2 ranks' seconds over 1 process's, at most


def _seconds(cmd: list[str], env: dict) -> tuple[float, float]:
    """(seconds of training the command printed, seconds of the whole command)."""
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        out = subprocess.run(
            cmd, capture_output=True, text=True, env=env, cwd=d, timeout=1800, check=False
        )
        wall = time.perf_counter() - t0
    if out.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed: {out.stderr.strip()[-400:]}")
    found = re.search(r"trained \d+ epochs in ([0-9.]+) s", out.stdout)
    if found is None:
        raise RuntimeError(f"no 'trained ... in S s' line in: {out.stdout[-400:]}")
    return float(found.group(1)), wall


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.mpi_threads", description=__doc__.split("\n")[0]
    )
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", default="bench-results")
    args = p.parse_args(argv)
    mpiexec = mpiexec_path()
    job = [
        sys.executable,
        "-m",
        "bpgpu",
        "train",
        "--hidden",
        "1024,1024",
        "--batch-size",
        "128",
        "--epochs",
        str(args.epochs),
        "--no-plot",
        "--backend",
        "numpy",
    ]
    cores = str(os.cpu_count() or 1)
    base = {k: v for k, v in os.environ.items() if k != "BPGPU_BLAS_THREADS"}
    runs = {
        "1 process": (job, base),
        "2 ranks, cores shared (default)": ([mpiexec, "-n", "2", *job, "--distributed"], base),
        "2 ranks, cores shared, update replicated": (
            [mpiexec, "-n", "2", *job, "--distributed"],
            {**base, "BPGPU_SHARDED_UPDATE": "0"},
        ),
        f"2 ranks, {cores} BLAS threads each (as before)": (
            [mpiexec, "-n", "2", *job, "--distributed"],
            {**base, "BPGPU_BLAS_THREADS": cores},
        ),
    }
    seconds: dict[str, list[list[float]]] = {k: [] for k in runs}
    for r in range(args.repeat):
        for name, (cmd, env) in runs.items():
            seconds[name].append(list(_seconds(cmd, env)))
            train, wall = seconds[name][-1]
            print(
                f"round {r + 1}/{args.repeat}  {name:<42} {train:6.2f} s training, "
                f"{wall:6.2f} s in all",
                flush=True,
            )
    best = {k: [min(s[i] for s in v) for i in (0, 1)] for k, v in seconds.items()}
    one = best["1 process"]
    ratios = {k: [v[i] / one[i] for i in (0, 1)] for k, v in best.items()}
    default = ratios["2 ranks, cores shared (default)"]
    info, cmd = machine(), command_line("benchmarks.mpi_threads", argv)
    report = {
        "machine": info,
        "command": cmd,
        "job": " ".join(job[2:]),
        "seconds": seconds,
        "best": best,
        "ratio_to_1_process": ratios,
        "columns": ["training", "whole command"],
        "target": TARGET,
        "met": default[1] <= TARGET,
    }
    lines = [
        f"# Threads per MPI rank: `bpgpu {' '.join(job[3:])}` on 1 process and 2 ranks",
        "",
        provenance(info, cmd),
        "",
        "Seconds (best of the rounds, all in the JSON) of training, as the command prints "
        "it, and of the whole command; the ratio to one process (lower is better).",
        "",
        "| run | s training | s in all | ratio, training | ratio, in all |",
        "|---|---|---|---|---|",
        *(
            f"| {k} | {v[0]:.2f} | {v[1]:.2f} | {ratios[k][0]:.2f}x | {ratios[k][1]:.2f}x |"
            for k, v in best.items()
        ),
        "",
        f"2 ranks (default) over 1 process, whole command: {default[1]:.2f}x (target <= "
        f"{TARGET:.2f}x: {'met' if default[1] <= TARGET else 'NOT met'})",
    ]
    write_report(os.path.join(args.out, "mpi-threads-cpu"), report, "\n".join(lines) + "\n")
    print("\n".join(lines[-(len(best) + 3) :]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
