"""The command line's data: options, loading, the task, the classes, the split, and the
record of all of it that ``bpgpu train`` saves in the model file.

The record (``net.data_info``, the model file's ``data`` section) names the source,
format, keys or label column, the split's seed and fractions, the task, the classes and
a fingerprint of the data. ``bpgpu evaluate --subset test`` rebuilds exactly that split
from it and refuses data that differ, so "test" never means rows the model trained on.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from bpgpu import datasets, targets
from bpgpu.fingerprints import data_fingerprint


class UsageError(ValueError):
    """Options that contradict each other: exit status 2, like argparse's own errors."""


FORMATS = ("auto", "digits", "mnist", "npz", "csv")
TASKS = ("auto", "classification", "multilabel", "regression")


def whole_number(lo: int, what: str):
    """An argparse type: an integer >= ``lo``, called ``what`` in its refusals."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"must be {what}, got {v}")
        return v

    return parse


seed = whole_number(0, "an integer >= 0")  # numpy.random's seeds


def fraction(text: str) -> float:
    """An argparse type: a number in [0, 1)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return v


def column(text: str) -> int | str:
    """An argparse type: a column number (an integer), else a header name."""
    try:
        return int(text)
    except ValueError:
        return text


def add_data_options(
    p: argparse.ArgumentParser, recorded: bool = False, split: bool = True
) -> None:
    """``--data``, ``--format``, keys, label column and (``split``) split fractions and
    seed. With ``recorded`` (evaluate) they default to what the model file recorded."""
    p.add_argument(
        "--data",
        default=None,
        help="'digits' (the embedded 8x8 digits), an MNIST folder (IDX files), a .npz or a "
        "CSV file (.csv, .tsv, .txt, also .gz, .bz2, .xz, .zip)"
        + (" (default: the data the model was trained on)" if recorded else " (default: digits)"),
    )
    p.add_argument(
        "--format",
        default=None,
        choices=FORMATS,
        help="how to read --data (default: auto, from the name)",
    )
    p.add_argument("--x-key", default=None, help="name of the features array in a .npz (X)")
    p.add_argument("--y-key", default=None, help="name of the labels array in a .npz (y)")
    p.add_argument(
        "--label-column",
        type=column,
        default=None,
        help="the label column of a CSV: its name in the header, or its number from 0 "
        "(negative from the end; -1, the last, by default)",
    )
    if not split:
        return
    p.add_argument("--val-split", type=fraction, default=None, help="validation fraction (0.1)")
    p.add_argument(
        "--test-split",
        type=fraction,
        default=None,
        help="test fraction (0.2; an MNIST folder uses its t10k files)",
    )
    p.add_argument(
        "--seed",
        type=seed,
        default=None,
        help="seed of the split, the weights and the shuffling (0)",
    )


@dataclass
class Source:
    """Where the data come from and how to read them."""

    path: str
    fmt: str
    x_key: str | None = None
    y_key: str | None = None
    label_column: int | str | None = None  # a number; a header name until loaded
    label_name: str | None = None  # a CSV header's name of the label column

    @classmethod
    def from_args(cls, args, recorded: dict | None = None) -> Source:
        """The source from the options (conflicts refused), else from ``recorded``."""
        rec = recorded or {}
        path = args.data if args.data is not None else rec.get("source", "digits")
        fmt = args.format or ("auto" if args.data is not None else rec.get("format", "auto"))
        if fmt == "auto":
            fmt = _format_of(path)
        given = {
            "--x-key": args.x_key,
            "--y-key": args.y_key,
            "--label-column": args.label_column,
        }
        allowed = {"npz": ("--x-key", "--y-key"), "csv": ("--label-column",)}.get(fmt, ())
        wrong = [k for k, v in given.items() if v is not None and k not in allowed]
        if wrong:
            where = {
                "--x-key": ".npz files",
                "--y-key": ".npz files",
                "--label-column": "CSV files",
            }
            raise UsageError(
                f"{' and '.join(wrong)} do not apply to {fmt} data ({path}): "
                + "; ".join(f"{w} is for {where[w]}" for w in wrong)
            )
        same = args.data is None or path == rec.get("source")
        src = cls(path, fmt)
        if fmt == "npz":
            src.x_key = args.x_key or (rec.get("x_key") if same else None) or "X"
            src.y_key = args.y_key or (rec.get("y_key") if same else None) or "y"
        if fmt == "csv":
            col = args.label_column
            if col is None and rec.get("format") == "csv":
                # another file: found by the training file's header name of its label
                # column where it had one, else at the same place
                col = rec.get("label_column")
                if not same and rec.get("label_name") is not None:
                    col = rec["label_name"]
            src.label_column = -1 if col is None else col
        return src

    def load(self, kind: str = "train") -> tuple[np.ndarray, np.ndarray]:
        if self.fmt == "digits":
            return datasets.load_digits()
        if self.fmt == "mnist":
            return datasets.load_mnist(self.path, kind)
        if self.fmt == "npz":
            return datasets.load_npz(self.path, self.x_key, self.y_key)
        X, y, header = datasets.load_csv(self.path, self.label_column, return_header=True)
        if header is not None:
            if isinstance(self.label_column, str):  # recorded as the number it names
                self.label_column = header.index(self.label_column)
            self.label_name = header[self.label_column % len(header)]
        return X, y

    def record(self) -> dict:
        rec = {
            "source": self.path,
            "format": self.fmt,
            "x_key": self.x_key,
            "y_key": self.y_key,
            "label_column": self.label_column,
        }
        if self.label_name is not None:
            rec["label_name"] = self.label_name  # the header predict writes
        return rec


def _format_of(path: str) -> str:
    fmt = datasets.format_of(path)
    if fmt is None:
        raise ValueError(
            f"cannot tell the format of {path!r}: pass --format npz, csv or mnist (or "
            "'digits'); .csv, .tsv and .txt files (also .gz, .bz2, .xz, .zip) are CSV"
        )
    return fmt


@dataclass
class Task:
    """What the network learns: ``kind`` is "classification" (``classes``: the labels in
    output order), "binary" (one sigmoid unit; two classes), "multilabel" (a sigmoid
    unit per label, ``classes`` their columns) or "regression"."""

    kind: str
    classes: list | None = None
    outputs: int = 1

    def targets(self, y: np.ndarray) -> np.ndarray:
        """Targets as the network takes them: the values (regression), 0/1 rows
        (multi-label), or the class labels themselves (one-hot rows: their columns),
        which the network maps through its classes (:attr:`bpgpu.MLP.classes`). A label
        that is not one of the classes raises :class:`bpgpu.targets.UnknownLabel`."""
        if self.kind == "regression":
            if y.dtype.kind not in "biuf":
                first = y.reshape(-1)[0] if y.size else ""
                raise ValueError(
                    f"a regression takes numeric targets; these are text (e.g. {str(first)!r}): "
                    "pass the data it was made for (or train a classifier on these)"
                )
            return y.astype(np.float64)
        width = len(self.classes)
        found = _kind(y)
        if self.kind == "multilabel":
            if found not in ("one-hot", "multilabel") or y.shape[1] != width:
                raise ValueError(
                    f"a multi-label model of {width} labels takes 0/1 rows of {width} "
                    f"columns; the targets have shape {y.shape}"
                    + ("" if y.dtype.kind in "biuf" else f" and dtype {y.dtype}")
                )
            return y.astype(np.float64)
        if y.ndim == 2 and y.shape[1] > 1:  # one-hot rows: their column is the label
            if found != "one-hot":
                raise ValueError(
                    f"the targets have shape {y.shape} and are not one-hot rows; a "
                    "classification takes one label per sample, or one-hot rows"
                )
            y = np.argmax(y, axis=1)
        targets.encode(y, np.asarray(self.classes), "the labels")  # each one a known class
        return y.reshape(-1)

    def record(self) -> dict:
        return {"task": self.kind, "classes": self.classes, "outputs": self.outputs}

    @classmethod
    def from_record(cls, rec: dict | None) -> Task | None:
        if not rec or "task" not in rec:
            return None
        return cls(rec["task"], rec.get("classes"), int(rec.get("outputs", 1)))


def _kind(y: np.ndarray) -> str | None:
    """:func:`bpgpu.targets.kind` of a data set's targets; None where it has none (no
    rows, more than 2-D, rows of text)."""
    try:
        return targets.kind(y)
    except ValueError:
        return None


def find_task(task: str, output: str | None, ys: list[np.ndarray]) -> tuple[Task, str]:
    """The task and a line that says what was found, from *all* the data's targets
    (train and test), so a class seen only in one part is still a class. One-hot rows
    are classes (one per column) unless the task is regression or multilabel; 0/1 rows
    that are not all one-hot are multi-label (a sigmoid unit per column) unless the task
    is regression."""
    y = np.concatenate([np.asarray(v) for v in ys]) if len(ys) > 1 else np.asarray(ys[0])
    found = _kind(y)
    hot = found in ("one-hot", "multilabel")
    if task == "multilabel" or (task == "auto" and found == "multilabel"):
        if not hot:
            raise ValueError(
                f"multi-label needs 0/1 rows, a column per label; the targets have shape "
                f"{y.shape} (one label per sample is --task classification)"
            )
        if output not in (None, "sigmoid"):
            raise ValueError(
                f"multi-label takes a sigmoid unit per label (each a yes or a no); "
                f"--output-activation {output} does not: leave it out, or pass sigmoid"
            )
        k = y.shape[1]
        per_row = y.sum(axis=1)
        line = (
            f"multilabel: {k} labels, one per column of the 0/1 targets (0..{k - 1}); "
            f"{int(per_row.min())} to {int(per_row.max())} per sample"
        )
        return Task("multilabel", list(range(k)), k), line
    if task != "regression" and found == "one-hot":
        k = y.shape[1]
        line = f"classification: {k} classes, one per column of the one-hot targets (0..{k - 1})"
        return _class_task(list(range(k)), output, line)
    task_arg = task
    if task == "auto":  # whole numbers read as floats were made integers when read
        classes = found == "classes" and y.ndim == 1 and y.dtype.kind != "f"
        task = "classification" if classes else "regression"
    if task == "regression":
        if y.dtype.kind not in "fiub":
            raise ValueError(f"regression needs numeric targets; the labels are {y.dtype} text")
        width = 1 if y.ndim == 1 else y.shape[1]
        return Task("regression", None, width), f"regression: {width} numeric target(s)"
    if y.ndim != 1:
        raise ValueError(
            f"classification needs one label per sample; the targets have shape {y.shape} "
            "(pass --task multilabel for 0/1 rows, --task regression for numeric rows)"
        )
    if y.dtype.kind == "f":  # integral values were made integers when read
        odd = y[np.nonzero(y != np.round(y))[0][0]]
        raise ValueError(
            f"classification needs class labels (integers or names); the targets are "
            f"numbers with fractions (e.g. {odd:g}): use --task regression (or auto), or "
            "make classes of them first"
        )
    classes = targets.classes_of(y).tolist()
    if len(classes) < 2:
        raise ValueError(f"the data hold one class only ({classes[0]!r}); nothing to learn")
    why = _measurement(y, classes) if task_arg == "auto" and y.dtype.kind in "iu" else None
    if why is not None:
        raise ValueError(
            f"the label column looks like a measurement, not classes: {why}. Is the label "
            f"in another column? --label-column NAME or N picks it (a CSV's header name, or "
            f"its number from 0). To predict this number: --task regression; to train these "
            "classes anyway: --task classification"
        )
    shown = ", ".join(map(str, classes[:12])) + (", ..." if len(classes) > 12 else "")
    plain = classes == list(range(len(classes)))
    line = f"classification: {len(classes)} classes found in all the data ({shown})"
    if not plain:
        line += "; output i stands for the i-th of them"
    return _class_task(classes, output, line)


def _class_task(classes: list, output: str | None, line: str) -> tuple[Task, str]:
    """A classification of ``classes``: one sigmoid unit for two of them when the output
    activation is a sigmoid; else one output per class, a softmax (the default) or the
    output activation given (the seed's network: a sigmoid unit per class, trained on
    one-hot targets, the class the largest output's)."""
    if output == "sigmoid" and len(classes) == 2:
        return Task("binary", classes, 1), line + f"; one sigmoid unit: 1 means {classes[1]!r}"
    if output not in (None, "softmax"):
        line += f"; one {output} unit per class (one-hot targets; the class: the largest)"
    return Task("classification", classes, len(classes)), line


# A label column "looks like a measurement" when its whole numbers are nearly as many as
# the rows: fewer than this many rows per class on average, over more than MANY classes
ROWS_PER_CLASS = 5
MANY_CLASSES = 10


def _measurement(y: np.ndarray, classes: list) -> str | None:
    """Why integer labels look like a measured value, not classes; None where they do
    not."""
    k, n = len(classes), len(y)
    if k <= MANY_CLASSES or n >= ROWS_PER_CLASS * k:
        return None
    once = int(np.sum(np.unique(y, return_counts=True)[1] == 1))
    return (
        f"{k} distinct whole numbers in {n} rows ({n / k:.1f} rows per class, {once} of "
        f"them once, from {min(classes)} to {max(classes)})"
    )


@dataclass
class Parts:
    """The data of a run: train, validation and test parts (targets as the network
    takes them) and the record that reproduces the split."""

    X_train: Any
    y_train: Any
    X_val: Any
    y_val: Any
    X_test: Any
    y_test: Any
    record: dict


def split_record(args, recorded: dict | None = None) -> dict:
    """Seed and fractions: the options given, else the record's, else the defaults;
    an option that contradicts the record is refused."""
    rec = recorded or {}
    out = {}
    for key, opt, default in (
        ("seed", "seed", 0),
        ("val_split", "val_split", 0.1),
        ("test_split", "test_split", 0.2),
    ):
        given = getattr(args, opt)
        if recorded is not None and given is not None and key in rec and given != rec[key]:
            raise ValueError(
                f"--{opt.replace('_', '-')} {given} differs from the {rec[key]} the model was "
                f"trained with; its test part is defined by the recorded split (omit the option)"
            )
        out[key] = given if given is not None else rec.get(key, default)
    return out


def load_parts(src: Source, split: dict, task_arg: str, output: str | None, task=None) -> tuple:
    """``(Parts, Task, line)``: the data loaded and split as ``split`` says, the task
    found from all of it (or the recorded ``task``)."""
    X, y = src.load("train")
    test = src.load("test") if src.fmt == "mnist" else None
    datasets.check_finite(X, src.path)
    if test is not None:
        datasets.check_finite(test[0], src.path + " (test files)")
    fp = data_fingerprint(X, y)
    if test is not None:
        fp = {
            "rows": fp["rows"],
            "fingerprint": fp["fingerprint"],
            "test_fingerprint": data_fingerprint(*test)["fingerprint"],
        }
    line = None
    if task is None:
        task, line = find_task(task_arg, output, [y] + ([test[1]] if test else []))
    s = datasets.split(
        X,
        task.targets(y),
        val=split["val_split"],
        test=0.0 if test else split["test_split"],
        seed=split["seed"],
    )
    if test is not None:
        s.X_test, s.y_test = test[0], task.targets(test[1])
    record = {**src.record(), **split, **task.record(), **fp}
    return Parts(s.X_train, s.y_train, s.X_val, s.y_val, s.X_test, s.y_test, record), task, line


def predict_inputs(path: str, net, x_key: str | None = None) -> np.ndarray:
    """The rows ``bpgpu predict`` reads: a .npy (a memory map, read a chunk at a time),
    an .npz's inputs array, or a CSV file, whose label column is left out where the
    file is like the one the model was trained on (saying so on stderr)."""
    from bpgpu.csvfile import read_inputs

    info = net.data_info or {}
    fmt = "npy" if path.lower().endswith(".npy") else datasets.format_of(path)
    if x_key is not None and fmt != "npz":
        raise UsageError(f"--x-key is for .npz files, not {path}")
    if fmt == "npy":
        return np.load(path, mmap_mode="r", allow_pickle=False)
    if fmt == "npz":
        key = x_key or (info.get("x_key") if info.get("format") == "npz" else None) or "X"
        return datasets.read_npz(path, key)
    if fmt != "csv":
        raise ValueError(
            f"{path}: pass a .npy, an .npz or a CSV file (.csv, .tsv, .txt, also "
            ".gz, .bz2, .xz, .zip) of inputs, one row a sample"
        )
    csv = info.get("format") == "csv"
    label, name = (info.get("label_column"), info.get("label_name")) if csv else (None, None)
    X, dropped, header = read_inputs(path, net.sizes[0], label, name)
    if dropped is not None:  # the file it was trained on, say: its labels left out
        named = f" ({header[dropped]})" if header else ""
        print(
            f"bpgpu predict: {path} has {net.sizes[0] + 1} columns for {net.sizes[0]} "
            f"inputs; column {dropped + 1}{named}, the label column of the model's "
            "training CSV, is left out",
            file=sys.stderr,
        )
    return X


def class_weight_option(spec: str | None, task: Task, recorded: dict | None):
    """``--class-weight``: ``"balanced"``, or ``NAME=W,...`` with the classes as the data
    name them, as ``fit``'s ``class_weight`` (a dict keyed by the classes); a resumed run
    takes its checkpoint's and refuses another. Returns ``(spec, weights)``: the text to
    record in the model file and the weights, both None without class weights."""
    before = (recorded or {}).get("class_weight")
    if recorded is not None and spec is not None and spec != before:
        raise UsageError(
            f"--class-weight {spec} differs from the checkpoint's ({before or 'none'}); "
            "a resumed run keeps its weights (omit the option)"
        )
    spec = spec if spec is not None else before
    if spec is None:
        return None, None
    if task.kind not in ("classification", "binary"):
        raise UsageError(f"--class-weight weighs classes; this is a {task.kind} task")
    if spec == "balanced":
        return spec, "balanced"
    names = [str(c) for c in task.classes]
    table = {}
    for item in spec.split(","):
        name, eq, value = item.partition("=")
        try:
            if not eq:
                raise ValueError
            w = float(value)
        except ValueError:
            raise UsageError(
                f"--class-weight takes 'balanced' or NAME=WEIGHT,... (e.g. 1=5); got {item!r}"
            ) from None
        if name.strip() not in names:
            raise UsageError(
                f"--class-weight names class {name.strip()!r}; the classes are "
                f"{', '.join(names[:12])}{', ...' if len(names) > 12 else ''}"
            )
        table[task.classes[names.index(name.strip())]] = w  # fit's keys: the classes
    return spec, table
