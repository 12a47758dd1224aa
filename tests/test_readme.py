"""The README's commands and example work as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_quick_start_runs_as_written():
    code = blocks("python")[0]
    assert len(code.strip().splitlines()) <= 10
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"BPGPU_BACKEND": "numpy", "PATH": ""},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    name, before, arrow, after, err = out.stdout.split()
    assert name == "numpy" and float(after) < float(before) and float(err) < 1e-6


def test_ci_runs_the_readme_test_command():
    command = blocks("bash")[0].strip().splitlines()[-1]
    test_part = command.split("&&")[-1].strip()
    assert test_part == "python -m pytest -q"
    assert test_part in (ROOT / ".ci" / "run").read_text()
