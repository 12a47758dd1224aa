"""Layers: one object per fully connected layer, the source of the parameter layout.

Layer ``l`` (1-based) has weights ``W^l`` of shape ``(n_l, n_{l-1})`` (the layout of
``torch.nn.Linear``), bias ``b^l`` of shape ``(n_l,)`` and, for a learnable activation
(PReLU), its slope ``a^l`` of shape ``(n_l,)``. A network's parameters are one flat list
in layer order, ``[W1, b1, (a1), W2, b2, ...]``: the order of ``get_weights``, of the
gradients, of the model-file members and of the checkpoint's optimizer slots, all of
which are derived from these objects. Code that needs one kind of parameter asks the
layers for it by its role (:meth:`Dense.named`, :func:`by_layer`, :func:`role_of`),
never by its place in the list. Initial values come from :mod:`bpgpu.initial_weights`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bpgpu import activations as _acts
from bpgpu.activations import Activation

__all__ = ["Dense", "build", "by_layer", "param_names", "param_shapes", "role_of"]


@dataclass(frozen=True)
class Dense:
    """One layer: ``X = Y_prev W^T + b`` (1), ``Y = f(X)``.

    ``offset`` is the position of ``W`` in the network's flat parameter list.
    """

    index: int
    n_in: int
    n_out: int
    activation: Activation
    offset: int
    has_param: bool = field(init=False)  # a plain field: read several times per step

    def __post_init__(self) -> None:
        object.__setattr__(self, "has_param", self.activation.has_param)

    @property
    def roles(self) -> tuple[str, ...]:
        """What each parameter is: ``("W", "b")``, plus ``"a"`` (the slope) for a
        learnable activation."""
        return ("W", "b") + (("a",) if self.has_param else ())

    @property
    def names(self) -> tuple[str, ...]:
        """``("W1", "b1")`` plus ``"a1"`` for a learnable activation: each role and the
        layer's number."""
        return tuple(f"{role}{self.index}" for role in self.roles)

    def named(self, params: Sequence[Any]) -> dict[str, Any]:
        """This layer's parameters out of the network's list, by role:
        ``{"W": ..., "b": ...}`` and ``"a"`` for a learnable activation."""
        return dict(zip(self.roles, params[self.offset : self.stop]))

    def position(self, role: str) -> int:
        """Where the parameter ``role`` (``"W"``, ``"b"``, ``"a"``) of this layer is in
        the network's list."""
        return self.offset + self.roles.index(role)

    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        """Shapes of :attr:`names`, in the same order."""
        extra = ((self.n_out,),) if self.has_param else ()
        return ((self.n_out, self.n_in), (self.n_out,)) + extra

    @property
    def stop(self) -> int:
        """One past this layer's last entry in the flat parameter list."""
        return self.offset + len(self.names)

    def unpack(self, params: Sequence[Any]) -> tuple[Any, Any, Any]:
        """``W``, ``b`` and the activation parameter (or None) from the flat list."""
        i = self.offset
        return params[i], params[i + 1], params[i + 2] if self.has_param else None

    def forward(self, ops, params: Sequence[Any], Y: Any, apply_f: bool = True):
        """``(X, Y)`` of this layer from the previous layer's output; ``apply_f=False``
        stops at ``X`` (``Y`` is then None: the caller fuses f with the cost)."""
        i = self.offset  # unpack() written out: this runs per layer per step
        XW = Y @ params[i].T
        if not apply_f:
            return ops.add_bias(XW, params[i + 1]), None
        a = params[i + 2] if self.has_param else None
        return ops.bias_act(XW, params[i + 1], self.activation, a)

    def gradients(self, xp, D: Any, Y_prev: Any, G: Any, X: Any, Y: Any, a: Any) -> list:
        """``dW = D^T Y_prev`` (10), ``db`` = the sum of ``D``'s rows (11), and for a
        learnable activation ``da = sum over rows of G * dY/da`` (``G = dE/dY``)."""
        grads = [D.T @ Y_prev, xp.sum(D, axis=0)]
        if a is not None:
            grads.append(self.activation_gradient(xp, G, X, Y, a))
        return grads

    def activation_gradient(self, xp, G: Any, X: Any, Y: Any, a: Any) -> Any:
        """``dE/da``, summed over the rows: ``G * dY/da`` with ``G = dE/dY``."""
        return xp.sum(G * self.activation.dparam(xp, X, Y, a), axis=0)


def build(sizes: Sequence[int], activations: Sequence[str | Activation]) -> list[Dense]:
    """The layers of a network with widths ``sizes`` and one activation per layer."""
    layers, offset = [], 0
    for l, name in enumerate(activations, start=1):
        layer = Dense(l, sizes[l - 1], sizes[l], _acts.get(name), offset)
        layers.append(layer)
        offset = layer.stop
    return layers


def param_names(layers: Sequence[Dense]) -> list[str]:
    """``["W1", "b1", ("a1",) "W2", ...]``, in parameter order."""
    return [n for layer in layers for n in layer.names]


def param_shapes(layers: Sequence[Dense]) -> dict[str, tuple[int, ...]]:
    """Parameter name -> shape, in parameter order."""
    return {n: s for layer in layers for n, s in zip(layer.names, layer.shapes)}


def by_layer(layers: Sequence[Dense], params: Sequence[Any]) -> list[dict[str, Any]]:
    """The network's parameters as one ``{role: array}`` per layer, input to output."""
    return [layer.named(params) for layer in layers]


def role_of(layers: Sequence[Dense]) -> list[str]:
    """The role (``"W"``, ``"b"``, ``"a"``) of every parameter, in parameter order:
    what a penalty or an update needs to know of each, without its position."""
    return [role for layer in layers for role in layer.roles]
