"""The benchmark runner works end to end (speed targets live in the results, not here)."""

from __future__ import annotations

import json
import subprocess
import sys


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
