"""The operations a training step is made of, one typed class, generic first.

:class:`Ops` implements each operation once against the Array API standard, returning
new arrays, so that an immutable library (JAX) runs it as it is. A backend subclass
overrides only what it can speed up — an in-place update where the library allows one
(:class:`MutableOps`), a fused CuPy kernel, a BLAS call with ``beta = 1`` — checks dtype
and shape, and calls ``super()`` for anything else. The core calls these methods and
never looks an operation up by name; ``Backend.ops`` hands out the generic instance
when the overrides are switched off (``BPGPU_FAST=0``, ``backend.use_fast = False``).
``tests/test_ops.py`` runs every override against the generic method it replaces.

Activations and optimizers come in as objects (this layer imports nothing from the rest
of bpgpu): an activation has ``name``, ``f(xp, X, a)``, ``vjp(xp, X, Y, G, a)`` and the C
expressions ``c_f``/``c_vjp``; an optimizer has ``update(grads, state, params)``,
``hyper(t)`` and ``weight_decay``, and its state is ``{"t": steps, slot: [array per
parameter], ...}``. Shapes: ``XW``, ``X``, ``Y``, ``G``, ``D``, ``T`` are ``(B, n)``;
``b`` and ``a`` are ``(n,)``; ``W`` is ``(n_out, n_in)``.
"""

from __future__ import annotations

from typing import Any


class Ops:
    """The generic operations, on the namespace ``xp`` (functional: new arrays out)."""

    in_place = False  # True: the parameter updates write into the arrays (MutableOps)

    def __init__(self, xp: Any):
        self.xp = xp

    def add_bias(self, XW, b):
        """``X = XW + b``, eq. (1). ``XW`` is a fresh matrix product the caller does not
        use again, so an override may write into it."""
        return XW + b

    def bias_act(self, XW, b, act, a=None) -> tuple[Any, Any]:
        """``X = XW + b`` (1) and ``Y = f(X)``; ``a`` is the activation's parameter or
        None. ``XW`` may be written into, as in :meth:`add_bias`."""
        X = self.add_bias(XW, b)
        return X, act.f(self.xp, X, a)

    def act_vjp(self, X, Y, G, act, a=None):
        """``D = f'(X) * G`` from ``G = dE/dY``, eq. (8). ``G`` is fresh and, for an
        activation without a parameter, not read again: an override may write into it."""
        return act.vjp(self.xp, X, Y, G, a)

    def softmax_cce(self, X, T, scale: float, loss: bool) -> tuple[Any, Any, Any]:
        """Softmax of the logits ``X``, the categorical cross-entropy summed over the
        batch (None unless ``loss``) and the output error ``scale * (Y - T)`` (eq. 9's
        shortcut): from one shifted exponential, ``ln y = z - ln s`` with ``z = x - max x``."""
        xp = self.xp
        Z = X - xp.max(X, axis=1, keepdims=True)
        e = xp.exp(Z)
        s = xp.sum(e, axis=1, keepdims=True)
        Y = e / s
        E = xp.sum(T * (xp.log(s) - Z)) if loss else None
        D = Y - T
        return Y, E, self.scaled(D, scale)

    def scaled(self, A, scale):
        """``scale * A``, without the product where ``scale`` is exactly 1 on the host (a
        traced scale, in a compiled program, cannot be asked: it is multiplied)."""
        return A if isinstance(scale, (int, float)) and scale == 1 else A * scale

    def sgd_weight(self, D, Y, W):
        """Plain SGD's weight update from an error already scaled by ``lr / B``:
        ``W - D^T Y``, eq. (10)."""
        return W - D.T @ Y

    def sgd_bias(self, D, b):
        """Plain SGD's bias update from a prescaled error: ``b - sum of D's rows``, (11)."""
        return b - self.xp.sum(D, axis=0)

    def apply_updates(self, params: list, updates: list) -> list:
        """``p + u`` for every parameter (a None update leaves it as it is)."""
        return [p if u is None else p + u for p, u in zip(params, updates)]

    def sum_scalars(self, values: list):
        """The sum of 0-d arrays (an epoch's per-batch summed costs), a 0-d array."""
        return self.xp.sum(self.xp.stack(values))

    def optimizer_step(self, opt, rule: str | None, params: list, grads: list, state: dict):
        """One optimizer step: ``(new parameters, new state)``.

        ``rule`` names the built-in rule (``"sgd"``, ``"momentum"``, ``"nesterov"``,
        ``"adam"``) only when ``opt`` is exactly that built-in optimizer, so an override
        may run it as one fused kernel; for anything else it is None and the
        optimizer's own ``update`` runs, subclass overrides included.
        """
        updates, state = opt.update(grads, state, params)
        return self.apply_updates(params, updates), state


class MutableOps(Ops):
    """Libraries whose arrays can be written (NumPy, CuPy, torch): the same results,
    written into arrays the caller hands over or owns, instead of new ones. Anything
    else (another dtype, a shape that does not fit) goes to the generic method."""

    in_place = True

    # The checks are identity tests of dtype objects (each library keeps one per type):
    # on a small network these run as often as the products themselves. A shape that
    # does not fit makes the in-place operator itself raise.

    def add_bias(self, XW, b):
        if XW.dtype is not b.dtype:
            return super().add_bias(XW, b)
        XW += b  # the product is fresh: a new array would cost page faults and memory
        return XW

    def sgd_weight(self, D, Y, W):
        if not (D.dtype is W.dtype and Y.dtype is W.dtype and W.ndim == 2):
            return super().sgd_weight(D, Y, W)
        W -= D.T @ Y
        return W

    def sgd_bias(self, D, b):
        if D.dtype is not b.dtype or b.ndim != 1:
            return super().sgd_bias(D, b)
        b -= self.xp.sum(D, axis=0)
        return b

    def apply_updates(self, params: list, updates: list) -> list:
        for p, u in zip(params, updates):
            if u is not None and (u.dtype is not p.dtype or u.shape != p.shape):
                return super().apply_updates(params, updates)
        for p, u in zip(params, updates):
            if u is not None:
                p += u
        return params
