"""Streaming from a memory map against the in-memory fit, on one workload.

    python -m benchmarks.stream_bench [--workload mnist] [--epochs 3] [--repeat 3]
                                      [--backend numpy] [--out DIR]

The workload's data are written to a ``.npy`` file; the same network then trains on the
array in memory and on the file (``fit("X.npy", y)``, ``--chunk-mib`` chunks), rounds
alternating. Reports samples/s (best round), the peak memory allocated during a fit
(NumPy: tracemalloc, the "device" is host memory; CuPy and torch CUDA: the device
allocator's bytes in use, ``benchmarks.memory``; the in-memory array itself is the
caller's and not counted) and whether the weights came out identical. Writes
``stream-cpu.json`` and ``.md`` (another backend: ``stream-<backend>.*``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
import tracemalloc

import numpy as np

from . import memory
from .runner import command_line, machine, provenance, write_report
from .workloads import WORKLOADS


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.stream_bench", description=__doc__.split("\n")[0]
    )
    p.add_argument("--workload", default="mnist", choices=list(WORKLOADS))
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--chunk-mib", type=int, default=8, help="streamed chunk size (8 MiB)")
    p.add_argument("--backend", default="numpy", help="numpy, cupy, torch:cuda, ...")
    p.add_argument("--out", default="bench-results")
    args = p.parse_args(argv)
    import bpgpu
    from bpgpu import streaming

    streaming.CHUNK_BYTES = args.chunk_mib << 20

    w = WORKLOADS[args.workload]
    X, y = w.data()
    folder = tempfile.mkdtemp()
    path = os.path.join(folder, "X.npy")
    np.save(path, X)
    sources = {"in memory": X, "streamed (.npy)": path}
    rates = {k: [] for k in sources}
    peaks, weights = {}, {}
    backend = bpgpu.get_backend(args.backend)
    for r in range(args.repeat + 1):
        for name, src in sources.items():
            net = bpgpu.MLP(list(w.sizes), "relu", "softmax", backend=backend, seed=0)
            kw = dict(batch_size=w.batch, optimizer=bpgpu.optimizers.SGD(lr=w.lr), seed=1)
            if r == 0:  # the first round measures memory (and warms up)
                with _peak(backend) as peak:
                    net.fit(src, y, 1, **kw)
                peaks[name] = peak.get("peak")
                continue
            backend.synchronize()
            t0 = time.perf_counter()
            net.fit(src, y, args.epochs, **kw)
            backend.synchronize()
            rates[name].append(args.epochs * len(X) / (time.perf_counter() - t0))
            weights[name] = net.get_weights()
            print(
                f"round {r}/{args.repeat}  {name:<16} {rates[name][-1]:>10,.0f} samples/s",
                flush=True,
            )
    same = all(np.array_equal(a, b) for a, b in zip(*weights.values()))
    best = {k: max(v) for k, v in rates.items()}
    info = machine()
    cmd = command_line("benchmarks.stream_bench", argv)
    report = {
        "machine": info,
        "command": cmd,
        "workload": args.workload,
        "rates": rates,
        "best": best,
        "peak_bytes": peaks,
        "identical_weights": same,
        "data_bytes": int(X.nbytes),
    }
    lines = [
        f"# Streaming from a memory map vs in memory, {args.workload} "
        f"({X.shape[0]} x {X.shape[1]} float32, {X.nbytes / 2**20:.1f} MiB; backend "
        f"{backend.name}, {backend.info()['device']}; "
        f"{args.chunk_mib} MiB chunks)",
        "",
        provenance(info, cmd),
        "",
        "| source | samples/s (best) | peak memory allocated during a fit (MiB) |",
        "|---|---|---|",
        *(f"| {k} | {best[k]:,.0f} | {_mib(peaks[k])} |" for k in sources),
        "",
        "In memory, the data themselves are allocated before the fit and not counted.",
        "",
        f"Weights after the timed fits identical: {'yes' if same else 'NO'}; streamed "
        f"throughput {best['streamed (.npy)'] / best['in memory']:.2f}x in memory.",
    ]
    tag = "cpu" if backend.name == "numpy" else backend.name.replace(":", "-")
    write_report(os.path.join(args.out, f"stream-{tag}"), report, "\n".join(lines) + "\n")
    print(lines[-1])
    return 0


@contextlib.contextmanager
def _peak(backend):
    """The peak bytes allocated within the block, in the yielded dict's ``"peak"``
    (None where the library does not say)."""
    if backend.library == "numpy":
        out: dict = {}
        tracemalloc.start()
        try:
            yield out
            out["peak"] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    elif backend.library == "cupy":
        import cupy

        with backend.context(), memory.cupy_window(cupy) as out:
            yield out
    elif backend.library == "torch" and backend.where[0] == "cuda":
        with memory.torch_window(backend.torch, backend.device) as out:
            yield out
    else:
        yield {}


def _mib(n) -> str:
    return "not measured" if n is None else f"{n / 2**20:.1f}"


if __name__ == "__main__":
    sys.exit(main())
