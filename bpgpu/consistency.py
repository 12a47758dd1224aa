"""Cross-backend consistency: the same network and batch on every backend vs NumPy float64.

Every comparison is the relative norm ``||a - ref|| / ||ref||`` of DESIGN.md section 5,
taken on host copies. The reference is built from the *same* host weights and batch as
the backend under test, rounded to its dtype first, so that the measure is the backend's
arithmetic and not the rounding of its inputs.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bpgpu.activations import ACTIVATIONS
from bpgpu.backends import Backend, BackendUnavailable, get_backend, list_backends, to_host
from bpgpu.costs import compatible_pairs
from bpgpu.layers import param_names
from bpgpu.network import MLP

TOLERANCE = {"float64": 1e-12, "float32": 1e-5}
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


def _rel(a: Any, ref: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64)
    scale = np.linalg.norm(ref)
    diff = np.linalg.norm(a - ref)
    return float(diff / scale) if scale > 0 else float(diff)


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
    """Worst relative-norm error per quantity for one (backend, dtype)."""

    backend: str
    dtype: str
    errors: dict[str, float] = field(default_factory=lambda: dict.fromkeys(QUANTITIES, 0.0))
    where: dict[str, str] = field(default_factory=lambda: dict.fromkeys(QUANTITIES, ""))

    @property
    def tolerance(self) -> float:
        return TOLERANCE[self.dtype]

    @property
    def ok(self) -> bool:
        return all(e <= self.tolerance for e in self.errors.values())

    def failures(self) -> list[str]:
        return [
            f"{self.backend} {self.dtype}: {q} {self.where[q]} relative error "
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
                f"| {r.backend} | {r.dtype} | {errs} | {r.tolerance:g} | {status} "
                f"| {r.where[worst] or '-'} |"
            )
        return "\n".join(lines)


def compare_backends(
    *args: Any,
    backends: list[str | Backend] | None = None,
    dtypes: tuple[str, ...] | None = None,
    suite: list[Case] | None = None,
    seed: int = 0,
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
        Backend names (or objects); None takes every available one. A named backend
        that cannot load is reported in ``Report.skipped`` with its reason.
    dtypes : tuple of str, or None
        ``"float64"`` (tolerance 1e-12) and/or ``"float32"`` (1e-5); None: both for the
        suite, the network's own dtype for a network.
    suite : list of Case or None
        None runs :func:`default_suite` (not with ``net``).
    seed : int
        Seed for the suite's weights and batches.

    Returns
    -------
    Report
        ``report.ok``, ``report.table()`` and ``report.failures()`` (naming the tensor;
        a network of yours is called "network").
    """
    net = X = T = None
    if args and isinstance(args[0], MLP):
        if len(args) != 3:
            raise TypeError("compare_backends(net, X, T): a network, its batch X and targets T")
        net, X, T = args
    elif args:  # the suite's parameters by position: backends, dtypes, suite, seed
        named = {"backends": backends, "dtypes": dtypes, "suite": suite, "seed": seed}
        if len(args) > 4:
            raise TypeError("compare_backends(backends, dtypes, suite, seed): 4 at most")
        for (key, default), value in zip(named.items(), args):
            if default not in (None, 0):
                raise TypeError(f"{key} given twice, by position and by name")
            named[key] = value
        backends, dtypes, suite, seed = named.values()
        if backends is not None and not (
            isinstance(backends, (list, tuple))
            and all(isinstance(b, (str, Backend)) for b in backends)
        ):
            raise TypeError(
                f"compare_backends takes a network or a list of backends first, not "
                f"{type(backends).__name__}; e.g. compare_backends(['numpy', 'torch']) or "
                f"compare_backends(net, X, T, backends=['numpy', 'torch'])"
            )
        if dtypes is not None and not (
            isinstance(dtypes, (list, tuple)) and all(isinstance(d, str) for d in dtypes)
        ):
            raise TypeError(
                "dtypes is a tuple of names, e.g. ('float64', 'float32'); to compare a "
                "network of yours on a batch: compare_backends(net, X, T)"
            )
    if isinstance(dtypes, str):
        dtypes = (dtypes,)
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
    if backends is None:
        backends = [b["name"] for b in list_backends() if b["available"]]
    loaded, skipped = [], {}
    for name in backends:
        try:
            loaded.append(get_backend(name))
        except BackendUnavailable as e:
            skipped[name] = str(e)
    rows = [(b, Row(b.name, dt)) for b in loaded for dt in dtypes]
    for case_name, dt, base, Xd, T in runs:
        ref = _measure(base.to("numpy", dtype="float64"), Xd.astype(np.float64), T)
        params = param_names(base.layers)
        names = {
            "loss": ["loss"],
            "gradients": [f"d{n}" for n in params],
            "deltas": [f"D{l}" for l in range(1, len(base.sizes))],
            "step": params,
        }
        for backend, row in rows:
            if row.dtype != dt:
                continue
            got = _measure(base.to(backend, dtype=dt), Xd, T)
            for q in QUANTITIES:
                for name, a, r in zip(names[q], got[q], ref[q]):
                    e = _rel(a, r)
                    if e > row.errors[q] or not np.isfinite(e):
                        row.errors[q] = e
                        row.where[q] = f"{name} ({case_name})"
    return Report([row for _, row in rows], skipped, cases)


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
        base = net.to("numpy", dtype=dt)
        yield "network", dt, base, np.asarray(X).astype(dt), T
