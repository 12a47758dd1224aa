"""What each ``bpgpu`` command does: ``train``, ``evaluate``, ``predict``, ``check``,
``backends`` and ``bench`` (their options are declared in :mod:`bpgpu.cli.parser`)."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

from bpgpu.backends._install import install_hint
from bpgpu.callbacks import Callback, epoch_line
from bpgpu.cli.data import (
    Source,
    Task,
    UsageError,
    class_weight_option,
    load_parts,
    predict_inputs,
    split_record,
)
from bpgpu.cli.train_files import TrainFiles


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
    if args.restart and args.no_checkpoint:
        raise UsageError("--restart replaces a checkpoint; with --no-checkpoint there is none")
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
            f"--distributed needs mpi4py ({e}); {install_hint('mpi')} (mpi4py and the MPICH "
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
    precision = args.precision or cfg["training"].get("precision")
    if precision is not None:
        net = net.to(net.backend, precision=precision)
    return net, int(cfg["training"]["epoch"]), cfg["training"]["settings"]["patience"]


def cmd_train(args: argparse.Namespace) -> int:
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
    files = TrainFiles(args, root)  # checked before the work
    if net is None:
        net = _new_network(args, parts, task, split["seed"])
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
    fit_kw = _fit_options(args, split["seed"])
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
        checkpoint=files.ckpt,
        resume=args.resume,
        comm=comm,
        class_weight=weights,
        **fit_kw,
    )
    net.backend.synchronize()
    wall = time.perf_counter() - t0
    if history.interrupted:
        print(f"interrupted after {len(history.epoch)} complete epochs", flush=True)
        if files.ckpt:
            print(
                f"checkpoint saved to {files.ckpt}; continue with the same command plus "
                f"--resume {files.ckpt}"
            )
        return 130
    if not root:
        return 0  # rank 0 reports and writes
    trained = _report(net, history, parts, task, start, wall, info, patience)
    net.data_info = {**parts.record, "trained": trained}  # what a later run names it by
    files.write(net, history)
    return 0


def _new_network(args: argparse.Namespace, parts, task, seed: int):
    """The network ``bpgpu train`` builds for a fresh run: the output layer the task
    needs unless given, inputs standardised on the training part unless switched off."""
    import bpgpu
    from bpgpu import datasets

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
        seed=seed,
        precision=args.precision,
    )
    if not args.no_standardize:
        net.set_input_scaling(*datasets.standardize(parts.X_train))
    return net


def _fit_options(args: argparse.Namespace, seed: int) -> dict:
    """fit's options from the command line; a resumed fit takes what was not given from
    its checkpoint, a fresh one the CLI's defaults."""
    fit_kw = {
        k: getattr(args, k) for k in ("batch_size", "optimizer", "lr", "weight_decay", "patience")
    }
    if args.resume is None:
        fit_kw = {k: (TRAIN_DEFAULTS.get(k) if v is None else v) for k, v in fit_kw.items()}
        fit_kw["seed"] = seed
    return {k: v for k, v in fit_kw.items() if v is not None}


def _report(net, history, parts, task, start: int, wall: float, info, patience) -> dict:
    """The summary: whose weights were kept, the test part's scores, epochs this run;
    returns what the model file records of them (``trained``)."""
    if history.stopped_early:
        print(
            f"early stopping after epoch {history.epoch[-1]}: kept the weights of epoch "
            f"{history.best_epoch}, the best validation loss"
        )
    elif patience is not None and history.best_epoch not in (None, history.epoch[-1]):
        print(f"kept the weights of epoch {history.best_epoch}, the best validation loss")
    mixed = "" if net.precision is None else f", precision {net.precision}"
    print(f"backend {net.backend.name} ({info['device']}), dtype {net.dtype}{mixed}")
    scores = {}
    if len(parts.X_test):
        scores = _score_values(net, parts.X_test, parts.y_test, task)
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
    finite = {k: v for k, v in scores.items() if math.isfinite(v)}  # JSON holds no NaN
    return {"epochs": len(history.epoch), **finite}


def _scores(net, X, y, task, prefix: str = "") -> str:
    """``accuracy A, loss L`` (classification) or ``loss L, R^2 R`` (regression)."""
    r = _score_values(net, X, y, task)
    if "r2" not in r:
        return f"{prefix}accuracy {r['accuracy']:.4f}, {prefix}loss {r['loss']:.4f}"
    return f"{prefix}loss {r['loss']:.4f}, R^2 {r['r2']:.4f}"


def _score_values(net, X, y, task) -> dict:
    """``{"accuracy", "loss"}`` (classification) or ``{"loss", "r2"}`` (regression)."""
    r = net.evaluate(X, y)
    if task is None or task.kind != "regression":
        return {"accuracy": r["accuracy"], "loss": r["loss"]}
    import numpy as np

    Y = net.backend.to_numpy(net.predict(X)).reshape(len(X), -1)
    T = np.asarray(y, dtype=np.float64).reshape(len(X), -1)
    ss = float(((T - T.mean(axis=0)) ** 2).sum())
    r2 = 1 - float(((T - Y) ** 2).sum()) / ss if ss > 0 else math.nan
    return {"loss": r["loss"], "r2": r2}


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


def _csv_field(text: str) -> str:
    """``text`` as one CSV field (quoted where it holds a comma, quote or line end)."""
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _output_names(net, task, width: int) -> list[str]:
    """The columns of ``predict --outputs``: the classes the model recorded, one per
    output unit (one sigmoid unit for two classes: the second, whose probability it
    gives), else ``output_1``..."""
    classes = net.classes if net.classes is not None else getattr(task, "classes", None)
    if classes is not None:
        names = [str(c) for c in classes]
        if width == len(names):
            return [_csv_field(n) for n in names]
        if width == 1 and len(names) == 2:
            return [_csv_field(names[1])]
    return [f"output_{i + 1}" for i in range(width)]


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
    name = _csv_field(name) if name else name
    # a regression model's answer is its outputs: classes mean nothing there
    regression = task.kind == "regression" if task is not None else not net.model.has_accuracy()
    if args.outputs or regression:
        result = net.backend.to_numpy(net.forward(X))
        header = ",".join(_output_names(net, task, result.shape[1]))
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


# ---- export ---------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    import bpgpu
    from bpgpu.network_files import EXPORTS

    suffix = os.path.splitext(args.out)[1].lower()
    if suffix not in EXPORTS:
        raise ValueError(f"{args.out}: OUT must end in {', '.join(EXPORTS)} (the format)")
    if os.path.exists(args.model) and os.path.abspath(args.out) == os.path.abspath(args.model):
        raise ValueError(f"{args.out} is the model file itself; write the export elsewhere")
    net = bpgpu.load(args.model, backend="numpy")
    net.export(args.out)  # checked and built before anything is written (a folder too)
    print(f"{args.out} written: {EXPORTS[suffix]}")
    return 0


# ---- the parsers ----------------------------------------------------------------------


def _split(values: list[str] | None) -> list[str] | None:
    """``["a,b", "c"]`` -> ``["a", "b", "c"]``; None stays None."""
    if values is None:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def cmd_backends(args: argparse.Namespace) -> int:
    from bpgpu.backends import list_backends

    rows = list_backends()
    print(f"{'backend':<18} {'available':<9} {'version':<14} device / reason")
    for r in rows:
        detail = r["device"] if r["available"] else r["reason"]
        print(f"{r['name']:<18} {'yes' if r['available'] else 'no':<9} {r['version']:<14} {detail}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from bpgpu.consistency import TOLERANCE, compare_backends
    from bpgpu.io import prepare_output, write_text

    dtypes = _split(args.dtype)
    bad = [d for d in dtypes or () if d not in TOLERANCE]
    if bad:
        print(f"bpgpu check: unknown dtype {bad[0]!r}; use float64 or float32", file=sys.stderr)
        return 2
    data_options = ("data", "format", "x_key", "y_key", "label_column")
    if args.model is None and any(getattr(args, k) is not None for k in data_options):
        print("bpgpu check: --data and its options are for --model FILE", file=sys.stderr)
        return 2
    if args.rows < 1:
        print(f"bpgpu check: --rows must be a positive integer, got {args.rows}", file=sys.stderr)
        return 2
    if args.output:
        prepare_output(args.output, "report")  # before the work, not after it
    model = None if args.model is None else _model_and_rows(args)  # its errors: exit 1
    try:  # unknown backend names: a usage error
        mixed = args.precision
        if model is None:
            dtypes = tuple(dtypes or (("float32",) if mixed else ("float64", "float32")))
            report = compare_backends(
                _split(args.backends), dtypes=dtypes, seed=args.seed, precision=mixed
            )
            what = f"{report.cases} networks"
        else:
            net, X, y, where = model
            backends = _split(args.backends)
            report = compare_backends(net, X, y, backends=backends, dtypes=dtypes, precision=mixed)
            what = f"{args.model} on {len(X)} rows of {where}"
    except ValueError as e:
        print(f"bpgpu check: {e}", file=sys.stderr)
        return 2
    text = [
        f"bpgpu check: {what} per backend and dtype, against NumPy float64; "
        "relative-norm error (against the size of what a tensor sums, where that is "
        "larger), worst case",
        "",
        report.table(),
    ]
    for name, why in report.skipped.items():
        text.append(f"\nnot run: {name}: {why}")
    failed = [f for r in report.rows for f in r.failures()]
    if failed:
        text += ["", *(f"FAIL {f}" for f in failed)]
    if report.ok:
        ran = sorted({r.backend for r in report.rows})
        text += ["", f"agreement within tolerance: {', '.join(ran)}"]
    elif not report.rows:
        text += ["", "no backend ran"]
    out = "\n".join(text)
    print(out)
    if args.output:
        write_text(args.output, out + "\n")
    return 0 if report.ok else 1


def _model_and_rows(args: argparse.Namespace):
    """``bpgpu check --model``: the saved network, the first ``--rows`` rows of its data
    (``--data``, else the data the model file recorded) and where they came from."""
    import bpgpu
    from bpgpu.cli.commands import _known_labels
    from bpgpu.cli.data import Source, Task

    net = bpgpu.load(args.model, backend="numpy")
    rec = net.data_info
    if rec is None and args.data is None:
        raise ValueError(
            f"{args.model} does not record the data it was trained on (saved from Python, "
            "or by an older bpgpu); pass --data"
        )
    src = Source.from_args(args, rec if args.data is None else None)
    X, y = src.load("test")
    X, y = X[: args.rows], y[: args.rows]
    task = Task.from_record(rec)
    if task is not None:
        y = _known_labels(task, y, args.model)  # the data's labels, as output indices
    net.loss(X, y)  # the data fit the network, or the error says how not (exit 1)
    return net, X, y, src.path


def cmd_bench(args: argparse.Namespace) -> int:
    from bpgpu.bench.runner import main as bench_main

    return bench_main(args.extra)
