"""Everything that comes into a network, checked once: inputs and targets.

These functions turn user data (any supported library, NumPy, lists) into validated
backend arrays of a model's dtype (:class:`bpgpu.model.Model`: its backend, widths,
cost, dtype and input scaling), or refuse it with a message that says what to change.
Nothing here changes the model.
"""

from __future__ import annotations

import math
from typing import Any

from bpgpu.targets import as_indices, keyed_by_index


def check_input(model, X: Any, what: str = "X", checked: bool = False) -> Any:
    """``X`` as a ``(B, n_0)`` backend array of the network's dtype, validated
    (``checked``: its values were checked on the host already, no device read)."""
    Xb = model.backend.convert(X, what=what)
    if Xb.ndim != 2:
        raise ValueError(
            f"{what} must be 2-D (samples, features); got shape {tuple(Xb.shape)}"
            + ("; for one sample use X.reshape(1, -1)" if Xb.ndim == 1 else "")
        )
    if Xb.shape[1] != model.sizes[0]:
        raise ValueError(f"{what} has {Xb.shape[1]} features, the network expects {model.sizes[0]}")
    if Xb.shape[0] == 0:
        raise ValueError(f"{what} is empty (0 samples)")
    message = f"{what} contains NaN or inf; clean or impute the data first"
    if model.backend.compiles:  # one program, not the seven eager ones below
        finite, scaled = _program(model, "input", checked)(Xb, *(model.scaling or ()))
        if not (checked or bool(finite)):
            _finite(model, Xb, what, message)  # raises, saying why (the range, or NaN)
            raise ValueError(message)
        return scaled
    return _standardised(_finite(model, Xb, what, message, checked), model.scaling)


def _program(model, kind: str, checked: bool):
    """What :func:`check_input` (``kind`` "input") or the label path of
    :func:`check_targets` ("labels") does on the device, as one program per shape on a
    compiling backend (JAX), where each eager operation is a program of its own,
    compiled at its first call for each shape: ~25 compiles for a first fit's data.
    ``input``: ``(finite, cast and standardised)``; ``labels``: ``([lowest, highest],
    one-hot rows)``; ``checked`` leaves the reductions out."""
    xp, dt, n_L = model.xp, model.backend.dtype(model.dtype), model.sizes[-1]
    device = model.backend.device  # the program is shared: it must not hold the model

    def prepare(A, *scaling):
        B = xp.astype(A, dt, copy=False)
        finite = None if checked else _finite_flag(xp, B)
        return finite, _standardised(B, scaling)

    def labels(L):
        bounds = None if checked else xp.stack([xp.min(L), xp.max(L)])
        return bounds, xp.astype(_one_hot(xp, L, n_L, device), dt)

    key = (kind, checked, model.scaling is not None, model.dtype, n_L)
    return model.program(key, lambda: prepare if kind == "input" else labels)


def _standardised(X: Any, scaling) -> Any:
    """``(X - mean) / scale`` with ``scaling = (mean, scale)``; ``X`` itself without."""
    return (X - scaling[0]) / scaling[1] if scaling else X


def _one_hot(xp, labels: Any, n_L: int, device: Any) -> Any:
    """Boolean rows ``(B, n_L)``, True at each row's class label."""
    classes = xp.arange(n_L, device=device)
    return xp.reshape(labels, (-1, 1)) == xp.reshape(classes, (1, n_L))


def check_targets(model, T: Any, B: int, checked: bool = False) -> Any:
    """Targets as a ``(B, n_L)`` float array; class labels become one-hot: integers
    0..K-1, or any labels through the model's ``classes`` (:func:`bpgpu.targets.as_indices`)
    (``checked``: their values were checked already, so no device read)."""
    xp, n_L = model.xp, model.sizes[-1]
    Tb = model.backend.convert(as_indices(T, model.classes), what="targets")
    if Tb.dtype == xp.bool:  # y = X[:, 0] > 0: classes 0 and 1, or targets 0.0 and 1.0
        Tb = xp.astype(Tb, xp.int32)
    one_hot = False  # built here from class labels, so known to be distributions
    if Tb.ndim == 0 or Tb.shape[0] != B:
        got = "a scalar" if Tb.ndim == 0 else f"{Tb.shape[0]} rows"
        raise ValueError(
            f"X has {B} samples but the targets have {got}; pass one target per row of X"
        )
    if Tb.ndim == 2 and Tb.shape[1] == 1 < n_L:
        Tb = xp.reshape(Tb, (B,))  # a column of class labels, as Keras users pass them
    if Tb.ndim == 1 and n_L > 1:  # class labels, for every cost: one-hot rows
        if not xp.isdtype(Tb.dtype, "integral"):
            # labels read as floats (pandas, a CSV, np.loadtxt): whole numbers are labels
            floats = xp.isdtype(Tb.dtype, "real floating")
            whole = floats and (
                checked or bool(xp.all((Tb == xp.round(Tb)) & (xp.abs(Tb) < 2.0**53)))
            )
            if not whole:
                raise TypeError(
                    f"1-D targets for a network with {n_L} outputs are class labels, whole "
                    f"numbers 0..{n_L - 1}; "
                    + (
                        f"these {Tb.dtype} targets hold other values (fractions, NaN or inf)"
                        if floats
                        else f"got dtype {Tb.dtype}"
                    )
                    + f". Pass integer labels, or targets of shape ({B}, {n_L})"
                )
            Tb = xp.astype(Tb, xp.int64)
        if model.backend.compiles:  # one program (see _program)
            bounds, Tb = _program(model, "labels", checked)(Tb)
            lo, hi = (0, 0) if checked else map(int, model.backend.to_numpy(bounds))
        else:
            lo, hi = (0, 0) if checked else (int(xp.min(Tb)), int(xp.max(Tb)))
            Tb = _one_hot(xp, Tb, n_L, model.backend.device)
        if lo < 0 or hi >= n_L:
            raise ValueError(
                f"class labels must lie in 0..{n_L - 1} for {n_L} outputs; "
                f"got labels from {lo} to {hi}"
            )
        one_hot = True
    elif Tb.ndim == 1:
        Tb = xp.reshape(Tb, (B, 1))
    if tuple(Tb.shape) != (B, n_L):
        raise ValueError(
            f"targets have shape {tuple(Tb.shape)}, expected ({B}, {n_L})"
            + (" or integer labels of shape (B,)" if n_L > 1 else " or (B,)")
        )
    # one-hot rows built from labels are finite: cast, not read
    Tb = _finite(model, Tb, "the targets", "targets contain NaN or inf", checked or one_hot)
    if not (one_hot or checked):
        if model.cost.name == "categorical_cross_entropy":
            _check_distributions(model, Tb)
        else:
            _check_domain(model, Tb)
    return Tb


def _check_domain(model, T: Any) -> None:
    """Refuse targets outside the values the cost is defined on: per-unit cross-entropy
    (5) takes probabilities, and a -1/+1 target makes the loss negative and the
    gradient point the wrong way, with no error."""
    r = model.cost.domain
    if math.isinf(r.lo) and math.isinf(r.hi):
        return
    xp = model.xp
    lo, hi = float(xp.min(T)), float(xp.max(T))
    if lo < r.lo or hi > r.hi:
        raise ValueError(
            f"{model.cost.name} targets must lie in [{r.lo:g}, {r.hi:g}] (probabilities); "
            f"got values from {lo:g} to {hi:g}. For -1/+1 labels pass (y + 1) / 2; for "
            "other targets use cost='quadratic'"
        )


def _check_distributions(model, T: Any) -> None:
    """Refuse categorical targets that are not probability rows: the output error
    ``Y - T`` of eq. (9) is dE/dX only when every row of ``T`` sums to 1."""
    xp = model.xp
    tol = 1e-4 if model.dtype == "float32" else 1e-8  # a few ulps of a 10-100 term sum
    if bool(xp.any(T < 0)):
        raise ValueError(
            "categorical_cross_entropy targets must be >= 0 (class probabilities); "
            "pass integer class labels or one-hot rows"
        )
    off = xp.abs(xp.sum(T, axis=1) - 1)
    if bool(xp.any(off > tol)):
        row = int(xp.argmax(off))
        total = float(xp.sum(T[row, :]))
        raise ValueError(
            f"categorical_cross_entropy targets must be class probabilities, each row "
            f"summing to 1, but row {row} sums to {total:g}; pass integer class labels, "
            "one-hot rows, or rows divided by their sum"
        )


def _finite(model, A: Any, what: str, message: str, checked: bool = False) -> Any:
    """``A`` (numeric: ``convert`` checked it) in the network's dtype, or a ValueError
    with ``message`` when it holds NaN or inf, or one naming the dtype's range when only
    the cast made it so (1e39 is finite in float64, inf in float32); ``checked``: known
    finite already."""
    xp = model.xp
    B = xp.astype(A, model.backend.dtype(model.dtype), copy=False)
    if checked or not math.prod(B.shape) or _all_finite(xp, B):
        return B
    if B.dtype != A.dtype and xp.isdtype(A.dtype, "real floating") and _all_finite(xp, A):
        raise ValueError(
            f"{what}: values beyond {model.dtype}'s range (magnitudes up to "
            f"{float(xp.finfo(B.dtype).max):.3g}), finite only in a wider dtype; scale "
            "them, or use dtype='float64'"
        )
    raise ValueError(message)


def _all_finite(xp, A: Any) -> bool:
    """No NaN or inf in ``A``: min and max propagate NaN and are finite only when every
    value is (two reductions, where isfinite(A) would make a boolean copy of it all),
    read back as one value (one round trip to a GPU, not two)."""
    return bool(_finite_flag(xp, A))


def _finite_flag(xp, A: Any) -> Any:
    """:func:`_all_finite` as a device boolean, not yet read."""
    return xp.all(xp.isfinite(xp.stack([xp.min(A), xp.max(A)])))


def row_weights(model, n: int, sample_weight, class_weight, labels) -> Any:
    """One host weight per row (float64 ``(n,)``) from ``sample_weight`` and
    ``class_weight`` (their product), or None for neither; ``labels()`` gives the rows'
    class labels on the host, asked only for ``class_weight``."""
    from bpgpu.sample_weights import class_weights, sample_weights

    if sample_weight is None and class_weight is None:
        return None
    w = sample_weights(1.0 if sample_weight is None else sample_weight, n)
    if class_weight is not None:
        table = keyed_by_index(class_weight, model.classes)  # {"cat": 2}: by output index
        w = w * class_weights(table, labels(), max(2, model.sizes[-1]))
        if not w.sum() > 0:
            raise ValueError("the class weights leave no sample that counts; give one a weight")
    return w


def class_targets(kind: str | None) -> None:
    """Refuse ``class_weight`` for targets whose accuracy kind is not classes."""
    if kind != "classes":
        what = "multi-label rows" if kind == "multilabel" else "numbers, not classes"
        raise ValueError(
            f"class_weight weighs classes; these targets are {what}: pass sample_weight "
            "instead (one weight per sample)"
        )


def class_labels(model, Td: Any) -> Any:
    """The class labels of validated targets as a host array, for ``class_weight``
    (refused where the targets are not classes: a regression, multi-label rows)."""
    class_targets(model.accuracy_kind(Td))
    return model.backend.to_numpy(model.labels(Td))
