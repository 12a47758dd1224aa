"""What data a fit was given, as a short hash: what a checkpoint records so that it is
never resumed on other data, and what data-parallel ranks compare."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np


def data_fingerprint(X: Any, y: Any, *more: Any) -> dict | None:
    """Rows and a hash of the bytes, shapes and dtypes of ``(X, y)`` as given (host copies
    of device arrays), and of ``more`` (sample weights, a class-weight table's text):
    what a checkpoint records so that it is never resumed on other data. One pass over
    the data, made only when a fit writes or reads a checkpoint."""
    from bpgpu.backends import to_host

    h = hashlib.blake2b(digest_size=16)
    rows = None
    for a in (X, y, *more):
        if isinstance(a, str):
            h.update(a.encode())
            continue
        try:
            a = a if isinstance(a, np.ndarray) else np.asarray(to_host(a))
        except (TypeError, ValueError):  # not an array: fit's input check says why
            return None
        rows = a.shape[0] if rows is None and a.ndim else rows
        h.update(f"{a.dtype.str}{a.shape}".encode())
        if a.dtype.kind not in "biuf":
            h.update(repr(a.tolist()).encode())
            continue
        step = max(1, (16 << 20) // max(1, a[:1].nbytes)) if a.ndim else 1
        for s in range(0, max(1, a.shape[0] if a.ndim else 1), step):  # a memory map: in pieces
            h.update(np.ascontiguousarray(a[s : s + step] if a.ndim else a).data)
    return {"rows": rows, "fingerprint": h.hexdigest()}
