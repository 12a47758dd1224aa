"""How a network looks outside bpgpu: one ``torch.nn.Sequential`` layout for every format.

A network is exported as the modules ``[Standardize], Linear, activation, Linear,
activation, ...``: the input scaling first (only where the network has one), then per
layer ``l`` a ``Linear`` (``W^l``, ``b^l``) and its activation's module (PReLU holds its
slope ``a^l`` as ``weight``). Its parameters are named as that module's ``state_dict``
names them (``"1.weight"``, ``"1.bias"``, ``"2.weight"``, ...; the scaling's
``"0.mean"`` and ``"0.scale"``), and so are the tensors of a safetensors file and the
initializers of an ONNX graph. This module is that one layout, in plain Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bpgpu.activations import Activation
from bpgpu.layers import Dense

__all__ = ["Module", "TORCH_NAMES", "layout", "state_names", "exportable"]

# bpgpu's name of each parameter role -> the torch attribute that holds it
TORCH_NAMES = {"W": "weight", "b": "bias", "a": "weight"}


@dataclass(frozen=True)
class Module:
    """One module of the exported Sequential: its place, its kind and the network's
    names of the tensors it holds, by the module's attribute name."""

    index: int
    kind: str  # "standardize", "linear" or an activation's table name
    tensors: dict[str, str]  # torch attribute -> bpgpu name ("weight" -> "W1")
    activation: Activation | None = None
    width: int = 0  # outputs of the layer the module belongs to


def layout(layers: Sequence[Dense], scaled: bool) -> list[Module]:
    """The exported modules of a network with ``layers`` (and the input scaling where
    ``scaled``), in order."""
    modules: list[Module] = []
    if scaled:
        modules.append(Module(0, "standardize", {"mean": "x_mean", "scale": "x_scale"}))
    for layer in layers:
        k = len(modules)
        modules.append(Module(k, "linear", {"weight": layer.names[0], "bias": layer.names[1]}))
        act = layer.activation
        param = {TORCH_NAMES["a"]: layer.names[2]} if layer.has_param else {}
        modules.append(Module(k + 1, act.builtin or act.name, param, act, layer.n_out))
    return modules


def state_names(layers: Sequence[Dense], scaled: bool) -> dict[str, str]:
    """bpgpu's name of every exported tensor (``"W1"``, ``"x_mean"``) -> its
    ``state_dict`` name (``"1.weight"``, ``"0.mean"``), in ``state_dict`` order."""
    modules = layout(layers, scaled)
    return {ours: f"{m.index}.{attr}" for m in modules for attr, ours in m.tensors.items()}


def exportable(layers: Sequence[Dense], where: str, known: Sequence[str]) -> None:
    """Refuse a network with an activation that ``where`` (``"ONNX"``, ``"torch"``) has no
    form for: one of the user's own (a function bpgpu cannot translate), or a table
    entry missing from ``known``."""
    for layer in layers:
        act = layer.activation
        if act.builtin is None:
            raise ValueError(
                f"layer {layer.index}'s activation {act.name!r} is your own: bpgpu cannot "
                f"translate its Python functions to {where}. Export a network whose "
                f"activations are all bpgpu's ({', '.join(known)}), or save it "
                "(net.save('m.safetensors')) and rebuild it there"
            )
        if act.builtin not in known:
            raise ValueError(
                f"layer {layer.index}'s activation {act.builtin!r} has no {where} form; "
                f"{where} takes {', '.join(known)}"
            )
