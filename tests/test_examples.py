"""Every script in ``examples/`` runs as its docstring says, in a fresh interpreter, and
checks its own result (each ends in an assert); a script whose optional library is not
installed is skipped, naming it."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NEEDS = {  # the optional libraries each example imports
    "sklearn_pipeline.py": ["sklearn"],
    "jax_backend.py": ["jax"],
    "mpi_data_parallel.py": ["mpi4py"],
    "export_onnx.py": ["onnx", "onnxruntime"],
}


def test_every_example_is_listed_here_or_needs_nothing():
    names = {p.name for p in EXAMPLES.glob("*.py")}
    assert set(NEEDS) <= names, set(NEEDS) - names
    assert len(names) >= 6


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_the_example_runs_and_checks_its_result(name, tmp_path):
    for module in NEEDS.get(name, []):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{name} needs {module}")
    cmd = [sys.executable, str(EXAMPLES / name)]
    if name.startswith("mpi_"):
        exe = shutil.which("mpiexec") or str(Path(sys.executable).parent / "mpiexec")
        if not Path(exe).exists():
            pytest.skip("no mpiexec (pip install -e '.[mpi]')")
        cmd = [exe, "-n", "2", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert out.stdout.strip(), "an example says what it found"
