"""``bpgpu train``, ``bpgpu evaluate`` and ``bpgpu predict``."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

from bpgpu.callbacks import Callback, epoch_line
from bpgpu.cli.data import (
    TASKS,
    Source,
    Task,
    UsageError,
    add_data_options,
    class_weight_option,
    load_parts,
    predict_inputs,
    split_record,
)


class Help(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with every default that is a value (not a flag's True or False, not
    None)."""

    def _get_help_string(self, action):
        flag = isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction))
        if (
            flag
            or action.default in (None, argparse.SUPPRESS)
            or "%(default)" in (action.help or "")
        ):
            return action.help
        return super()._get_help_string(action)


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {v}")
    return v


def number(lo: float, open_lo: bool):
    """An argparse type: a finite number above ``lo``."""

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(v) or (v <= lo if open_lo else v < lo):
            raise argparse.ArgumentTypeError(
                f"must be {'>' if open_lo else '>='} {lo:g}, got {text}"
            )
        return v

    return parse


def sizes(text: str) -> list[int]:
    fields = text.split(",")
    if len(fields) > 1 and not all(v.strip() for v in fields):  # 16,,8: a size left out?
        raise argparse.ArgumentTypeError(
            f"an empty layer size in {text!r}; write every size, e.g. 256,128"
        )
    try:
        out = [int(v) for v in fields if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not out or any(n < 1 for n in out):
        raise argparse.ArgumentTypeError("layer sizes must be positive integers, e.g. 256,128")
    return out


class Progress(Callback):
    """A tqdm bar over the batches on stderr (off when stderr is not a terminal) and one
    line per epoch on stdout. It reads no loss per batch, so it adds no device sync."""

    sees_network = False  # the logs only

    def __init__(self, epochs: int, batches: int, enabled: bool | None = None, quiet=False):
        self.epochs, self.batches, self.quiet = epochs, batches, quiet
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.per_batch = self.enabled  # without a bar, no batch needs to be seen
        self.bar = None

    def _new_bar(self, epoch: int):
        from tqdm import tqdm

        return tqdm(
            total=self.batches,
            desc=f"epoch {epoch}/{self.epochs}",
            leave=False,
            file=sys.stderr,
            unit="batch",
            disable=not self.enabled,
        )

    def on_train_begin(self, net, history):
        self.bar = self._new_bar(len(history.epoch) + 1)

    def on_batch_end(self, net, batch):
        self.bar.update(1)

    def on_epoch_end(self, net, epoch, logs):
        self.bar.close()
        if not self.quiet:
            print(epoch_line(epoch, self.epochs, logs), flush=True)
        if epoch < self.epochs:
            self.bar = self._new_bar(epoch + 1)

    def on_train_end(self, net, history):
        if self.bar is not None:
            self.bar.close()


# ---- train ----------------------------------------------------------------------------

# training options and their defaults; None in the parser means "not given", so that a
# resumed run can refuse what contradicts its checkpoint instead of ignoring it
TRAIN_DEFAULTS = {"batch_size": 32, "optimizer": "adam", "weight_decay": 1e-3}
ARCH_OPTIONS = ("hidden", "activation", "output_activation", "cost", "dtype")


def _check_conflicts(args) -> None:
    if args.no_checkpoint and args.checkpoint:
        raise UsageError("--no-checkpoint and --checkpoint contradict each other; pass one")
    if args.no_plot and args.plot:
        raise UsageError("--no-plot and --plot contradict each other; pass one")
    if args.resume and args.no_standardize:
        raise UsageError(
            "--no-standardize does not apply to --resume: the checkpoint has its scaling"
        )


def _distributed(args):
    """``MPI.COMM_WORLD`` for ``--distributed`` (stdout silenced on ranks other than 0,
    each rank on its own GPU when the backend is a GPU one), else None."""
    if not args.distributed:
        return None
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ValueError(
            f"--distributed needs mpi4py ({e}); pip install 'bpgpu[mpi]' (mpi4py and the MPICH "
            "wheel), then: mpiexec -n 2 bpgpu train --distributed ..."
        ) from None
    from bpgpu.distributed import rank_backend

    comm = MPI.COMM_WORLD
    if comm.Get_rank() != 0:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the rest of the process
    args.backend = rank_backend(comm, args.backend)  # each rank on its own GPU
    return comm


def _resumed_network(args):
    """The checkpoint's network (architecture, weights, scaling, data record), with the
    architecture options checked against it; the epochs it had done; its patience."""
    import bpgpu
    from bpgpu import checkpoint

    cfg = checkpoint.read(args.resume)[0]
    net = bpgpu.load(args.resume, backend=args.backend)
    have = {
        "hidden": net.sizes[1:-1],
        "activation": net.activations[0].name if len(net.sizes) > 2 else None,
        "output_activation": net.activations[-1].name,
        "cost": net.cost.name,
        "dtype": net.dtype,
    }
    for opt in ARCH_OPTIONS:
        given = getattr(args, opt)
        if given is not None and given != have[opt]:
            raise ValueError(
                f"--{opt.replace('_', '-')} {given} differs from the checkpoint's network "
                f"({have[opt]}); a resumed run keeps its network (omit the option)"
            )
    return net, int(cfg["training"]["epoch"]), cfg["training"]["settings"]["patience"]


def cmd_train(args: argparse.Namespace) -> int:
    import bpgpu
    from bpgpu import datasets
    from bpgpu.cli.plot import plot_history
    from bpgpu.io import prepare_output

    _check_conflicts(args)
    comm = _distributed(args)  # rank 0 prints and writes; every rank trains
    root = comm is None or comm.Get_rank() == 0
    net, start, recorded, patience = None, 0, None, args.patience
    if args.resume:
        net, start, patience = _resumed_network(args)
        recorded = net.data_info
    src = Source.from_args(args, recorded)
    split = split_record(args, recorded)
    known = Task.from_record(recorded) if recorded else None
    parts, task, found = load_parts(src, split, args.task, args.output_activation, known)
    spec, weights = class_weight_option(args.class_weight, task, recorded)
    if spec is not None:
        parts.record["class_weight"] = spec
    # every file this run writes, checked before the work (by the rank that writes)
    out = prepare_output(args.out, "model file") if root else args.out
    own_ckpt = args.checkpoint is not None or args.resume is not None
    ckpt = None
    if not args.no_checkpoint:
        ckpt = args.checkpoint or args.resume or os.path.splitext(out)[0] + ".ckpt.npz"
        if root:
            prepare_output(ckpt, "checkpoint")
    png = None if args.no_plot else (args.plot or os.path.splitext(out)[0] + ".png")
    if png and root:
        prepare_output(png, "plot")
    if net is None:
        output = args.output_activation or {
            "regression": "identity",
            "binary": "sigmoid",
            "multilabel": "sigmoid",
        }.get(task.kind, "softmax")
        net = bpgpu.MLP(
            [parts.X_train.shape[1], *(args.hidden or [256]), task.outputs],
            hidden=args.activation or "relu",
            output=output,
            cost=args.cost,
            backend=args.backend,
            dtype=args.dtype or "float32",
            seed=split["seed"],
        )
        if not args.no_standardize:
            net.set_input_scaling(*datasets.standardize(parts.X_train))
    net.data_info = parts.record
    if task.kind in ("classification", "binary"):  # fit and evaluate map labels by them
        net.classes = task.classes
    info = net.backend.info()
    if comm is not None:
        from bpgpu.distributed import describe

        print(describe(comm, net.backend), flush=True)
    if found:
        print(found, flush=True)
    print(
        f"bpgpu train: {net} on {info['device']}; {len(parts.X_train)} train, "
        f"{len(parts.X_val)} validation, {len(parts.X_test)} test samples",
        flush=True,
    )
    fit_kw = {
        k: getattr(args, k) for k in ("batch_size", "optimizer", "lr", "weight_decay", "patience")
    }
    if args.resume is None:  # a resumed fit takes what was not given from its checkpoint
        fit_kw = {k: (TRAIN_DEFAULTS.get(k) if v is None else v) for k, v in fit_kw.items()}
        fit_kw["seed"] = split["seed"]
    fit_kw = {k: v for k, v in fit_kw.items() if v is not None}
    batch = fit_kw.get("batch_size", TRAIN_DEFAULTS["batch_size"])
    progress = Progress(
        args.epochs,
        math.ceil(len(parts.X_train) / batch),
        None if args.progress and root else False,
        quiet=not root,
    )
    t0 = time.perf_counter()
    history = net.fit(
        parts.X_train,
        parts.y_train,
        args.epochs,
        validation_data=(parts.X_val, parts.y_val) if len(parts.X_val) else None,
        callbacks=[progress],
        checkpoint=ckpt,
        resume=args.resume,
        comm=comm,
        class_weight=weights,
        **fit_kw,
    )
    net.backend.synchronize()
    wall = time.perf_counter() - t0
    if history.interrupted:
        print(f"interrupted after {len(history.epoch)} complete epochs", flush=True)
        if ckpt:
            print(
                f"checkpoint saved to {ckpt}; continue with the same command plus --resume {ckpt}"
            )
        return 130
    if not root:
        return 0  # rank 0 reports and writes
    _report(net, history, parts, task, start, wall, info, patience)
    net.save(out)
    print(f"model saved to {out}")
    if ckpt and not own_ckpt:
        os.remove(ckpt)  # the default checkpoint served this run only; the model has it all
    elif ckpt and history.stopped_early:
        print(f"checkpoint kept at {ckpt} (early stopping ended the fit: it trains no further)")
    elif ckpt:
        print(f"checkpoint kept at {ckpt} (to train further: --resume {ckpt} --epochs N)")
    if png:
        if plot_history(history, png, title=str(net)):
            print(f"curves saved to {png}")
        else:
            print("matplotlib is not installed (pip install 'bpgpu[plot]'); no plot written")
    return 0


def _report(net, history, parts, task, start: int, wall: float, info, patience) -> None:
    """The summary: whose weights were kept, the test part's scores, epochs this run."""
    if history.stopped_early:
        print(
            f"early stopping after epoch {history.epoch[-1]}: kept the weights of epoch "
            f"{history.best_epoch}, the best validation loss"
        )
    elif patience is not None and history.best_epoch not in (None, history.epoch[-1]):
        print(f"kept the weights of epoch {history.best_epoch}, the best validation loss")
    print(f"backend {net.backend.name} ({info['device']}), dtype {net.dtype}")
    if len(parts.X_test):
        print(_scores(net, parts.X_test, parts.y_test, task, "test "))
    else:
        print("no test part (--test-split 0): no test scores")
    epochs_run = len(history.epoch) - start
    rate = epochs_run * len(parts.X_train) / wall if wall > 0 else math.inf
    if epochs_run == 0:
        print(f"nothing to train: the checkpoint's fit was finished (epoch {start})")
    else:
        print(f"trained {epochs_run} epochs in {wall:.2f} s ({rate:,.0f} samples/s)")
    if history.compile_time:
        print(f"of which compiling (XLA): {history.compile_time:.2f} s")


def _scores(net, X, y, task, prefix: str = "") -> str:
    """``accuracy A, loss L`` (classification) or ``loss L, R^2 R`` (regression)."""
    r = net.evaluate(X, y)
    if task is None or task.kind != "regression":
        return f"{prefix}accuracy {r['accuracy']:.4f}, {prefix}loss {r['loss']:.4f}"
    import numpy as np

    Y = net.backend.to_numpy(net.predict(X)).reshape(len(X), -1)
    T = np.asarray(y, dtype=np.float64).reshape(len(X), -1)
    ss = float(((T - T.mean(axis=0)) ** 2).sum())
    r2 = 1 - float(((T - Y) ** 2).sum()) / ss if ss > 0 else math.nan
    return f"{prefix}loss {r['loss']:.4f}, R^2 {r2:.4f}"


# ---- evaluate ---------------------------------------------------------------------------


def cmd_evaluate(args: argparse.Namespace) -> int:
    import bpgpu

    net = bpgpu.load(args.model, backend=args.backend)
    rec = net.data_info
    task = Task.from_record(rec)
    if args.subset == "test":
        if rec is None or "fingerprint" not in rec:
            raise ValueError(
                f"{args.model} does not record the data it was trained on (saved by an older "
                "bpgpu, or from Python), so its test part cannot be told apart; evaluate "
                "held-out data with --subset all"
            )
        src = Source.from_args(args, rec)
        parts, _, _ = load_parts(src, split_record(args, rec), "auto", None, task)
        keys = ("rows", "fingerprint", "test_fingerprint")
        if any(parts.record.get(k) != rec.get(k) for k in keys):
            raise ValueError(
                f"{src.path} is not the data {args.model} was trained on ({rec.get('rows')} "
                f"rows, fingerprint {rec.get('fingerprint')}; this has {parts.record['rows']} "
                f"rows, fingerprint {parts.record['fingerprint']}), so the recorded split "
                "would not give its test part: pass that data, or use --subset all"
            )
        X, y = parts.X_test, parts.y_test
    else:
        src = Source.from_args(args, rec)  # other data: read as the training data were
        X, y = src.load("test")
        if task is not None:
            y = _known_labels(task, y, args.model)
    print(f"{len(X)} samples: {_scores(net, X, y, task)}")
    return 0


def _known_labels(task, y, model) -> object:
    from bpgpu.targets import UnknownLabel

    try:
        return task.targets(y)
    except UnknownLabel as e:
        raise ValueError(
            f"label {e.label!r} is not one of the classes {model} was trained on "
            f"({', '.join(map(str, task.classes))})"
        ) from None


# ---- predict --------------------------------------------------------------------------


def cmd_predict(args: argparse.Namespace) -> int:
    import io as _io

    import numpy as np

    import bpgpu
    from bpgpu.io import atomic_write, prepare_output

    if args.output is not None:
        if not args.output.endswith((".npy", ".csv")):
            raise ValueError(f"{args.output}: the output must end in .npy or .csv")
        prepare_output(args.output, "predictions")
    net = bpgpu.load(args.model, backend=args.backend)
    X = predict_inputs(args.input, net, args.x_key)
    task = Task.from_record(net.data_info)
    # the training CSV's name of its label column, when its header gave one
    name = (net.data_info or {}).get("label_name")
    if name and any(c in name for c in ',"\r\n'):
        name = '"' + name.replace('"', '""') + '"'  # one CSV field, as the header had it
    # a regression model's answer is its outputs: classes mean nothing there
    regression = task.kind == "regression" if task is not None else not net.model.has_accuracy()
    if args.outputs or regression:
        result = net.backend.to_numpy(net.forward(X))
        header = ",".join(f"output_{i + 1}" for i in range(result.shape[1]))
        if regression and name and result.shape[1] == 1:
            header = name
        fmt = "%.9g"
    elif task is not None and task.kind == "multilabel":  # a 0/1 column per label
        result = net.backend.to_numpy(net.classify(X, multilabel=True))
        header, fmt = ",".join(f"label_{c}" for c in task.classes), "%d"
    else:
        result = bpgpu.to_numpy(net.classify(X))  # the labels the data used: net.classes
        header, fmt = name or "label", "%s"
    if args.output is None or args.output.endswith(".csv"):
        buf = _io.StringIO()
        np.savetxt(
            buf, np.atleast_2d(result.T).T, fmt=fmt, delimiter=",", header=header, comments=""
        )
        text = buf.getvalue()
        if args.output is None:
            sys.stdout.write(text)
            return 0
        atomic_write(args.output, lambda f: f.write(text.encode()))
    else:
        atomic_write(args.output, lambda f: np.save(f, result, allow_pickle=False))
    what = "outputs" if args.outputs or regression else "class labels"
    print(f"{len(result)} {what} written to {args.output}")
    return 0


# ---- the parsers ----------------------------------------------------------------------


def add_commands(sub, common) -> None:
    from bpgpu.activations import ACTIVATIONS
    from bpgpu.costs import COSTS
    from bpgpu.optimizers import OPTIMIZERS

    t = sub.add_parser(
        "train",
        parents=[common],
        formatter_class=Help,
        help="train an MLP (default: the embedded digits)",
        description="Train an MLP and save it. The defaults train 64-256-10 ReLU/softmax with "
        "Adam on the embedded 8x8 digits. Classes are taken from all the data (train and "
        "test; one-hot rows: a class per column); 0/1 rows that are not all one-hot are "
        "multi-label (a sigmoid unit per column, any number of labels a sample); numeric "
        "targets that are not class labels train a regression (identity output, quadratic "
        "cost); --output-activation sigmoid trains one unit for two classes.",
    )
    add_data_options(t)
    t.add_argument(
        "--task",
        choices=TASKS,
        default="auto",
        help="classification (labels), multilabel (0/1 rows), regression (numeric "
        "targets), or auto",
    )
    t.add_argument(
        "--hidden", type=sizes, default=None, help="hidden layer sizes, e.g. 256,128 (256)"
    )
    hidden_acts = [a for a, act in ACTIVATIONS.items() if act.hidden_ok]
    t.add_argument(
        "--activation", default=None, choices=hidden_acts, help="hidden activation (relu)"
    )
    t.add_argument(
        "--output-activation",
        default=None,
        choices=list(ACTIVATIONS),
        help="output activation (softmax; identity for regression)",
    )
    t.add_argument(
        "--cost",
        default=None,
        choices=list(COSTS),
        help="cost (the natural one for the output activation)",
    )
    t.add_argument("--optimizer", default=None, choices=list(OPTIMIZERS), help="optimizer (adam)")
    t.add_argument(
        "--lr",
        type=number(0, True),
        default=None,
        help="learning rate (adam 0.001, the others 0.1)",
    )
    t.add_argument(
        "--weight-decay",
        type=number(0, False),
        default=None,
        help="L2 per step on the weight matrices (0.001); a textbook lambda over n "
        "samples is lambda / n",
    )
    t.add_argument(
        "--class-weight",
        default=None,
        help="weigh the classes: 'balanced' (n / (K * count) each), or NAME=W,... as the "
        "data name the classes, the others 1 (off)",
    )
    t.add_argument("--epochs", type=positive_int, default=50, help="train until this many epochs")
    t.add_argument("--batch-size", type=positive_int, default=None, help="mini-batch size (32)")
    t.add_argument(
        "--patience",
        type=positive_int,
        default=None,
        help="early stopping: epochs without a better validation loss (off)",
    )
    t.add_argument(
        "--backend",
        default=None,
        help="auto, numpy, cupy, cupy:N, torch, torch:cuda, ... "
        "(auto: CuPy when a CUDA device works, else NumPy)",
    )
    t.add_argument(
        "--dtype", default=None, choices=["float32", "float64"], help="float32 or float64 (float32)"
    )
    t.add_argument(
        "--no-standardize",
        action="store_true",
        help="feed raw inputs (default: standardise with the training part's mean and scale)",
    )
    t.add_argument("-o", "--out", default="model.npz", help="the model file to write")
    t.add_argument("--plot", default=None, help="PNG of the curves (MODEL.png beside the model)")
    t.add_argument("--no-plot", action="store_true", help="write no PNG")
    t.add_argument(
        "--checkpoint",
        default=None,
        help="checkpoint after every epoch and on Ctrl-C, kept afterwards (default: "
        "MODEL.ckpt.npz, removed when training finishes)",
    )
    t.add_argument("--no-checkpoint", action="store_true", help="write no checkpoint")
    t.add_argument(
        "--resume",
        default=None,
        help="continue from this checkpoint: its network, settings and data split",
    )
    t.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="no progress bar (it is off anyway when stderr is not a terminal)",
    )
    t.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel over MPI: run as mpiexec -n N bpgpu train --distributed (each "
        "rank on its own GPU by local rank; rank 0 prints and writes)",
    )
    t.set_defaults(func=cmd_train)

    e = sub.add_parser(
        "evaluate",
        parents=[common],
        formatter_class=Help,
        help="loss and accuracy of a saved model on data",
        description="Loss and accuracy (R^2 for regression) of a saved model. --subset test "
        "rebuilds the test part from the data, split and seed the model file recorded, and "
        "refuses data that differ.",
    )
    e.add_argument("model", help="a model file from bpgpu train (or MLP.save)")
    add_data_options(e, recorded=True)
    e.add_argument(
        "--subset",
        choices=["all", "test"],
        default="all",
        help="all: every row of --data (an MNIST folder's t10k files); test: the "
        "test part of the training data as the model recorded it",
    )
    e.add_argument("--backend", default=None, help="where to run (auto)")
    e.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "predict",
        parents=[common],
        formatter_class=Help,
        help="class labels (or outputs) for inputs in a .npy, .npz or CSV file",
        description="Class labels (as the training data named them) or network outputs for "
        "each row of a .npy, .npz or CSV file; CSV to stdout without -o.",
    )
    p.add_argument("model", help="a model file from bpgpu train (or MLP.save)")
    p.add_argument(
        "input",
        help="a .npy, an .npz, or a CSV file (.csv, .tsv, .txt, also .gz, .bz2, .xz, "
        ".zip), one row per sample (a CSV like the one the model was trained on may keep "
        "its label column: it is left out)",
    )
    p.add_argument(
        "--x-key",
        default=None,
        help="the inputs array of an .npz (the training data's --x-key, else X)",
    )
    p.add_argument(
        "-o",
        "--output",
        default=None,
        help=".npy or .csv to write (default: CSV with a header on stdout)",
    )
    p.add_argument("--outputs", action="store_true", help="write network outputs, not labels")
    p.add_argument("--backend", default=None, help="where to run (auto)")
    p.set_defaults(func=cmd_predict)
