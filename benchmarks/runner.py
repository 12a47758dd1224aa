"""Run every peer on every workload in one process and write the results.

    python -m benchmarks [--workloads small,mnist] [--min-time 0.5] [--repeat 12] [--out DIR]

Writes ``DIR/bench-<tag>.json`` and ``.md`` (and a ``.png`` bar chart of the targets
when matplotlib is installed). Steps/s is the best of ``--repeat`` timed rounds, each of
whole epochs lasting at least ``--min-time`` seconds, after one warm-up epoch; the rounds
go through all peers in turn so that the machine's noise falls on all of them alike.
The median round is reported beside the best, to show how noisy the machine was.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time
import tracemalloc

from bpgpu.backends import names

from . import memory
from . import peers as P
from .workloads import WORKLOADS

# bpgpu's peers, one per registry backend that trains at speed (array-api-strict is a
# compliance check, MPS is not measured here)
CPU_BACKENDS = tuple(n for n in names(gpu=False) if n not in ("array_api_strict", "torch:mps"))
GPU_BACKENDS = tuple(names(gpu=True))


def _traced_peak(peer: P.Peer) -> int:
    """Peak bytes NumPy allocated during one more (untimed) epoch, seen by tracemalloc.

    Only NumPy reports its buffers to tracemalloc, so torch's CPU peers get no number.
    """
    tracemalloc.start()
    try:
        peer.train(1)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


NOMETRICS = ("numpy", "cupy", "jax", "jax:cuda")  # also run without per-batch metrics
GRAPHS = ("cupy", "torch:cuda")  # also run with fit(graphs=True)
MIXED = {  # also run in these mixed precisions
    "torch": ("bfloat16",),
    "jax": ("bfloat16",),
    "torch:cuda": ("bfloat16",),
    "jax:cuda": ("bfloat16",),
    "cupy": ("float16",),
}


def known_peer_names() -> list[str]:
    """Every peer name the runner knows, whether or not it can run on this machine."""
    names = []
    short = {"bfloat16": "bf16", "float16": "fp16"}
    for b in CPU_BACKENDS + GPU_BACKENDS:
        names += [f"bpgpu[{b}]"] + ([f"bpgpu-nometrics[{b}]"] if b in NOMETRICS else [])
        names += [f"bpgpu-graphs[{b}]"] if b in GRAPHS else []
        names += [f"bpgpu-{short[p]}[{b}]" for p in MIXED.get(b, ())]
    names += ["numpy-loop", "gemm-floor[numpy:cpu]", "torch-eager[cpu]", "gemm-floor[torch:cpu]"]
    names += ["torch-eager[cuda]", "torch-compile[cuda]", "gemm-floor[torch:cuda]"]
    names += ["gemm-floor[cupy:cuda]"]
    names += ["jax-scan[cpu]", "jax-scan[cuda]"]
    return names + ["sklearn-mlp"]


def select_peers(names: list[str]) -> list[P.Peer]:
    """The peers ``names`` asks for (full names, or families such as ``bpgpu``), or a
    ValueError naming what is unknown (with the valid names) or cannot run here (why)."""
    known = known_peer_names()
    families = {n.split("[")[0] for n in known}
    unknown = [n for n in names if n not in known and n not in families]
    if unknown:
        raise ValueError(
            f"unknown peer {unknown[0]!r}; valid peers: {', '.join(known)} "
            f"(or a family: {', '.join(sorted(families))})"
        )
    found = available_peers(names)
    missing = [n for n in names if not any(n in (p.name, p.name.split("[")[0]) for p in found)]
    if missing:
        raise ValueError(
            f"peer {missing[0]!r} cannot run here (its library or device is missing); "
            f"available here: {', '.join(p.name for p in available_peers(None))}"
        )
    return found


def available_peers(names: list[str] | None) -> list[P.Peer]:
    """Every peer that can run here (or those named)."""
    import bpgpu

    found: list[P.Peer] = []
    for b in CPU_BACKENDS + GPU_BACKENDS:
        try:
            bpgpu.get_backend(b)
        except bpgpu.BackendUnavailable:
            continue
        found.append(P.Bpgpu(b))
        if b in NOMETRICS:  # the same work as the hand-written loops
            found.append(P.Bpgpu(b, metrics=False))
        if b in GRAPHS:  # CUDA-graph replay (opt-in until a GPU run proves it)
            found.append(P.Bpgpu(b, graphs=True))
        for precision in MIXED.get(b, ()):  # mixed precision, float32 master weights
            found.append(P.Bpgpu(b, precision=precision))
    found += [P.NumpyLoop(), P.GemmFloor("numpy")]
    try:
        import torch

        found += [P.TorchEager("cpu"), P.GemmFloor("torch", "cpu")]
        if torch.cuda.is_available():
            found += [P.TorchEager("cuda"), P.TorchCompile("cuda"), P.GemmFloor("torch", "cuda")]
    except ImportError:
        pass
    if any(p.name == "bpgpu[cupy]" for p in found):
        found.append(P.GemmFloor("cupy", "cuda"))
    if any(p.name == "bpgpu[jax]" for p in found):
        found.append(P.JaxScan("cpu"))
    if any(p.name == "bpgpu[jax:cuda]" for p in found):
        found.append(P.JaxScan("cuda"))
    try:
        import sklearn  # noqa: F401

        found.append(P.Sklearn())
    except ImportError:
        pass
    if names:
        found = [p for p in found if p.name in names or p.name.split("[")[0] in names]
    return found


def _say(progress, text: str) -> None:
    if progress is not None:
        progress(text)


def measure(
    peers: list[P.Peer], w, X, y, min_time: float, repeat: int, progress=None
) -> list[dict]:
    """Steps/s of every peer: warm-up, then ``repeat`` rounds that time each peer in
    turn, so that the machine's slow and fast moments fall on all peers alike; the
    best round of each peer counts, and the median round is kept to show the noise.
    ``progress(text)``, when given, hears what is running and what is left."""
    epochs, gpu_peak, spent = {}, {}, {}
    first: dict[str, float] = {}  # the first epoch: compiling, capturing, allocating
    for i, peer in enumerate(peers, start=1):
        _say(progress, f"[{w.name}] warm-up {i}/{len(peers)}: {peer.name}")
        with memory.window(peer) as mem:  # this peer's own device memory, no one else's
            peer.prepare(w, X, y)
            t0 = time.perf_counter()
            peer.train(1)  # warm-up: allocations, kernel compilation (JAX: seconds), caches
            first[peer.name] = time.perf_counter() - t0
            t0 = time.perf_counter()
            peer.train(1)  # a warm epoch: what sets the epochs per round
            elapsed = time.perf_counter() - t0
        gpu_peak[peer.name] = mem.get("peak")
        epochs[peer.name] = max(1, math.ceil(min_time / max(elapsed, 1e-9)))
        spent[peer.name] = epochs[peer.name] * elapsed
    per_round = sum(spent.values())
    rounds: dict[str, list[float]] = {name: [] for name in epochs}
    for r in range(repeat):
        left = (repeat - r) * per_round
        _say(progress, f"[{w.name}] round {r + 1}/{repeat}, about {left:.0f} s left here")
        t_round = time.perf_counter()
        for peer in peers:
            t0 = time.perf_counter()
            peer.train(epochs[peer.name])
            rounds[peer.name].append(time.perf_counter() - t0)
        per_round = time.perf_counter() - t_round
    best = {name: min(times) for name, times in rounds.items()}
    rows = []
    for peer in peers:
        peak = gpu_peak[peer.name]
        if peak is None and peer.library == "numpy":
            peak = _traced_peak(peer)
        steps = epochs[peer.name] * w.steps_per_epoch
        rows.append(
            {
                "peer": peer.name,
                "library": peer.library,
                "device": peer.device,
                "steps_per_s": steps / best[peer.name],
                "median_steps_per_s": steps / statistics.median(rounds[peer.name]),
                "steps": steps,
                "seconds": best[peer.name],
                "first_epoch_s": first[peer.name],
                "peak_bytes": peak,
            }
        )
    return rows


def ratios(rows: list[dict], w) -> None:
    """Add, to each bpgpu row, its ratio to every peer and its fraction of its floor."""
    by = {r["peer"]: r for r in rows}
    for r in rows:
        if not r["peer"].startswith("bpgpu"):
            continue
        r["ratio"] = {o["peer"]: r["steps_per_s"] / o["steps_per_s"] for o in rows if o is not r}
        r["median_ratio"] = {
            o["peer"]: r["median_steps_per_s"] / o["median_steps_per_s"] for o in rows if o is not r
        }
        lib = "torch" if r["library"] == "torch" else r["library"]
        floor = by.get(f"gemm-floor[{lib}:{r['device']}]")
        if floor:
            r["floor_fraction"] = r["steps_per_s"] / floor["steps_per_s"]
            r["median_floor_fraction"] = r["median_steps_per_s"] / floor["median_steps_per_s"]
            r["floor_gflops"] = w.gemm_flops() * floor["steps_per_s"] / 1e9


TARGETS = [
    # (workload, bpgpu peer, other, minimum ratio, what)
    (
        "small",
        "bpgpu[numpy]",
        "numpy-loop",
        0.85,
        "CPU numpy with per-batch loss and accuracy (the loop computes neither) >= 0.85x "
        "hand-written NumPy",
    ),
    (
        "small",
        "bpgpu-nometrics[numpy]",
        "numpy-loop",
        1.0,
        "CPU numpy without per-batch metrics (the loop's work) >= 1.0x hand-written NumPy",
    ),
    ("small", "bpgpu[numpy]", "torch-eager[cpu]", 3.0, "CPU numpy >= 3x PyTorch eager"),
    ("mnist", "bpgpu[numpy]", "floor", 0.9, "CPU numpy >= 0.9x GEMM floor"),
    ("large", "bpgpu[numpy]", "floor", 0.9, "CPU numpy >= 0.9x GEMM floor"),
    ("mnist", "best-cpu", "torch-eager[cpu]", 1.0, "best CPU bpgpu >= 1.0x PyTorch eager"),
    ("large", "best-cpu", "torch-eager[cpu]", 1.0, "best CPU bpgpu >= 1.0x PyTorch eager"),
    ("small", "bpgpu[cupy]", "torch-eager[cuda]", 2.0, "CuPy >= 2x PyTorch eager CUDA"),
    (
        "small",
        "bpgpu-nometrics[cupy]",
        "torch-eager[cuda]",
        2.0,
        "CuPy without per-batch metrics >= 2x PyTorch eager CUDA",
    ),
    ("mnist", "bpgpu[cupy]", "torch-eager[cuda]", 1.0, "CuPy >= 1.0x PyTorch eager CUDA"),
    ("large", "bpgpu[cupy]", "torch-eager[cuda]", 1.0, "CuPy >= 1.0x PyTorch eager CUDA"),
    ("large", "bpgpu[cupy]", "floor", 0.7, "CuPy >= 70% of the FP32 GEMM rate"),
    ("small", "bpgpu[jax]", "numpy-loop", 2.0, "JAX CPU >= 2x hand-written NumPy"),
    ("small", "bpgpu[jax]", "jax-scan[cpu]", 0.8, "JAX CPU >= 0.8x a hand-written jitted epoch"),
    ("small", "bpgpu[jax:cuda]", "torch-eager[cuda]", 3.0, "JAX CUDA >= 3x PyTorch eager CUDA"),
    ("mnist", "bpgpu[jax:cuda]", "bpgpu[cupy]", 1.0, "JAX CUDA >= 1.0x bpgpu[cupy]"),
    ("large", "bpgpu[jax:cuda]", "bpgpu[cupy]", 1.0, "JAX CUDA >= 1.0x bpgpu[cupy]"),
]


def check_targets(results: dict) -> list[dict]:
    out = []
    for wname, who, other, need, what in TARGETS:
        rows = {r["peer"]: r for r in results.get(wname, [])}
        if who == "best-cpu":
            cpu = [
                r for r in rows.values() if r["peer"].startswith("bpgpu[") and r["device"] == "cpu"
            ]
            row = max(cpu, key=lambda r: r["steps_per_s"]) if cpu else None
        else:
            row = rows.get(who)
        if row is None or (other != "floor" and other not in rows):
            continue
        got = row.get("floor_fraction") if other == "floor" else row["ratio"][other]
        median = (
            row.get("median_floor_fraction") if other == "floor" else row["median_ratio"][other]
        )
        if got is None:
            continue
        out.append(
            {
                "workload": wname,
                "bpgpu": row["peer"],
                "versus": other,
                "target": need,
                "measured": got,
                "measured_medians": median,
                "met": got >= need,
                "what": what,
            }
        )
    return out


def machine() -> dict:
    import numpy

    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "env": {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS", "OMP", "MKL"))},
    }
    import bpgpu

    info["bpgpu"] = bpgpu.__version__
    for mod in ("torch", "cupy", "sklearn"):
        try:
            info[mod] = __import__(mod).__version__
        except ImportError:
            pass
    for row in bpgpu.list_backends():
        if row["available"] and row["name"] in GPU_BACKENDS:
            info.setdefault("gpu", row["device"])
    return info


def write_report(stem: str, report: dict, text: str) -> None:
    """``stem.json`` (the whole report) and ``stem.md`` (``text``), each written atomically
    (:func:`bpgpu.io.write_text`: an interrupted run leaves no half-written file); the
    folder is created."""
    from bpgpu.io import write_text

    os.makedirs(os.path.dirname(stem) or ".", exist_ok=True)
    write_text(stem + ".json", json.dumps(report, indent=1))
    write_text(stem + ".md", text)


def paired(rows: list[dict], counterpart, key: str) -> list[tuple[dict, dict]]:
    """Each row against its counterpart in the same run: ``counterpart(name)`` is the
    other peer's name, or None for a row that is itself a counterpart. Sets ``r[key]``
    (best rounds' ratio) and ``r[key + "_median"]``; returns ``(row, counterpart)``."""
    by = {r["peer"]: r for r in rows}
    pairs = []
    for r in rows:
        name = counterpart(r["peer"])
        if name is None:
            continue
        other = by[name]
        r[key] = r["steps_per_s"] / other["steps_per_s"]
        r[f"{key}_median"] = r["median_steps_per_s"] / other["median_steps_per_s"]
        pairs.append((r, other))
    return pairs


def pair_lines(workload: str, pairs: list[tuple[dict, dict]], key: str) -> list[str]:
    """Markdown rows of :func:`paired`'s pairs: workload, peer, both rates, the ratio
    (of medians in brackets)."""
    return [
        f"| {workload} | {r['peer']} | {r['steps_per_s']:,.1f} | {o['steps_per_s']:,.1f} "
        f"| {r[key]:.3f} ({r[key + '_median']:.3f}) |"
        for r, o in pairs
    ]


def command_line(module: str, argv: list[str] | None) -> str:
    """The command that wrote a results file: ``python -m module`` and its arguments
    (``argv``, or this process's own)."""
    return f"python -m {module} " + " ".join(argv if argv is not None else sys.argv[1:])


def provenance(info: dict, command: str) -> str:
    """The line every results file starts with: when, on what, by which command."""
    return f"{info['date']}; {info['cpu']}, {info['cores']} cores; `{command}`"


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"# bpgpu benchmarks, {m['date']}",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores" + (f", GPU {m['gpu']}" if "gpu" in m else ""),
        "; ".join(
            f"{k} {m[k]}"
            for k in ("python", "numpy", "torch", "cupy", "sklearn", "bpgpu")
            if k in m
        ),
        f"Command: `{report['command']}`",
        "",
    ]
    for wname, rows in report["results"].items():
        w = WORKLOADS[wname]
        lines += [f"## {wname}: {'-'.join(map(str, w.sizes))}, batch {w.batch}, float32", ""]
        lines += [
            "| peer | steps/s | median round | peak MiB (own) | fraction of floor "
            "| ratios (bpgpu / peer) |",
            "|---|---|---|---|---|---|",
        ]
        for r in rows:
            mem = "-" if r["peak_bytes"] is None else f"{r['peak_bytes'] / 2**20:.1f}"
            frac = f"{r['floor_fraction']:.2f}" if "floor_fraction" in r else ""
            rat = ", ".join(f"{k} {v:.2f}x" for k, v in r.get("ratio", {}).items())
            lines.append(
                f"| {r['peer']} | {r['steps_per_s']:,.1f} | {r['median_steps_per_s']:,.1f} "
                f"| {mem} | {frac} | {rat} |"
            )
        lines.append("")
    lines += [
        "## Targets",
        "",
        "Measured: the ratio of best rounds (the verdict); in brackets, of median rounds.",
        "",
        "| workload | bpgpu | versus | target | measured | met |",
        "|---|---|---|---|---|---|",
    ]
    for t in report["targets"]:
        lines.append(
            f"| {t['workload']} | {t['bpgpu']} | {t['versus']} | >= {t['target']} "
            f"| {t['measured']:.2f} ({t['measured_medians']:.2f}) | {'yes' if t['met'] else 'NO'} |"
        )
    return "\n".join(lines) + "\n"


def chart(report: dict, path: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    labels, values = [], []
    for t in report["targets"]:
        labels.append(f"{t['workload']}: {t['bpgpu']}\nvs {t['versus']}")
        values.append(t["measured"] / t["target"])
    if not values:
        return False
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(values) + 1.5))
    colors = ["tab:green" if v >= 1 else "tab:red" for v in values]
    ax.barh(range(len(values)), values, color=colors)
    ax.axvline(1.0, color="black", lw=1)
    ax.set_yticks(range(len(values)), labels, fontsize=8)
    ax.set_xlabel("measured / target (>= 1 meets the target)")
    ax.set_title("bpgpu performance targets")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _epilog() -> str:
    lines = ["workloads (float32, ReLU, softmax cross-entropy, plain SGD):"]
    for w in WORKLOADS.values():
        lines.append(
            f"  {w.name:<6} {'-'.join(map(str, w.sizes))}, batch {w.batch}, {w.samples} samples"
        )
    lines += ["", "peers (those whose library or device is missing here are left out):"]
    lines += [f"  {n}" for n in known_peer_names()]
    lines += ["", "a family (bpgpu, torch-eager, gemm-floor, ...) names all its members"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from bpgpu.cli.parser import Parser  # usage errors on one line, as every bpgpu command

    p = Parser(
        prog="bpgpu bench",
        description=__doc__.split("\n")[0],
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--workloads", default="small,mnist,large", help="comma-separated (all)")
    p.add_argument("--peers", default=None, help="comma-separated peer names (default: all)")
    # many short rounds: on a shared machine the best of them is more often a quiet one
    # (mnist's fraction of the floor read 0.79-0.99 with 5 rounds of 2 s, 0.85-0.88
    # with 15 of 0.3 s)
    p.add_argument("--min-time", type=float, default=0.5, help="seconds per timed run (0.5)")
    p.add_argument("--repeat", type=int, default=12, help="timed rounds per peer (12)")
    p.add_argument(
        "--out",
        default="bench-results",
        help="folder for the results (bench-results; the committed ones are in "
        "benchmarks/results and are written only when named here)",
    )
    p.add_argument("--tag", default=None, help="file name tag (default: cpu or the GPU)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    args = p.parse_args(argv)
    if args.min_time <= 0 or args.repeat < 1:
        p.error("--min-time must be > 0 and --repeat >= 1")
    names = [n for n in args.workloads.split(",") if n]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        p.error(f"unknown workload {unknown[0]!r}; choose from {', '.join(WORKLOADS)}")
    try:
        peers = select_peers(args.peers.split(",")) if args.peers else available_peers(None)
    except ValueError as e:
        p.error(str(e))
    from bpgpu.io import prepare_output

    try:  # the results folder, checked before minutes of measuring
        prepare_output(os.path.join(args.out, "bench.json"), "results")
    except OSError as e:
        p.error(str(e))

    def progress(text: str) -> None:
        print(f"bench: {text}", file=sys.stderr, flush=True)

    results = {}
    for k, name in enumerate(names, start=1):
        w = WORKLOADS[name]
        X, y = w.data()
        if not args.quiet:
            progress(f"workload {k}/{len(names)}: {name}, {len(peers)} peers")
        rows = measure(peers, w, X, y, args.min_time, args.repeat, None if args.quiet else progress)
        for row in rows:
            print(f"{name:>6} {row['peer']:<28} {row['steps_per_s']:>12,.1f} steps/s", flush=True)
        ratios(rows, w)
        results[name] = rows
    info = machine()
    report = {
        "machine": info,
        "results": results,
        "command": command_line("benchmarks", argv),
    }
    report["targets"] = check_targets(results)
    tag = args.tag or ("gpu" if "gpu" in info else "cpu")
    base = os.path.join(args.out, f"bench-{tag}")
    text = markdown(report)
    write_report(base, report, text)
    drew = chart(report, base + ".png")
    print("\n" + text)
    print(f"written: {base}.json, {base}.md" + (f", {base}.png" if drew else ""))
    return 0
