"""Data on the host: the embedded digits, MNIST IDX files, the user's .npz and CSV files,
a deterministic split and standardisation. Everything returns NumPy arrays.

The digits are the UCI "Optical Recognition of Handwritten Digits" test set as
distributed with scikit-learn (1,797 images of 8x8 pixels, values 0..16), shipped inside
the package as ``bpgpu/data/digits.npz``.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from importlib import resources

import numpy as np

__all__ = [
    "load_digits",
    "load_mnist",
    "load_npz",
    "load_csv",
    "load",
    "split",
    "Split",
    "standardize",
]


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 8x8 digits: ``X`` float64 ``(1797, 64)`` with values 0..16, ``y`` int64 ``(1797,)``."""
    with resources.files("bpgpu").joinpath("data/digits.npz").open("rb") as f:
        with np.load(f, allow_pickle=False) as d:
            return d["X"].astype(np.float64), d["y"].astype(np.int64)


_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """One IDX file (the MNIST format), gzipped or not, checked against its header."""
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        head = f.read(4)
        if len(head) != 4 or head[:2] != b"\0\0" or head[2] not in _IDX_DTYPES:
            raise ValueError(f"{path}: not an IDX file (bad magic number {head!r})")
        ndim = head[3]
        dims_raw = f.read(4 * ndim)
        if len(dims_raw) != 4 * ndim:
            raise ValueError(f"{path}: truncated IDX header")
        dims = tuple(int(d) for d in np.frombuffer(dims_raw, dtype=">u4"))
        dtype = np.dtype(_IDX_DTYPES[head[2]])
        count = int(np.prod(dims, dtype=np.int64))
        data = f.read(count * dtype.itemsize + 1)
    if len(data) != count * dtype.itemsize:
        raise ValueError(
            f"{path}: {len(data)} data bytes, the header {dims} implies {count * dtype.itemsize}"
        )
    return np.frombuffer(data, dtype=dtype).reshape(dims)


def _find(folder: str, stem: str) -> str:
    for name in (
        stem,
        stem + ".gz",
        stem.replace("-idx", ".idx"),
        stem.replace("-idx", ".idx") + ".gz",
    ):
        p = os.path.join(folder, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(
        f"no {stem}[.gz] in {folder}; download the four MNIST IDX files into that folder"
    )


def load_mnist(folder: str | os.PathLike, kind: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """MNIST (or Fashion-MNIST) from the standard IDX files in ``folder``.

    ``kind`` is ``"train"`` (``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte``)
    or ``"test"`` (``t10k-...``). Returns ``X`` float64 ``(N, rows * cols)`` with pixel
    values 0..255 and ``y`` int64 ``(N,)``.
    """
    if kind not in ("train", "test"):
        raise ValueError(f"kind must be 'train' or 'test'; got {kind!r}")
    prefix = "train" if kind == "train" else "t10k"
    folder = os.fspath(folder)
    images = read_idx(_find(folder, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find(folder, f"{prefix}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(f"{folder}: images {images.shape} and labels {labels.shape} do not match")
    return images.reshape(images.shape[0], -1).astype(np.float64), labels.astype(np.int64)


def load_npz(path: str | os.PathLike, x_key: str = "X", y_key: str = "y"):
    """``(X, y)`` from an .npz file holding arrays ``x_key`` and ``y_key`` (no pickles)."""
    with np.load(path, allow_pickle=False) as d:
        missing = [k for k in (x_key, y_key) if k not in d.files]
        if missing:
            raise ValueError(
                f"{os.fspath(path)} has arrays {d.files}, not {missing}; "
                "pass x_key= and y_key= (CLI: --x-key/--y-key)"
            )
        return _features(d[x_key], path), _labels(d[y_key], path)


def load_csv(path: str | os.PathLike, label_column: int = -1, delimiter: str = ","):
    """``(X, y)`` from a numeric CSV file; one column holds the labels (default: the last).

    A first line that is not numeric is taken as a header and skipped.
    """
    path = os.fspath(path)
    data = read_csv(path, delimiter)
    if data.shape[1] < 2:
        raise ValueError(f"{path}: needs at least one feature column and one label column")
    y = data[:, label_column]
    X = np.delete(data, label_column % data.shape[1], axis=1)
    return _features(X, path), _labels(y, path)


def read_csv(path: str | os.PathLike, delimiter: str = ",") -> np.ndarray:
    """A numeric CSV file as a 2-D float array; a non-numeric first line is a header."""
    path = os.fspath(path)
    with open(path) as f:
        first = f.readline()
    try:
        [float(v) for v in first.strip().split(delimiter)]
        skip = 0
    except ValueError:
        skip = 1
    try:
        return np.loadtxt(path, delimiter=delimiter, skiprows=skip, ndmin=2)
    except ValueError as e:
        raise ValueError(f"{path}: not a numeric CSV file ({e})") from None


def load(path: str, fmt: str = "auto", **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` from ``"digits"``, an MNIST folder, an .npz or a .csv file."""
    if fmt == "auto":
        if path == "digits":
            fmt = "digits"
        elif os.path.isdir(path):
            fmt = "mnist"
        elif path.endswith(".npz"):
            fmt = "npz"
        elif path.endswith(".csv"):
            fmt = "csv"
        else:
            raise ValueError(
                f"cannot tell the format of {path!r}; pass fmt='npz', 'csv' or 'mnist'"
            )
    if fmt == "digits":
        return load_digits()
    if fmt == "mnist":
        return load_mnist(path, **kwargs)
    if fmt == "npz":
        return load_npz(path, **kwargs)
    if fmt == "csv":
        return load_csv(path, **kwargs)
    raise ValueError(f"unknown data format {fmt!r}; use digits, mnist, npz or csv")


def _features(X, path) -> np.ndarray:
    X = np.asarray(X)
    if X.dtype.kind not in "fiub":
        raise ValueError(f"{os.fspath(path)}: features have dtype {X.dtype}; numbers needed")
    if X.ndim != 2:
        X = X.reshape(X.shape[0], -1)
    return X.astype(np.float64)


def _labels(y, path) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 1 and y.dtype.kind == "f" and np.all(y == np.round(y)):
        y = y.astype(np.int64)  # class labels written as 0.0, 1.0, ... in a CSV
    return y


@dataclass
class Split:
    """Train, validation and test parts of one data set."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def split(X, y, val: float = 0.1, test: float = 0.2, seed: int = 0) -> Split:
    """A deterministic shuffled split (the same ``seed`` gives the same parts)."""
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise ValueError(f"val and test fractions must be >= 0 and sum below 1; got {val}, {test}")
    X, y = np.asarray(X), np.asarray(y)
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]}")
    perm = np.random.default_rng(seed).permutation(X.shape[0])
    n_test, n_val = int(round(test * len(perm))), int(round(val * len(perm)))
    te, va, tr = perm[:n_test], perm[n_test : n_test + n_val], perm[n_test + n_val :]
    return Split(X[tr], y[tr], X[va], y[va], X[te], y[te])


def standardize(X_train) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, scale)`` per feature from the training data; constant features get scale 1.

    Give them to :meth:`MLP.set_input_scaling` so the model standardises its inputs (and
    keeps doing so after save/load).
    """
    X = np.asarray(X_train, dtype=np.float64)
    mean, std = X.mean(axis=0), X.std(axis=0)
    return mean, np.where(std > 0, std, 1.0)
