"""Per-sample weights on the host: users' sample and class weights checked, and each
row's share of its batch's total weight, the form the step takes them in."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np


def batch_shares(w: np.ndarray, order: np.ndarray | None, sizes: Sequence[int]) -> np.ndarray:
    """Each row's share of its batch's total sample weight, in row order (float64 like
    ``w``): batch ``b`` is rows ``order[offsets[b] : offsets[b + 1]]`` (``order`` None:
    the rows in order) of ``sizes[b]`` rows each (data-parallel: the global batches). A
    batch whose weights are all zero gets shares of zero: it moves nothing. What
    :func:`bpgpu.core.output` multiplies each row's error by, in the place of 1/B."""
    ws = w if order is None else w[order]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    totals = np.add.reduceat(ws, starts)
    shares = ws / np.repeat(np.where(totals > 0, totals, 1.0), sizes)
    if order is None:
        return shares
    out = np.empty_like(shares)
    out[order] = shares
    return out


def sample_weights(sample_weight: Any, n: int) -> np.ndarray:
    """``sample_weight`` as float64 ``(n,)``: one finite weight >= 0 per sample, not all
    zero (a number: that weight for every sample); refused otherwise, saying how."""
    from bpgpu.backends import to_host

    if isinstance(sample_weight, (str, bytes, os.PathLike)):
        raise TypeError(
            f"sample_weight must be numbers, one per sample, or a .npy path; got {sample_weight!r}"
        )
    try:
        w = np.asarray(to_host(sample_weight), dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"sample_weight must be numbers, one per sample; got {type(sample_weight).__name__}"
        ) from None
    if w.ndim == 0:
        w = np.full(n, float(w))
    if w.shape != (n,):
        raise ValueError(
            f"sample_weight has shape {w.shape}; pass one weight per sample of X, shape ({n},)"
        )
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("sample_weight must be finite and >= 0 (0: the sample does not count)")
    if not w.sum() > 0:
        raise ValueError("sample_weight is zero for every sample: at least one must count")
    return w


def class_weights(class_weight: Any, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Each sample's weight from its class label: ``class_weight`` a dict ``{class:
    weight}`` (classes 0..n_classes-1; a class left out weighs 1) or ``"balanced"``
    (``n / (n_classes * count)``, scikit-learn's; a class with no samples weighs 0)."""
    counts = np.bincount(labels, minlength=n_classes)
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(
                f"class_weight must be a dict {{class: weight}} or 'balanced'; got {class_weight!r}"
            )
        table = np.where(counts > 0, len(labels) / (n_classes * np.maximum(counts, 1)), 0.0)
        return table[labels]
    if not isinstance(class_weight, dict):
        raise TypeError(
            f"class_weight must be a dict {{class: weight}} or 'balanced'; got "
            f"{type(class_weight).__name__}"
        )
    table = np.ones(n_classes)
    for c, v in class_weight.items():
        if isinstance(c, (float, np.floating)) and float(c).is_integer():
            c = int(c)  # 1.0: class 1, as labels read as floats are
        if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not 0 <= c < n_classes:
            raise ValueError(
                f"class_weight names class {c!r}; the classes are 0..{n_classes - 1} (the "
                "labels, or the columns of one-hot targets)"
            )
        try:
            table[c] = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"class_weight[{c}] must be a number; got {v!r}") from None
    if not np.all(np.isfinite(table)) or np.any(table < 0):
        raise ValueError("class_weight values must be finite and >= 0")
    return table[labels]
