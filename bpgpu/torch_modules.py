"""A network as a ``torch.nn.Sequential``, and a ``torch.export`` program of it.

The modules follow :mod:`bpgpu.interchange`'s layout: ``Linear`` layers and torch's own
activation modules, and three small modules where torch has none (:class:`Standardize`
for the input scaling, :class:`BinaryStep`, :class:`Arctan`). Imported only when a user
asks for torch (``net.to_torch()``, ``net.export("m.pt2")``): ``import bpgpu`` never
loads torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from bpgpu.activations import ELU_ALPHA, LEAKY_SLOPE
from bpgpu.interchange import exportable, layout
from bpgpu.layers import Dense

__all__ = ["Standardize", "BinaryStep", "Arctan", "sequential", "program"]


class Standardize(nn.Module):
    """``(x - mean) / scale``: the input scaling a bpgpu network was trained with
    (buffers ``mean`` and ``scale``, shape ``(n_0,)``)."""

    def __init__(self, mean: torch.Tensor, scale: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("scale", scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.scale


class BinaryStep(nn.Module):
    """The seed's binary step: 1 where ``x >= 0``, else 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x >= 0).to(x.dtype)


class Arctan(nn.Module):
    """``arctan(x)``, the seed's table entry torch has no module for."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.atan(x)


# bpgpu's activation -> the module of that function (n: the layer's width)
ACTIVATION_MODULES = {
    "identity": lambda n: nn.Identity(),
    "binary_step": lambda n: BinaryStep(),
    "sigmoid": lambda n: nn.Sigmoid(),
    "tanh": lambda n: nn.Tanh(),
    "arctan": lambda n: Arctan(),
    "relu": lambda n: nn.ReLU(),
    "leaky_relu": lambda n: nn.LeakyReLU(LEAKY_SLOPE),
    "prelu": lambda n: nn.PReLU(n),
    "elu": lambda n: nn.ELU(ELU_ALPHA),
    # softplus: torch's threshold (linear past x = 20) is within rounding of ln(1 + e^x)
    "softplus": lambda n: nn.Softplus(),
    "softmax": lambda n: nn.Softmax(dim=-1),
}


def sequential(layers: Sequence[Dense], arrays: dict[str, Any], scaled: bool) -> nn.Sequential:
    """The Sequential of a network: ``layers`` and its host ``arrays`` by bpgpu's names
    (``W1``, ``b1``, ``x_mean``, ...), in the arrays' dtype, on the CPU."""
    exportable(layers, "torch", list(ACTIVATION_MODULES))
    modules = []
    for m in layout(layers, scaled):
        t = {attr: torch.from_numpy(np.array(arrays[ours])) for attr, ours in m.tensors.items()}
        if m.kind == "standardize":
            modules.append(Standardize(t["mean"], t["scale"]))
            continue
        if m.kind == "linear":
            W = t["weight"]
            module = nn.Linear(W.shape[1], W.shape[0], dtype=W.dtype)
        else:
            module = ACTIVATION_MODULES[m.kind](m.width)
        with torch.no_grad():
            for attr, value in t.items():
                param = getattr(module, attr)
                param.data = value.to(param.device)  # its dtype and shape, as saved
        modules.append(module)
    seq = nn.Sequential(*modules)
    dtype = torch.from_numpy(np.asarray(arrays[layers[0].names[0]])).dtype
    return seq.to(dtype).eval()


def program(seq: nn.Sequential, n_in: int) -> Any:
    """The ``torch.export`` program of the Sequential, with a dynamic batch dimension:
    saved by ``torch.export.save``, ``torch.export.load(path).module()`` runs it without
    bpgpu."""
    dtype = next(seq.parameters()).dtype
    example = (torch.zeros(2, n_in, dtype=dtype),)
    batch = torch.export.Dim("batch")
    return torch.export.export(seq, example, dynamic_shapes=({0: batch},))
