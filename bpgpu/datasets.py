"""Data on the host: the embedded digits, MNIST IDX files, the user's .npz and CSV files,
a deterministic split and standardisation. Everything returns NumPy arrays.

The digits are the UCI "Optical Recognition of Handwritten Digits" test set as
distributed with scikit-learn (1,797 images of 8x8 pixels, values 0..16), shipped inside
the package as ``bpgpu/data/digits.npz``.
"""

from __future__ import annotations

import gzip
import math
import os
import zipfile
from dataclasses import dataclass
from importlib import resources

import numpy as np

from bpgpu._paths import file_path
from bpgpu.csvfile import encode_labels, file_format, read_labelled, read_numeric

__all__ = [
    "load_digits",
    "load_mnist",
    "load_npz",
    "load_csv",
    "load",
    "format_of",
    "split",
    "Split",
    "standardize",
    "encode_labels",
    "check_finite",
]


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 8x8 handwritten digits shipped with bpgpu (no download).

    Returns
    -------
    X : numpy.ndarray
        The images, float64 ``(1797, 64)``: one per row, pixel values 0..16.
    y : numpy.ndarray
        The digit each image shows, 0..9, int64 ``(1797,)``.

    Examples
    --------
    >>> from bpgpu import datasets
    >>> X, y = datasets.load_digits()
    >>> X.shape, y.shape, float(X.max()), sorted(set(y.tolist()))[:3]
    ((1797, 64), (1797,), 16.0, [0, 1, 2])
    """
    with resources.files("bpgpu").joinpath("data/digits.npz").open("rb") as f:
        with np.load(f, allow_pickle=False) as d:
            return d["X"].astype(np.float64), d["y"].astype(np.int64)


_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MAX_IDX_BYTES = 1 << 34  # 16 GiB: far beyond any real IDX file; read_idx(max_bytes=...)
_CHUNK = 1 << 24


def read_idx(path: str | os.PathLike, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """One IDX file (the MNIST format), gzipped or not, checked against its header.

    The size the header declares is computed exactly (no integer overflow) and refused
    above ``max_bytes``; the data are read in chunks up to that size, so a header that
    promises more than the file holds (or a gzip bomb) costs no more memory than the
    bytes really there. Either way the error gives the numbers.
    """
    path = file_path(path, "the IDX file")
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            head = f.read(4)
            if len(head) != 4 or head[:2] != b"\0\0" or head[2] not in _IDX_DTYPES:
                raise ValueError(f"{path}: not an IDX file (bad magic number {head!r})")
            ndim = head[3]
            dims_raw = f.read(4 * ndim)
            if len(dims_raw) != 4 * ndim:
                raise ValueError(f"{path}: truncated IDX header")
            dims = tuple(int.from_bytes(dims_raw[4 * i : 4 * i + 4], "big") for i in range(ndim))
            dtype = np.dtype(_IDX_DTYPES[head[2]])
            nbytes = math.prod(dims) * dtype.itemsize  # Python ints: exact
            if nbytes > max_bytes:
                raise ValueError(
                    f"{path}: the header declares an array of shape {dims}, {nbytes:,} bytes, "
                    f"more than the {max_bytes:,} allowed; the file is damaged, or pass "
                    "max_bytes= if it really is that large"
                )
            chunks, got = [], 0
            while got <= nbytes:
                chunk = f.read(min(_CHUNK, nbytes + 1 - got))
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise ValueError(f"{path}: cannot read it as (gzipped) IDX ({e})") from None
    if got != nbytes:
        held = "more" if got > nbytes else f"{got:,}"
        raise ValueError(
            f"{path}: the header {dims} implies {nbytes:,} data bytes; the file holds {held}"
        )
    return np.frombuffer(b"".join(chunks), dtype=dtype).reshape(dims)


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
    """MNIST (or Fashion-MNIST) from the standard IDX files in a folder.

    Parameters
    ----------
    folder : str or path-like
        The folder holding the four IDX files, gzipped or not, under their usual names
        (``train-images-idx3-ubyte[.gz]`` or ``train-images.idx3-ubyte``, ...).
    kind : {"train", "test"}
        The training files (``train-...``) or the test files (``t10k-...``).

    Returns
    -------
    X : numpy.ndarray
        The images, float64 ``(N, rows * cols)``, pixel values 0..255 (not scaled).
    y : numpy.ndarray
        The labels, int64 ``(N,)``.

    Raises
    ------
    FileNotFoundError
        A file is missing (the message names it).
    ValueError
        A file is not IDX, is truncated, or images and labels do not match.

    Examples
    --------
    Two 2x2 images written as IDX files (an IDX header is two zero bytes, the type
    code 8 for unsigned bytes, the number of dimensions, then each size in 4 bytes):

    >>> import os, tempfile
    >>> import numpy as np
    >>> from bpgpu import datasets
    >>> folder = tempfile.mkdtemp()
    >>> def write_idx(name, a):
    ...     head = bytes([0, 0, 8, a.ndim]) + b"".join(n.to_bytes(4, "big") for n in a.shape)
    ...     with open(os.path.join(folder, name), "wb") as f:
    ...         _ = f.write(head + a.astype(np.uint8).tobytes())
    >>> write_idx("train-images-idx3-ubyte", np.arange(8).reshape(2, 2, 2))
    >>> write_idx("train-labels-idx1-ubyte", np.array([3, 7]))
    >>> X, y = datasets.load_mnist(folder)
    >>> X
    array([[0., 1., 2., 3.],
           [4., 5., 6., 7.]])
    >>> y
    array([3, 7])
    """
    if kind not in ("train", "test"):
        raise ValueError(f"kind must be 'train' or 'test'; got {kind!r}")
    prefix = "train" if kind == "train" else "t10k"
    folder = file_path(folder, "the MNIST folder")
    images = read_idx(_find(folder, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find(folder, f"{prefix}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(f"{folder}: images {images.shape} and labels {labels.shape} do not match")
    return images.reshape(images.shape[0], -1).astype(np.float64), labels.astype(np.int64)


def load_npz(path: str | os.PathLike, x_key: str = "X", y_key: str = "y"):
    """Inputs and labels from an .npz file (``numpy.savez``), never unpickling.

    Parameters
    ----------
    path : str or path-like
        The file.
    x_key, y_key : str
        The names of the inputs array and the labels array in the file.

    Returns
    -------
    X : numpy.ndarray
        The inputs, float64 ``(N, n_features)`` (more dimensions are flattened per row).
    y : numpy.ndarray
        The labels as stored (whole-number floats become int64).

    Raises
    ------
    ValueError
        Not an .npz file (a .npy is named as such), an array missing (the message lists
        those there), features that are not numbers, or Python objects inside.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from bpgpu import datasets
    >>> path = os.path.join(tempfile.mkdtemp(), "data.npz")
    >>> np.savez(path, X=np.ones((3, 2)), y=np.array([0.0, 1.0, 0.0]))
    >>> X, y = datasets.load_npz(path)
    >>> X.shape, y
    ((3, 2), array([0, 1, 0]))
    """
    path = file_path(path, "the .npz file")
    X, y = _npz_arrays(path, (x_key, y_key), "pass x_key= and y_key= (CLI: --x-key/--y-key)")
    return _features(X, path), _labels(y, path)


def read_npz(path: str | os.PathLike, key: str = "X") -> np.ndarray:
    """The inputs array ``key`` of an .npz file (no labels) as a 2-D float array."""
    path = file_path(path, "the .npz file")
    (X,) = _npz_arrays(path, (key,), "pass the name of the inputs array")
    return _features(X, path)


def _npz_arrays(path: str, keys: tuple[str, ...], hint: str) -> list[np.ndarray]:
    """The arrays ``keys`` of an .npz file, or a ValueError that says what it holds."""
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic.startswith(b"\x93NUMPY"):
        raise ValueError(
            f"{path} is a .npy file (one array), not an .npz; save X and y together with "
            "numpy.savez(path, X=X, y=y)"
        )
    if not magic.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        raise ValueError(f"{path} is not an .npz file (numpy.savez writes one)")
    try:
        with np.load(path, allow_pickle=False) as d:
            missing = [k for k in keys if k not in d.files]
            if missing:
                raise ValueError(f"{path} has arrays {d.files}, not {missing}; {hint}")
            return [d[k] for k in keys]
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise ValueError(f"{path}: a damaged .npz file ({e})") from None
    except ValueError as e:
        if "pickle" in str(e):  # an object array inside: never unpickled
            names = " or ".join(map(repr, keys))
            raise ValueError(
                f"{path}: array {names} holds Python objects, which are never loaded "
                "(they could run code); save numbers or strings"
            ) from None
        raise


def load_csv(
    path: str | os.PathLike,
    label_column: int | str = -1,
    delimiter: str | None = None,
    return_header: bool = False,
):
    """Inputs and labels from a CSV file, one column holding the labels.

    Accepted: a header line or none, ``,`` ``;`` tab or spaces between fields, quotes,
    decimal commas with ``;``, UTF-8 or UTF-16, gzip/bzip2/xz/zip compression, text
    labels (returned as strings; :func:`encode_labels` turns them into indices).
    Anything else (a missing value, a word among the numbers) is refused naming its row
    and column.

    Parameters
    ----------
    path : str or path-like
        The file.
    label_column : int or str
        The labels' column: its name in the header line, or its number from 0
        (negative from the end; the default -1 is the last).
    delimiter : str or None
        The field separator; None detects it.
    return_header : bool
        Also return the header's column names.

    Returns
    -------
    X : numpy.ndarray
        The inputs, float64 ``(N, n_columns - 1)``.
    y : numpy.ndarray
        The labels: int64 where they are whole numbers, strings where text, else float64.
    header : list of str or None
        Only with ``return_header``: the column names (the label column's among them),
        or None where the file has no header line.

    Raises
    ------
    ValueError
        A cell that is not a number, rows of different lengths, an unknown label
        column; the message names the row and column.

    Examples
    --------
    >>> import os, tempfile
    >>> from bpgpu import datasets
    >>> path = os.path.join(tempfile.mkdtemp(), "iris.csv")
    >>> with open(path, "w") as f:
    ...     _ = f.write("length,width,species\\n5.1,3.5,setosa\\n6.3,2.9,virginica\\n")
    >>> X, y, header = datasets.load_csv(path, label_column="species", return_header=True)
    >>> X
    array([[5.1, 3.5],
           [6.3, 2.9]])
    >>> y.tolist(), header
    (['setosa', 'virginica'], ['length', 'width', 'species'])
    """
    X, y, header = read_labelled(path, label_column, delimiter)
    X, y = _features(X, path), _labels(y, path)
    return (X, y, header) if return_header else (X, y)


def read_csv(path: str | os.PathLike, delimiter: str | None = None) -> np.ndarray:
    """A numeric CSV file (inputs, no labels) as a 2-D float array; a header line, made
    only of names, is skipped."""
    return read_numeric(path, delimiter)


def format_of(path: str | os.PathLike) -> str | None:
    """The data format a name stands for, as :func:`load` reads it.

    Parameters
    ----------
    path : str or path-like
        ``"digits"``, a folder (MNIST), or a file name; case aside, ``.npz``, and
        ``.csv``, ``.tsv`` and ``.txt`` also compressed (``.csv.gz``).

    Returns
    -------
    str or None
        ``"digits"``, ``"mnist"``, ``"npz"`` or ``"csv"``; None where the name does
        not say.

    Examples
    --------
    >>> from bpgpu import datasets
    >>> datasets.format_of("wine.CSV.gz"), datasets.format_of("digits")
    ('csv', 'digits')
    >>> print(datasets.format_of("model.bin"))
    None
    """
    if isinstance(path, str) and path == "digits":
        return "digits"
    if os.path.isdir(path):
        return "mnist"
    return file_format(path)


def load(path: str, fmt: str = "auto", **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and labels from any source bpgpu reads, the format told by the name.

    Parameters
    ----------
    path : str
        ``"digits"`` (the data shipped with bpgpu), an MNIST folder, an .npz or a CSV
        file.
    fmt : {"auto", "digits", "mnist", "npz", "csv"}
        The format; ``"auto"`` tells it from the name (:func:`format_of`).
    **kwargs
        Passed on to the format's loader: :func:`load_mnist` (``kind``),
        :func:`load_npz` (``x_key``, ``y_key``), :func:`load_csv` (``label_column``,
        ``delimiter``).

    Returns
    -------
    X : numpy.ndarray
        The inputs, float64 ``(N, n_features)``.
    y : numpy.ndarray
        The labels (or regression targets).

    Raises
    ------
    ValueError
        The format cannot be told from the name, or is not one of the four.

    Examples
    --------
    >>> from bpgpu import datasets
    >>> X, y = datasets.load("digits")
    >>> X.shape
    (1797, 64)
    """
    if fmt == "auto":
        fmt = format_of(path)
        if fmt is None:
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
    if X.ndim == 0:
        raise ValueError(
            f"{os.fspath(path)}: the features are a single number (a 0-d array); save a "
            "(samples, features) array"
        )
    if X.ndim != 2:
        X = X.reshape(X.shape[0], -1)
    return X.astype(np.float64)


def _labels(y, path) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 0:
        raise ValueError(
            f"{os.fspath(path)}: the labels are a single value (a 0-d array); save one "
            "label (or target row) per sample"
        )
    if y.ndim == 1 and y.dtype.kind == "f" and np.all(y == np.round(y)):
        y = y.astype(np.int64)  # class labels written as 0.0, 1.0, ... in a CSV
    return y


@dataclass
class Split:
    """Train, validation and test parts of one data set, as :func:`split` makes them.

    Parameters
    ----------
    X_train, y_train : numpy.ndarray
        The training rows and their labels.
    X_val, y_val : numpy.ndarray
        The validation rows (none where ``val=0``).
    X_test, y_test : numpy.ndarray
        The test rows (none where ``test=0``).

    Examples
    --------
    >>> import numpy as np
    >>> from bpgpu import datasets
    >>> parts = datasets.split(np.zeros((10, 2)), np.arange(10), val=0.2, test=0.3)
    >>> parts.X_train.shape, parts.X_val.shape, parts.X_test.shape
    ((5, 2), (2, 2), (3, 2))
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def split(X, y, val: float = 0.1, test: float = 0.2, seed: int = 0) -> Split:
    """A deterministic shuffled split into training, validation and test parts.

    Parameters
    ----------
    X : array_like
        The inputs, one sample per row.
    y : array_like
        The labels, one per row of ``X``.
    val, test : float
        The fractions of the rows for validation and for test (each >= 0, their sum
        below 1), rounded to whole rows; training gets the rest.
    seed : int
        Seed of the shuffle: the same seed gives the same parts.

    Returns
    -------
    Split
        The six arrays.

    Raises
    ------
    ValueError
        Fractions out of range, or ``X`` and ``y`` of different lengths.

    Examples
    --------
    >>> import numpy as np
    >>> from bpgpu import datasets
    >>> X, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    >>> a = datasets.split(X, y, val=0.1, test=0.2, seed=3)
    >>> b = datasets.split(X, y, val=0.1, test=0.2, seed=3)
    >>> len(a.y_train), len(a.y_val), len(a.y_test), bool((a.y_test == b.y_test).all())
    (7, 1, 2, True)
    """
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
    """The mean and scale of each feature of the training data.

    Give them to :meth:`bpgpu.MLP.set_input_scaling`, so the model standardises its
    inputs itself (and keeps doing so after save and load).

    Parameters
    ----------
    X_train : array_like
        The training inputs, ``(N, n_features)``; NaN and inf are refused.

    Returns
    -------
    mean : numpy.ndarray
        The means, float64 ``(n_features,)``.
    scale : numpy.ndarray
        The standard deviations, float64 ``(n_features,)``; 1 for a constant feature.

    Raises
    ------
    ValueError
        ``X_train`` holds NaN or inf.

    Examples
    --------
    >>> import numpy as np
    >>> from bpgpu import datasets
    >>> mean, scale = datasets.standardize(np.array([[1.0, 5.0], [3.0, 5.0]]))
    >>> mean, scale
    (array([2., 5.]), array([1., 1.]))
    """
    X = np.asarray(X_train, dtype=np.float64)
    check_finite(X, "X_train")
    mean, std = X.mean(axis=0), X.std(axis=0)
    return mean, np.where(std > 0, std, 1.0)


def check_finite(X, what: str = "X") -> None:
    """Refuse an array holding NaN or inf, naming the first place.

    Parameters
    ----------
    X : array_like
        The array to check (non-float arrays always pass).
    what : str
        Its name in the message.

    Raises
    ------
    ValueError
        ``X`` holds NaN or inf; the message gives the first one's row and column,
        counted from 1.

    Examples
    --------
    >>> import numpy as np
    >>> from bpgpu import datasets
    >>> datasets.check_finite(np.array([[1.0, 2.0], [3.0, np.nan]]), "X_train")
    Traceback (most recent call last):
    ...
    ValueError: X_train contains NaN or inf (first at row 2, column 2); clean or impute ...
    """
    X = np.asarray(X)
    if X.dtype.kind == "f" and X.size and not np.isfinite(X).all():
        where = np.argwhere(~np.isfinite(X))[0]
        at = ", ".join(f"{k} {i + 1}" for k, i in zip(("row", "column"), where))
        raise ValueError(
            f"{what} contains NaN or inf (first at {at}); clean or impute the data first"
        )
