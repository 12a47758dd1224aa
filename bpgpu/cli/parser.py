"""The ``bpgpu`` command line: the parser (every command's options, declared in one
place, and the converters that check them) and ``main``. Exit codes: 0 success, 1
failure, 2 usage error. What each command does is in :mod:`bpgpu.cli.commands`."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Sequence

from bpgpu.backends._install import install_hint
from bpgpu.cli.commands import (
    cmd_backends,
    cmd_bench,
    cmd_check,
    cmd_evaluate,
    cmd_export,
    cmd_predict,
    cmd_train,
)
from bpgpu.cli.data import TASKS, add_data_options, seed, whole_number


class Parser(argparse.ArgumentParser):
    """argparse with usage errors on one line (and a pointer to --help), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from bpgpu._version import __version__

    p = Parser(
        prog="bpgpu",
        description="Backpropagation on NumPy, CuPy, PyTorch and any Array API library.",
        formatter_class=Help,
    )
    p.add_argument("--version", action="version", version=f"bpgpu {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log backend choices")
    # -v after the command too: the same flag, not overwritten when absent there
    common = Parser(add_help=False)
    common.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log backend choices",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)

    b = sub.add_parser(
        "backends",
        parents=[common],
        formatter_class=Help,
        help="list every known backend and whether it works here",
    )
    b.set_defaults(func=cmd_backends)

    c = sub.add_parser(
        "check",
        parents=[common],
        formatter_class=Help,
        help="compare loss, gradients, deltas and an SGD step across backends",
        description="Run every activation x cost pair, a deep and a wide net on each backend "
        "against a NumPy float64 reference; exit 1 naming the tensor when one disagrees "
        "(float64 > 1e-12, float32 > 1e-5 relative norm).",
    )
    c.add_argument(
        "--backends",
        action="append",
        metavar="NAMES",
        help="comma-separated backend names (default: every available backend)",
    )
    c.add_argument(
        "--dtype", action="append", metavar="DTYPE", help="float64 and/or float32 (default both)"
    )
    c.add_argument(
        "--precision",
        default=None,
        choices=["bfloat16", "float16"],
        help="run each backend in this mixed precision (float32 weights) against NumPy "
        "float64 from the rounded weights and batch, within 2**-4; backends without the "
        "type are reported as not run",
    )
    c.add_argument("--seed", type=seed, default=0, help="seed of weights and batches")
    c.add_argument("-o", "--output", metavar="FILE", help="also write the report to FILE")
    c.add_argument(
        "--model",
        metavar="FILE",
        help="compare this saved model (its weights and input scaling) on the first --rows "
        "rows of its data, instead of the suite (dtype: the model's, unless --dtype)",
    )
    c.add_argument("--rows", type=positive_int, default=256, help="rows of data with --model")

    add_data_options(c, recorded=True, split=False)
    c.set_defaults(func=cmd_check)

    add_commands(sub, common)

    bench = sub.add_parser(
        "bench",
        help="benchmarks: bpgpu against its peers, in one process (python -m benchmarks)",
        add_help=False,
    )
    bench.set_defaults(func=cmd_bench)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bpgpu`` console script."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command != "bench" and extra:  # said by the command: `bpgpu check: error: ...`
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        commands.choices[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra  # `bpgpu bench` hands its options to the benchmark runner
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(message)s",
        stream=sys.stderr,
    )
    from bpgpu.backends import BackendUnavailable
    from bpgpu.cli.commands import UsageError

    try:
        return args.func(args)
    except UsageError as e:  # options that contradict each other: a usage error
        print(f"bpgpu {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `bpgpu predict m.npz x.csv | head`: the reader has gone
        # quiet, as any Unix tool: no error line, and no second one when Python flushes
        # stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13  # SIGPIPE's status
    except MemoryError as e:  # never a bare "error:" (a MemoryError often has no message)
        why = str(e) or "the host ran out of memory"
        print(
            f"bpgpu {args.command}: error: {why}; use less data at once, a smaller batch or "
            "network, or float32",
            file=sys.stderr,
        )
        return 1
    except (
        ValueError,
        TypeError,
        OSError,
        ImportError,  # an optional library a command needs: the message says how to install it
        BackendUnavailable,
        FloatingPointError,
    ) as e:
        why = str(e) or type(e).__name__
        if isinstance(e, OSError) and e.filename is not None and e.strerror:
            # Python's own "[Errno 2] No such file or directory: 'x.csv'": the file first
            why = f"{e.filename}: {e.strerror.lower()}"
        print(f"bpgpu {args.command}: error: {why}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"bpgpu {args.command}: interrupted", file=sys.stderr)
        return 130


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


positive_int = whole_number(1, "a positive integer")


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
        "cost); a label column that looks like a measurement (many whole numbers, few rows "
        "each) is refused, pointing to --label-column and --task; --output-activation "
        "sigmoid trains one unit for two classes, one unit per class for more (so does "
        "any output activation but softmax: one-hot targets, the largest output's class).",
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
        "--precision",
        default=None,
        choices=["bfloat16", "float16", "tf32"],
        help="mixed precision: products in this type, float32 weights (torch, jax; float16 "
        "also cupy; tf32 torch:cuda); a resumed run keeps the checkpoint's unless given",
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
        "--restart",
        action="store_true",
        help="start over where the checkpoint (MODEL.ckpt.npz or --checkpoint) holds a "
        "run: replace it (without it, such a run is refused: --resume it or --restart)",
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

    x = sub.add_parser(
        "export",
        parents=[common],
        formatter_class=Help,
        help="write a saved model for ONNX Runtime, torch or safetensors",
        description="Write a saved model in another format, chosen by OUT's suffix: .onnx "
        f"(ONNX Runtime; needs {install_hint('onnx')}), .pt2 (a torch.export program: "
        "torch.export.load(OUT).module(); needs torch), .pt (the torch state_dict, for "
        "net.to_torch().load_state_dict(torch.load(OUT))), .safetensors (tensors named "
        "as that state_dict names them; bpgpu reads it back), .npz. The programs compute "
        "what bpgpu predict --outputs gives, input scaling included. Nothing is written "
        "when the export is refused.",
    )
    x.add_argument("model", help="a model file from bpgpu train (or MLP.save)")
    x.add_argument(
        "out", metavar="OUT", help="the file to write: .onnx, .pt2, .pt, .safetensors or .npz"
    )
    x.set_defaults(func=cmd_export)
