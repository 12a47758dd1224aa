"""Host-side NumPy work: initial weights from a seeded Generator, host copies of arrays.

Randomness lives on the host so that the same seed gives the same initial weights
(and, in fit, the same batch order) on every backend.
"""

from __future__ import annotations

import hashlib
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


def data_fingerprint(X: Any, y: Any) -> dict | None:
    """Rows and a hash of the bytes, shapes and dtypes of ``(X, y)`` as given (host copies
    of device arrays): what a checkpoint records so that it is never resumed on other
    data. One pass over the data, made only when a fit writes or reads a checkpoint."""
    from bpgpu.backends import to_host

    h = hashlib.blake2b(digest_size=16)
    rows = None
    for a in (X, y):
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
