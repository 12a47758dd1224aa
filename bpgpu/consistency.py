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
from bpgpu.backends import Backend, BackendUnavailable, get_backend, list_backends
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
    backends: list[str | Backend] | None = None,
    dtypes: tuple[str, ...] = ("float64", "float32"),
    suite: list[Case] | None = None,
    seed: int = 0,
) -> Report:
    """Run the same networks and batches on several backends against NumPy float64.

    Parameters
    ----------
    backends : list of str or Backend, or None
        Backend names (or objects); None takes every available one. A named backend
        that cannot load is reported in ``Report.skipped`` with its reason.
    dtypes : tuple of str
        ``"float64"`` (tolerance 1e-12) and/or ``"float32"`` (1e-5).
    suite : list of Case or None
        None runs :func:`default_suite`.
    seed : int
        Seed for weights and batches.

    Returns
    -------
    Report
        ``report.ok``, ``report.table()`` and ``report.failures()`` (naming the tensor).
    """
    if backends is None:
        backends = [b["name"] for b in list_backends() if b["available"]]
    suite = default_suite() if suite is None else suite
    loaded, skipped = [], {}
    for name in backends:
        try:
            loaded.append(get_backend(name))
        except BackendUnavailable as e:
            skipped[name] = str(e)
    rows = [(b, Row(b.name, dt)) for b in loaded for dt in dtypes]
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
            Xd = X.astype(dt)  # the backend sees these values; so does the reference
            ref = _measure(base.to("numpy", dtype="float64"), Xd.astype(np.float64), T)
            params = param_names(base.layers)
            names = {
                "loss": ["loss"],
                "gradients": [f"d{n}" for n in params],
                "deltas": [f"D{l}" for l in range(1, len(case.sizes))],
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
                            row.where[q] = f"{name} ({case.name})"
    return Report([row for _, row in rows], skipped, len(suite))
