"""NumPy on the CPU: the reference backend and the laptop fallback."""

from __future__ import annotations

import platform

import numpy as np

from ._base import Backend
from .numpy_fast import NumpyOps
from .numpy_xp import namespace

xp = namespace()


class NumpyBackend(Backend):
    """NumPy through array-api-compat (its hot reductions called directly, see
    :mod:`.numpy_xp`); synchronous, so ``synchronize`` is a no-op."""

    library = "numpy"

    def __init__(self, arg: str | None = None):
        if arg not in (None, "", "cpu"):
            raise ValueError(f"backend 'numpy' runs on the CPU only; got device {arg!r}")
        self.name = "numpy"
        self.xp = xp
        self.device = "cpu"
        self._ops = NumpyOps(xp)

    def info(self):
        return {
            "name": self.name,
            "version": np.__version__,
            "device": f"CPU ({platform.machine() or 'unknown'})",
        }


def create(arg: str | None = None) -> NumpyBackend:
    return NumpyBackend(arg)
