"""The public API's docstrings: numpydoc's validation with the checks that
``pyproject.toml`` enforces (``[tool.numpydoc_validation]``), and every Examples section
run as a doctest.

The names are derived, never listed by hand, by ``docs/_ext/public_api.py``, the same
derivation that lays out the reference (so what the reference shows is what is checked).
A module-level table (a dict such as ``bpgpu.optimizers.OPTIMIZERS``) is data: it needs a
``#:`` comment, which the reference shows."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "_ext"))
from public_api import public_names, resolve  # noqa: E402  (the reference's own list)

# the optional library an example (or a module) needs: it skips without it
NEEDS = {
    "bpgpu.from_torch": "torch",
    "bpgpu.MLP.to_torch": "torch",
    "bpgpu.MLP.export": "onnxruntime",
    "bpgpu.from_sklearn": "sklearn",
    "bpgpu.sklearn": "sklearn",
}


def _needs(name: str) -> str | None:
    """The optional library a name's module or example needs, if any."""
    for prefix, lib in NEEDS.items():
        if name == prefix or name.startswith(prefix + "."):
            return lib
    return None


def _config() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["numpydoc_validation"]


OBJECTS, DATA = public_names()


def test_the_names_are_found():
    """The derivation sees modules' members, class members and tables (it can fail:
    a name that stopped being public, or a member search that finds nothing)."""
    for name in ("bpgpu.MLP.fit", "bpgpu.MLP.backend", "bpgpu.optimizers.Adam", "bpgpu.load"):
        assert name in OBJECTS
    assert "bpgpu.optimizers.OPTIMIZERS" in DATA
    assert not [n for n in OBJECTS if n.rpartition(".")[2].startswith("_")]
    assert "bpgpu.BackendUnavailable.with_traceback" not in OBJECTS  # Exception's own


@pytest.mark.parametrize("name", DATA)
def test_tables_have_a_doc_comment(name):
    """A table is documented by a ``#:`` comment on the line above it (autodoc shows it)."""
    module, _, attr = name.rpartition(".")
    lines = inspect.getsource(importlib.import_module(module)).splitlines()
    at = next(
        i
        for i, line in enumerate(lines)
        if line.startswith(f"{attr}:") or line.startswith(f"{attr} =")
    )
    assert at and lines[at - 1].startswith("#: "), f"{name} needs a '#: ...' comment above it"


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib")
@pytest.mark.parametrize("name", OBJECTS)
def test_numpydoc_validation(name):
    """numpydoc's own validation, with the checks pyproject.toml selects (numpydoc
    comes with the docs extra, which CI's first test run has)."""
    validate = pytest.importorskip("numpydoc.validate", reason="the docs extra").validate

    if _needs(name) and importlib.util.find_spec(_needs(name)) is None:
        pytest.skip(f"{name} needs {_needs(name)}")
    checks = set(_config()["checks"])
    errors = [
        (code, msg)
        for code, msg in validate(name)["errors"]
        if ("all" in checks) != (code in checks)  # "all" then the codes left out
    ]
    assert not errors, errors


@pytest.mark.parametrize("name", OBJECTS)
def test_the_examples_run(name):
    if _needs(name) and importlib.util.find_spec(_needs(name)) is None:
        pytest.skip(f"{name}'s example needs {_needs(name)}")
    obj = resolve(name)
    tests = doctest.DocTestFinder(recurse=False).find(obj, name)
    assert tests and tests[0].examples, f"{name} has no Examples"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for t in tests:
        runner.run(t)
    assert runner.failures == 0, f"{name}: {runner.failures} example(s) failed (output above)"
