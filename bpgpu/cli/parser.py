"""The ``bpgpu`` command. Exit codes: 0 success, 1 failure, 2 usage error."""

from __future__ import annotations

import argparse
import logging
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

    dtypes = tuple(_split(args.dtype) or ("float64", "float32"))
    bad = [d for d in dtypes if d not in TOLERANCE]
    if bad:
        print(f"bpgpu check: unknown dtype {bad[0]!r}; use float64 or float32", file=sys.stderr)
        return 2
    if args.output:
        prepare_output(args.output, "report")  # before the work, not after it
    try:
        report = compare_backends(_split(args.backends), dtypes=dtypes, seed=args.seed)
    except ValueError as e:
        print(f"bpgpu check: {e}", file=sys.stderr)
        return 2
    text = [
        f"bpgpu check: {report.cases} networks per backend and dtype, against NumPy float64; "
        "relative-norm error, worst case",
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
    if args.command != "bench" and extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
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
    except MemoryError as e:  # never a bare "error:" (a MemoryError often has no message)
        why = str(e) or "the host ran out of memory"
        print(
            f"bpgpu {args.command}: error: {why}; use less data at once, a smaller batch or "
            "network, or float32",
            file=sys.stderr,
        )
        return 1
    except (ValueError, TypeError, OSError, BackendUnavailable, FloatingPointError) as e:
        print(f"bpgpu {args.command}: error: {e or type(e).__name__}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"bpgpu {args.command}: interrupted", file=sys.stderr)
        return 130
