"""What installing bpgpu needs, read from pyproject.toml."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    if sys.version_info < (3, 11):
        pytest.skip("tomllib needs Python 3.11")
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_build_requires_a_setuptools_that_reads_the_license_string():
    """`license = "MIT"` (PEP 639) needs setuptools >= 77; with --no-build-isolation
    (the GPU machine) an older one fails the install, so the floor must say so."""
    cfg = _pyproject()
    assert isinstance(cfg["project"]["license"], str)
    spec = next(r for r in cfg["build-system"]["requires"] if r.startswith("setuptools"))
    floor = re.fullmatch(r"setuptools>=(\d+)(\.\d+)*", spec.replace(" ", ""))
    assert floor and int(floor.group(1)) >= 77, spec
