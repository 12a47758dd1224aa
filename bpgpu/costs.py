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

    See Also
    --------
    get : A cost of the table by name.
    compatible_pairs : The output activations each cost accepts.

    Examples
    --------
    A cost of the user's own, given to a network by object (it has no shortcut, so the
    output error is the general ``dE/dY * f'(X)`` of eq. (9)):

    >>> import numpy as np
    >>> import bpgpu
    >>> from bpgpu.costs import Cost
    >>> quartic = Cost("quartic", fn=lambda xp, Y, T: xp.sum((Y - T) ** 4, axis=1) / 4,
    ...                dE_dY=lambda xp, Y, T: (Y - T) ** 3)
    >>> net = bpgpu.MLP([2, 3, 1], output="identity", cost=quartic, dtype="float64", seed=0)
    >>> X, T = np.ones((4, 2)), np.zeros((4, 1))
    >>> bool(bpgpu.gradcheck(net, X, T) < 1e-6)
    True
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
        """Whether the output error is exactly ``Y - T`` on an activation's outputs.

        Parameters
        ----------
        act : Activation
            The output activation.

        Returns
        -------
        bool
            True when ``act`` is the activation the shortcut was derived for (its
            functions, whatever its name): sigmoid for ``cross_entropy``, softmax for
            ``categorical_cross_entropy``.

        Examples
        --------
        >>> from bpgpu import activations, costs
        >>> ce = costs.get("cross_entropy")
        >>> ce.shortcut_for(activations.get("sigmoid")), ce.shortcut_for(activations.get("tanh"))
        (True, False)
        """
        return self.shortcut is not None and act.builtin == self.shortcut

    def magnitude(self, xp, act: Activation, X, Y, T):
        """The size of the terms a sample's cost adds up: the scale of its rounding.

        Parameters
        ----------
        xp : namespace
            The arrays' namespace.
        act : Activation
            The output activation.
        X, Y : array
            The output layer's weighted input and output, ``(B, n_L)``.
        T : array
            The targets, ``(B, n_L)``.

        Returns
        -------
        array
            ``(B,)``: the root-sum-square of the terms :meth:`per_sample` adds or
            subtracts (its value where the cost does not say).

        Examples
        --------
        >>> import numpy as np
        >>> from bpgpu import activations, costs
        >>> sig = activations.get("sigmoid")
        >>> X, T = np.array([[0.0, 2.0]]), np.array([[1.0, 0.0]])
        >>> costs.get("cross_entropy").magnitude(np, sig, X, sig.f(np, X, None), T)
        array([2.23702387])
        """
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
        """Refuse an output activation this cost is not defined for.

        Parameters
        ----------
        act : Activation
            The output activation.

        Raises
        ------
        ValueError
            The activation's range is not inside the cost's domain, or the pair is
            refused for a reason (the message says which, and what to use).

        Examples
        --------
        >>> from bpgpu import activations, costs
        >>> costs.get("cross_entropy").check_output(activations.get("tanh"))
        Traceback (most recent call last):
        ...
        ValueError: cost 'cross_entropy' is defined for outputs in (0, 1), but output='tanh' ...
        """
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
        """The cost of each sample, the seed's (3) or (5).

        Parameters
        ----------
        xp : namespace
            The arrays' namespace.
        act : Activation
            The output activation.
        X, Y : array
            The output layer's weighted input and output, ``(B, n_L)``.
        T : array
            The targets, ``(B, n_L)``.

        Returns
        -------
        array
            ``(B,)``; from the weighted input ``X`` (log-sum-exp) when the pair has a
            shortcut, so a saturated output stays finite.

        Examples
        --------
        >>> import numpy as np
        >>> from bpgpu import activations, costs
        >>> ident = activations.get("identity")
        >>> Y, T = np.array([[0.0, 2.0]]), np.array([[1.0, 0.0]])
        >>> costs.get("quadratic").per_sample(np, ident, Y, Y, T)
        array([2.5])
        """
        if self.shortcut_for(act):
            return self.from_logits(xp, X, T)
        return self.fn(xp, Y, T)

    def train_output(self, ops, act: Activation, X, T, a=None, loss: bool = True, scale=1.0):
        """The output layer of a training step: output, cost and output error at once.

        Parameters
        ----------
        ops : Ops
            The backend's operations (``backend.ops``); the fused softmax with
            categorical cross-entropy is one of them (``ops.softmax_cce``).
        act : Activation
            The output activation.
        X : array
            The output layer's weighted input, ``(B, n_L)``.
        T : array
            The targets, ``(B, n_L)``.
        a : array or None
            The output activation's learnable parameter, if it has one.
        loss : bool
            Whether to compute the cost (None in its place otherwise).
        scale : float or array
            A factor on the errors (the batch mean's ``1 / B``, a loss scale).

        Returns
        -------
        Y : array
            ``f(X)``.
        E : array or None
            The batch's summed cost.
        D : array or None
            ``scale * D^L``, eq. (9); None for a learnable output activation.
        G : array or None
            For a learnable output activation, ``scale * dE/dY`` (the backward pass
            makes ``D`` from it); else None.

        Examples
        --------
        >>> import numpy as np
        >>> import bpgpu
        >>> from bpgpu import activations, costs
        >>> ops = bpgpu.get_backend("numpy").ops
        >>> X, T = np.array([[0.0, 2.0]]), np.array([[1.0, 0.0]])
        >>> Y, E, D, G = costs.get("cross_entropy").train_output(
        ...     ops, activations.get("sigmoid"), X, T)
        >>> D, round(float(E), 6), G
        (array([[-0.5       ,  0.88079708]]), 2.820075, None)
        """
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
        """The output error ``D^L = dE/dX^L`` of each sample, the seed's (9).

        Parameters
        ----------
        xp : namespace
            The arrays' namespace.
        act : Activation
            The output activation.
        X, Y : array
            The output layer's weighted input and output, ``(B, n_L)``.
        T : array
            The targets, ``(B, n_L)``.
        a : array or None
            The output activation's learnable parameter, if it has one.

        Returns
        -------
        array
            ``(B, n_L)``: ``Y - T`` where the pair has the shortcut, else
            ``dE/dY * f'(X)``.

        Examples
        --------
        >>> import numpy as np
        >>> from bpgpu import activations, costs
        >>> sig = activations.get("sigmoid")
        >>> X, T = np.array([[0.0, 2.0]]), np.array([[1.0, 0.0]])
        >>> Y = sig.f(np, X, None)
        >>> bool(np.allclose(costs.get("cross_entropy").delta(np, sig, X, Y, T), Y - T))
        True
        """
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

#: The seed's costs (and categorical cross-entropy), by name.
COSTS: dict[str, Cost] = {c.name: c for c in _TABLE}
for _c in _TABLE:
    if _c.from_logits is not None:
        _WRITTEN_FOR.setdefault(_c.from_logits, set()).add((_c.fn, _c.dE_dY))
del _c


def compatible_pairs() -> list[tuple[str, str]]:
    """Every allowed pair of output activation and cost.

    Returns
    -------
    list of tuple of str
        ``(activation, cost)`` names, in the tables' order.

    Examples
    --------
    >>> from bpgpu import costs
    >>> [a for a, c in costs.compatible_pairs() if c == "cross_entropy"]
    ['sigmoid']
    """
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
    """A cost of the table by name.

    Parameters
    ----------
    name : str or Cost
        ``"quadratic"``, ``"cross_entropy"`` or ``"categorical_cross_entropy"``; a
        :class:`Cost` is returned as it is.

    Returns
    -------
    Cost
        The table's entry.

    Raises
    ------
    ValueError
        An unknown name; the message lists the known ones.

    Examples
    --------
    >>> from bpgpu import costs
    >>> costs.get("quadratic").name
    'quadratic'
    """
    if isinstance(name, Cost):
        return name
    if name not in COSTS:
        from bpgpu._errors import unknown_name

        raise unknown_name("cost", name, COSTS)
    return COSTS[name]
