"""The README's commands and example work as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def run_block(code: str, cwd=None, timeout: int = 120) -> subprocess.CompletedProcess:
    """A README example run as a user would, in a fresh interpreter on NumPy."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"BPGPU_BACKEND": "numpy", "PATH": ""},
        timeout=timeout,
    )
    assert out.returncode == 0, out.stderr
    return out


def test_quick_start_runs_as_written():
    code = blocks("python")[0]
    assert len(code.strip().splitlines()) <= 10
    out = run_block(code)
    name, before, arrow, after, err = out.stdout.split()
    assert name == "numpy" and float(after) < float(before) and float(err) < 1e-6


def test_ci_runs_the_readme_test_command():
    train, test = blocks("bash")[0].strip().splitlines()
    assert train.endswith("&& bpgpu train")
    test_part = test.split("&&")[-1].strip()
    assert test_part == "python -m pytest -q"
    assert "pip install -e '.[test]'" in test
    assert test_part in (ROOT / ".ci" / "run").read_text()


def test_training_example_runs_as_written(tmp_path):
    code = blocks("python")[1]
    score = "\nprint(net.evaluate(s.X_test, s.y_test)['accuracy'])"
    out = run_block(code + score, cwd=tmp_path, timeout=300)
    assert float(out.stdout.split()[-1]) > 0.95
    assert (tmp_path / "digits.npz").exists()


def test_every_test_the_promise_table_names_exists():
    """A promise held by a renamed or deleted test is held by nothing."""
    table = README[README.index("## What bpgpu promises") : README.index("Not promised")]
    missing = []
    for row in table.splitlines():
        current = None
        for ref in re.findall(r"`(tests/[\w/]+\.py)?(?:::(\w+))?`", row):
            path, name = ref
            if path:
                current = ROOT / path
                if not current.exists():
                    missing.append(path)
                    continue
            if name and current is not None and f"def {name}(" not in current.read_text():
                missing.append(f"{current.name}::{name}")
    assert not missing, missing


def test_the_activation_of_your_own_example_runs_as_written(tmp_path):
    """The README's swish: its derivative passes gradcheck, it trains, and the model
    file loads back with it given by name, predicting the same."""
    (code,) = [b for b in blocks("python") if "def swish(" in b]
    out = run_block(code, cwd=tmp_path)
    lines = dict(line.rsplit(" ", 1) for line in out.stdout.splitlines())
    assert float(lines["gradcheck"]) < 1e-6 and lines["reloaded equal"] == "True"
    assert (tmp_path / "swish.npz").exists()


def test_the_labels_example_runs_as_written():
    (code,) = [b for b in blocks("python") if "net.classes" in b]
    out = run_block(code)
    assert out.stdout.startswith("['cat' 'dog' 'emu'] [")


def test_the_leaving_bpgpu_example_runs_as_written(tmp_path):
    """ONNX, torch.export, safetensors and to_torch/from_torch, as the README shows them,
    and each file read by its own runtime."""
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    (code,) = [b for b in blocks("python") if "net.export(" in b]
    out = run_block(code, cwd=tmp_path, timeout=300)
    assert out.stdout.strip() == "Sequential True"
    assert {"m.onnx", "m.pt2", "m.safetensors"} <= set(os.listdir(tmp_path))
    X = np.zeros((2, 4), dtype=np.float32)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert session.run(None, {"input": X})[0].shape == (2, 3)
