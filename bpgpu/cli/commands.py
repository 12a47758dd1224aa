"""``bpgpu train``, ``bpgpu evaluate`` and ``bpgpu predict``."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

from bpgpu.history import Callback


class Progress(Callback):
    """A tqdm bar over the batches on stderr (off when stderr is not a terminal) and one
    line per epoch on stdout. It reads no loss per batch, so it adds no device sync."""

    def __init__(self, epochs: int, batches: int, enabled: bool | None = None, quiet=False):
        self.epochs, self.batches, self.quiet = epochs, batches, quiet
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
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
            line = f"epoch {epoch:>3}/{self.epochs}  loss {logs['loss']:.4f}"
            if not math.isnan(logs["accuracy"]):
                line += f"  acc {logs['accuracy']:.4f}"
            if not math.isnan(logs["val_loss"]):
                line += f"  val_loss {logs['val_loss']:.4f}  val_acc {logs['val_accuracy']:.4f}"
            print(line + f"  {logs['time']:.2f}s", flush=True)
        if epoch < self.epochs:
            self.bar = self._new_bar(epoch + 1)

    def on_train_end(self, net, history):
        if self.bar is not None:
            self.bar.close()


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if any(n < 1 for n in sizes):
        raise argparse.ArgumentTypeError("layer sizes must be positive")
    return sizes


def _data(args, kind: str = "train"):
    from bpgpu import datasets

    kw = {}
    fmt = args.format
    if fmt == "auto" and args.data != "digits" and os.path.isdir(args.data):
        fmt = "mnist"
    if fmt == "mnist":
        kw["kind"] = kind
    if fmt == "npz" or (fmt == "auto" and args.data.endswith(".npz")):
        kw.update(x_key=args.x_key, y_key=args.y_key)
    if fmt == "csv" or (fmt == "auto" and args.data.endswith(".csv")):
        kw["label_column"] = args.label_column
    return datasets.load(args.data, fmt, **kw), fmt


def add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        default="digits",
        help="'digits' (embedded, default), an MNIST folder, a .npz or a .csv file",
    )
    p.add_argument("--format", default="auto", choices=["auto", "digits", "mnist", "npz", "csv"])
    p.add_argument("--x-key", default="X", help="array name of the features in a .npz")
    p.add_argument("--y-key", default="y", help="array name of the labels in a .npz")
    p.add_argument("--label-column", type=int, default=-1, help="label column of a CSV")
    p.add_argument("--val-split", type=float, default=0.1, help="validation fraction (0.1)")
    p.add_argument(
        "--test-split",
        type=float,
        default=0.2,
        help="test fraction (0.2; an MNIST folder uses its t10k files)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of weights, split and shuffling")


def _parts(args):
    """Train/validation/test parts as the train command makes them."""
    from bpgpu import datasets

    (X, y), fmt = _data(args, "train")
    if fmt == "mnist":
        Xt, yt = _data(args, "test")[0]
        s = datasets.split(X, y, val=args.val_split, test=0.0, seed=args.seed)
        s.X_test, s.y_test = Xt, yt
        return s
    return datasets.split(X, y, val=args.val_split, test=args.test_split, seed=args.seed)


def cmd_train(args: argparse.Namespace) -> int:
    import bpgpu
    from bpgpu import datasets
    from bpgpu.cli.plot import plot_history

    s = _parts(args)
    n_out = int(s.y_train.max()) + 1 if s.y_train.ndim == 1 else s.y_train.shape[1]
    sizes = [s.X_train.shape[1], *args.hidden, n_out]
    net = bpgpu.MLP(
        sizes,
        hidden=args.activation,
        output=args.output_activation,
        cost=args.cost,
        backend=args.backend,
        dtype=args.dtype,
        seed=args.seed,
    )
    if not args.no_standardize:
        net.set_input_scaling(*datasets.standardize(s.X_train))
    info = net.backend.info()
    print(
        f"bpgpu train: {net} on {info['device']}; {len(s.X_train)} train, "
        f"{len(s.X_val)} validation, {len(s.X_test)} test samples",
        flush=True,
    )
    batches = math.ceil(len(s.X_train) / args.batch_size)
    progress = Progress(args.epochs, batches, enabled=None if args.progress else False)
    fit_kw = {}
    if args.resume is None:  # a resumed fit takes these from its checkpoint
        fit_kw = dict(
            batch_size=args.batch_size,
            optimizer=args.optimizer,
            lr=args.lr,
            weight_decay=args.weight_decay,
            patience=args.patience,
            seed=args.seed,
        )
    ckpt = (
        None
        if args.no_checkpoint
        else (args.checkpoint or os.path.splitext(args.out)[0] + ".ckpt.npz")
    )
    t0 = time.perf_counter()
    history = net.fit(
        s.X_train,
        s.y_train,
        args.epochs,
        validation_data=(s.X_val, s.y_val) if len(s.X_val) else None,
        callbacks=[progress],
        checkpoint=ckpt,
        resume=args.resume,
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
    epochs_run = len(history.epoch) - (0 if args.resume is None else _resumed_at(args.resume))
    test = (
        net.evaluate(s.X_test, s.y_test)
        if len(s.X_test)
        else {"loss": math.nan, "accuracy": math.nan}
    )
    net.save(args.out)
    rate = epochs_run * len(s.X_train) / wall if wall > 0 else math.inf
    print(f"backend {net.backend.name} ({info['device']}), dtype {net.dtype}")
    print(f"test accuracy {test['accuracy']:.4f}, test loss {test['loss']:.4f}")
    print(f"trained {epochs_run} epochs in {wall:.2f} s ({rate:,.0f} samples/s)")
    print(f"model saved to {args.out}")
    if not args.no_plot:
        png = args.plot or os.path.splitext(args.out)[0] + ".png"
        if plot_history(history, png, title=str(net)):
            print(f"curves saved to {png}")
        else:
            print("matplotlib is not installed (pip install 'bpgpu[plot]'); no plot written")
    return 0


def _resumed_at(path) -> int:
    from bpgpu import checkpoint

    return int(checkpoint.read(path)[0]["training"]["epoch"])


def cmd_evaluate(args: argparse.Namespace) -> int:
    import bpgpu

    net = bpgpu.load(args.model, backend=args.backend)
    if args.subset == "test":
        s = _parts(args)
        X, y = s.X_test, s.y_test
    else:
        (X, y), _ = _data(args, "test")
    r = net.evaluate(X, y)
    print(f"{len(X)} samples: loss {r['loss']:.4f}, accuracy {r['accuracy']:.4f}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    import bpgpu
    from bpgpu.io import atomic_write

    net = bpgpu.load(args.model, backend=args.backend)
    if args.input.endswith(".npy"):
        X = np.load(args.input, allow_pickle=False)
    elif args.input.endswith(".csv"):
        from bpgpu.datasets import read_csv

        X = read_csv(args.input)
    else:
        raise ValueError(f"{args.input}: pass a .npy or .csv file of inputs (one row a sample)")
    out = net.forward(X) if args.outputs else net.classify(X)
    result = net.backend.to_numpy(out)
    if args.output.endswith(".csv"):
        fmt = "%.9g" if args.outputs else "%d"
        atomic_write(
            args.output, lambda f: np.savetxt(f, np.atleast_2d(result.T).T, fmt=fmt, delimiter=",")
        )
    elif args.output.endswith(".npy"):
        atomic_write(args.output, lambda f: np.save(f, result, allow_pickle=False))
    else:
        raise ValueError(f"{args.output}: the output must end in .npy or .csv")
    what = "outputs" if args.outputs else "class labels"
    print(f"{len(result)} {what} written to {args.output}")
    return 0


def add_commands(sub) -> None:
    from bpgpu.activations import ACTIVATIONS
    from bpgpu.costs import COSTS
    from bpgpu.optimizers import OPTIMIZERS

    t = sub.add_parser(
        "train",
        help="train an MLP (default: the embedded digits)",
        description="Train an MLP and save it. Defaults train 64-256-10 ReLU/softmax "
        "with Adam on the embedded 8x8 digits.",
    )
    add_data_options(t)
    t.add_argument("--hidden", type=_sizes, default=[256], help="hidden sizes (256), e.g. 256,128")
    t.add_argument(
        "--activation", default="relu", choices=[a for a in ACTIVATIONS if a != "softmax"]
    )
    t.add_argument("--output-activation", default="softmax", choices=list(ACTIVATIONS))
    t.add_argument(
        "--cost",
        default=None,
        choices=list(COSTS),
        help="default: the natural cost of the output activation",
    )
    t.add_argument("--optimizer", default="adam", choices=list(OPTIMIZERS))
    t.add_argument("--lr", type=float, default=None, help="learning rate (adam 0.001, else 0.1)")
    t.add_argument("--weight-decay", type=float, default=1e-3, help="L2 on weight matrices (0.001)")
    t.add_argument("--epochs", type=int, default=50)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--patience", type=int, default=None, help="early stopping patience")
    t.add_argument("--backend", default=None, help="auto (default), numpy, cupy, torch, ...")
    t.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    t.add_argument("--no-standardize", action="store_true", help="feed raw inputs")
    t.add_argument("-o", "--out", default="model.npz", help="model file (model.npz)")
    t.add_argument("--plot", default=None, help="PNG of the curves (default: beside the model)")
    t.add_argument("--no-plot", action="store_true")
    t.add_argument(
        "--checkpoint",
        default=None,
        help="checkpoint written after every epoch and on Ctrl-C "
        "(default: beside the model, MODEL.ckpt.npz)",
    )
    t.add_argument("--no-checkpoint", action="store_true", help="write no checkpoint")
    t.add_argument("--resume", default=None, help="continue from a checkpoint")
    t.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="no progress bar (it is off anyway when stderr is not a terminal)",
    )
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="loss and accuracy of a saved model on data")
    e.add_argument("model")
    add_data_options(e)
    e.add_argument(
        "--subset",
        choices=["all", "test"],
        default="all",
        help="'test': only the test part that train's split (same seeds) held out",
    )
    e.add_argument("--backend", default=None)
    e.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="class labels (or outputs) for inputs in a .npy/.csv")
    p.add_argument("model")
    p.add_argument("input", help=".npy or .csv, one row per sample, no label column")
    p.add_argument("-o", "--output", required=True, help=".npy or .csv to write")
    p.add_argument("--outputs", action="store_true", help="write network outputs, not labels")
    p.add_argument("--backend", default=None)
    p.set_defaults(func=cmd_predict)
