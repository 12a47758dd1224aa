"""bpgpu: backpropagation written once against the Array API, on NumPy, CuPy, torch, ...

>>> import bpgpu
>>> net = bpgpu.MLP([64, 32, 10], hidden="relu", output="softmax", backend="numpy")
"""

from bpgpu import activations, costs, datasets, optimizers
from bpgpu.backends import BackendUnavailable, DeviceMemoryError, get_backend, list_backends
from bpgpu.backends import to_host as to_numpy
from bpgpu.consistency import compare_backends
from bpgpu.gradcheck import gradcheck
from bpgpu.io import ModelFileError, load
from bpgpu.network import MLP
from bpgpu.training import Callback, History

__version__ = "0.1.0"

__all__ = [
    "MLP",
    "Callback",
    "History",
    "ModelFileError",
    "datasets",
    "load",
    "optimizers",
    "BackendUnavailable",
    "DeviceMemoryError",
    "activations",
    "compare_backends",
    "costs",
    "get_backend",
    "gradcheck",
    "list_backends",
    "to_numpy",
    "__version__",
]
