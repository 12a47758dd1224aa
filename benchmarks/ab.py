"""Before and after in one process: this checkout's bpgpu against an earlier commit's.

    python -m benchmarks.ab --base REV [--workloads small,mnist,large] [--backends numpy]
        [--out DIR]

The earlier commit's ``bpgpu/`` and ``backends/`` are taken with ``git archive`` into a
temporary folder as the package ``bpgpu_base`` (its imports rewritten), so both builds
train the same workloads on the same data in one process, interleaved round by round
(:func:`benchmarks.runner.measure`): the ratio ``now / base`` is not blurred by the
machine's drift between two runs. Writes ``ab-<backends>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import io
import os
import re
import subprocess
import sys
import tarfile
import tempfile

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


def base_build(rev: str, root: str = ".") -> object:
    """The bpgpu of commit ``rev`` as the importable package ``bpgpu_base``."""
    data = subprocess.run(
        ["git", "-C", root, "archive", "--format=tar", rev, "bpgpu", "backends"],
        capture_output=True,
        check=True,
    ).stdout
    folder = tempfile.mkdtemp(prefix="bpgpu-ab-")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(folder, filter="data")
    pkg = os.path.join(folder, "bpgpu_base")
    os.rename(os.path.join(folder, "bpgpu"), pkg)
    os.rename(os.path.join(folder, "backends"), os.path.join(pkg, "backends"))
    for dirpath, _, files in os.walk(pkg):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(dirpath, f)
                with open(path) as fh:
                    text = fh.read()
                text = re.sub(r"\bbpgpu\.", "bpgpu_base.", text)
                text = re.sub(r"\bfrom bpgpu import\b", "from bpgpu_base import", text)
                text = re.sub(
                    r"^(\s*)import bpgpu$", r"\1import bpgpu_base as bpgpu", text, flags=re.M
                )
                with open(path, "w") as fh:
                    fh.write(text)
    sys.path.insert(0, folder)
    return importlib.import_module("bpgpu_base")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ab", description=__doc__.split("\n")[0])
    p.add_argument("--base", required=True, help="the earlier commit (any git revision)")
    p.add_argument("--workloads", default="small,mnist,large")
    p.add_argument("--backends", default="numpy")
    p.add_argument("--min-time", type=float, default=0.5)
    p.add_argument("--repeat", type=int, default=12)
    p.add_argument("--out", default="bench-results")
    args = p.parse_args(argv)
    base = base_build(args.base)
    rev = subprocess.run(
        ["git", "rev-parse", "--short", args.base], capture_output=True, text=True, check=True
    ).stdout.strip()
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    peers = []
    for b in args.backends.split(","):
        for metrics in (True, False):
            peers += [P.Bpgpu(b, metrics), P.Bpgpu(b, metrics, lib=base, tag="@base")]
    results, pairs = {}, {}

    def base_of(name):
        return None if "@base" in name else name.replace("bpgpu", "bpgpu@base", 1)

    for name in args.workloads.split(","):
        w = WORKLOADS[name]
        X, y = w.data()
        rows = measure(peers, w, X, y, args.min_time, args.repeat)
        pairs[name] = paired(rows, base_of, "vs_base")
        for r, _ in pairs[name]:
            print(
                f"{name:>6} {r['peer']:<28} {r['vs_base']:.3f}x base "
                f"(medians {r['vs_base_median']:.3f}x)",
                flush=True,
            )
        results[name] = rows
    report = {
        "machine": machine(),
        "base": rev,
        "head": head,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command_line("benchmarks.ab", argv),
        "results": results,
    }
    stem = os.path.join(args.out, f"ab-{args.backends.replace(',', '-').replace(':', '-')}")
    lines = [
        f"# Before/after in one process: {head} (now) vs {rev} (base)",
        "",
        provenance(report["machine"], report["command"]),
        "",
        "Best round of each peer (median round in brackets); rounds interleaved.",
        "",
        "| workload | peer | steps/s now | steps/s base | now / base |",
        "|---|---|---|---|---|",
    ]
    for name, found in pairs.items():
        lines += pair_lines(name, found, "vs_base")
    write_report(stem, report, "\n".join(lines) + "\n")
    print(f"written: {stem}.json, {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
