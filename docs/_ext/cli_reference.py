"""``.. bpgpu-cli::`` renders every command's ``--help`` from the parser itself
(:func:`bpgpu.cli.parser.build_parser`), so the CLI reference is never copied by hand."""

from __future__ import annotations

import argparse
import os

from docutils import nodes
from docutils.parsers.rst import Directive


def _commands(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


class CliReference(Directive):
    """A section per command: its one-line purpose and its full ``--help``."""

    has_content = False

    def run(self):
        from bpgpu.cli.parser import build_parser

        before = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = "70"  # argparse wraps to it: the width of the page's blocks
        try:
            parser = build_parser()
            out = [_block(parser.format_help())]
            for name, sub in _commands(parser):
                section = nodes.section(ids=[f"bpgpu-{name}"])
                section += nodes.title(text=f"bpgpu {name}")
                text = sub.format_help() if sub.add_help else f"see: bpgpu {name} --help"
                section += _block(text)
                out.append(section)
        finally:
            if before is None:
                del os.environ["COLUMNS"]
            else:
                os.environ["COLUMNS"] = before
        return out


def _block(text: str):
    """Help text as it prints: a literal block, not highlighted as code."""
    block = nodes.literal_block(text, text)
    block["language"] = "text"
    return block


def setup(app):
    app.add_directive("bpgpu-cli", CliReference)
    return {"parallel_read_safe": True}
