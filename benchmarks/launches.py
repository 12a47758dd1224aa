"""GPU kernel launches per training step, counted by the CUDA profiler.

torch.profiler records every kernel the process launches through CUPTI, whichever
library launched it, so one counter serves bpgpu on CuPy, bpgpu on torch and PyTorch
eager alike. Each peer trains one warm-up epoch, then one epoch under the profiler;
the kernels (memory copies and sets left out) divided by the epoch's steps is the
number per step, epoch-level work (the permutation, the weight snapshot, the one loss
read) included. Two epochs are profiled, so the GPU's idle time between them (the fit
reads the epoch's numbers, then prepares the next one while the device waits) is in
the timeline: the idle time between kernels per step and the longest idle stretch are
reported beside the kernel time.

    python -m bpgpu.bench.launches [--workloads small,mnist,large] [--out DIR]
                                   [--peers a,b] [--stem launches-gpu]

``--peers bpgpu[jax:cuda],jax-scan[cuda] --stem launches-gpu-jax``: JAX's programs, if
the profiler sees XLA's kernels (each peer's count says; 0 means it does not).

Needs torch with CUDA; without it, says so and exits 0 (nothing to count).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
from dataclasses import dataclass

from . import peers as P
from .runner import available_peers
from .workloads import WORKLOADS

GPU_PEERS = (
    "bpgpu[cupy]",
    "bpgpu-graphs[cupy]",
    "bpgpu-nometrics[cupy]",
    "bpgpu[torch:cuda]",
    "bpgpu-graphs[torch:cuda]",
    "torch-eager[cuda]",
)
EPOCHS = 2  # profiled: one epoch boundary inside the timeline


def gpu_peers(names=GPU_PEERS) -> list[P.Peer]:
    """The GPU peers that can run here: the runner's own list, cut to ``names``."""
    return available_peers(list(names))


@dataclass
class Profiled:
    """One profiled epoch of a peer, per step: each kernel's launches by name (most
    first), the microseconds the GPU spent in kernels, and the wall-clock microseconds.
    ``busy`` < 1 on a workload whose products should fill the GPU says the host (Python,
    launches, a wait) is the limit, not the device."""

    names: dict[str, float]
    kernel_us: float
    wall_us: float
    idle_us: float = 0.0  # per step: time between one kernel's end and the next's start
    longest_idle_us: float = 0.0  # the longest such stretch (an epoch's end, a sync)

    @property
    def launches(self) -> float:
        return sum(self.names.values())

    @property
    def busy(self) -> float:
        return self.kernel_us / self.wall_us if self.wall_us else 0.0


def idle(spans: list[tuple[float, float]]) -> tuple[float, float]:
    """``(total, longest)`` time in which no kernel ran, between the first kernel's start
    and the last one's end, from kernels' ``(start, end)`` (any order; kernels on several
    streams may overlap)."""
    total = longest = 0.0
    end = None
    for a, b in sorted(spans):
        if end is not None and a > end:
            total += a - end
            longest = max(longest, a - end)
        end = b if end is None else max(end, b)
    return total, longest


def profile_epoch(peer: P.Peer, w, X, y) -> Profiled:
    """Train ``peer`` one warm-up epoch of workload ``w``, then ``EPOCHS`` under the
    profiler."""
    import time

    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    peer.prepare(w, X, y)
    peer.train(1)  # compilation, allocations, cuBLAS handles
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        t0 = time.perf_counter()
        peer.train(EPOCHS)  # each peer waits for its device at the end of train
        wall = time.perf_counter() - t0
    found = [
        e
        for e in prof.events()
        if e.device_type == DeviceType.CUDA and not e.name.startswith(("Memcpy", "Memset"))
    ]
    steps = w.steps_per_epoch * EPOCHS
    names = collections.Counter(e.name for e in found)
    gaps, longest = idle([(e.time_range.start, e.time_range.end) for e in found])
    return Profiled(
        {name: n / steps for name, n in names.most_common()},
        sum(e.time_range.elapsed_us() for e in found) / steps,
        wall * 1e6 / steps,
        gaps / steps,
        longest,
    )


def count(peer: P.Peer, w, X, y) -> float:
    """Kernels per step of ``peer`` over one profiled epoch of workload ``w``."""
    return profile_epoch(peer, w, X, y).launches


def busy_md(profiled: dict[str, dict[str, Profiled]]) -> list[str]:
    """Markdown lines: per workload and peer, microseconds in kernels and on the clock
    per step, and their ratio (how busy the host kept the GPU)."""
    lines = [
        "",
        f"GPU time in kernels against wall-clock time per step, {EPOCHS} epochs under the "
        "profiler (which slows the host somewhat); idle: the GPU's time between one "
        "kernel's end and the next one's start, per step, and the longest such stretch "
        "(at an epoch's end when the fit waits there):",
        "",
        "| workload | peer | kernels (us/step) | wall (us/step) | GPU busy "
        "| idle (us/step) | longest idle (us) |",
        "|---|---|---|---|---|---|---|",
    ]
    for wname, row in profiled.items():
        for peer, t in row.items():
            lines.append(
                f"| {wname} | {peer} | {t.kernel_us:.1f} | {t.wall_us:.1f} | {t.busy:.0%} "
                f"| {t.idle_us:.1f} | {t.longest_idle_us:.0f} |"
            )
    return lines


def by_name_md(profiled: dict[str, dict[str, Profiled]], top: int = 12) -> list[str]:
    """Markdown lines: per workload and peer, the kernels launched most per step (the
    names say which operation each launch is, e.g. a gather or a GEMM)."""
    lines = []
    for wname, row in profiled.items():
        for peer, got in row.items():
            names = got.names
            lines += ["", f"### {wname}, {peer}: kernels per step, most first", ""]
            lines += ["| per step | kernel |", "|---|---|"]
            for name, n in list(names.items())[:top]:
                short = name if len(name) <= 90 else name[:87] + "..."
                lines.append(f"| {n:.2f} | `{short}` |")
            if len(names) > top:
                rest = sum(list(names.values())[top:])
                lines.append(f"| {rest:.2f} | {len(names) - top} other kernels |")
    return lines


def _each(profiled: dict[str, dict[str, Profiled]], what) -> dict:
    """``what(profile)`` per workload and peer, for the JSON file."""
    return {w: {peer: what(t) for peer, t in row.items()} for w, row in profiled.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bpgpu.bench.launches", description=__doc__)
    p.add_argument("--workloads", default="small,mnist,large")
    p.add_argument("--out", default=None, help="folder for STEM.json and STEM.md")
    p.add_argument("--peers", default=",".join(GPU_PEERS), help="peers to profile")
    p.add_argument("--stem", default="launches-gpu", help="name of the result files")
    args = p.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("torch is not installed: no profiler to count kernel launches with")
        return 0
    if not torch.cuda.is_available():
        print("no CUDA device: kernel launches are counted on a GPU only")
        return 0
    profiled: dict[str, dict[str, Profiled]] = {}
    for wname in [n for n in args.workloads.split(",") if n]:
        w = WORKLOADS[wname]
        X, y = w.data()
        for peer in gpu_peers([n for n in args.peers.split(",") if n]):
            got = profiled.setdefault(wname, {})[peer.name] = profile_epoch(peer, w, X, y)
            print(
                f"{wname:6s} {peer.name:24s} {got.launches:8.1f} kernels/step, "
                f"{got.kernel_us:9.1f} us in kernels of {got.wall_us:9.1f} us a step "
                f"(GPU busy {got.busy:.0%}, under the profiler), idle {got.idle_us:.1f} "
                f"us a step, longest {got.longest_idle_us:.0f} us",
                flush=True,
            )
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, f"{args.stem}.json"), "w") as f:
            json.dump(
                {
                    "device": torch.cuda.get_device_name(),
                    "kernels_per_step": _each(profiled, lambda t: t.launches),
                    "by_name": _each(profiled, lambda t: t.names),
                    "time_per_step": _each(
                        profiled,
                        lambda t: {
                            "kernel_us": t.kernel_us,
                            "wall_us": t.wall_us,
                            "idle_us": t.idle_us,
                            "longest_idle_us": t.longest_idle_us,
                        },
                    ),
                },
                f,
            )
        names = sorted({p for row in profiled.values() for p in row})
        lines = [
            f"# Kernel launches per step ({torch.cuda.get_device_name()})",
            "",
            "| workload | " + " | ".join(names) + " |",
            "|---|" + "---|" * len(names),
        ]
        for wname, row in profiled.items():
            cells = " | ".join(f"{row[n].launches:.1f}" if n in row else "-" for n in names)
            lines.append(f"| {wname} | {cells} |")
        lines += busy_md(profiled)
        lines += by_name_md(profiled)
        with open(os.path.join(args.out, f"{args.stem}.md"), "w") as f:
            f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
