"""CSV files as people write them, read exactly or refused with row and column.

Accepted:

- text in UTF-8 (a byte-order mark is skipped) or UTF-16 with its byte-order mark (what
  Excel's "Unicode Text" writes);
- the file as it is, or compressed with gzip, bzip2 or xz, or the one file of a zip
  archive (``data.csv.gz``, ``train.csv.zip``), told apart by their first bytes;
- ``,`` ``;`` or tab as the separator (the one the first line uses most), or runs of
  spaces where the first line has none of those (``np.savetxt``'s default); Excel's
  ``sep=;`` first line names it;
- decimal commas (``3,5``) in a file separated by ``;``, the way spreadsheets in many
  locales write CSV; a file that mixes them with decimal points is refused (``1.234``
  could be a thousand there);
- quoted fields (``"3.5"``), blank lines, a header line (also after ``#``, as
  ``np.savetxt`` writes one), and text in the label column (class names).

A header is recognised only when *none* of the first line's fields is a number, so a
data row is never dropped as a header. Anything else that is not a number — an empty
field, text in a feature column, a row with another number of fields — is refused
naming its row (the line in the file) and column, both counted from 1.
"""

from __future__ import annotations

import bz2
import csv
import difflib
import gzip
import io
import lzma
import os
import re
import zipfile
import zlib
from collections.abc import Sequence

import numpy as np

from bpgpu import targets
from bpgpu._paths import file_path

SEPARATORS = (",", ";", "\t")
COMPRESSED = (".gz", ".bz2", ".xz", ".zip")  # suffixes the readers see through
_COMMA = re.compile(r"[+-]?(\d+,\d*|,\d+)([eE][+-]?\d+)?")  # 3,5  -0,25  1,5e3
_SEP_LINE = re.compile(r"sep=(.)")  # Excel's first line naming the separator
_QUOTED = re.compile(r'"[^"]*"')  # a quoted field ("" inside: two of them, both text)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _decompressed(path: str, data: bytes) -> bytes:
    """The bytes of the file, through gzip, bzip2, xz or a one-file zip archive."""
    kinds = (
        (b"\x1f\x8b", "gzip", gzip.decompress, (OSError, EOFError, zlib.error)),
        (b"BZh", "bzip2", bz2.decompress, (OSError, EOFError, ValueError)),
        (b"\xfd7zXZ\x00", "xz", lzma.decompress, (lzma.LZMAError, EOFError)),
        (b"PK\x03\x04", "zip", lambda d: _unzipped(path, d), (zipfile.BadZipFile, OSError)),
    )
    for magic, kind, read, errors in kinds:
        if data.startswith(magic):
            try:
                return read(data)
            except errors as e:
                raise ValueError(f"{path}: a damaged {kind} file ({e})") from None
    if data.startswith(b"(\xb5/\xfd"):
        raise ValueError(f"{path}: zstd-compressed; decompress it first (zstd -d {path})")
    return data


def _unzipped(path: str, data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        files = [
            i for i in z.infolist() if not i.is_dir() and not i.filename.startswith("__MACOSX/")
        ]
        if len(files) != 1:
            names = ", ".join(i.filename for i in files[:5]) + (", ..." if len(files) > 5 else "")
            raise ValueError(
                f"{path}: a zip archive of {len(files)} files ({names or 'none'}); one CSV "
                "file inside a zip is read: unzip it and pass the file you mean"
            )
        return z.read(files[0])


def read_text(path: str | os.PathLike) -> str:
    """The text of a CSV file, decompressed and decoded (UTF-8, or UTF-16 with its BOM)."""
    path = file_path(path, "the CSV file")
    with open(path, "rb") as f:
        data = _decompressed(path, f.read())
    utf16 = data.startswith((b"\xff\xfe", b"\xfe\xff"))
    if not utf16 and b"\x00" in data[:4096]:
        raise ValueError(
            f"{path}: a binary file, not CSV text (a .npy or .npz is read as one: pass "
            "its name with that ending, or --format)"
        )
    try:
        return data.decode("utf-16" if utf16 else "utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(
            f"{path}: not UTF-8 text ({e.reason} at byte {e.start}); save it as UTF-8 "
            "(Excel: 'CSV UTF-8'), or convert it, e.g. iconv -f latin1 -t utf-8"
        ) from None


def _separator(first: str) -> str:
    """The separator the first line uses most; " " (runs of spaces) where it has none."""
    best = max(SEPARATORS, key=first.count)
    if first.count(best) == 0 and len(first.split()) > 1:
        return " "
    return best


def _decimal_commas(path: str, rows: list, lines: list) -> list:
    """Rows with decimal commas (``3,5``) written as points; a mix of both is refused."""
    comma = point = None
    for k, row in enumerate(rows):
        for j, v in enumerate(row):
            if comma is None and _COMMA.fullmatch(v):
                comma = (k, j, v)
            elif point is None and "." in v and _number(v) is not None:
                point = (k, j, v)
    if comma is None:
        return rows
    if point is not None:
        at = [f"row {lines[k]}, column {j + 1}: {v!r}" for k, j, v in (comma, point)]
        raise ValueError(
            f"{path}: decimal commas ({at[0]}) and decimal points ({at[1]}) in one file; "
            "write every number the same way"
        )
    return [[v.replace(",", ".") if _COMMA.fullmatch(v) else v for v in row] for row in rows]


def _lines(path: str, delimiter: str | None) -> tuple[list, str]:
    """``(numbered, delimiter)``: the file's non-blank lines with their numbers (Excel's
    ``sep=`` line dropped; of leading ``#`` lines only the last, without its ``#``: the
    header ``np.savetxt`` writes), and the separator (given, named, or found)."""
    text = read_text(path)
    numbered = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if numbered and _SEP_LINE.fullmatch(numbered[0][1].strip()):
        delimiter = delimiter or _SEP_LINE.fullmatch(numbered[0][1].strip()).group(1)
        numbered = numbered[1:]
    comments = []  # leading "# ..." lines: np.savetxt writes its header so
    while numbered and numbered[0][1].lstrip().startswith("#"):
        comments.append(numbered.pop(0))
    if comments:  # the last one may be the header: as a line of its own, without the #
        n, line = comments[-1]
        numbered.insert(0, (n, line.lstrip().lstrip("#")))
    if delimiter is None:
        delimiter = _separator(numbered[0][1] if numbered else "")
    return numbered, delimiter


def _fields(lines, delimiter: str):
    """The stripped fields of each line (quotes read as CSV quotes)."""
    spaces = delimiter == " "
    reader = csv.reader(
        (line.strip() if spaces else line for line in lines),
        delimiter=delimiter,
        skipinitialspace=spaces,
    )
    return ([v.strip() for v in row] for row in reader)


def _names_only(fields: list[str], number=_number) -> bool:
    """Whether a line's fields are a header: every one there and none a number."""
    return all(fields) and all(number(v) is None for v in fields)


def _whole_as_int(y: np.ndarray) -> np.ndarray:
    """Numbers that are all whole as integers: class labels written as 0, 1.0, ..."""
    return y.astype(np.int64) if y.dtype.kind == "f" and np.all(y == np.round(y)) else y


def _quick(numbered: list, delimiter: str, pick):
    """``(header, X, j, y)`` of the file's lines (:func:`_lines`) read by NumPy's parser
    in C, or None where the file needs the exact reader, :func:`_rows` (decimal commas,
    quotes around text, empty fields, rows of other widths, a field that is not a
    number: it then says which). ``pick(header, width)`` names the column left out of
    ``X`` (None: every column is a number); ``y``: that column, numbers or stripped
    text."""
    if not numbered or (delimiter == ";" and any("," in line for _, line in numbered)):
        return None
    lines = [line for _, line in numbered]
    first = next(_fields(lines[:1], delimiter))
    header = first if _names_only(first) else None
    body = lines[1:] if header is not None else lines
    if not body:
        return None
    width = len(next(_fields(body[:1], delimiter)))
    if header is not None and len(header) != width:
        header = None  # a title line, not column names
    j = pick(header, width)
    kw = dict(delimiter=None if delimiter == " " else delimiter, comments=None, quotechar='"')
    try:
        try:
            A = np.loadtxt(body, dtype=np.float64, ndmin=2, **kw)
            return header, A if j is None else np.delete(A, j, axis=1), j, A[:, j]
        except ValueError:
            if j is None:
                return None
            if delimiter == " ":
                same = not any('"' in line for line in body)
                same = same and all(len(line.split()) == width for line in body)
            else:  # separators outside quotes (a quoted field may hold one)
                seps = (_QUOTED.sub("", line).count(delimiter) for line in body)
                same = all(k == width - 1 for k in seps)
            if not same:
                return None
            rest = [c for c in range(width) if c != j]
            X = np.loadtxt(body, dtype=np.float64, ndmin=2, usecols=rest, **kw)
            y = np.char.strip(np.loadtxt(body, dtype=str, ndmin=1, usecols=[j], **kw))
            return (header, X, j, y) if np.all(y != "") else None
    except ValueError:
        return None


def read_rows(path: str | os.PathLike, delimiter: str | None = None):
    """``(header or None, rows, line numbers)``: the non-blank lines of a CSV file as
    lists of stripped strings, all of one width (the exact reader: every field a Python
    string, so slow and large for big files; the readers below try :func:`_quick`
    first)."""
    path = file_path(path, "the CSV file")
    return _rows(path, *_lines(path, delimiter))


def _rows(path: str, numbered: list, delimiter: str):
    """:func:`read_rows` of the file's lines (:func:`_lines`)."""
    reader = _fields((line for _, line in numbered), delimiter)
    number = _number
    if delimiter == ";":  # a header must not be taken for data written with commas
        number = lambda v: _number(v.replace(",", ".") if _COMMA.fullmatch(v) else v)  # noqa: E731
    header, rows, lines = None, [], []
    for (line_no, _), fields in zip(numbered, reader):
        if not any(fields):
            continue  # a line of separators only
        if header is None and not rows and _names_only(fields, number):
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
    if delimiter == ";":
        rows = _decimal_commas(path, rows, lines)
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


def _table(path: str, delimiter: str | None, pick, labels: bool = False):
    """``(header, X, j, y)``: the file read once, by NumPy's parser where it can
    (:func:`_quick`), else field by field, which names a field that is not a number.
    ``pick(header, width)`` names the column left out of ``X`` (None: none); ``y`` is
    that column (with ``labels``: numbers, whole ones as integers, or text)."""
    numbered, delimiter = _lines(path, delimiter)
    quick = _quick(numbered, delimiter, pick)
    if quick is not None:
        header, X, j, y = quick
        return header, X, j, _whole_as_int(y) if labels else None
    header, rows, lines = _rows(path, numbered, delimiter)
    j = pick(header, len(rows[0]))
    X = _numbers(path, rows, lines, header, drop=j)
    if not labels:
        return header, X, j, None
    raw = [row[j] for row in rows]
    if all(_number(v) is not None for v in raw):
        return header, X, j, _whole_as_int(np.array([float(v) for v in raw]))
    empty = next((k for k, v in enumerate(raw) if not v), None)
    if empty is not None:
        raise ValueError(f"{path}: row {lines[empty]}, column {j + 1} (the label) is empty")
    return header, X, j, np.array(raw, dtype=str)


def read_numeric(path: str | os.PathLike, delimiter: str | None = None) -> np.ndarray:
    """Every column as numbers: a 2-D float array (inputs to ``bpgpu predict``)."""
    path = file_path(path, "the CSV file")
    return _table(path, delimiter, lambda header, width: None)[1]


def read_inputs(
    path: str | os.PathLike,
    features: int,
    label_column: int | None = None,
    label_name: str | None = None,
) -> tuple[np.ndarray, int | None, list[str] | None]:
    """``(X, dropped, header)``: the inputs of a CSV file for a network of ``features``
    inputs.

    A file with one column more than that, given the label column the network was
    trained with (a file it was trained on), has that column left out (its labels may
    be text): the header's column named ``label_name`` where the file has one, else
    column ``label_column``; ``dropped`` is its index (None: every column is an input).
    """

    def pick(header, width):
        if width == features + 1:
            if header is not None and label_name is not None and label_name in header:
                return header.index(label_name)
            if label_column is not None and -width <= label_column < width:
                return label_column % width
        return None

    header, X, drop, _ = _table(file_path(path, "the CSV file"), None, pick)
    return X, drop, header


def label_index(path, label_column: int | str, header: list[str] | None, width: int) -> int:
    """The index of the label column: a header name, or a number (negative: from the end)."""
    if isinstance(label_column, str):
        if header is None:
            raise ValueError(
                f"{path}: no header line to find the label column {label_column!r} in; "
                f"pass its number (0..{width - 1}, -1 for the last)"
            )
        if label_column not in header:
            near = difflib.get_close_matches(label_column, header, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ValueError(
                f"{path}: no column named {label_column!r}{hint} (the header names "
                f"{', '.join(map(repr, header))})"
            )
        return header.index(label_column)
    if not -width <= label_column < width:
        raise ValueError(
            f"{path}: label column {label_column} is out of range: the file has {width} "
            f"columns (label_column 0..{width - 1}, or -{width}..-1 from the end)"
        )
    return int(label_column) % width


def read_labelled(
    path: str | os.PathLike, label_column: int | str = -1, delimiter: str | None = None
):
    """``(X, y, header)``: numeric feature columns and the label column (a header name,
    or a number, negative from the end), whose values are numbers, or text (class
    names, returned as a string array)."""
    path = file_path(path, "the CSV file")
    if isinstance(label_column, bool) or not isinstance(label_column, (int, np.integer, str)):
        raise ValueError(
            f"label_column must be a column number or a header name; got {label_column!r}"
        )

    def pick(header, width):
        j = label_index(path, label_column, header, width)
        if width < 2:
            raise ValueError(f"{path}: needs at least one feature column and one label column")
        return j

    header, X, _, y = _table(path, delimiter, pick, labels=True)
    return X, y, header


def encode_labels(y: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """Class indices 0..K-1 for labels of any kind (text, or numbers not 0..K-1).

    Parameters
    ----------
    y : sequence
        The labels, one per sample.

    Returns
    -------
    codes : numpy.ndarray
        The index of each label in ``classes``, int64 ``(N,)``.
    classes : numpy.ndarray
        The distinct labels, sorted: ``classes[codes]`` gives ``y`` back.

    Examples
    --------
    >>> from bpgpu import datasets
    >>> codes, classes = datasets.encode_labels(["dog", "cat", "dog"])
    >>> codes, classes.tolist()
    (array([1, 0, 1]), ['cat', 'dog'])
    """
    classes = targets.classes_of(y)
    return targets.encode(y, classes, "the labels"), classes


def file_format(path: str | os.PathLike) -> str | None:
    """ "npz" or "csv" from a file's name (``.npz``; ``.csv``, ``.tsv``, ``.txt``, also
    compressed: ``.csv.gz``), case aside; None where the name does not say."""
    full = os.fsdecode(path).lower()
    name = next((full[: -len(e)] for e in COMPRESSED if full.endswith(e)), full)
    if name.endswith(".npz"):
        return "npz" if name == full else None  # an .npz is itself a zip
    if name.endswith((".csv", ".tsv", ".txt")):
        return "csv"
    return None
