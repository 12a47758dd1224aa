"""How to install an optional extra, said the way bpgpu itself was installed.

bpgpu is not on a package index: ``pip install 'bpgpu[torch]'`` fails for a user who
installed it from a checkout. The hint names the checkout (``pip install -e
'/path/to/bpgpu[torch]'``) when this code runs from one (an editable install, or the
source folder on ``sys.path``), the folder or archive pip installed it from when pip
recorded one, and the package name only when it came from an index.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def _checkout() -> Path | None:
    """The source checkout this code runs from (its ``pyproject.toml`` names bpgpu)."""
    root = Path(__file__).resolve().parent.parent
    try:
        text = (root / "pyproject.toml").read_text()
    except OSError:
        return None
    return root if 'name = "bpgpu"' in text else None


def _recorded_source() -> str | None:
    """Where pip installed bpgpu from (PEP 610's ``direct_url.json``), if not an index."""
    try:
        from importlib import metadata

        raw = metadata.distribution("bpgpu").read_text("direct_url.json")
    except Exception:  # not installed as a distribution, or no record
        return None
    if not raw:
        return None
    url = json.loads(raw).get("url", "")
    return url[len("file://") :] if url.startswith("file://") else url or None


def install_hint(*extras: str) -> str:
    """The pip command that adds ``extras`` to this installation of bpgpu, e.g.
    ``pip install -e '/home/me/bpgpu[torch]'`` (several extras: one command with all)."""
    tag = f"[{','.join(extras)}]" if extras else ""
    checkout = _checkout()
    if checkout is not None:
        here = Path.cwd().resolve()
        where = "." if here == checkout else os.fspath(checkout)
        return f"pip install -e '{where}{tag}'"
    source = _recorded_source()
    if source is not None:
        return f"pip install '{source}{tag}'"
    return f"pip install 'bpgpu{tag}'"
