"""First-call cost of a backend: kernel compilation (CuPy) or other one-time set-up.

For every hidden activation, dtype and a few optimizers, a network runs the same call
twice; the first call's time minus the second's is what the first use costs (CuPy
compiles its fused kernels then, unless its on-disk cache has them: run with a fresh
``CUPY_CACHE_DIR`` to see a user's first run). Each row also says how many kernels the
first call compiled (new files in that cache).

    python -m bpgpu.bench.compile_time [--backend cupy] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np


def cached_kernels() -> int:
    """How many compiled modules CuPy's on-disk kernel cache holds (``CUPY_CACHE_DIR``,
    else ``~/.cupy/kernel_cache``): one more for each kernel a call had to compile."""
    folder = os.environ.get("CUPY_CACHE_DIR") or os.path.expanduser("~/.cupy/kernel_cache")
    return sum(len(files) for _, _, files in os.walk(folder))


def _timed(backend, fn) -> float:
    backend.synchronize()
    t0 = time.perf_counter()
    fn()
    backend.synchronize()
    return time.perf_counter() - t0


def measure(backend_name: str) -> list[dict]:
    """One row per (dtype, activation, call): first and second call, in seconds."""
    import bpgpu
    from bpgpu.activations import ACTIVATIONS

    be = bpgpu.get_backend(backend_name)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(256, 32)), rng.integers(0, 10, size=256)
    rows = []
    for dtype in be.dtypes:
        for hidden in [n for n, a in ACTIVATIONS.items() if a.hidden_ok]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # binary_step's zero-gradient warning
                net = bpgpu.MLP([32, 64, 10], hidden, backend=be, dtype=dtype, seed=0)
            calls = {
                "gradients": lambda net=net: net.gradients(X, y),
                "fit sgd": lambda net=net: net.fit(X, y, 1, batch_size=64, optimizer="sgd"),
                "fit adam": lambda net=net: net.fit(X, y, 1, batch_size=64, optimizer="adam"),
            }
            for what, fn in calls.items():
                before = cached_kernels()
                first = _timed(be, fn)
                compiled = cached_kernels() - before
                second = _timed(be, fn)
                rows.append(
                    {
                        "dtype": dtype,
                        "activation": hidden,
                        "call": what,
                        "first_s": first,
                        "second_s": second,
                        "first_use_s": max(0.0, first - second),
                        "kernels_compiled": compiled,
                    }
                )
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bpgpu.bench.compile_time", description=__doc__)
    p.add_argument("--backend", default="cupy")
    p.add_argument("--out", default=None, help="folder for compile-<backend>.json")
    args = p.parse_args(argv)
    import bpgpu

    try:
        rows = measure(args.backend)
    except bpgpu.BackendUnavailable as e:
        print(f"{args.backend}: {e}", file=sys.stderr)
        return 1
    total = sum(r["first_use_s"] for r in rows)
    for r in rows:
        print(
            f"{r['dtype']:8s} {r['activation']:12s} {r['call']:9s} first {r['first_s']:8.3f} s"
            f"  then {r['second_s']:8.4f} s  {r['kernels_compiled']:3d} kernels compiled"
        )
    compiled = sum(r["kernels_compiled"] for r in rows)
    print(f"first-use cost, all calls together: {total:.2f} s, {compiled} kernels compiled")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        tag = args.backend.replace(":", "-")
        path = os.path.join(args.out, f"compile-{tag}.json")
        with open(path, "w") as f:
            json.dump({"backend": args.backend, "total_first_use_s": total, "rows": rows}, f)
        print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
