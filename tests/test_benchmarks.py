"""The benchmark runner works end to end (speed targets live in the results, not here)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def test_bench_runs_and_writes_ratios(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bpgpu",
            "bench",
            "--workloads",
            "small",
            "--peers",
            "bpgpu,numpy-loop,gemm-floor",
            "--min-time",
            "0.05",
            "--repeat",
            "1",
            "--out",
            str(tmp_path),
            "--tag",
            "test",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "bench-test.json").read_text())
    rows = {r["peer"]: r for r in report["results"]["small"]}
    ours = rows["bpgpu[numpy]"]
    assert ours["steps_per_s"] > 0 and 0 < ours["floor_fraction"]
    assert ours["ratio"]["numpy-loop"] == ours["steps_per_s"] / rows["numpy-loop"]["steps_per_s"]
    assert 0 < ours["median_steps_per_s"] <= ours["steps_per_s"]  # the best round is the best
    assert report["machine"]["numpy"] and report["command"].startswith("python -m benchmarks")
    target = next(t for t in report["targets"] if t["versus"] == "numpy-loop")
    assert target["met"] == (target["measured"] >= 1.0)
    assert "| bpgpu[numpy] |" in (tmp_path / "bench-test.md").read_text()


def test_bench_refuses_an_unknown_workload():
    out = subprocess.run(
        [sys.executable, "-m", "bpgpu", "bench", "--workloads", "huge"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "unknown workload 'huge'" in out.stderr


def test_launch_counter_says_what_it_needs_without_a_gpu(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is here: the gpu run counts for real")
    out = subprocess.run(
        [sys.executable, "-m", "bpgpu.bench.launches", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and "no CUDA device" in out.stdout
    assert not list(tmp_path.iterdir())  # nothing half-written


@pytest.mark.gpu
def test_launch_counter_sees_cupy_kernels():
    """CUPTI through torch.profiler records CuPy's launches too (else the count is 0)."""
    from conftest import load_backend

    from bpgpu.bench import launches, peers
    from bpgpu.bench.workloads import WORKLOADS

    load_backend("cupy")
    w = WORKLOADS["small"]
    X, y = w.data()
    n = launches.count(peers.Bpgpu("cupy"), w, X, y)
    assert 5 < n < 500, n
