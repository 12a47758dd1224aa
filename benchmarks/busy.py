"""The default command on a busy laptop: ``bpgpu train`` with and without other work.

    python -m benchmarks.busy [--repeat 3] [--out DIR]

Runs ``bpgpu train`` (the embedded digits, the README's first command, without the plot
and checkpoint) on the NumPy backend, idle and while one busy process per core competes
for the CPU, each with bpgpu's BLAS thread choice (``BPGPU_BLAS_THREADS=auto``: one
thread for a network this small) and with every core's thread (``BPGPU_BLAS_THREADS`` set
to the core count, what NumPy does by itself). Reports the training time the command
prints and the wall time of the whole command, median of ``--repeat`` runs, to
``busy-cpu.json`` and ``.md``. The competing processes are ended after each run.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

from .runner import command_line, machine, provenance, write_report

SPIN = "import time\nend = time.time() + 600\nwhile time.time() < end: pass\n"


def one_run(threads: str, busy: int) -> tuple[float, float]:
    """(training seconds as printed, wall seconds of the command)."""
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(busy)]
    try:
        time.sleep(0.5 if busy else 0)  # let the competitors take their cores
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "BPGPU_BLAS_THREADS": threads, "BPGPU_BACKEND": "numpy"}
            t0 = time.perf_counter()
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bpgpu",
                    "train",
                    "--no-plot",
                    "--no-checkpoint",
                    "-o",
                    os.path.join(tmp, "m.npz"),
                ],
                capture_output=True,
                text=True,
                env=env,
                timeout=900,
                check=True,
            )
            wall = time.perf_counter() - t0
    finally:
        for p in spinners:
            p.kill()
            p.wait()
    trained = float(re.search(r"trained \d+ epochs in ([\d.]+) s", out.stdout).group(1))
    return trained, wall


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.busy", description=__doc__.split("\n")[0]
    )
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", default="bench-results")
    args = p.parse_args(argv)
    cores = os.cpu_count() or 1
    rows = []
    for busy in (0, cores):
        for threads in ("auto", str(cores)):
            runs = [one_run(threads, busy) for _ in range(args.repeat)]
            row = {
                "load": f"{busy} busy processes" if busy else "idle",
                "blas_threads": threads,
                "train_s": statistics.median(r[0] for r in runs),
                "wall_s": statistics.median(r[1] for r in runs),
                "runs": runs,
            }
            rows.append(row)
            print(
                f"{row['load']:<18} BPGPU_BLAS_THREADS={threads:<5} train {row['train_s']:7.2f} s"
                f"  command {row['wall_s']:7.2f} s",
                flush=True,
            )
    report = {
        "machine": machine(),
        "command": command_line("benchmarks.busy", argv),
        "rows": rows,
    }
    m = report["machine"]
    lines = [
        "# `bpgpu train` (digits, NumPy) idle and under load",
        "",
        provenance(m, report["command"]),
        "",
        "Median of the runs; 'train' is the time the command prints for its 50 epochs,",
        "'command' the whole command (start-up, data, training, evaluation, save).",
        "",
        "| load | BPGPU_BLAS_THREADS | train (s) | command (s) |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r['load']} | {r['blas_threads']} | {r['train_s']:.2f} | {r['wall_s']:.2f} |"
        for r in rows
    ]
    write_report(os.path.join(args.out, "busy-cpu"), report, "\n".join(lines) + "\n")
    print(f"written: {args.out}/busy-cpu.json, busy-cpu.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
