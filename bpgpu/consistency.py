"""Cross-backend consistency: the same network and batch on every backend vs NumPy float64.

Every comparison is the relative norm ``||a - ref|| / ||ref||`` of DESIGN.md section 5,
taken on host copies. The reference is built from the *same* host weights and batch as
the backend under test, rounded to its dtype first, so that the measure is the backend's
arithmetic and not the rounding of its inputs.

A tensor whose entries are sums that cancel is measured against the size of what it
sums instead of its own norm, when that is larger: the gradients of a trained network
are near zero (its output errors ``Y - T`` are small differences of outputs near their
targets, and their sums over the batch cancel), and no float32 arithmetic computes them
to 1e-5 of their own norm; NumPy's float32 missed by 1e-2 on a network fitted to its
batch. The size is the root-sum-square of the terms, carried through the backward
recursion (:func:`_term_sizes`); for well-spread random data it is about the tensor's
norm, so the suite's check stays as strict as DESIGN.md asks.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bpgpu import core
from bpgpu.activations import ACTIVATIONS
from bpgpu.backends import Backend, BackendUnavailable, get_backend, list_backends, to_host
from bpgpu.costs import compatible_pairs
from bpgpu.layers import param_names
from bpgpu.network import MLP

TOLERANCE = {"float64": 1e-12, "float32": 1e-5}
# mixed precision (float32 master weights, products in the type), against a float64
# reference from the same weights and batch rounded to the type: 16 units of bfloat16's
# roundoff (2**-8, its 8-bit significand), 2**-4. float16 (roundoff 2**-11) gets the same
# bound: with smooth activations it stays within 6 of its units (0.0027 measured), but a
# rounding that moves a weighted input across a kink (relu, leaky_relu, prelu,
# binary_step) switches f' for that entry, an error no roundoff bounds (0.055 measured
# on the suite's float16, 0.043 on its bfloat16: `python -m bpgpu check --precision ...`)
PRECISION_TOLERANCE = {"bfloat16": 2.0**-4, "float16": 2.0**-4}
QUANTITIES = ("loss", "gradients", "deltas", "step")
STEP_LR = 0.1


@dataclass(frozen=True)
class Case:
    """One network of the suite: architecture, activations, cost and batch size."""

    name: str
    sizes: tuple[int, ...]
    hidden: str
    output: str
    cost: str
    batch: int = 16


def default_suite() -> list[Case]:
    """Every hidden activation x allowed (output, cost) pair, plus a deep and a wide net."""
    hidden = [name for name, act in ACTIVATIONS.items() if act.hidden_ok]
    cases = [
        Case(f"{h}/{o}/{c}", (6, 8, 5, 4), h, o, c) for o, c in compatible_pairs() for h in hidden
    ]
    cases.append(
        Case("deep", (16,) + (32,) * 8 + (10,), "tanh", "softmax", "categorical_cross_entropy", 64)
    )
    cases.append(Case("wide", (64, 1024, 10), "relu", "softmax", "categorical_cross_entropy", 128))
    return cases


def _batch(case: Case, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(case.batch, case.sizes[0]))
    if case.cost == "categorical_cross_entropy":
        return X, rng.integers(0, case.sizes[-1], size=case.batch)
    return X, rng.uniform(0.05, 0.95, size=(case.batch, case.sizes[-1]))


def _rel(a: Any, ref: np.ndarray, size: float = 0.0) -> float:
    """``||a - ref||`` over the larger of ``||ref||`` and ``size`` (what ``ref`` sums; a
    size that overflowed is not used: it would pass anything)."""
    a = np.asarray(a, dtype=np.float64)
    scale = max(float(np.linalg.norm(ref)), size if np.isfinite(size) else 0.0)
    diff = np.linalg.norm(a - ref)
    return float(diff / scale) if scale > 0 else float(diff)


def _term_sizes(net: MLP, X, T) -> dict[str, list[float]]:
    """Per quantity and tensor, the root-sum-square size of the terms it is a sum of
    (float64, on the reference's NumPy network).

    The output error is ``(Y - T)`` times a factor (every cost of the table), so its
    terms are ``sqrt(Y^2 + T^2)`` times that factor; the recursion (8) and the sums
    (10)-(11) carry squares: ``M^l = |f'(X^l)| sqrt((M^{l+1})^2 (W^{l+1})^2)``,
    ``M(dW) = sqrt((M^2)^T Y^2) / B``. The loss: each sample's cost terms
    (``Cost.magnitude``), root-sum-squared over the batch, over ``B``. The SGD step is
    measured against its own norm (the weights dominate it).
    """
    model = net.model
    xp, layers, params, cost = model.xp, model.layers, model.params, model.cost
    Xb = model.input(X)
    T = model.targets(T, Xb.shape[0])
    B = Xb.shape[0]
    Xs, Ys = core.forward(model.backend.ops, layers, params, Xb)
    top, L = layers[-1], len(layers)
    a_top = top.unpack(params)[2]
    Y, act = Ys[-1], top.activation
    size = np.sqrt(Y * Y + T * T)
    diff = Y - T
    with np.errstate(all="ignore"):

        def terms(A):  # |A| / |Y - T| of a quantity (Y - T) * factor, times its terms
            return np.where(diff != 0, size * np.abs(A / diff), 0.0)

        MG = [None] * L
        if act.has_param:  # the backward pass starts from G = dE/dY^L
            MG[-1] = terms(cost.dE_dY(xp, Y, T))
            MD = [None] * (L - 1) + [np.abs(act.df(xp, Xs[-1], Y, a_top)) * MG[-1]]
        else:
            MD = [None] * (L - 1) + [terms(cost.delta(xp, act, Xs[-1], Y, T, a_top))]
    for l in range(L - 2, -1, -1):  # (8), in squares
        W = params[layers[l + 1].offset]
        MG[l] = np.sqrt((MD[l + 1] ** 2) @ (W**2))
        lay = layers[l]
        f1 = lay.activation.df(xp, Xs[l], Ys[l + 1], lay.unpack(params)[2])
        MD[l] = np.abs(f1) * MG[l]
    grads = []
    for l, lay in enumerate(layers):  # (10)-(11), in squares
        M2 = MD[l] ** 2
        grads += [np.sqrt(M2.T @ (Ys[l] ** 2)) / B, np.sqrt(M2.sum(axis=0)) / B]
        a = lay.unpack(params)[2]
        if a is not None:
            dY = lay.activation.dparam(xp, Xs[l], Ys[l + 1], a)
            grads.append(np.sqrt(((MG[l] * dY) ** 2).sum(axis=0)) / B)
    E = cost.magnitude(xp, act, Xs[-1], Y, T)
    return {
        "loss": [float(np.sqrt(np.sum(E * E))) / B],
        "gradients": [float(np.linalg.norm(g)) for g in grads],
        "deltas": [float(np.linalg.norm(d)) for d in MD],
        "step": [0.0] * len(params),
    }


def _measure(net: MLP, X, T) -> dict[str, list[np.ndarray]]:
    """Loss, gradients, deltas and weights after one SGD step, as host float64 arrays."""
    host = net.backend.to_numpy
    out = {
        "loss": [np.asarray(net.loss(X, T))],
        "gradients": [host(g) for g in net.gradients(X, T)],
        "deltas": [host(d) for d in net.deltas(X, T)],
    }
    weights = net.get_weights()
    net.sgd_step(X, T, lr=STEP_LR)
    out["step"] = net.get_weights()
    net.set_weights(weights)
    return out


@dataclass
class Row:
    """Worst relative-norm error per quantity for one (backend, dtype) (against the
    size of what a tensor sums, where that is larger than its norm)."""

    backend: str
    dtype: str
    precision: str | None = None
    errors: dict[str, float] = field(default_factory=lambda: dict.fromkeys(QUANTITIES, 0.0))
    where: dict[str, str] = field(default_factory=lambda: dict.fromkeys(QUANTITIES, ""))

    @property
    def tolerance(self) -> float:
        if self.precision is not None:
            return PRECISION_TOLERANCE[self.precision]
        return TOLERANCE[self.dtype]

    @property
    def label(self) -> str:
        """The dtype, with the precision when there is one: ``float32/bfloat16``."""
        return self.dtype if self.precision is None else f"{self.dtype}/{self.precision}"

    @property
    def ok(self) -> bool:
        return all(e <= self.tolerance for e in self.errors.values())

    def failures(self) -> list[str]:
        return [
            f"{self.backend} {self.label}: {q} {self.where[q]} relative error "
            f"{self.errors[q]:.3g} > {self.tolerance:g}"
            for q in QUANTITIES
            if self.errors[q] > self.tolerance
        ]


@dataclass
class Report:
    """The result of :func:`compare_backends`: one Row per (backend, dtype)."""

    rows: list[Row]
    skipped: dict[str, str]
    cases: int

    @property
    def ok(self) -> bool:
        """Every backend asked for ran and agreed. A backend that could not run is not
        agreement: ``compare_backends(["numpy", "torch"])`` without torch is not ok."""
        return bool(self.rows) and not self.skipped and all(r.ok for r in self.rows)

    def failures(self) -> list[str]:
        """What went wrong, one line each: a tensor beyond tolerance, or a backend that
        did not run (with its reason)."""
        ran = [f for r in self.rows for f in r.failures()]
        return ran + [f"{name} did not run: {why}" for name, why in self.skipped.items()]

    def table(self) -> str:
        """A markdown table: backend, dtype, worst error per quantity, tolerance, status."""
        lines = [
            "| backend | dtype | loss | gradients | deltas | step | tolerance | status "
            "| worst tensor |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            errs = " | ".join(f"{r.errors[q]:.2e}" for q in QUANTITIES)
            status = "ok" if r.ok else "FAIL"
            worst = max(QUANTITIES, key=lambda q: r.errors[q])
            lines.append(
                f"| {r.backend} | {r.label} | {errs} | {r.tolerance:g} | {status} "
                f"| {r.where[worst] or '-'} |"
            )
        return "\n".join(lines)


def _names(v, kinds) -> bool:
    """Whether ``v`` is None, one of ``kinds``, or a list or tuple of them."""
    return (
        v is None
        or isinstance(v, kinds)
        or (isinstance(v, (list, tuple)) and all(isinstance(x, kinds) for x in v))
    )


def compare_backends(
    *args: Any,
    backends: list[str | Backend] | None = None,
    dtypes: tuple[str, ...] | None = None,
    suite: list[Case] | None = None,
    seed: int = 0,
    precision: str | None = None,
) -> Report:
    """Run the same networks and batches on several backends against NumPy float64.

    ``compare_backends(["numpy", "torch"])`` runs the fixed suite (:func:`default_suite`);
    ``compare_backends(net, X, T, backends=["numpy", "torch"])`` runs your network, with
    its weights and input scaling, on your batch.

    Parameters
    ----------
    *args
        Either ``net, X, T``: a network and its batch (inputs ``(B, n_0)`` and targets
        or integer labels, of any supported library), or the suite's parameters below in
        their order, ``backends, dtypes, suite, seed``.
    backends : list of str or Backend, or None
        Backend names (or objects; one name alone is a list of one); None takes every
        available one. A named backend that cannot load is reported in
        ``Report.skipped`` with its reason.
    dtypes : tuple of str, str, or None
        ``"float64"`` (tolerance 1e-12) and/or ``"float32"`` (1e-5); None: both for the
        suite, the network's own dtype for a network.
    suite : list of Case or None
        None runs :func:`default_suite` (not with ``net``).
    seed : int
        Seed for the suite's weights and batches.
    precision : {None, "bfloat16", "float16"}
        Run every backend's network in this mixed precision (float32 master weights,
        :mod:`bpgpu.precision`), compared with NumPy float64 from the same weights and
        batch rounded to the type, within 2**-4 (:data:`PRECISION_TOLERANCE` says why);
        ``dtypes`` is float32. A backend without the type is reported in
        ``Report.skipped`` with its reason.

    Returns
    -------
    Report
        ``report.ok``, ``report.table()`` and ``report.failures()`` (naming the tensor;
        a network of yours is called "network").

    Examples
    --------
    >>> import numpy as np
    >>> import bpgpu
    >>> net = bpgpu.MLP([4, 6, 3], backend="numpy", seed=0)
    >>> X, y = np.random.default_rng(0).normal(size=(8, 4)), np.arange(8) % 3
    >>> report = bpgpu.compare_backends(net, X, y, backends=["numpy", "array_api_strict"])
    >>> report.ok, report.failures()
    (True, [])
    """
    net, X, T, backends, dtypes, suite, seed = _arguments(args, backends, dtypes, suite, seed)
    if precision is not None and dtypes is None:
        dtypes = ("float32",)  # a mixed precision's master weights
    if net is None:
        dtypes = ("float64", "float32") if dtypes is None else tuple(dtypes)
        suite = default_suite() if suite is None else suite
        runs, cases = _suite_runs(suite, dtypes, seed), len(suite)
    else:
        if suite is not None:
            raise TypeError("suite is for the fixed suite; a network brings its own case")
        dtypes = (net.dtype,) if dtypes is None else tuple(dtypes)
        runs = _network_runs(net, X, T, dtypes)
        cases = 1
    for dt in dtypes:
        if dt not in TOLERANCE:
            raise ValueError(f"dtype {dt!r}: compare in 'float64' or 'float32'")
    if precision is not None:
        if precision not in PRECISION_TOLERANCE:
            raise ValueError(
                f"precision {precision!r}: compare 'bfloat16' or 'float16' (tf32 needs a GPU's "
                "tensor cores and is compared as float32)"
            )
        if tuple(dtypes) != ("float32",):
            raise ValueError("a mixed precision keeps float32 weights: dtypes='float32'")
    if backends is None:
        backends = [b["name"] for b in list_backends() if b["available"]]
    loaded, skipped = [], {}
    for name in backends:
        try:
            backend = get_backend(name)
        except BackendUnavailable as e:
            skipped[name] = str(e)
            continue
        try:
            if precision is not None:
                backend.compute_dtype(precision)  # refused here: reported, not raised
        except ValueError as e:
            skipped[backend.name] = str(e)
            continue
        loaded.append(backend)
    rows = [(b, Row(b.name, dt, precision)) for b in loaded for dt in dtypes]
    for case_name, dt, base, Xd, T in runs:
        _compare_case(case_name, base, Xd, T, [(b, r) for b, r in rows if r.dtype == dt])
    return Report([row for _, row in rows], skipped, cases)


def _arguments(args: tuple, backends, dtypes, suite, seed) -> tuple:
    """``compare_backends``'s arguments sorted out: ``(net, X, T, backends, dtypes,
    suite, seed)``, a network's batch or the suite's parameters by position; one
    backend or dtype made a sequence of one; wrong kinds refused saying what to pass."""
    net = X = T = None
    if args and isinstance(args[0], MLP):
        if len(args) != 3:
            raise TypeError("compare_backends(net, X, T): a network, its batch X and targets T")
        net, X, T = args
    elif args:  # the suite's parameters by position: backends, dtypes, suite, seed
        named = {"backends": backends, "dtypes": dtypes, "suite": suite, "seed": seed}
        if len(args) > 4:
            raise TypeError("compare_backends(backends, dtypes, suite, seed): 4 at most")
        if not _names(args[0], (str, Backend)):  # what it is, before whether given twice
            raise TypeError(
                f"compare_backends takes a network or a list of backends first, not "
                f"{args[0]!r:.60}; e.g. compare_backends(['numpy', 'torch']) or "
                f"compare_backends(net, X, T, backends=['numpy', 'torch'])"
            )
        for (key, default), value in zip(named.items(), args):
            if default not in (None, 0):
                raise TypeError(f"{key} given twice, by position and by name")
            named[key] = value
        backends, dtypes, suite, seed = named.values()
    if not _names(backends, (str, Backend)):
        raise TypeError(
            f"backends is a list of names (or Backend objects), e.g. ['numpy', 'torch']; "
            f"got {backends!r:.60}"
        )
    if not _names(dtypes, str):
        raise TypeError(
            "dtypes is a tuple of names, e.g. ('float64', 'float32'); to compare a "
            "network of yours on a batch: compare_backends(net, X, T)"
        )
    if isinstance(backends, (str, Backend)):  # one backend: a list of one
        backends = [backends]
    if isinstance(dtypes, str):
        dtypes = (dtypes,)
    return net, X, T, backends, dtypes, suite, seed


def _reference(base, Xd, T):
    """NumPy float64's quantities and term sizes for the network ``base`` on ``Xd``."""
    reference = base.to("numpy", dtype="float64", precision=None)
    ref = _measure(reference, Xd.astype(np.float64), T)
    with np.errstate(all="ignore"):  # squares of huge values may overflow: unused
        sizes = _term_sizes(reference, Xd.astype(np.float64), T)
    return ref, sizes


def _rounded(base, Xd, backend, precision: str):
    """The network and batch with every weight and input rounded to ``precision``'s
    compute type (by ``backend``, which has it), as host float32: the values a mixed
    step's products see, so that the reference measures its arithmetic alone."""
    xp, low = backend.xp, backend.compute_dtype(precision)

    def rounded(a):
        d = backend.asarray(np.asarray(a, dtype=np.float32), "float32")
        return backend.to_numpy(xp.astype(xp.astype(d, low), xp.float32))

    net = base.to("numpy", dtype="float32", precision=None)
    net.set_weights([rounded(w) for w in base.get_weights()])
    return net, rounded(Xd)


def _compare_case(case_name: str, base, Xd, T, rows) -> None:
    """One case on every backend of ``rows`` (of its dtype) against NumPy float64: each
    row keeps its worst relative error per quantity and the tensor it was in. A mixed
    precision's reference starts from the weights and batch rounded to its type."""
    ref, sizes = _reference(base, Xd, T)
    params = param_names(base.layers)
    names = {
        "loss": ["loss"],
        "gradients": [f"d{n}" for n in params],
        "deltas": [f"D{l}" for l in range(1, len(base.sizes))],
        "step": params,
    }
    for backend, row in rows:
        if row.precision is not None:
            ref, sizes = _reference(*_rounded(base, Xd, backend, row.precision), T)
        got = _measure(base.to(backend, dtype=row.dtype, precision=row.precision), Xd, T)
        for q in QUANTITIES:
            for name, a, r, size in zip(names[q], got[q], ref[q], sizes[q]):
                e = _rel(a, r, size)
                if e > row.errors[q] or not np.isfinite(e):
                    row.errors[q] = e
                    row.where[q] = f"{name} ({case_name})"


def _suite_runs(suite: list[Case], dtypes: tuple[str, ...], seed: int):
    """(case name, dtype, NumPy network, batch rounded to the dtype, targets) per run."""
    for i, case in enumerate(suite):
        X, T = _batch(case, seed + i)
        for dt in dtypes:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # binary_step's zero-gradient warning
                base = MLP(
                    list(case.sizes),
                    case.hidden,
                    case.output,
                    case.cost,
                    backend="numpy",
                    dtype=dt,
                    seed=seed + i,
                )
            # the backend sees these values; so does the reference
            yield case.name, dt, base, X.astype(dt), T


def _network_runs(net: MLP, X: Any, T: Any, dtypes: tuple[str, ...]):
    """The same runs for a user's network: its weights and scaling, on NumPy, per dtype."""
    X, T = to_host(X), to_host(T)
    for dt in dtypes:
        base = net.to("numpy", dtype=dt, precision=None)
        yield "network", dt, base, np.asarray(X).astype(dt), T
