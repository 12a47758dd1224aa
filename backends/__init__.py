"""Backends: one small module per array library behind one protocol (see ``_base``).

Names: ``"numpy"``, ``"cupy"``/``"cupy:N"``, ``"torch"``/``"torch:cuda[:N]"``/``"torch:mps"``,
``"array_api_strict"`` and ``"auto"`` (CuPy when a CUDA device really works, otherwise
NumPy). ``BPGPU_BACKEND`` sets the default. GPU libraries are imported only when a
backend that needs them is asked for, so importing bpgpu never fails without them.
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import Any

from ._base import Backend, BackendUnavailable, DeviceMemoryError, library, location, to_host

__all__ = [
    "Backend",
    "BackendUnavailable",
    "DeviceMemoryError",
    "get_backend",
    "list_backends",
    "KNOWN",
    "library",
    "location",
    "to_host",
]

log = logging.getLogger("bpgpu")

# name -> module; "lib:arg" passes arg (a device) to the module's create()
_MODULES = {
    "numpy": "numpy_backend",
    "array_api_strict": "strict_backend",
    "torch": "torch_backend",
    "cupy": "cupy_backend",
}
KNOWN = ("numpy", "array_api_strict", "torch", "torch:cuda", "torch:mps", "cupy")
_cache: dict[str, Backend] = {}


def _create(name: str) -> Backend:
    lib, _, arg = name.partition(":")
    if lib not in _MODULES:
        import difflib

        close = difflib.get_close_matches(lib, [*_MODULES, "auto"], n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(
            f"unknown backend {name!r}; {hint}valid: auto, numpy, cupy, cupy:N, torch, "
            "torch:cuda, torch:cuda:N, torch:mps, array_api_strict"
        )
    module = importlib.import_module(f"{__name__}.{_MODULES[lib]}")
    return module.create(arg or None)


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

    Raises
    ------
    BackendUnavailable
        The library is missing or has no working device; the message names the fix.
    ValueError
        The name is not a backend name.
    """
    if isinstance(name, Backend):
        return name
    if name is None or name == "auto":
        name = os.environ.get("BPGPU_BACKEND", "").strip() or "auto"
    if name == "auto":
        if "auto" not in _cache:
            _cache["auto"] = _auto()
        return _cache["auto"]
    if name not in _cache:
        _cache[name] = _create(name)
    return _cache[name]


def list_backends() -> list[dict[str, Any]]:
    """Every known backend: ``{"name", "available", "version", "device", "reason"}``."""
    rows = []
    for name in KNOWN:
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
