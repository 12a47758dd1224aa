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

    @property
    def scaled(self) -> bool:
        """Whether the steps scale the loss (float16: its gradients would underflow)."""
        return self.name == "float16"


# Dynamic loss scaling (float16): the output error is multiplied by the scale before the
# backward pass and the gradients divided by it in float32 after; a step whose gradients
# are not finite is skipped and the scale halved, and after GROWTH_INTERVAL clean steps
# in a row the scale doubles (torch.amp.GradScaler's defaults).
INITIAL_SCALE = 2.0**15
GROWTH_INTERVAL = 2000
SCALER = "scaler"  # the optimizer state's entry: [scale, clean steps in a row, skipped]


def scaler_state(xp, device) -> list:
    """A fresh loss-scaling state: ``[scale, clean steps, skipped steps]`` as 0-d device
    arrays (float32, int64, int64), an entry of the optimizer state that checkpoints
    save and snapshots copy like the optimizer's own."""
    return [
        xp.asarray(INITIAL_SCALE, dtype=xp.float32, device=device),
        xp.asarray(0, dtype=xp.int64, device=device),
        xp.asarray(0, dtype=xp.int64, device=device),
    ]


def next_scaler(xp, scaler: list, finite) -> list:
    """The state after a step whose gradients were ``finite`` (a 0-d bool): clean,
    the scale doubles every GROWTH_INTERVAL clean steps; not, it halves and the step
    counts as skipped. Written with ``where`` so that a compiled step can hold it."""
    scale, clean, skipped = scaler
    grown = clean + 1 >= GROWTH_INTERVAL
    two, half = xp.asarray(2.0, dtype=scale.dtype), xp.asarray(0.5, dtype=scale.dtype)
    scale = xp.where(finite, xp.where(grown, scale * two, scale), scale * half)
    zero = xp.zeros_like(clean)
    clean = xp.where(finite, xp.where(grown, zero, clean + 1), zero)
    skipped = xp.where(finite, skipped, skipped + 1)
    return [scale, clean, skipped]


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
