"""What kind of targets a data set has, and class labels to output indices and back.

One module answers both questions for the command line, :class:`bpgpu.MLP` and the
scikit-learn estimators. It works on the host, with NumPy: labels are data the user
holds (text, numbers, any hashable values), like the rows of a file.

The kinds (:func:`kind`):

- ``"classes"``: one label per sample (1-D, or a single column): text, integers,
  booleans, whole numbers read as floats (``1.0``), or other hashable objects;
- ``"one-hot"``: 0/1 rows of two or more columns, exactly one 1 in each row;
- ``"multilabel"``: 0/1 rows of two or more columns, some row not one-hot (each column
  a yes or a no of its own);
- ``"probabilities"``: rows of two or more columns, each >= 0 and summing to 1 (soft
  class targets), not all 0/1;
- ``"regression"``: real numbers (with fractions, or rows that are none of the above).

Classes are a 1-D NumPy array, output ``i`` standing for ``classes[i]`` (scikit-learn's
``classes_``). Derived from labels (:func:`classes_of`) they are the distinct labels,
sorted as :func:`numpy.unique` sorts them; given by a user they keep the user's order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

KINDS = ("classes", "one-hot", "multilabel", "probabilities", "regression")
JSON_SCALARS = (str, int, float, bool)  # what a model file's JSON config can hold
_SHOWN = 12  # classes listed in a message


class UnknownLabel(ValueError):
    """A label that is not one of the classes (``label``: it; ``classes``: them)."""

    def __init__(self, message: str, label: Any, classes: np.ndarray):
        super().__init__(message)
        self.label, self.classes = label, classes


def host_labels(y: Any) -> np.ndarray:
    """``y`` as a host NumPy array, without NumPy's silent conversions: a list that mixes
    text and numbers stays a list of objects (``np.asarray([1, "a"])`` would turn the 1
    into ``"1"``)."""
    if isinstance(y, np.ndarray):
        return y
    if hasattr(y, "__array__") or hasattr(y, "__dlpack__"):  # arrays of other libraries
        from bpgpu.backends import to_host

        return np.asarray(to_host(y))
    a = np.asarray(y)
    if a.dtype.kind in "US" and a.ndim == 1 and not all(isinstance(v, (str, bytes)) for v in y):
        a = np.empty(len(y), dtype=object)
        a[:] = list(y)
    return a


def numeric(a: np.ndarray) -> bool:
    """Whether a host array holds numbers (booleans, integers, real floats)."""
    return a.dtype.kind in "biuf"


def kind(y: Any) -> str:
    """What the targets ``y`` are: one of :data:`KINDS` (see the module docstring).

    Parameters
    ----------
    y : array_like
        ``(n,)`` or ``(n, 1)`` labels, or ``(n, k)`` rows; a list, a NumPy array or an
        array of any supported library.

    Returns
    -------
    str
        ``"classes"``, ``"one-hot"``, ``"multilabel"``, ``"probabilities"`` or
        ``"regression"``.

    Raises
    ------
    ValueError
        ``y`` is empty, a scalar, more than 2-D, or rows of text.
    """
    a = host_labels(y)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a.reshape(-1)
    if a.ndim not in (1, 2) or not a.size:
        raise ValueError(
            f"targets must be one label per sample (n,) or rows (n, k); got shape {a.shape}"
        )
    if a.ndim == 1:
        if not numeric(a) or a.dtype.kind != "f":
            return "classes"
        whole = np.all(np.isfinite(a)) and np.all(a == np.round(a))
        return "classes" if whole else "regression"
    if not numeric(a):
        raise ValueError(
            f"targets of shape {a.shape} hold {a.dtype} values: text labels take one per "
            "sample, shape (n,); rows (n, k) are numbers (one-hot, 0/1 or values)"
        )
    zero_one = np.all((a == 0) | (a == 1))
    sums = a.sum(axis=1, dtype=np.float64)
    if zero_one:
        return "one-hot" if np.all(sums == 1) else "multilabel"
    if np.all(a >= 0) and np.all(np.abs(sums - 1) <= 1e-6):
        return "probabilities"
    return "regression"


def indicator(y: Any) -> bool:
    """Whether ``y`` is 0/1 rows of two or more columns (one-hot or multi-label):
    scikit-learn's "multilabel-indicator"."""
    a = host_labels(y)
    if a.ndim != 2 or a.shape[1] < 2 or not a.size or not numeric(a):
        return False
    return kind(a) in ("one-hot", "multilabel")


def labels_1d(y: Any, what: str = "labels") -> np.ndarray:
    """One label per sample as a 1-D host array (a single column is taken as one)."""
    a = host_labels(y)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a.reshape(-1)
    if a.ndim != 1:
        raise ValueError(f"{what} must be one label per sample, shape (n,); got shape {a.shape}")
    return a


def classes_of(y: Any) -> np.ndarray:
    """The distinct labels of ``y``, sorted as :func:`numpy.unique` sorts them.

    Parameters
    ----------
    y : array_like of shape (n,)
        Class labels of any hashable kind that sorts: text, numbers, booleans.

    Returns
    -------
    numpy.ndarray of shape (K,)

    Raises
    ------
    TypeError
        The labels mix kinds that do not sort together (``[1, "a"]``).
    ValueError
        A label is NaN (it equals nothing, itself included).
    """
    a = labels_1d(y)
    try:
        classes = np.unique(a)
    except TypeError:
        raise TypeError(_unorderable(a)) from None
    if classes.dtype.kind in "fcO" and any(_is_nan(v) for v in classes.tolist()):
        raise ValueError("a class label is NaN; drop or relabel those samples first")
    return classes


def as_classes(values: Any) -> np.ndarray:
    """``values`` as classes: a 1-D array of distinct hashable labels, in the order given
    (a list of one kind becomes an array of that dtype; a mix, an array of objects).

    Raises
    ------
    ValueError
        Not 1-D, empty, a label repeated, or a label that is NaN.
    TypeError
        A label is not hashable.
    """
    a = host_labels(values) if not isinstance(values, (list, tuple)) else _from_list(values)
    if a.ndim != 1 or not a.size:
        raise ValueError(f"classes must be a non-empty list of labels; got shape {a.shape}")
    seen: dict = {}
    for v in a.tolist():
        try:
            hash(v)
        except TypeError:
            raise TypeError(
                f"class label {v!r} ({type(v).__name__}) is not hashable; use a "
                "hashable label (str, int, a tuple)"
            ) from None
        if _is_nan(v):
            raise ValueError("a class label is NaN; give every class a label equal to itself")
        if v in seen:
            raise ValueError(f"classes list {v!r} twice (as {seen[v]!r}); each class once")
        seen[v] = v
    return a


def _from_list(values: Sequence) -> np.ndarray:
    """A list of labels as a 1-D array: one dtype for labels of one kind, else objects."""
    kinds = {type(v) for v in values}
    if kinds and all(issubclass(k, (str, np.str_)) for k in kinds):
        return np.asarray(values, dtype=str)
    flags, numbers = (bool, np.bool_), (int, float, np.integer, np.floating)
    if all(issubclass(k, flags) for k in kinds) or all(
        issubclass(k, numbers) and not issubclass(k, flags) for k in kinds
    ):
        try:
            a = np.asarray(values)
            if a.ndim == 1 and numeric(a):
                return a
        except (TypeError, ValueError, OverflowError):
            pass
    a = np.empty(len(values), dtype=object)
    a[:] = list(values)
    return a


def as_indices(y: Any, classes: np.ndarray | None) -> Any:
    """Targets as a network takes them: class labels that are not output indices become
    indices (int64, ``(n,)``) through ``classes``; anything else is ``y`` unchanged.

    Labels need ``classes`` when they are text or other non-numbers, and whenever the
    classes are not plainly 0..K-1 (``classes = [10, 20, 30]``: label 20 is output 1).
    Rows ``(n, k)`` (one-hot, probabilities, values) are per output already.

    Raises
    ------
    ValueError
        Text labels and no classes yet, or a label that is not one of ``classes``.
    """
    host = _host_data(y)
    if host is not None and not numeric(host):
        if classes is None:
            first = labels_1d(host, "targets")[0] if host.size else ""
            raise ValueError(
                f"the targets are class labels such as {first!r}, but the network has no "
                "classes yet: fit(X, y) takes them from the labels; before a fit, set "
                "net.classes = [...] (the labels of the outputs, in order)"
            )
        return encode(host, classes)
    if plain(classes):
        return y
    a = host_labels(y) if host is None else host
    if a.ndim == 1 or (a.ndim == 2 and a.shape[1] == 1):
        return encode(a, classes)
    return y


def _host_data(y: Any) -> np.ndarray | None:
    """``y`` as a host array where it is host data (a list, a NumPy array, a pandas
    column of objects); None for arrays of the array libraries (numbers always)."""
    if isinstance(y, (list, tuple)):
        return host_labels(y)
    if isinstance(y, np.ndarray):
        return y
    dtype = getattr(y, "dtype", None)
    if isinstance(dtype, np.dtype) and dtype.kind in "OUS":  # pandas: text as objects
        return np.asarray(y)
    return None


def keyed_by_index(class_weight: Any, classes: np.ndarray | None) -> Any:
    """A ``class_weight`` dict keyed by the labels of ``classes`` as one keyed by output
    index (what the weighting counts in); anything else unchanged.

    Raises
    ------
    ValueError
        A key that is not one of ``classes``.
    """
    if not isinstance(class_weight, dict) or plain(classes):
        return class_weight
    index = {c: i for i, c in enumerate(classes.tolist())}
    table = {}
    for c, w in class_weight.items():
        if c not in index:
            raise ValueError(
                f"class_weight names class {c!r}; the network's classes are {shown(classes)}"
            )
        table[index[c]] = w
    return table


def text_labels(y: Any) -> np.ndarray | None:
    """``y`` as a host array where it is host data holding labels that are not numbers
    (text, other objects): the labels a fit takes its classes from; else None."""
    host = _host_data(y)
    return host if host is not None and not numeric(host) else None


def for_outputs(values: Any, n_outputs: int, what: str = "") -> np.ndarray:
    """Classes for a network of ``n_outputs`` outputs: :func:`as_classes`, one label per
    output (two for one unit), as a read-only copy (``what``: "y" where they came from
    the labels of a fit, for the message).

    Raises
    ------
    ValueError
        Another number of labels; the message says how to build the network instead.
    """
    classes = np.array(as_classes(values), copy=True)
    want = class_count(n_outputs)
    if len(classes) != want:
        outputs = f"{n_outputs} output{'s' if n_outputs > 1 else ''}"
        source = "y holds" if what == "y" else "got"
        raise ValueError(
            f"{source} {len(classes)} classes ({shown(classes)}) for a network of {outputs}, "
            f"which tells {want} classes apart (one per output; one unit: below and above "
            "its threshold). Build it with one output per class (or 1 sigmoid unit for 2 "
            "classes), or set net.classes to all the labels first (a class these data lack)"
        )
    classes.flags.writeable = False  # what the network answers with: not changed behind it
    return classes


def plain(classes: np.ndarray | None) -> bool:
    """Whether ``classes`` are None or the integers 0..K-1 in order: labels that are the
    output indices themselves."""
    if classes is None:
        return True
    return classes.dtype.kind in "iu" and np.array_equal(classes, np.arange(len(classes)))


def encode(y: Any, classes: np.ndarray, what: str = "targets") -> np.ndarray:
    """Class labels as output indices ``(n,)`` int64: ``classes[codes] == y``.

    Parameters
    ----------
    y : array_like of shape (n,) or (n, 1)
        Labels, each one of ``classes``.
    classes : numpy.ndarray of shape (K,)
        The labels of the outputs, in output order.
    what : str
        What ``y`` is, for the message.

    Returns
    -------
    numpy.ndarray of shape (n,), int64

    Raises
    ------
    UnknownLabel
        A label is not one of ``classes`` (a ValueError); the message names it and them.
    """
    a = labels_1d(y, what)
    try:
        distinct, inverse = np.unique(a, return_inverse=True)
    except TypeError:  # a mix that does not sort: each label looked up as it is
        distinct, inverse = a, np.arange(len(a))
    index = {c: i for i, c in enumerate(classes.tolist())}
    codes = np.empty(len(distinct), dtype=np.int64)
    for j, v in enumerate(distinct.tolist()):
        i = index.get(v) if _hashable(v) else None
        if i is None:
            raise UnknownLabel(
                f"{what}: label {v!r} is not one of the network's classes ({shown(classes)}); "
                "pass labels of these classes only (a network's classes are fixed by its "
                "first fit, or by setting net.classes)",
                v,
                classes,
            )
        codes[j] = i
    return codes[np.reshape(inverse, -1)]


def decode(codes: Any, classes: np.ndarray) -> np.ndarray:
    """Output indices back to their labels: ``classes[codes]``, a NumPy array.

    Parameters
    ----------
    codes : array_like of int, shape (n,)
    classes : numpy.ndarray of shape (K,)

    Returns
    -------
    numpy.ndarray of shape (n,), of ``classes``' dtype
    """
    return classes[np.asarray(codes, dtype=np.int64)]


def shown(classes: Sequence | np.ndarray) -> str:
    """The first few classes as a message lists them."""
    values = list(classes.tolist() if isinstance(classes, np.ndarray) else classes)
    more = ", ..." if len(values) > _SHOWN else ""
    return ", ".join(map(repr, values[:_SHOWN])) + more


def to_json(classes: np.ndarray | None, what: str = "a model file") -> list | None:
    """``classes`` as a JSON list (str, int, float and bool labels), None for None.

    Raises
    ------
    ValueError
        A label that JSON cannot hold as itself (a tuple, None, a date, NaN or inf);
        the message names it.
    """
    if classes is None:
        return None
    out = []
    for v in classes.tolist():
        if not isinstance(v, JSON_SCALARS) or (isinstance(v, float) and not math.isfinite(v)):
            raise ValueError(
                f"{what} holds the classes as JSON text, numbers or booleans; class label "
                f"{v!r} ({type(v).__name__}) is none of these. Relabel the classes (e.g. "
                "net.classes = [str(c) for c in net.classes]) or pickle the network instead"
            )
        out.append(v)
    return out


def from_json(values: Any, count: int) -> np.ndarray:
    """The classes a model file's config lists, validated: ``count`` distinct str, int,
    float (finite) or bool labels.

    Raises
    ------
    ValueError
        Anything else; the message says what is wrong.
    """
    if not isinstance(values, list) or len(values) != count:
        got = f"{len(values)} labels" if isinstance(values, list) else type(values).__name__
        raise ValueError(f"'classes' must list {count} labels, one per class; got {got}")
    for v in values:
        if not isinstance(v, JSON_SCALARS) or (isinstance(v, float) and not math.isfinite(v)):
            raise ValueError(f"'classes' holds {v!r}; class labels are text, numbers or booleans")
    return as_classes(values)


def class_count(n_outputs: int) -> int:
    """How many classes a network of ``n_outputs`` outputs tells apart: one per output,
    or two for one unit (its threshold)."""
    return 2 if n_outputs == 1 else n_outputs


def _is_nan(v: Any) -> bool:
    return isinstance(v, (float, np.floating)) and v != v


def _hashable(v: Any) -> bool:
    try:
        hash(v)
    except TypeError:
        return False
    return True


def _unorderable(a: np.ndarray) -> str:
    """The message for labels whose kinds do not sort together."""
    first: dict = {}
    for v in a.tolist():
        first.setdefault(type(v).__name__, v)
    examples = ", ".join(f"{v!r} ({k})" for k, v in list(first.items())[:3])
    return (
        f"the labels mix kinds that do not sort together: {examples}; make them one kind "
        "(e.g. [str(v) for v in y]), or set net.classes to the labels in the order you want"
    )
