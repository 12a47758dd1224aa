"""Backends: one small module per array library behind one protocol (see ``_base``).

``REGISTRY`` is the one list of backends: their names, the module that makes each, the
device it runs on and how to install it. Everything else — ``get_backend``, the names in
error messages, ``bpgpu backends``, the test fixtures and the benchmark peers — derives
from it. Names: ``"numpy"``, ``"cupy"``/``"cupy:N"``, ``"torch"``/``"torch:cuda[:N]"``/
``"torch:mps"``, ``"jax"``/``"jax:cuda[:N]"``, ``"array_api_strict"`` and ``"auto"``
(CuPy when a CUDA device really works, otherwise NumPy). ``BPGPU_BACKEND`` sets the
default. GPU libraries are imported only when a backend that needs them is asked for,
so importing bpgpu never fails without them.
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass
from typing import Any

from ._base import Backend, BackendUnavailable, DeviceMemoryError, library, location, to_host
from ._ops import MutableOps, Ops

__all__ = [
    "Backend",
    "BackendUnavailable",
    "DeviceMemoryError",
    "Entry",
    "MutableOps",
    "Ops",
    "REGISTRY",
    "get_backend",
    "list_backends",
    "names",
    "library",
    "location",
    "to_host",
]

log = logging.getLogger("bpgpu")


@dataclass(frozen=True)
class Entry:
    """One backend of the registry.

    ``name`` is what users pass; ``module`` makes it (``create(arg)``); ``arg`` is the
    device part of the name; ``gpu`` marks a CUDA backend (tests marked ``gpu``, GPU
    benchmark peers); ``indexed`` says ``name:N`` picks device N.
    """

    name: str
    module: str
    arg: str | None = None
    gpu: bool = False
    indexed: bool = False


REGISTRY: tuple[Entry, ...] = (
    Entry("numpy", "numpy_backend"),
    Entry("array_api_strict", "strict_backend"),
    Entry("torch", "torch_backend"),
    Entry("torch:cuda", "torch_backend", "cuda", gpu=True, indexed=True),
    Entry("torch:mps", "torch_backend", "mps"),
    Entry("cupy", "cupy_backend", gpu=True, indexed=True),
    Entry("jax", "jax_backend"),
    Entry("jax:cuda", "jax_backend", "cuda", gpu=True, indexed=True),
)
_cache: dict[str, Backend] = {}


def names(gpu: bool | None = None) -> list[str]:
    """Registry names (``gpu=True``: CUDA backends only, ``False``: the others)."""
    return [e.name for e in REGISTRY if gpu is None or e.gpu == gpu]


def _spelled() -> str:
    """Every valid spelling, for error messages."""
    out = ["auto"]
    for e in REGISTRY:
        out += [e.name] + ([f"{e.name}:N"] if e.indexed else [])
    return ", ".join(out)


def _entry(name: str) -> tuple[Entry, str | None]:
    """The registry entry behind ``name`` and the device argument it passes."""
    for e in REGISTRY:
        if name == e.name:
            return e, e.arg
    for e in REGISTRY:  # "cupy:1", "torch:cuda:1": an indexed entry plus a device number
        if e.indexed and name.startswith(e.name + ":"):
            index = name[len(e.name) + 1 :]
            return e, f"{e.arg}:{index}" if e.arg else index
    lib, _, rest = name.partition(":")
    for e in REGISTRY:  # "torch:cuda:0" spelled otherwise, "numpy:1": the module decides
        if e.name == lib:
            return e, rest
    import difflib

    known = [*names(), "auto"]
    folded = {k.lower().replace("-", "_"): k for k in known}
    meant = folded.get(name.lower().replace("-", "_"))  # "CuPy", "array-api-strict"
    close = [meant] if meant else difflib.get_close_matches(lib.lower(), known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    if lib.lower() in _DEVICE_WORDS:  # a device, not a library
        hint = _DEVICE_WORDS[lib.lower()] + " "
    raise ValueError(f"unknown backend {name!r}; {hint}valid: {_spelled()}")


# words for a device that people pass as a backend, and what to pass instead
_GPU_WORD = (
    "a backend is an array library: for an NVIDIA GPU, 'cupy' (or 'torch:cuda', "
    "'jax:cuda'), or 'auto' for the GPU when one works;"
)
_DEVICE_WORDS = {
    "cpu": "a backend is an array library: for the CPU, 'numpy' (or 'torch', 'jax');",
    "gpu": _GPU_WORD,
    "cuda": _GPU_WORD,
}


def _create(name: str) -> Backend:
    entry, arg = _entry(name)
    module = importlib.import_module(f"{__name__}.{entry.module}")
    return module.create(arg)


def _auto() -> Backend:
    try:
        b = get_backend("cupy")
    except BackendUnavailable as e:
        reason = str(e).split(";")[0]
        log.info("bpgpu: backend auto -> numpy (%s)", reason)
        return get_backend("numpy")
    log.info("bpgpu: backend auto -> %s (CUDA device %s works)", b.name, b.info()["device"])
    return b


def get_backend(name: str | Backend | None = None) -> Backend:
    """The backend called ``name``.

    ``None`` and ``"auto"`` read ``$BPGPU_BACKEND`` first (so a user can force a backend
    without editing code); without it, ``"auto"`` takes CuPy when a CUDA device works,
    otherwise NumPy. An explicit name is never overridden.

    Parameters
    ----------
    name : str, Backend or None
        A name of :func:`list_backends` (``"numpy"``, ``"cupy:1"``, ``"torch:cuda"``,
        ...), ``"auto"``, None, or a backend object (returned as it is).

    Returns
    -------
    Backend
        One object per name and process: its ``xp`` namespace, ``device``, ``ops``.

    Raises
    ------
    BackendUnavailable
        The library is missing or has no working device; the message names the fix.
    ValueError
        The name is not a backend name.

    Examples
    --------
    >>> import bpgpu
    >>> b = bpgpu.get_backend("numpy")
    >>> b.name, b.to_numpy(b.asarray([1.0, 2.0])).tolist()
    ('numpy', [1.0, 2.0])
    """
    if isinstance(name, Backend):
        return name
    if name is None or name == "auto":
        name = os.environ.get("BPGPU_BACKEND", "").strip() or "auto"
    if name == "auto":
        if "auto" not in _cache:
            _cache["auto"] = _auto()
        return _cache["auto"]
    if not isinstance(name, str):
        raise TypeError(f"backend must be a name or a Backend; got {type(name).__name__}")
    if name not in _cache:
        _cache[name] = _create(name)
    return _cache[name]


def list_backends() -> list[dict[str, Any]]:
    """Every registry backend, available here or not, and why.

    Returns
    -------
    list of dict
        One ``{"name", "available", "version", "device", "reason"}`` per backend name
        (``reason``: why it cannot run here, or None), in the registry's order.

    Examples
    --------
    >>> import bpgpu
    >>> rows = {r["name"]: r for r in bpgpu.list_backends()}
    >>> rows["numpy"]["available"], "cupy" in rows
    (True, True)
    """
    rows = []
    for name in names():
        try:
            b = get_backend(name)
        except (BackendUnavailable, ValueError) as e:
            rows.append(
                {"name": name, "available": False, "version": "", "device": "", "reason": str(e)}
            )
            continue
        info = b.info()
        rows.append({**info, "name": b.name, "available": True, "reason": ""})
    return rows
