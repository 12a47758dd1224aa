"""The public API's docstrings: numpydoc's validation with the checks that
``pyproject.toml`` enforces (``[tool.numpydoc_validation]``), and every Examples section
run as a doctest.

The names are derived, never listed by hand: ``bpgpu.__all__`` (a module there stands for
the names of its own ``__all__``), the scikit-learn estimators, and the public methods and
properties that bpgpu's own code gives each of those classes (what a class inherits from
``object``, ``Exception`` or scikit-learn is documented there). A module-level table (a
dict such as ``bpgpu.optimizers.OPTIMIZERS``) is data: it needs a ``#:`` comment, which
the reference shows."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import inspect
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ESTIMATORS = ["bpgpu.sklearn.BPClassifier", "bpgpu.sklearn.BPRegressor"]
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


def _members(cls: type, name: str, public: set[type]) -> list[str]:
    """The public methods and properties of ``cls`` that bpgpu's code defines on it or
    on a private bpgpu base (a public base documents its own, and the overrides of
    them: ``SGD.rule`` is ``Optimizer.rule``'s)."""
    documented = {a for b in cls.__mro__[1:] if b in public for a in vars(b)}
    found = {}
    for base in reversed(cls.__mro__):
        if not base.__module__.startswith("bpgpu") or (base in public and base is not cls):
            continue
        for attr, value in vars(base).items():
            if attr.startswith("_") or attr in documented:  # an override: see the base
                continue
            # a method, property or other descriptor of bpgpu's code (scikit-learn adds
            # set_fit_request and the like to every estimator class: its own)
            code = getattr(value, "fget", None) or getattr(value, "__func__", None)
            code = code or getattr(value, "fn", None) or value  # fn: available_if's
            if hasattr(type(value), "__get__") and code.__module__.startswith("bpgpu"):
                found[attr] = f"{name}.{attr}"
    return sorted(found.values())


def public_names() -> tuple[list[str], list[str]]:
    """``(documented objects, data tables)`` of the public API, each object once (by
    the first name it is found under: ``bpgpu.Callback``, not also
    ``bpgpu.callbacks.Callback``; ``schedules.CosineDecay``, not its alias
    ``cosine_decay``)."""
    import bpgpu

    seen, objects, data = {}, [], []
    top = [f"bpgpu.{n}" for n in bpgpu.__all__ if n != "__version__"]
    if importlib.util.find_spec("sklearn") is not None:
        top += ESTIMATORS
    names = []
    for name in top:
        obj = _resolve(name)
        if isinstance(obj, types.ModuleType):
            names += [f"{name}.{member}" for member in obj.__all__]
        else:
            names.append(name)
    for name in names:
        obj = _resolve(name)
        if isinstance(obj, dict):
            data.append(name)
        elif id(obj) not in seen:
            seen[id(obj)] = obj
            objects.append(name)
    classes = {o for o in seen.values() if inspect.isclass(o)}
    for name in list(objects):
        obj = _resolve(name)
        if inspect.isclass(obj):
            objects += _members(obj, name, classes)
    return objects, data


def _config() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["numpydoc_validation"]


def _resolve(name: str):
    """The object a dotted name names, as a user reaches it: the shortest importable
    module, then attributes (``bpgpu.gradcheck`` is the function, not its module)."""
    parts = name.split(".")
    for cut in range(1, len(parts) + 1):
        obj = importlib.import_module(".".join(parts[:cut]))
        try:
            for attr in parts[cut:]:
                static = inspect.isclass(obj)
                obj = inspect.getattr_static(obj, attr) if static else getattr(obj, attr)
        except AttributeError:
            continue
        return obj
    raise AttributeError(name)


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
    obj = _resolve(name)
    tests = doctest.DocTestFinder(recurse=False).find(obj, name)
    assert tests and tests[0].examples, f"{name} has no Examples"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for t in tests:
        runner.run(t)
    assert runner.failures == 0, f"{name}: {runner.failures} example(s) failed (output above)"
