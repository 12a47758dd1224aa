"""CSV files as people write them, read exactly or refused with row and column.

Accepted: a UTF-8 byte-order mark, ``,`` ``;`` or tab as the separator (the one the
first line uses most), quoted fields (``"3.5"``), blank lines, a header line, and text in
the label column (class names). A header is recognised only when *none* of the first
line's fields is a number, so a data row is never dropped as a header. Anything else
that is not a number — an empty field, text in a feature column, a row with another
number of fields — is refused naming its row (the line in the file) and column, both
counted from 1.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence

import numpy as np

from bpgpu._paths import file_path

SEPARATORS = (",", ";", "\t")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def read_rows(path: str | os.PathLike, delimiter: str | None = None):
    """``(header or None, rows, line numbers)``: the non-blank lines of a CSV file as
    lists of stripped strings, all of one width."""
    path = file_path(path, "the CSV file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a UTF-8 text file ({e.reason} at byte {e.start})") from None
    first = next((line for line in text.splitlines() if line.strip()), "")
    if delimiter is None:
        delimiter = max(SEPARATORS, key=first.count) if first else ","
    reader = csv.reader(text.splitlines(), delimiter=delimiter)
    header, rows, lines = None, [], []
    for line_no, row in enumerate(reader, start=1):
        fields = [v.strip() for v in row]
        if not any(fields):
            continue  # a blank line
        if header is None and not rows and all(fields) and all(_number(v) is None for v in fields):
            header = fields  # names only: a header (of any width: it holds no data)
            continue
        if rows and len(fields) != len(rows[0]):
            raise ValueError(
                f"{path}: row {line_no} has {len(fields)} fields, row {lines[0]} has "
                f"{len(rows[0])} (separator {delimiter!r})"
            )
        rows.append(fields)
        lines.append(line_no)
    if not rows:
        what = "a header line and no data rows" if header else "no data (the file is empty)"
        raise ValueError(f"{path}: {what}")
    if header is not None and len(header) != len(rows[0]):
        header = None  # a title line, not column names
    return header, rows, lines


def _column(path, rows, lines, j: int, header) -> np.ndarray:
    """Column ``j`` as floats, or a ValueError naming the first field that is not one."""
    out = np.empty(len(rows))
    for k, row in enumerate(rows):
        v = _number(row[j])
        if v is None:
            what = "is empty" if not row[j] else f"holds {row[j]!r}, not a number"
            name = f" ({header[j]})" if header else ""
            raise ValueError(
                f"{path}: row {lines[k]}, column {j + 1}{name} {what}; fill it in, or drop "
                "the row or the column"
            )
        out[k] = v
    return out


def _numbers(path, rows, lines, header, drop: int | None = None) -> np.ndarray:
    """Every column but ``drop`` as numbers: a 2-D float array."""
    width = len(rows[0])
    cols = [_column(os.fspath(path), rows, lines, j, header) for j in range(width) if j != drop]
    return np.stack(cols, axis=1)


def read_numeric(path: str | os.PathLike, delimiter: str | None = None) -> np.ndarray:
    """Every column as numbers: a 2-D float array (inputs to ``bpgpu predict``)."""
    header, rows, lines = read_rows(path, delimiter)
    return _numbers(path, rows, lines, header)


def read_inputs(
    path: str | os.PathLike, features: int, label_column: int | None = None
) -> tuple[np.ndarray, int | None]:
    """``(X, dropped)``: the inputs of a CSV file for a network of ``features`` inputs.

    A file with one column more than that, given the label column the network was
    trained with (a file it was trained on), has that column left out (its labels may
    be text); ``dropped`` is its index (None: every column is an input).
    """
    header, rows, lines = read_rows(path, None)
    width = len(rows[0])
    drop = None
    if label_column is not None and width == features + 1 and -width <= label_column < width:
        drop = label_column % width
    return _numbers(path, rows, lines, header, drop), drop


def read_labelled(path: str | os.PathLike, label_column: int = -1, delimiter: str | None = None):
    """``(X, y, header)``: numeric feature columns and the label column, whose values
    are numbers, or text (class names, returned as a string array)."""
    path = file_path(path, "the CSV file")
    header, rows, lines = read_rows(path, delimiter)
    width = len(rows[0])
    if isinstance(label_column, bool) or not isinstance(label_column, int):
        raise ValueError(f"label_column must be an integer; got {label_column!r}")
    if not -width <= label_column < width:
        raise ValueError(
            f"{path}: label column {label_column} is out of range: the file has {width} "
            f"columns (label_column 0..{width - 1}, or -{width}..-1 from the end)"
        )
    if width < 2:
        raise ValueError(f"{path}: needs at least one feature column and one label column")
    j = label_column % width
    X = _numbers(path, rows, lines, header, drop=j)
    raw = [row[j] for row in rows]
    if all(_number(v) is not None for v in raw):
        y = np.array([float(v) for v in raw])
        if np.all(y == np.round(y)):
            y = y.astype(np.int64)  # class labels written as 0, 1.0, ...
    else:
        empty = next((k for k, v in enumerate(raw) if not v), None)
        if empty is not None:
            raise ValueError(f"{path}: row {lines[empty]}, column {j + 1} (the label) is empty")
        y = np.array(raw, dtype=str)
    return X, y, header


def encode_labels(y: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, classes)``: class indices 0..K-1 and the sorted distinct labels they
    stand for (``classes[codes] == y``), for labels that are text or not 0..K-1."""
    classes, codes = np.unique(np.asarray(y), return_inverse=True)
    return codes.astype(np.int64).reshape(-1), classes
