"""The seed's table of activation functions, one entry per activation.

Each entry holds the function, its derivative and the properties the seed asks an
activation to have, so that the network can use them (refuse a cost whose domain does
not fit the output range, warn about a zero gradient in a hidden layer) and a user can
list them with :func:`table`. Every function takes the namespace ``xp`` first and uses
only the Array API standard.

Shapes: ``X`` and ``Y`` are ``(B, n)``; a learnable parameter ``a`` (PReLU's slope) is
``(n,)`` and broadcasts over the rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Activation", "Range", "ACTIVATIONS", "get", "table"]

LEAKY_SLOPE = 0.01
ELU_ALPHA = 1.0
PRELU_INIT = 0.25


@dataclass(frozen=True)
class Range:
    """An interval of outputs, the seed's "output range" of an activation.

    Parameters
    ----------
    lo, hi : float
        The ends (``-math.inf``, ``math.inf`` for an unbounded side).
    lo_closed, hi_closed : bool
        Whether the end is reached (ReLU's 0 is; the logistic's 0 and 1 are not).

    Examples
    --------
    >>> from bpgpu import activations
    >>> print(activations.get("relu").output_range, activations.get("sigmoid").output_range)
    [0, inf) (0, 1)
    """

    lo: float
    hi: float
    lo_closed: bool = False
    hi_closed: bool = False

    def within(self, other: Range) -> bool:
        """Whether every value of this range lies in another.

        Parameters
        ----------
        other : Range
            The range that should hold this one (a cost's domain, for instance).

        Returns
        -------
        bool
            True when this range is a subset of ``other``.

        Examples
        --------
        >>> from bpgpu.activations import Range
        >>> Range(0.0, 1.0).within(Range(0.0, 1.0, lo_closed=True, hi_closed=True))
        True
        >>> Range(-1.0, 1.0).within(Range(0.0, 1.0))
        False
        """
        lo_ok = self.lo > other.lo or (
            self.lo == other.lo and (other.lo_closed or not self.lo_closed)
        )
        hi_ok = self.hi < other.hi or (
            self.hi == other.hi and (other.hi_closed or not self.hi_closed)
        )
        return lo_ok and hi_ok

    def __str__(self) -> str:
        def end(v: float) -> str:
            return "inf" if v == math.inf else "-inf" if v == -math.inf else f"{v:g}"

        return (
            f"{'[' if self.lo_closed else '('}{end(self.lo)}, "
            f"{end(self.hi)}{']' if self.hi_closed else ')'}"
        )


REALS = Range(-math.inf, math.inf)


# filled once the table below is built: each fast form (vjp_fn, c_f, c_vjp) of a table
# entry -> the (f, df, dparam, param_init) it was written for; and the table's functions
# -> the entry's name
_WRITTEN_FOR: dict[tuple[str, Any], set[tuple]] = {}
_BUILTIN: dict[tuple, str] = {}


@dataclass(frozen=True)
class Activation:
    """One activation: ``f``, its derivative and the seed's properties.

    Parameters
    ----------
    name : str
        The string users pass (``hidden="relu"``).
    f : callable ``(xp, X, a) -> Y``
        The function, in a numerically stable form.
    df : callable ``(xp, X, Y, a) -> f'(X)`` or None
        Element-wise derivative; written from the output ``Y`` where the seed does.
        None for softmax, whose Jacobian is not diagonal (see ``vjp``).
    nonlinear, differentiable, monotonic, identity_near_zero : bool
        The seed's properties; ``identity_near_zero`` means ``f(x) ~ x`` near 0.
    output_range : Range
        The set of values ``f`` can take.
    param_init : float or None
        Initial value of a learnable per-neuron parameter (PReLU's slope), else None.
    dparam : callable ``(xp, X, Y, a) -> dY/da`` or None
        Element-wise derivative with respect to that parameter.
    hidden_ok : bool
        False for activations that only make sense on the output layer (softmax).
    init : str
        Weight initialisation for layers using it: ``"he"`` (ReLU family) or ``"glorot"``.
    vjp_fn : callable ``(xp, X, Y, G, a) -> dX`` or None
        A cheaper ``f'(X) * G`` for piecewise activations (a select instead of building
        ``f'`` and multiplying); tested against ``df`` and central differences.
    aliases : tuple of str
        Other names :func:`get` accepts (``"logistic"`` for ``"sigmoid"``).
    c_f, c_vjp : str or None
        The same two functions as C expressions, for backends that compile fused
        element-wise kernels (CuPy): ``c_f`` of ``z`` (and ``a``), ``c_vjp`` of ``x``,
        ``y``, ``g`` (and ``a``), in the type ``T``, with this module's constants
        written in. None: no fused kernel (softmax). ``tests/test_cuda_sources.py``
        compiles and runs them on the host against ``f`` and ``vjp``, NaN and inf
        included.

    See Also
    --------
    get : An activation of the table by name.
    table : Every activation's properties.

    Examples
    --------
    An entry of the table, and one of the user's own, made from an entry by
    :func:`dataclasses.replace` (its fast forms, written for the entry's functions, are
    dropped, so every backend computes what ``f`` and ``df`` say):

    >>> import dataclasses
    >>> import numpy as np
    >>> import bpgpu
    >>> from bpgpu import activations
    >>> relu = activations.get("relu")
    >>> relu.f(np, np.array([[-1.0, 2.0]]), None)
    array([[0., 2.]])
    >>> square = dataclasses.replace(
    ...     relu, name="square", f=lambda xp, X, a=None: X * X,
    ...     df=lambda xp, X, Y, a=None: 2 * X, monotonic=False)
    >>> net = bpgpu.MLP([2, 3, 1], hidden=square, output="identity", seed=0)
    >>> net.forward(np.ones((1, 2))).shape
    (1, 1)
    """

    name: str
    f: Callable[..., Any]
    df: Callable[..., Any] | None
    nonlinear: bool
    differentiable: bool
    monotonic: bool
    identity_near_zero: bool
    output_range: Range
    param_init: float | None = None
    dparam: Callable[..., Any] | None = None
    hidden_ok: bool = True
    init: str = "glorot"
    vjp_fn: Callable[..., Any] | None = None
    aliases: tuple[str, ...] = field(default=())
    c_f: str | None = None
    c_vjp: str | None = None

    has_param: bool = field(init=False)  # a plain field: read several times per step
    # the table entry whose functions these are (None: an activation of the user's own
    # functions): what the backends' fast paths and the costs' shortcuts key on, never
    # the name, which an object of the user's own may share
    builtin: str | None = field(init=False, default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "has_param", self.param_init is not None)
        # An object made from a table entry (dataclasses.replace) with other functions
        # keeps that entry's fast forms, written for the entry's functions: dropped, so
        # that every backend computes what f, df and dparam say
        mine = (self.f, self.df, self.dparam, self.param_init)
        for fast in ("vjp_fn", "c_f", "c_vjp"):
            owners = _WRITTEN_FOR.get((fast, getattr(self, fast)))
            if owners is not None and mine not in owners:
                object.__setattr__(self, fast, None)
        object.__setattr__(self, "builtin", _BUILTIN.get((*mine, self.vjp_fn, self.c_f)))

    def vjp(self, xp, X, Y, G, a=None):
        """The error at the weighted input from that at the output, the seed's (8).

        Parameters
        ----------
        xp : namespace
            The Array API namespace of the arrays.
        X : array
            The weighted input ``(B, n)``.
        Y : array
            The output ``f(X)``, ``(B, n)``.
        G : array
            ``dE/dY``, ``(B, n)``.
        a : array or None
            The learnable parameter ``(n,)`` (PReLU's slope), else None.

        Returns
        -------
        array
            ``dE/dX``: ``f'(X) * G`` for an element-wise activation; for softmax the
            Jacobian's transpose times ``G``.

        Examples
        --------
        >>> import numpy as np
        >>> from bpgpu import activations
        >>> relu = activations.get("relu")
        >>> X = np.array([[-1.0, 2.0]])
        >>> relu.vjp(np, X, relu.f(np, X, None), np.array([[5.0, 5.0]]))
        array([[0., 5.]])
        """
        if self.vjp_fn is not None:
            return self.vjp_fn(xp, X, Y, G, a)
        if self.df is None:  # softmax: J^T G = Y * (G - sum(G * Y))
            return Y * (G - xp.sum(G * Y, axis=1, keepdims=True))
        return self.df(xp, X, Y, a) * G

    def properties(self) -> dict[str, Any]:
        """The seed's properties as plain data.

        Returns
        -------
        dict
            ``nonlinear``, ``differentiable``, ``monotonic``, ``identity_near_zero``
            (bool), ``output_range`` (str), ``learnable_parameter`` and
            ``hidden_layer`` (bool: whether a hidden layer may use it).

        Examples
        --------
        >>> from bpgpu import activations
        >>> props = activations.get("tanh").properties()
        >>> props["output_range"], props["identity_near_zero"]
        ('(-1, 1)', True)
        """
        return {
            "nonlinear": self.nonlinear,
            "differentiable": self.differentiable,
            "monotonic": self.monotonic,
            "identity_near_zero": self.identity_near_zero,
            "output_range": str(self.output_range),
            "learnable_parameter": self.has_param,
            "hidden_layer": self.hidden_ok,
        }


_CONSTANTS: dict = {}
_ARRAY_SCALARS: dict = {}  # id(xp) -> whether this namespace needs 0-d arrays


def const(xp, like, value: float):
    """``value`` for ``maximum``/``minimum``: a 0-d array of ``like``'s dtype on its
    device, made once and kept, where the namespace needs one; else the number itself.

    array-api-compat turns a Python scalar in torch's ``maximum``/``minimum``/``logaddexp``
    into a new tensor on every call, a host-to-device copy that stalls a CUDA stream each
    step; a cached array costs a dict lookup instead. The other libraries take the number
    as it is (JAX must: a cached array would leak from one compiled step into another).
    """
    needs = _ARRAY_SCALARS.get(id(xp))
    if needs is None:
        import array_api_compat

        try:
            needs = array_api_compat.is_torch_namespace(xp)
        except TypeError:  # a namespace object of one's own (tests): plain numbers
            needs = False
        _ARRAY_SCALARS[id(xp)] = needs
    if not needs:
        return value
    device = like.device
    key = (value, like.dtype, device)
    try:
        return _CONSTANTS[key]
    except KeyError:
        c = _CONSTANTS[key] = xp.asarray(value, dtype=like.dtype, device=device)
        return c


def _sigmoid(xp, X, a=None):
    # 1 / (1 + e^-x) = (1 + tanh(x / 2)) / 2: no overflow anywhere, one transcendental,
    # no branch (a select is ~10x slower than arithmetic on NumPy). Exact to rounding
    # in absolute terms; tiny outputs are not relatively exact, which is why the
    # cross-entropy is computed from the logits.
    return 0.5 * xp.tanh(0.5 * X) + 0.5


def softplus(xp, X, a=None):
    """``ln(1 + e^x)`` as ``max(x, 0) + ln(1 + e^-|x|)``: no overflow, no select."""
    return xp.maximum(X, const(xp, X, 0.0)) + xp.log1p(xp.exp(-xp.abs(X)))


def _softmax(xp, X, a=None):
    e = xp.exp(X - xp.max(X, axis=1, keepdims=True))
    return e / xp.sum(e, axis=1, keepdims=True)


def _ones(xp, X):
    return xp.ones_like(X)


_TABLE = [
    Activation(
        "identity",
        f=lambda xp, X, a=None: X,
        df=lambda xp, X, Y, a=None: _ones(xp, X),
        nonlinear=False,
        differentiable=True,
        monotonic=True,
        identity_near_zero=True,
        output_range=REALS,
        c_f="z",
        c_vjp="g",
    ),
    Activation(
        "binary_step",
        f=lambda xp, X, a=None: xp.astype(X >= 0, X.dtype),
        df=lambda xp, X, Y, a=None: xp.zeros_like(X),  # 0 everywhere but the jump
        nonlinear=True,
        differentiable=False,
        monotonic=True,
        identity_near_zero=False,
        output_range=Range(0.0, 1.0, True, True),
        c_f="z >= 0 ? (T)1 : (T)0",
        c_vjp="g * (T)0",
    ),
    Activation(
        "sigmoid",
        f=_sigmoid,
        df=lambda xp, X, Y, a=None: Y * (1 - Y),  # f' = f (1 - f)
        nonlinear=True,
        differentiable=True,
        monotonic=True,
        identity_near_zero=False,
        output_range=Range(0.0, 1.0),
        aliases=("logistic",),
        c_f="(T)0.5 * tanh((T)0.5 * z) + (T)0.5",
        c_vjp="g * y * ((T)1 - y)",
    ),
    Activation(
        "tanh",
        f=lambda xp, X, a=None: xp.tanh(X),
        df=lambda xp, X, Y, a=None: 1 - Y * Y,  # f' = 1 - f^2
        nonlinear=True,
        differentiable=True,
        monotonic=True,
        identity_near_zero=True,
        output_range=Range(-1.0, 1.0),
        c_f="tanh(z)",
        c_vjp="g * ((T)1 - y * y)",
    ),
    Activation(
        "arctan",
        f=lambda xp, X, a=None: xp.atan(X),
        df=lambda xp, X, Y, a=None: 1 / (1 + X * X),
        nonlinear=True,
        differentiable=True,
        monotonic=True,
        identity_near_zero=True,
        output_range=Range(-math.pi / 2, math.pi / 2),
        c_f="atan(z)",
        c_vjp="g / ((T)1 + x * x)",
    ),
    Activation(
        "relu",
        f=lambda xp, X, a=None: xp.maximum(X, const(xp, X, 0.0)),
        df=lambda xp, X, Y, a=None: xp.astype(X > 0, X.dtype),
        vjp_fn=lambda xp, X, Y, G, a=None: G * xp.astype(Y > 0, G.dtype),  # Y > 0 iff X > 0
        nonlinear=True,
        differentiable=True,  # everywhere but 0, as the seed's table treats it
        monotonic=True,
        identity_near_zero=False,
        output_range=Range(0.0, math.inf, lo_closed=True),
        init="he",
        c_f="(z > 0 || isnan(z)) ? z : (T)0",  # NaN propagates, as maximum does
        c_vjp="x > 0 ? g : g * (T)0",
    ),
    Activation(
        "leaky_relu",
        f=lambda xp, X, a=None: xp.maximum(X, LEAKY_SLOPE * X),  # the slope is below 1
        df=lambda xp, X, Y, a=None: xp.where(X > 0, 1.0, xp.full_like(X, LEAKY_SLOPE)),
        vjp_fn=lambda xp, X, Y, G, a=None: (
            G * (LEAKY_SLOPE + (1 - LEAKY_SLOPE) * xp.astype(X > 0, G.dtype))
        ),
        nonlinear=True,
        differentiable=True,
        monotonic=True,
        identity_near_zero=False,
        output_range=REALS,
        init="he",
        c_f=f"z > 0 ? z : (T){LEAKY_SLOPE!r} * z",
        c_vjp=f"x > 0 ? g : (T){LEAKY_SLOPE!r} * g",
    ),
    Activation(
        "prelu",
        f=lambda xp, X, a: xp.maximum(X, const(xp, X, 0.0)) + a * xp.minimum(X, const(xp, X, 0.0)),
        df=lambda xp, X, Y, a: xp.where(X > 0, 1.0, a),
        vjp_fn=lambda xp, X, Y, G, a: G * (a + (1 - a) * xp.astype(X > 0, G.dtype)),
        nonlinear=True,
        differentiable=True,
        monotonic=True,  # for a >= 0
        identity_near_zero=False,
        output_range=REALS,
        param_init=PRELU_INIT,
        dparam=lambda xp, X, Y, a: xp.minimum(X, const(xp, X, 0.0)),  # dY/da = X where X <= 0
        init="he",
        c_f="z > 0 ? z : a * z",
        c_vjp="x > 0 ? g : a * g",
    ),
    Activation(
        "elu",
        # expm1 only sees the clipped (non-positive) branch, so it cannot overflow
        f=lambda xp, X, a=None: (
            xp.maximum(X, const(xp, X, 0.0))
            + ELU_ALPHA * xp.expm1(xp.minimum(X, const(xp, X, 0.0)))
        ),
        df=lambda xp, X, Y, a=None: xp.where(X > 0, 1.0, Y + ELU_ALPHA),  # f' = f + alpha
        # f' = min(f + alpha, 1): f + alpha = alpha e^x <= 1 for x <= 0, and > 1 for x > 0
        # (both because alpha = 1)
        vjp_fn=lambda xp, X, Y, G, a=None: G * xp.minimum(Y + ELU_ALPHA, const(xp, Y, 1.0)),
        nonlinear=True,
        differentiable=True,
        monotonic=True,
        identity_near_zero=True,
        output_range=Range(-ELU_ALPHA, math.inf),
        init="he",
        c_f=f"z > 0 ? z : (T){ELU_ALPHA!r} * expm1(z)",
        c_vjp=f"x > 0 ? g : g * (y + (T){ELU_ALPHA!r})",
    ),
    Activation(
        "softplus",
        f=softplus,
        df=lambda xp, X, Y, a=None: _sigmoid(xp, X),
        nonlinear=True,
        differentiable=True,
        monotonic=True,
        identity_near_zero=False,
        output_range=Range(0.0, math.inf),
        c_f="fmax(z, (T)0) + log1p(exp(-fabs(z)))",
        c_vjp="g * ((T)0.5 * tanh((T)0.5 * x) + (T)0.5)",
    ),
    Activation(
        "softmax",
        f=_softmax,
        df=None,
        nonlinear=True,
        differentiable=True,
        monotonic=False,
        identity_near_zero=False,
        output_range=Range(0.0, 1.0),
        hidden_ok=False,
    ),
]

#: Every activation of the seed's table (and softmax, leaky ReLU), by name.
ACTIVATIONS: dict[str, Activation] = {a.name: a for a in _TABLE}
_ALIASES = {alias: a.name for a in _TABLE for alias in a.aliases}
for _a in _TABLE:
    _key = (_a.f, _a.df, _a.dparam, _a.param_init)
    for _fast in ("vjp_fn", "c_f", "c_vjp"):
        if getattr(_a, _fast) is not None:
            _WRITTEN_FOR.setdefault((_fast, getattr(_a, _fast)), set()).add(_key)
    _BUILTIN[(*_key, _a.vjp_fn, _a.c_f)] = _a.name
    object.__setattr__(_a, "builtin", _a.name)
del _a, _key, _fast


def get(name: str | Activation) -> Activation:
    """An activation of the table by its name or an alias.

    Parameters
    ----------
    name : str or Activation
        ``"relu"``, ``"sigmoid"`` (alias ``"logistic"``), ...; an :class:`Activation`
        is returned as it is.

    Returns
    -------
    Activation
        The table's entry.

    Raises
    ------
    ValueError
        An unknown name; the message lists the known ones.

    Examples
    --------
    >>> from bpgpu import activations
    >>> activations.get("logistic").name
    'sigmoid'
    """
    if isinstance(name, Activation):
        return name
    key = _ALIASES.get(name, name)
    if key not in ACTIVATIONS:
        from bpgpu._errors import unknown_name

        raise unknown_name("activation", name, [*ACTIVATIONS, *_ALIASES])
    return ACTIVATIONS[key]


def table() -> dict[str, dict[str, Any]]:
    """Every activation's properties, the seed's table as data.

    Returns
    -------
    dict
        ``{name: properties}`` in table order, each as :meth:`Activation.properties`
        gives it.

    Examples
    --------
    >>> from bpgpu import activations
    >>> list(activations.table())[:4]
    ['identity', 'binary_step', 'sigmoid', 'tanh']
    >>> activations.table()["softmax"]["hidden_layer"]
    False
    """
    return {a.name: a.properties() for a in _TABLE}
