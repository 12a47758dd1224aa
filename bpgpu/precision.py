"""Mixed precision: the products and activations in a narrower type, everything that
accumulates in float32.

``MLP(..., precision="bfloat16")`` (or ``"float16"``) keeps the network's weights, the
optimizer's state, the loss and the softmax/cross-entropy sums in float32 (the master
weights, what ``get_weights`` returns and files hold), and runs each step's matrix
products and activations in the compute type: the weights and the batch are cast down
at the start of a step, the output layer's weighted input is cast back up before the
cost, the output error cast down for the backward pass, and the gradients cast up
before the optimizer's update (:func:`bpgpu.core.train_step`). ``"tf32"`` keeps every
array in float32 and lets an NVIDIA GPU's tensor cores take the products (never on
unless asked for).

The compute type is the backend's (:meth:`bpgpu.backends.Backend.compute_dtype`): the
Array API standard has no bfloat16 or float16, so a backend that has them says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PRECISIONS = ("tf32", "bfloat16", "float16")


@dataclass(frozen=True)
class Precision:
    """A network's precision policy on one backend.

    Attributes
    ----------
    name : {"tf32", "bfloat16", "float16"}
    compute : dtype or None
        The backend's dtype of the products and activations; None for ``"tf32"``
        (float32 arrays, the products on tensor cores).
    master : dtype
        float32: weights, optimizer state, loss, softmax and cross-entropy sums.
    """

    name: str
    compute: Any
    master: Any

    @property
    def reduced(self) -> bool:
        """Whether arrays are cast to a narrower type inside a step."""
        return self.compute is not None


def policy(name: str | None, backend, dtype: str) -> Precision | None:
    """The precision policy ``name`` for a network of ``dtype`` on ``backend``; None for
    full precision. Refuses a name it does not know, a dtype other than float32 (the
    master weights are float32) and a type the backend lacks, each saying what to use."""
    if name is None:
        return None
    if name not in PRECISIONS:
        from bpgpu._errors import unknown_name

        raise unknown_name("precision", name, PRECISIONS)
    if dtype != "float32":
        raise ValueError(
            f"precision={name!r} keeps float32 master weights and runs the products in a "
            f"narrower type; use dtype='float32' with it (got dtype={dtype!r}), or "
            "precision=None for float64"
        )
    compute = backend.compute_dtype(name)
    return Precision(name, compute, backend.dtype("float32"))
