"""The dependency rule of DESIGN.md section 2, enforced by reading import statements."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARRAY_LIBS = {"numpy", "cupy", "torch", "cupyx"}
# Core modules allowed to import NumPy, and why: each is host-side by nature.
HOST_SIDE = {
    "_host.py": "initial weights from a host numpy.random.Generator",
    "gradcheck.py": "the float64 NumPy reference, perturbed entry by entry on the host",
    "consistency.py": "host batches, and relative norms of host copies vs the reference",
    "io.py": "model files: .npy members read and written on the host",
    "datasets.py": "data loading from files, on the host",
    "commands.py": "the CLI's input and output files",
}


def imports(path: Path):
    """(module, level) for every import statement in a file."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, 0
        elif isinstance(node, ast.ImportFrom):
            yield node.module or "", node.level


def test_core_imports_no_array_library_outside_host_io():
    offenders = []
    for path in sorted((ROOT / "bpgpu").rglob("*.py")):
        for module, _ in imports(path):
            if module.split(".")[0] in ARRAY_LIBS and path.name not in HOST_SIDE:
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not offenders, "core code must use the backend's xp:\n" + "\n".join(offenders)


def test_backends_import_nothing_from_the_core():
    offenders = []
    for path in sorted((ROOT / "backends").rglob("*.py")):
        for module, level in imports(path):
            if module.split(".")[0] == "bpgpu" or level > 1:
                offenders.append(f"{path.relative_to(ROOT)} imports {'.' * level}{module}")
    assert not offenders, "backends/ must stand alone:\n" + "\n".join(offenders)


def test_the_rule_checker_sees_a_violation(tmp_path):
    """The checker itself can fail: a file importing torch is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom torch import nn\n")
    assert ("torch", 0) in set(imports(bad))


def test_import_bpgpu_loads_no_gpu_library():
    code = "import sys, bpgpu; print(sorted(m for m in ('cupy', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
