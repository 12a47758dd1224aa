"""The seed's cost functions, each holding its value and its output error (eq. 9).

Shapes: ``X``, ``Y`` (output layer's weighted input and output) and ``T`` (targets) are
``(B, n_L)``. ``per_sample`` returns ``(B,)``; the batch loss is its mean.

The exact shortcuts of eq. (9): with a logistic output, ``cross_entropy`` gives
``delta = Y - T`` (the ``1 / (y (1 - y))`` of eq. 6 cancels ``f' = y (1 - y)``), and so
does ``categorical_cross_entropy`` with a softmax output (the softmax Jacobian cancels
``-t / y``). Every other pair uses the general ``dE/dY * f'(X)``. With a shortcut the
cost is also evaluated from ``X`` (log-sum-exp), so saturated outputs stay finite.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bpgpu.activations import REALS, Activation, Range, softplus

__all__ = ["Cost", "COSTS", "get", "compatible_pairs"]


# filled once the table below is built: each table cost's from_logits -> the (fn, dE_dY)
# its shortcut was derived with
_WRITTEN_FOR: dict[Any, set[tuple]] = {}


@dataclass(frozen=True)
class Cost:
    """One cost: its per-sample value, ``dE/dY`` and the outputs it accepts.

    Parameters
    ----------
    name : str
        The string users pass (``cost="quadratic"``).
    fn : callable ``(xp, Y, T) -> E`` of shape ``(B,)``
        The seed's formula, eq. (3) or (5).
    dE_dY : callable ``(xp, Y, T) -> (B, n)``
        Its derivative, eq. (4) or (6).
    domain : Range
        Output values the cost is defined on; the network refuses an output
        activation whose range is not inside it.
    shortcut : str or None
        The output activation for which ``delta = Y - T`` exactly.
    from_logits : callable ``(xp, X, T) -> E`` or None
        The cost evaluated from the weighted input, used with ``shortcut``.
    only_with : tuple of str
        When not empty, the only output activations allowed.
    refuse : dict
        Output activations refused although their range fits, with the reason.
    fused : bool
        The shortcut pair is softmax with categorical cross-entropy, whose output, summed
        cost and output error the backend computes in one pass (``ops.softmax_cce``).
    terms, logit_terms : callable ``(xp, Y, T)`` / ``(xp, X, T) -> list of arrays``
        The sizes of the terms that ``fn`` / ``from_logits`` add or subtract, each
        ``(B, n)`` or ``(B,)``: a sample's cost cannot be computed in floating point
        more accurately than a few units of rounding of their root-sum-square (a
        confident prediction's cost is a small difference of two large logits). The
        consistency check measures errors against that size (:mod:`bpgpu.consistency`).
    """

    name: str
    fn: Callable[..., Any]
    dE_dY: Callable[..., Any]
    domain: Range = REALS
    shortcut: str | None = None
    from_logits: Callable[..., Any] | None = None
    only_with: tuple[str, ...] = ()
    refuse: tuple[tuple[str, str], ...] = ()
    fused: bool = False
    terms: Callable[..., list] | None = None
    logit_terms: Callable[..., list] | None = None

    def __post_init__(self) -> None:
        # An object made from a table entry (dataclasses.replace) with another fn or
        # dE_dY keeps that entry's shortcut, written for the entry's functions: dropped,
        # so that the cost computed is the one fn says
        owners = _WRITTEN_FOR.get(self.from_logits)
        if owners is not None and (self.fn, self.dE_dY) not in owners:
            dropped = {"shortcut": None, "from_logits": None, "logit_terms": None, "fused": False}
            for name, value in dropped.items():
                object.__setattr__(self, name, value)

    def shortcut_for(self, act: Activation) -> bool:
        """Whether the output error is ``Y - T`` on ``act``'s outputs: ``act`` is the
        activation the shortcut was derived for (its functions, whatever its name)."""
        return self.shortcut is not None and act.builtin == self.shortcut

    def magnitude(self, xp, act: Activation, X, Y, T):
        """Per-sample ``(B,)`` root-sum-square of the terms :meth:`per_sample` sums."""
        logits = self.shortcut_for(act)
        fn = self.logit_terms if logits else self.terms
        if fn is None:  # a cost of the user's own that does not say: its value
            return xp.abs(self.per_sample(xp, act, X, Y, T))
        parts = fn(xp, X, T) if logits else fn(xp, Y, T)
        total = 0.0
        for p in parts:
            total = total + (xp.sum(p * p, axis=1) if p.ndim == 2 else p * p)
        return xp.sqrt(total)

    def check_output(self, act: Activation) -> None:
        """Raise ValueError when this cost cannot be used on ``act``'s outputs."""
        if self.only_with and act.name not in self.only_with:
            raise ValueError(
                f"cost {self.name!r} needs output={' or '.join(map(repr, self.only_with))}, "
                f"got output={act.name!r}; change the output activation or use "
                f"cost='quadratic'"
            )
        if not act.output_range.within(self.domain):
            raise ValueError(
                f"cost {self.name!r} is defined for outputs in {self.domain}, but "
                f"output={act.name!r} ranges over {act.output_range}; use output='sigmoid' "
                f"or cost='quadratic'"
            )
        for name, why in self.refuse:
            if act.name == name:
                raise ValueError(f"cost {self.name!r} with output={name!r}: {why}")

    def per_sample(self, xp, act: Activation, X, Y, T):
        """Per-sample cost ``(B,)``, from the logits when the pair has a shortcut."""
        if self.shortcut_for(act):
            return self.from_logits(xp, X, T)
        return self.fn(xp, Y, T)

    def train_output(self, ops, act: Activation, X, T, a=None, loss: bool = True, scale=1.0):
        """``(Y, E, D, G)`` of the output layer: ``Y = f(X)``, the batch's summed cost
        (None unless ``loss``), ``scale * D^L`` (9) and, for a learnable output
        activation, ``scale * dE/dY`` instead of ``D`` (the backward pass makes ``D``
        from it), sharing work where a fused form exists (``ops.softmax_cce``)."""
        if self.fused and self.shortcut_for(act):
            Y, E, D = ops.softmax_cce(X, T, scale, loss)
            return Y, E, D, None
        xp = ops.xp
        Y = act.f(xp, X, a)
        E = xp.sum(self.per_sample(xp, act, X, Y, T)) if loss else None
        if act.has_param:
            G = self.dE_dY(xp, Y, T)
            return Y, E, None, ops.scaled(G, scale)
        D = self.delta(xp, act, X, Y, T)
        return Y, E, ops.scaled(D, scale), None

    def delta(self, xp, act: Activation, X, Y, T, a=None):
        """Output error ``D^L = dE/dX^L`` per sample, eq. (9)."""
        if self.shortcut_for(act):
            return Y - T
        return act.vjp(xp, X, Y, self.dE_dY(xp, Y, T), a)


def _logsumexp(xp, X):
    m = xp.max(X, axis=1, keepdims=True)
    return xp.log(xp.sum(xp.exp(X - m), axis=1)) + m[:, 0]


_TABLE = [
    Cost(
        "quadratic",
        fn=lambda xp, Y, T: xp.sum((T - Y) ** 2, axis=1) / 2,  # (3)
        dE_dY=lambda xp, Y, T: Y - T,  # (4)
        # (t - y)^2 / 2: t - y is known to rounding of |t| and |y|, its square to that
        # times |t - y|
        terms=lambda xp, Y, T: [xp.abs(T - Y) * xp.sqrt(T * T + Y * Y)],
    ),
    Cost(
        "cross_entropy",
        fn=lambda xp, Y, T: -xp.sum(T * xp.log(Y) + (1 - T) * xp.log(1 - Y), axis=1),  # (5)
        dE_dY=lambda xp, Y, T: (Y - T) / (Y * (1 - Y)),  # (6)
        domain=Range(0.0, 1.0),
        shortcut="sigmoid",
        # -[t ln s(x) + (1-t) ln(1-s(x))] = softplus(x) - t x, never overflows
        from_logits=lambda xp, X, T: xp.sum(softplus(xp, X) - T * X, axis=1),
        terms=lambda xp, Y, T: [T * xp.log(Y), (1 - T) * xp.log(1 - Y)],
        logit_terms=lambda xp, X, T: [softplus(xp, X), T * X],
        refuse=(
            (
                "softmax",
                "per-unit cross-entropy treats the outputs as independent, but softmax "
                "outputs sum to 1; use cost='categorical_cross_entropy'",
            ),
        ),
    ),
    Cost(
        "categorical_cross_entropy",
        fn=lambda xp, Y, T: -xp.sum(T * xp.log(Y), axis=1),
        dE_dY=lambda xp, Y, T: -T / Y,
        domain=Range(0.0, 1.0),
        shortcut="softmax",
        # -sum t (x - lse(x)) = lse(x) sum t - sum t x
        from_logits=lambda xp, X, T: _logsumexp(xp, X) * xp.sum(T, axis=1) - xp.sum(T * X, axis=1),
        terms=lambda xp, Y, T: [T * xp.log(Y)],
        logit_terms=lambda xp, X, T: [_logsumexp(xp, X) * xp.sum(T, axis=1), T * X],
        only_with=("softmax",),
        fused=True,
    ),
]

COSTS: dict[str, Cost] = {c.name: c for c in _TABLE}
for _c in _TABLE:
    if _c.from_logits is not None:
        _WRITTEN_FOR.setdefault(_c.from_logits, set()).add((_c.fn, _c.dE_dY))
del _c


def compatible_pairs() -> list[tuple[str, str]]:
    """Every allowed ``(output activation, cost)`` pair, in table order."""
    from bpgpu.activations import ACTIVATIONS

    pairs = []
    for cname, cost in COSTS.items():
        for aname, act in ACTIVATIONS.items():
            try:
                cost.check_output(act)
            except ValueError:
                continue
            pairs.append((aname, cname))
    return pairs


def get(name: str | Cost) -> Cost:
    """The cost called ``name``."""
    if isinstance(name, Cost):
        return name
    if name not in COSTS:
        from bpgpu._errors import unknown_name

        raise unknown_name("cost", name, COSTS)
    return COSTS[name]
