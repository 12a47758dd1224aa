"""Data larger than the device: training rows streamed from host memory maps in chunks.

``fit`` takes a NumPy memory map (``numpy.load(path, mmap_mode="r")``, ``numpy.memmap``) or
the path of a ``.npy`` file for ``X`` (and ``y``). The rows of each chunk of batches
(``CHUNK_BYTES`` at most, at least one batch) are gathered on the host in the epoch's
order, checked and moved to the device, standardised there, and sliced into batches,
exactly as :class:`bpgpu.batches.Batches` slices a chunk gathered on the device: the
same rows, the same order, the same arithmetic, so the result is the in-memory fit's. A
host thread gathers the next chunk while the current one trains, so reading overlaps
computing; the device holds two chunks at a time, never the data set. How the rows
travel is the backend's (``Backend.staging``): on a GPU through two pinned host buffers
and a copy stream of their own, so the copy also overlaps the GPU's work.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from bpgpu.batches import Batches
from bpgpu.host_rng import split_indices
from bpgpu.inputs import class_targets, row_weights
from bpgpu.sample_weights import sample_weights

CHUNK_BYTES = 64 << 20  # 64 MiB of inputs on the device at a time (and one more coming)


def streamed(a: Any) -> bool:
    """True for what is streamed rather than moved whole: a memory map or a ``.npy`` path."""
    return isinstance(a, np.memmap) or (
        isinstance(a, (str, os.PathLike)) and os.fspath(a).endswith(".npy")
    )


def open_host(a: Any, what: str) -> np.ndarray:
    """A ``.npy`` path as a read-only memory map; arrays as they are."""
    if isinstance(a, (str, os.PathLike)):
        try:
            return np.load(os.fspath(a), mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as e:
            raise ValueError(f"{what}: {os.fspath(a)} is not a readable .npy file ({e})") from None
    return np.asarray(a) if not isinstance(a, np.ndarray) else a


def inference_rows(X: Any, widest: int, itemsize: int, what: str = "X") -> tuple[Any, int | None]:
    """What ``predict``/``classify``/``evaluate`` read, and how many rows at a time.

    A ``.npy`` path opens as a memory map (another path is refused, naming the loaders);
    anything with more rows than fit ``CHUNK_BYTES`` of the widest layer's activations
    is read that many rows at a time (None: in one go), so a data set larger than the
    device can be scored, and a large one needs no more device memory than a chunk."""
    if isinstance(X, (str, os.PathLike)):
        if not streamed(X):
            raise ValueError(
                f"{what} is the path {os.fspath(X)!r}; pass an array or a .npy path "
                "(bpgpu.datasets.load_csv / load_npz read other files)"
            )
        X = open_host(X, what)
    step = max(1024, CHUNK_BYTES // max(1, widest * itemsize))
    shape = getattr(X, "shape", None)  # lists and the like: in one go
    return X, step if shape is not None and len(shape) == 2 and shape[0] > step else None


def check_rows(X: np.ndarray, n_features: int, chunk_rows: int) -> None:
    """Shape and finiteness of host rows, checked a chunk at a time (bounded memory)."""
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (samples, features); got shape {X.shape}")
    if X.shape[1] != n_features:
        raise ValueError(f"X has {X.shape[1]} features, the network expects {n_features}")
    if X.shape[0] == 0:
        raise ValueError("X is empty (0 samples)")
    if X.dtype.kind not in "fiub":
        raise TypeError(f"X has dtype {X.dtype}; pass real numbers")
    for s in range(0, X.shape[0], chunk_rows):
        part = np.asarray(X[s : s + chunk_rows])
        if part.dtype.kind == "f" and not np.isfinite(part).all():
            row = s + int(np.argwhere(~np.isfinite(part))[0][0])
            raise ValueError(
                f"X contains NaN or inf (first at row {row + 1}); clean or impute the data first"
            )


class StreamBatches(Batches):
    """Batches of host rows (``rows``: the training rows of ``X`` and ``T``, or all),
    moved to the device a chunk at a time; see the module docstring."""

    host_perm = True  # the epoch's order stays on the host: rows are gathered there
    shares = None  # no device shares: each chunk's are gathered on the host with its rows

    def __init__(
        self, model, X, T, rows, batch_size: int, sizes=None, chunk_bytes=None, *, accuracy
    ):
        chunk_bytes = CHUNK_BYTES if chunk_bytes is None else chunk_bytes  # read now
        self.model, self.X, self.T, self.index = model, X, T, rows
        self.accuracy = accuracy  # what each chunk's labels are for (prepare's kind)
        n = len(rows) if rows is not None else X.shape[0]
        row_bytes = X.shape[1] * np.dtype(model.dtype).itemsize
        if sizes is None:
            sizes = [min(batch_size, n - s) for s in range(0, n, batch_size)]
        widest = max(sizes)
        self.xp, self.arrays, self.B = model.xp, [], batch_size
        self.count = len(sizes)
        self.rows = list(sizes)
        self.offsets = [0]
        for size in sizes:
            self.offsets.append(self.offsets[-1] + size)
        self.n = self.offsets[-1]
        self.per = max(1, chunk_bytes // max(1, row_bytes * widest))
        self._key, self._chunk = None, []
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bpgpu-prefetch")
        self._stage = model.backend.staging()  # a GPU: pinned buffers, a copy stream
        self._next: tuple[Any, int, Any] | None = None
        self.host_shares = None  # this epoch's share of each row in its batch's weight

    def set_shares(self, shares, model) -> None:
        self.host_shares = shares  # gathered with the rows

    def epoch(self, perm, first: int = 0):
        order = np.arange(self.n) if perm is None else perm
        yield from super().epoch(order, first)

    def _host_rows(self, perm, k: int, shares=None):
        """Chunk ``k``'s inputs, targets and (``shares``: this epoch's share of each
        training row in its batch's weight) weights, gathered on the host (in the
        prefetch thread)."""
        offs = self.offsets
        idx = perm[offs[k * self.per] : offs[min((k + 1) * self.per, self.count)]]
        W = None if shares is None else shares[idx]
        if self.index is not None:
            idx = self.index[idx]
        return self._stage.fill(self.X, idx, k), np.asarray(self.T[idx]), W

    def _gather(self, perm, k: int) -> list:
        if self._key is not None and self._key[0] is perm and self._key[1] == k:
            return self._chunk
        if self._next is not None and self._next[0] is perm and self._next[1] == k:
            Xh, Th, Wh = self._next[2].result()
        else:
            if self._next is not None:  # a stopped epoch's prefetch: let it finish first,
                self._next[2].exception()  # it may be filling a staging buffer
            Xh, Th, Wh = self._host_rows(perm, k, self.host_shares)
        self._next = None
        if (k + 1) * self.per < self.count:  # read the next chunk while this one trains
            job = self._pool.submit(self._host_rows, perm, k + 1, self.host_shares)
            self._next = (perm, k + 1, job)
        m, self._chunk = self.model, []  # let the old chunk go before the new one comes
        # the values were checked on the host before training (``prepare``): on a GPU a
        # second check would wait for the device once per chunk
        Xd = m.input(self._stage.to_device(Xh), checked=True)
        Td = m.targets(Th, Xd.shape[0], checked=True)
        L = None if self.accuracy is None else m.target_labels(Td, self.accuracy)
        W = None if Wh is None else m.backend.asarray(Wh, m.dtype)
        self._chunk = [Xd, Td, L, W]
        self._key = (perm, k)
        return self._chunk

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def chunk_rows(n_features: int, itemsize: int = 8) -> int:
    """Rows per chunk for the up-front checks: ``CHUNK_BYTES`` of float64 at most."""
    return max(1, CHUNK_BYTES // max(1, n_features * itemsize))


def host_part(a: np.ndarray, rows) -> np.ndarray:
    """The rows ``rows`` of a host array, in memory (a validation part)."""
    return np.asarray(a[np.sort(rows)]) if rows is not None else np.asarray(a)


def prepare(
    model, X, y, validation_split: float, seed: int, validation_data, weighting=(None, None)
):
    """``(X_val, T_val, W_val, (X, T, training rows), accuracy, w)``: streamed data checked on
    the host in chunks and left there; only a validation part comes to the device.
    ``accuracy``: what it means for the targets (:meth:`Model.accuracy_kind` of them
    all, their facts gathered a chunk at a time); ``w``: each training row's weight from
    ``weighting = (sample_weight, class_weight)`` on the host (None: unweighted)."""
    Xh, Th = open_host(X, "X"), open_host(y, "y")
    step = chunk_rows(Xh.shape[1] if Xh.ndim == 2 else 1)
    check_rows(Xh, model.sizes[0], step)
    n = Xh.shape[0]
    if Th.ndim == 0 or Th.shape[0] != n:
        got = Th.shape[0] if Th.ndim else "a scalar"
        raise ValueError(f"X has {n} samples but the targets have {got}; pass one per row of X")
    facts = []
    labels = [] if weighting[1] is not None else None  # for class_weight
    for s in range(0, n, step):  # the targets' checks, a chunk at a time
        part = np.asarray(Th[s : s + step])
        Td = model.targets(part, part.shape[0])
        facts.append(model.target_facts(Td))
        if labels is not None:
            labels.append(model.backend.to_numpy(model.labels(Td)))
    accuracy = model.kind_from(facts)
    if labels is not None:
        class_targets(accuracy)
    w = row_weights(model, n, *weighting, lambda: np.concatenate(labels))
    Xv = Tv = Wv = rows = None
    if validation_split:
        rows, held = split_indices(n, validation_split, seed)
        if rows.size == 0 or held.size == 0:
            raise ValueError(
                f"validation_split={validation_split} leaves no training or no validation "
                f"samples out of {n}"
            )
        Xv = model.input(host_part(Xh, held), what="X_val")
        Tv = model.targets(host_part(Th, held), Xv.shape[0])
        if w is not None:  # the held-out rows' weights weigh the validation loss
            Wv = model.backend.asarray(w[np.sort(held)], model.dtype)
    elif validation_data is not None:
        Xv, Tv, Wv = validation_arrays(model, validation_data)
    if w is not None and rows is not None:
        w = w[rows]
    return Xv, Tv, Wv, (Xh, Th, rows), accuracy, w


def validation_arrays(model, validation_data) -> tuple[Any, Any, Any]:
    """``validation_data = (X_val, y_val)`` or ``(X_val, y_val, w_val)`` (arrays, memory
    maps or ``.npy`` paths) as validated device arrays (``w_val``: sample weights, or
    None): the validation part is moved to the device whole."""
    if not (isinstance(validation_data, (tuple, list)) and len(validation_data) in (2, 3)):
        raise ValueError(
            "validation_data must be a pair (X_val, y_val) or a triple (X_val, y_val, "
            "sample_weight_val)"
        )
    Xv, yv, *wv = (
        open_host(a, what) if streamed(a) else a
        for a, what in zip(validation_data, ("X_val", "y_val", "sample_weight_val"))
    )
    Xv = model.input(Xv, what="X_val")
    Tv = model.targets(yv, Xv.shape[0])
    Wv = None
    if wv:
        Wv = model.backend.asarray(sample_weights(wv[0], Xv.shape[0]), model.dtype)
    return Xv, Tv, Wv
