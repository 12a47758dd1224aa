"""The scale of a fit's inputs: a warning when they are far from unit scale, and
``fit(standardize=True)``.

Features in the thousands (breast-cancer areas, raw pixel values to 255) make the first
layer's weighted inputs huge: the loss starts in the tens of thousands and training is
slow or diverges. The data stay as the user gave them (as scikit-learn and Keras keep
them), but a fit on inputs whose largest feature has a root mean square past
:data:`LARGE` says so once, with the fix: ``fit(..., standardize=True)``, which sets the
network's input scaling from the training data (saved with the model, as ``bpgpu
train`` does), or :meth:`bpgpu.MLP.set_input_scaling`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from bpgpu import streaming

LARGE = 100.0  # a feature's sqrt(mean^2 + std^2) past this is far from unit scale
SAMPLE = 10_000  # rows (evenly spaced) the warning looks at, at most: no copy or pass of
# big data (and no more bytes than a streamed chunk, streaming.CHUNK_BYTES)


def column_stats(X: Any, rows: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Each feature's mean and standard deviation over ``X``'s ``rows`` (a host index
    array; None: all), float64 host arrays: a host array directly, a memory map or
    ``.npy`` path a chunk of rows at a time (all of them), a device array by reductions
    on its device."""
    if streaming.streamed(X):
        X = streaming.open_host(X, "X")
        if rows is not None:  # those rows only: a memory map reads no others
            A = np.asarray(X[np.asarray(rows)], dtype=np.float64)
            return A.mean(axis=0), A.std(axis=0)
        total = sq = 0.0
        chunk = max(1, streaming.CHUNK_BYTES // (8 * max(1, int(np.prod(X.shape[1:])))))
        for lo in range(0, X.shape[0], chunk):
            part = np.asarray(X[lo : lo + chunk], dtype=np.float64)
            total = total + part.sum(axis=0)
            sq = sq + (part * part).sum(axis=0)
        n = max(X.shape[0], 1)
        mean = np.asarray(total, dtype=np.float64) / n
        return mean, np.sqrt(np.maximum(np.asarray(sq) / n - mean * mean, 0.0))
    if isinstance(X, (np.ndarray, list, tuple)):
        A = np.asarray(X) if rows is None else np.asarray(X)[np.asarray(rows)]
        A = np.asarray(A, dtype=np.float64)
        return A.mean(axis=0), A.std(axis=0)
    import array_api_compat

    from bpgpu.backends import to_host

    xp = array_api_compat.array_namespace(X)
    if rows is not None:
        X = xp.take(X, xp.asarray(np.asarray(rows), device=X.device), axis=0)
    return to_host(xp.mean(X, axis=0)).astype(np.float64), to_host(xp.std(X, axis=0)).astype(
        np.float64
    )


def warn_if_badly_scaled(net: Any, X: Any) -> None:
    """Say once, with the fix, when ``X`` (inputs the network takes as they are) has a
    feature far from unit scale."""
    if net.input_scaling is not None:
        return
    try:
        A = streaming.open_host(X, "X") if streaming.streamed(X) else X
        n, width = len(A), int(np.prod(getattr(A, "shape", (0, 1))[1:]))
        most = max(100, min(SAMPLE, streaming.CHUNK_BYTES // (8 * max(1, width))))
        sample = None if n <= most else np.linspace(0, n - 1, most).astype(np.int64)
        mean, std = column_stats(X, sample)
    except (TypeError, ValueError):  # inputs the fit refuses: its own message says why
        return
    rms = np.sqrt(mean * mean + std * std)
    if not rms.size or not np.all(np.isfinite(rms)):
        return
    j = int(np.argmax(rms))
    if rms[j] <= LARGE:
        return
    warnings.warn(
        f"the inputs are far from unit scale: feature {j} has mean {mean[j]:.4g} and "
        f"standard deviation {std[j]:.4g}, so the first layer's weighted inputs are large "
        "and training is slow or diverges. Standardise them: fit(..., standardize=True) "
        "(saved with the model, as bpgpu train does), or net.set_input_scaling(mean, "
        "scale) with bpgpu.datasets.standardize(X_train)",
        UserWarning,
        stacklevel=_callers_level(),
    )


def _callers_level() -> int:
    """The ``stacklevel`` of the first frame outside bpgpu, for the function that asks
    (so a warning names the user's line, whatever wrappers lie between)."""
    import os
    import sys

    package = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def standardize(net: Any, X: Any, rows: Any = None) -> None:
    """Set the network's input scaling to the mean and standard deviation per feature of
    ``X``'s ``rows`` (None: all; a constant feature: scale 1)."""
    mean, std = column_stats(X, rows)
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std))):
        raise ValueError("standardize=True: X holds NaN or inf; clean or impute it first")
    net.set_input_scaling(mean, np.where(std > 0, std, 1.0))
