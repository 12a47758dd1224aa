"""Batches gathered a chunk at a time are exactly the rows perm[bi*B:(bi+1)*B]."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import load_backend

from bpgpu.batches import Batches


@pytest.mark.parametrize("chunk_bytes", [0, 100, 1000, 1 << 18])
@pytest.mark.parametrize("n,B", [(10, 3), (64, 16), (7, 10), (33, 1)])
def test_every_batch_is_the_permuted_rows(n, B, chunk_bytes, backend):
    be = load_backend(backend)
    xp = be.xp
    rng = np.random.default_rng(n * B)
    X = rng.normal(size=(n, 3)).astype(np.float32)
    T = rng.normal(size=(n, 2)).astype(np.float32)
    L = rng.integers(0, 5, size=n)
    perm = rng.permutation(n)
    arrays = [be.asarray(X), be.asarray(T), be.asarray(L)]
    batches = Batches(xp, arrays, B, chunk_bytes)
    n_batches = -(-n // B)
    for p, order in ((be.asarray(perm), perm), (None, np.arange(n))):
        for first in range(n_batches):  # a resumed epoch starts anywhere
            got = list(batches.epoch(p, first))
            assert len(got) == n_batches - first
            for bi, (Xb, Tb, Lb) in enumerate(got, start=first):
                rows = order[bi * B : (bi + 1) * B]
                np.testing.assert_array_equal(be.to_numpy(Xb), X[rows])
                np.testing.assert_array_equal(be.to_numpy(Tb), T[rows])
                np.testing.assert_array_equal(be.to_numpy(Lb), L[rows])
                one = batches(p, bi)  # one batch alone, as a divergence replay asks
                np.testing.assert_array_equal(be.to_numpy(one[0]), X[rows])


def test_missing_labels_pass_through_and_chunks_are_bounded():
    be = load_backend("numpy")
    X = np.zeros((1000, 8), np.float32)  # 32 bytes a row
    b = Batches(be.xp, [be.asarray(X), None], 10, chunk_bytes=3200)
    assert b.per == 10  # ten batches of 320 bytes in a 3,200-byte chunk
    Xb, Lb = b(be.asarray(np.arange(1000)), 0)
    assert Xb.shape == (10, 8) and Lb is None
    assert b._chunk[0].shape == (100, 8)
