"""Mini-batches of device data, gathered on the device a chunk of batches at a time.

Gathering a shuffled batch is one ``take`` per array (inputs, targets, labels): three
library calls, each as long as a small layer's whole forward pass. So the rows of
several consecutive batches are gathered at once (at most ``chunk_bytes``, at least one
batch) and each batch is then a slice of that chunk: the same rows in the same order,
with the calls spread over many batches and the extra memory bounded.
"""

from __future__ import annotations

from typing import Any

# 256 KiB: tens of small batches per call (most of the saving), little extra memory,
# and still in the CPU's cache when the last batch of the chunk is used
CHUNK_BYTES = 1 << 18


class Batches:
    """Batch ``bi`` of an epoch: rows ``perm[offsets[bi] : offsets[bi + 1]]`` of each array
    (by default ``perm[bi*B : (bi+1)*B]``).

    Parameters
    ----------
    xp : namespace
    arrays : list of backend arrays (rows are samples) or None entries, passed through
        (a fit's: inputs, targets, labels, each row's share of its batch's weight)
    batch_size : int
    chunk_bytes : int
        Largest gather; 0 gathers every batch on its own.
    sizes : list of int, optional
        The length of every batch of the stream the permutation lists (data-parallel:
        this rank's shares of the global batches); default: ``batch_size`` rows each,
        the last one shorter.
    """

    def __init__(
        self, xp, arrays: list, batch_size: int, chunk_bytes: int = CHUNK_BYTES, sizes=None
    ):
        self.xp, self.arrays, self.B = xp, arrays, batch_size
        n = arrays[0].shape[0]
        if sizes is None:
            sizes = [min(batch_size, n - s) for s in range(0, n, batch_size)]
        self.count = len(sizes)  # batches per epoch
        self.rows = list(sizes)  # rows of each global batch (data-parallel: set by fit)
        self.offsets = [0]
        for size in sizes:
            self.offsets.append(self.offsets[-1] + size)
        self.n = self.offsets[-1]  # rows in the stream
        row = sum(row_bytes(xp, a) for a in arrays if a is not None)
        widest = max(sizes) if sizes else 1
        self.per = max(1, chunk_bytes // max(1, row * widest))  # batches per chunk
        self._key: tuple[Any, int] | None = None
        self._chunk: list = []

    @property
    def shares(self) -> Any:
        """Each row's share of its batch's sample weight (the last array; None:
        unweighted), as this epoch's batches are formed."""
        return self.arrays[-1]

    def set_shares(self, shares, model) -> None:
        """This epoch's shares (a host array, one per row of the data), on the device."""
        self.arrays[-1] = model.backend.asarray(shares, model.dtype)

    def epoch(self, perm, first: int = 0):
        """Yield batches ``first, first + 1, ...`` to the end of the epoch, as
        :meth:`__call__` gives them; ``perm`` is the device permutation or None."""
        offs, bi, nb = self.offsets, first, self.count
        while bi < nb:
            if perm is None:  # in order: slices of the data themselves
                src, base, stop = self.arrays, 0, nb
            else:
                k = bi // self.per
                stop = min(nb, (k + 1) * self.per)
                src, base = self._gather(perm, k), offs[k * self.per]
            for b in range(bi, stop):
                i, j = offs[b] - base, offs[b + 1] - base
                yield [None if a is None else a[i:j, ...] for a in src]
            bi = stop

    def __call__(self, perm, bi: int) -> list:
        """Batch ``bi`` alone (the first batch of a chunk gathers the chunk)."""
        return next(self.epoch(perm, bi))

    def _gather(self, perm, k: int) -> list:
        """The rows of chunk ``k`` (batches ``k * per ...``) of every array, cached."""
        if self._key is None or self._key[0] is not perm or self._key[1] != k:
            per, offs = self.per, self.offsets
            idx = perm[offs[k * per] : offs[min((k + 1) * per, self.count)]]
            xp, self._chunk = self.xp, []  # let the old chunk go before the new one comes
            self._chunk = [None if a is None else xp.take(a, idx, axis=0) for a in self.arrays]
            self._key = (perm, k)
        return self._chunk


def row_bytes(xp, a) -> int:
    """Bytes of one row of ``a``, from the standard's dtype information."""
    if a.dtype == xp.bool:  # multi-label rows
        size = 1
    else:
        info = xp.finfo if xp.isdtype(a.dtype, "real floating") else xp.iinfo
        size = info(a.dtype).bits // 8
    for d in a.shape[1:]:
        size *= d
    return size
