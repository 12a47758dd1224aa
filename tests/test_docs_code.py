"""Every code block of the documentation's pages runs as written.

Each page's ``python`` and ``bash`` blocks run in order, in a fresh folder of their own
(files a block writes are there for the next), each block in a fresh interpreter or
shell; a block checks its own result (they end in asserts where there is one to check).
A block preceded by ``<!-- not run: REASON -->`` is left out, with its reason (a GPU,
several machines); a page whose block imports an optional library that is missing is
skipped from that block on, naming it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").rglob("*.md"))
OPTIONAL = ("sklearn", "pandas", "torch", "jax", "onnx", "onnxruntime", "mpi4py", "safetensors")
FENCE = re.compile(
    r"(<!-- not run: (?P<why>[^>]*?) -->\n)?```(?P<lang>python|bash)\n(?P<code>.*?)```", re.S
)


def blocks(page: Path) -> list[tuple[str, str, str | None]]:
    """``(language, code, reason not run)`` for every runnable block of ``page``."""
    return [(m["lang"], m["code"], m["why"]) for m in FENCE.finditer(page.read_text())]


def missing(code: str) -> str | None:
    """The first optional library ``code`` imports that is not installed."""
    for name in re.findall(r"^\s*(?:from|import) (\w+)", code, flags=re.M):
        if name in OPTIONAL and importlib.util.find_spec(name) is None:
            return name
    return None


def test_the_pages_have_code_to_run():
    assert len(PAGES) >= 8
    assert sum(len(blocks(p)) for p in PAGES) >= 15
    for page in PAGES:
        for _, _, why in blocks(page):
            assert why is None or why.strip(), f"{page.name}: a block left out says why"


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p)], ids=lambda p: p.stem)
def test_every_block_of_the_page_runs(page, tmp_path):
    env = {
        **os.environ,
        "BPGPU_BACKEND": "numpy",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "MPLBACKEND": "Agg",
    }
    for i, (lang, code, why) in enumerate(blocks(page)):
        if why is not None:
            continue
        lib = missing(code) if lang == "python" else None
        if lib is not None:
            pytest.skip(f"{page.name} block {i + 1} imports {lib}, which is not installed")
        cmd = [sys.executable, "-c", code] if lang == "python" else ["bash", "-ec", code]
        out = subprocess.run(
            cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
        assert out.returncode == 0, f"{page.name} block {i + 1}:\n{code}\n{out.stderr[-2000:]}"
