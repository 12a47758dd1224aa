"""array-api-strict: the standard and nothing else, for compliance testing.

It runs on a non-default device (``device1``) so that any array the core creates
without ``device=`` fails loudly, and pins the standard to version 2024.12, the one
bpgpu is written against. The pin is a process-wide flag of array-api-strict.
"""

from __future__ import annotations

import numpy as np

from ._base import Backend, BackendUnavailable
from ._base import library as library_of

API_VERSION = "2024.12"


class StrictBackend(Backend):
    library = "array_api_strict"

    def __init__(self, arg: str | None = None):
        try:
            import array_api_strict
        except ImportError as e:
            raise BackendUnavailable(
                "array_api_strict is not installed; pip install array-api-strict, "
                'or use backend="numpy"'
            ) from e
        array_api_strict.set_array_api_strict_flags(api_version=API_VERSION)
        self.name = "array_api_strict"
        self.xp = array_api_strict
        self.device = array_api_strict.Device(arg or "device1")
        # no overrides: the generic, functional Ops (in-place updates never needed)

    def owns(self, a) -> bool:
        return library_of(a) == "array_api_strict" and a.device == self.device

    def to_numpy(self, a) -> np.ndarray:
        return np.array(np.from_dlpack(a), copy=True)

    def info(self):
        return {"name": self.name, "version": self.xp.__version__, "device": str(self.device)}


def create(arg: str | None = None) -> StrictBackend:
    return StrictBackend(arg)
