"""The ``bpgpu`` command. Exit codes: 0 success, 1 failure, 2 usage error."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence


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
        if model is None:
            dtypes = tuple(dtypes or ("float64", "float32"))
            report = compare_backends(_split(args.backends), dtypes=dtypes, seed=args.seed)
            what = f"{report.cases} networks"
        else:
            net, X, y, where = model
            report = compare_backends(net, X, y, backends=_split(args.backends), dtypes=dtypes)
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


class Parser(argparse.ArgumentParser):
    """argparse with usage errors on one line (and a pointer to --help), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from bpgpu._version import __version__
    from bpgpu.cli.commands import Help, add_commands

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
    c.add_argument("--seed", type=int, default=0, help="seed of weights and batches")
    c.add_argument("-o", "--output", metavar="FILE", help="also write the report to FILE")
    c.add_argument(
        "--model",
        metavar="FILE",
        help="compare this saved model (its weights and input scaling) on the first --rows "
        "rows of its data, instead of the suite (dtype: the model's, unless --dtype)",
    )
    c.add_argument("--rows", type=int, default=256, help="rows of data with --model")
    from bpgpu.cli.data import add_data_options

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


def cmd_bench(args: argparse.Namespace) -> int:
    from bpgpu.bench.runner import main as bench_main

    return bench_main(args.extra)


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
    except (ValueError, TypeError, OSError, BackendUnavailable, FloatingPointError) as e:
        why = str(e) or type(e).__name__
        if isinstance(e, OSError) and e.filename is not None and e.strerror:
            # Python's own "[Errno 2] No such file or directory: 'x.csv'": the file first
            why = f"{e.filename}: {e.strerror.lower()}"
        print(f"bpgpu {args.command}: error: {why}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"bpgpu {args.command}: interrupted", file=sys.stderr)
        return 130
