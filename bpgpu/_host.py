"""Host-side NumPy work: initial weights from a seeded Generator, host copies of arrays,
sample weights and each row's share of its batch's weight.

Randomness lives on the host so that the same seed gives the same initial weights
(and, in fit, the same batch order) on every backend.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from bpgpu.layers import Dense

INITS = (
    "auto",
    "he_normal",
    "he_uniform",
    "glorot_uniform",
    "glorot_normal",
    "lecun_normal",
    "scaled_normal",
    "normal",
)


def init_weights(layers: Sequence[Dense], seed: int | None, init: str = "auto") -> list:
    """Initial ``[W1, b1, (a1), W2, ...]`` as float64 NumPy arrays, layer by layer.

    ``"auto"``: He normal for the ReLU family, Glorot uniform otherwise (each
    activation's ``init``), biases 0. ``"scaled_normal"`` and ``"normal"`` are Nielsen's
    book's: weights N(0, 1/n_in) or N(0, 1), biases N(0, 1). The others are the usual
    schemes with zero biases. A learnable activation parameter starts at its
    ``param_init``.
    """
    rng = np.random.default_rng(seed)
    params = []
    for layer in layers:
        n_in, n_out, act = layer.n_in, layer.n_out, layer.activation
        scheme = init
        if scheme == "auto":
            scheme = "he_normal" if act.init == "he" else "glorot_uniform"
        shape, b = (n_out, n_in), np.zeros(n_out)
        if scheme == "he_normal":
            W = rng.normal(0.0, np.sqrt(2.0 / n_in), size=shape)
        elif scheme == "he_uniform":
            r = np.sqrt(6.0 / n_in)
            W = rng.uniform(-r, r, size=shape)
        elif scheme == "glorot_uniform":
            r = np.sqrt(6.0 / (n_in + n_out))
            W = rng.uniform(-r, r, size=shape)
        elif scheme == "glorot_normal":
            W = rng.normal(0.0, np.sqrt(2.0 / (n_in + n_out)), size=shape)
        elif scheme == "lecun_normal":
            W = rng.normal(0.0, np.sqrt(1.0 / n_in), size=shape)
        elif scheme in ("scaled_normal", "normal"):  # Nielsen: biases first, then weights
            b = rng.normal(size=n_out)
            W = rng.normal(
                0.0, np.sqrt(1.0 / n_in) if scheme == "scaled_normal" else 1.0, size=shape
            )
        else:
            raise ValueError(f"unknown init {init!r}; valid: {', '.join(INITS)}")
        params += [W, b]
        if act.has_param:
            params.append(np.full(n_out, act.param_init))
    return params


def host_copy(w, dtype: str, what: str) -> np.ndarray:
    """A float NumPy copy of ``w`` (any supported array), refusing complex or non-numeric data."""
    from bpgpu.backends import to_host

    a = np.asarray(to_host(w))
    if a.dtype.kind not in "fiub":
        raise TypeError(f"{what} has dtype {a.dtype}; pass real numbers (float32 or float64)")
    return np.array(a, dtype=dtype, copy=True)


class HostRNG:
    """The host generator behind shuffling: permutations drawn here, used on any device.

    Its state round-trips through JSON (checkpoints), so a resumed fit draws the same
    batch order as an uninterrupted one.
    """

    def __init__(self, seed: int, stream: int = 1):
        self.gen = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, stream])))

    def permutation(self, n: int) -> np.ndarray:
        return self.gen.permutation(n)

    def state(self) -> dict:
        return self.gen.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.gen.bit_generator.state = state


def fresh_seed() -> int:
    """A random seed, for fits asked to be random; recorded so they can be resumed."""
    return int(np.random.SeedSequence().entropy % 2**63)


def split_indices(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split of ``range(n)`` into (kept, held-out ``fraction``), both sorted."""
    perm = HostRNG(seed, stream=0).permutation(n)
    k = int(round(n * fraction))
    return np.sort(perm[k:]), np.sort(perm[:k])


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
