"""bpgpu: backpropagation written once against the Array API, on NumPy, CuPy, torch, ...

>>> import bpgpu
>>> net = bpgpu.MLP([64, 32, 10], hidden="relu", output="softmax", backend="numpy")
"""

from bpgpu import activations, callbacks, costs, datasets, optimizers, schedules
from bpgpu._version import __version__
from bpgpu.backends import BackendUnavailable, DeviceMemoryError, get_backend, list_backends
from bpgpu.backends import to_host as to_numpy
from bpgpu.callbacks import Callback, ReduceLROnPlateau
from bpgpu.consistency import compare_backends
from bpgpu.converters import from_sklearn, from_torch
from bpgpu.gradcheck import gradcheck
from bpgpu.history import History
from bpgpu.io import ModelFileError
from bpgpu.network import MLP, load

__all__ = [
    "MLP",
    "Callback",
    "ReduceLROnPlateau",
    "History",
    "ModelFileError",
    "datasets",
    "load",
    "optimizers",
    "schedules",
    "callbacks",
    "BackendUnavailable",
    "DeviceMemoryError",
    "activations",
    "compare_backends",
    "from_sklearn",
    "from_torch",
    "costs",
    "get_backend",
    "gradcheck",
    "list_backends",
    "to_numpy",
    "__version__",
]
