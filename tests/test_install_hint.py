"""Install hints say how to add an extra to bpgpu as it was installed (it is on no
package index: ``pip install 'bpgpu[torch]'`` fails for a user of a checkout)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bpgpu.backends import _install
from bpgpu.backends._install import install_hint

ROOT = Path(__file__).resolve().parents[1]


def test_a_checkout_is_named_as_a_path_or_dot(monkeypatch, tmp_path):
    monkeypatch.setattr(_install, "_checkout", lambda: ROOT)
    monkeypatch.chdir(ROOT)
    assert install_hint("torch") == "pip install -e '.[torch]'"
    monkeypatch.chdir(tmp_path)
    assert install_hint("torch", "onnx") == f"pip install -e '{ROOT}[torch,onnx]'"


def test_a_recorded_source_then_the_index(monkeypatch):
    monkeypatch.setattr(_install, "_checkout", lambda: None)
    monkeypatch.setattr(_install, "_recorded_source", lambda: "/opt/src/bpgpu-0.9.tar.gz")
    assert install_hint("mpi") == "pip install '/opt/src/bpgpu-0.9.tar.gz[mpi]'"
    monkeypatch.setattr(_install, "_recorded_source", lambda: None)
    assert install_hint("mpi") == "pip install 'bpgpu[mpi]'"


def test_this_checkout_is_found():
    """The tests run from a checkout (an editable install, as the README's command
    makes), so the hint names it."""
    assert _install._checkout() == ROOT


def _readable(folder: str) -> list:
    """The files of ``folder`` a user reads: code, and the docs' sources (not builds)."""
    if folder == "README.md":
        return [ROOT / folder]
    files = [p for ext in ("*.py", "*.md", "*.rst", "*.sh") for p in (ROOT / folder).rglob(ext)]
    return [p for p in files if not {"_build", "generated"} & set(p.parts)]


@pytest.mark.parametrize(
    "folder", ["bpgpu", "backends", "examples", "docs", "benchmarks", "README.md"]
)
def test_no_message_names_the_index_package(folder):
    """Every hint goes through install_hint: no message, help text, docstring, example
    or page tells a user to ``pip install 'bpgpu[...]'`` from an index bpgpu is not on."""
    found = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in _readable(folder)
        if p.name != "_install.py"
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(r"pip install '?bpgpu\[", line)
    ]
    assert not found, found


def test_a_missing_backend_library_gets_the_hint(monkeypatch):
    import bpgpu

    try:
        import cupy  # noqa: F401
    except ImportError:
        with pytest.raises(bpgpu.BackendUnavailable) as e:
            bpgpu.MLP([2, 2], backend="cupy")
        assert install_hint("cuda12") in str(e.value)
    else:
        pytest.skip("cupy is installed: its missing-library message cannot show here")
