"""Initial weights, drawn on the host from a seeded ``numpy.random.Generator``, and host
copies of the weights users pass in.

Randomness lives on the host so that the same seed gives the same initial weights on
every backend.
"""

from __future__ import annotations

from collections.abc import Sequence

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
