"""The public API as the reference shows it and the docstring tests check it: one
derivation for both (``docs/conf.py`` hands it to the autosummary templates,
``tests/test_docstrings.py`` validates every name it gives).

The names are ``bpgpu.__all__`` (a module there stands for the names of its own
``__all__``), the scikit-learn estimators, and the public methods and properties that
bpgpu's own code gives each of those classes (what a class inherits from ``object``,
``Exception`` or scikit-learn is documented there). A module-level table (a dict such
as ``bpgpu.optimizers.OPTIMIZERS``) is data."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import types

ESTIMATORS = ["bpgpu.sklearn.BPClassifier", "bpgpu.sklearn.BPRegressor"]


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

    seen, objects, data = {}, [], []
    names = _every_name()
    for name in names:
        obj = resolve(name)
        if isinstance(obj, dict):
            data.append(name)
        elif id(obj) not in seen:
            seen[id(obj)] = obj
            objects.append(name)
    classes = {o for o in seen.values() if inspect.isclass(o)}
    for name in list(objects):
        obj = resolve(name)
        if inspect.isclass(obj):
            objects += _members(obj, name, classes)
    return objects, data


def resolve(name: str):
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


def class_members() -> dict[str, list[str]]:
    """``{class's full name: [its documented members' short names]}``, for every public
    class under every name the reference gives it (``bpgpu.Callback`` and
    ``bpgpu.callbacks.Callback`` list the same members)."""
    objects, _ = public_names()
    by_class: dict[int, list[str]] = {}
    for name in objects:
        obj = resolve(name)
        if inspect.isclass(obj):
            prefix = name + "."
            by_class[id(obj)] = [n[len(prefix) :] for n in objects if n.startswith(prefix)]
    return {n: by_class[id(resolve(n))] for n in _every_name() if id(resolve(n)) in by_class}


def module_members() -> dict[str, list[str]]:
    """``{module's full name: [the names its page documents]}``: its ``__all__`` less
    the aliases (``schedules.cosine_decay`` is ``CosineDecay``, documented once)."""
    import bpgpu

    out = {}
    for n in bpgpu.__all__:
        module = getattr(bpgpu, n)
        if isinstance(module, types.ModuleType):
            named = [(m, getattr(module, m)) for m in module.__all__]
            out[module.__name__] = [m for m, obj in named if getattr(obj, "__name__", m) == m]
    return out


def _every_name() -> list[str]:
    """Every public name, aliases and repeats included."""
    import bpgpu

    names = []
    top = [f"bpgpu.{n}" for n in bpgpu.__all__ if n != "__version__"]
    if importlib.util.find_spec("sklearn") is not None:
        top += ESTIMATORS
    for name in top:
        obj = resolve(name)
        if isinstance(obj, types.ModuleType):
            names += [f"{name}.{member}" for member in obj.__all__]
        else:
            names.append(name)
    return names
