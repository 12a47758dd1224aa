"""What JAX's look-ahead gains: fit with and without dispatching the next epoch's program
before the epoch's numbers are read, in one process, rounds interleaved.

    python -m benchmarks.lookahead [--backend jax] [--workloads small,mnist,large]
        [--out DIR]

The look-ahead (``Trainer.looks_ahead``) lets an asynchronous device start the next
epoch while the host reads the loss, accuracy and finite check of this one and does the
fit's work between epochs. Without it the device waits for that work once an epoch:
the difference is what the host's per-epoch work costs on the critical path. Writes
``lookahead-<backend>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import peers as P
from .runner import (
    command_line,
    machine,
    measure,
    pair_lines,
    paired,
    provenance,
    write_report,
)
from .workloads import WORKLOADS


class NoLookAhead(P.Bpgpu):
    """bpgpu's fit with the look-ahead switched off (every epoch's numbers read before
    the next epoch is dispatched)."""

    def __init__(self, backend: str, metrics: bool = True):
        super().__init__(backend, metrics, tag="-noahead")

    def train(self, epochs):
        from bpgpu.trainer import Trainer

        real = Trainer.looks_ahead
        Trainer.looks_ahead = lambda self: False
        try:
            super().train(epochs)
        finally:
            Trainer.looks_ahead = real


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.lookahead", description=__doc__.split("\n")[0]
    )
    p.add_argument("--backend", default="jax")
    p.add_argument("--workloads", default="small,mnist")
    p.add_argument("--min-time", type=float, default=0.5)
    p.add_argument("--repeat", type=int, default=8)
    p.add_argument("--out", default="bench-results")
    args = p.parse_args(argv)
    peers = []
    for metrics in (True, False):
        peers += [P.Bpgpu(args.backend, metrics), NoLookAhead(args.backend, metrics)]
    results, pairs = {}, {}

    def without(name):
        return None if "-noahead" in name else name.replace("bpgpu", "bpgpu-noahead", 1)

    for name in args.workloads.split(","):
        w = WORKLOADS[name]
        X, y = w.data()
        rows = measure(peers, w, X, y, args.min_time, args.repeat)
        pairs[name] = paired(rows, without, "vs_off")
        for r, _ in pairs[name]:
            print(f"{name:>6} {r['peer']:<28} {r['vs_off']:.3f}x without look-ahead", flush=True)
        results[name] = rows
    report = {"machine": machine(), "command": command_line("benchmarks.lookahead", argv)}
    report["results"] = results
    lines = [
        f"# JAX's look-ahead: fit with it against fit without ({args.backend})",
        "",
        provenance(report["machine"], report["command"]),
        "",
        "Best round of each peer (median round in brackets); rounds interleaved.",
        "",
        "| workload | peer | steps/s | steps/s without | with / without |",
        "|---|---|---|---|---|",
    ]
    for name, found in pairs.items():
        lines += pair_lines(name, found, "vs_off")
    stem = os.path.join(args.out, f"lookahead-{args.backend.replace(':', '-')}")
    write_report(stem, report, "\n".join(lines) + "\n")
    print(f"written: {stem}.json, {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
