"""The ``bpgpu`` command: the parser and the small commands (:mod:`.parser`), training,
evaluation and prediction (:mod:`.commands`), loss curves (:mod:`.plot`). It sits on top
of the library and imports it; nothing in the library imports it."""

from bpgpu.cli.parser import build_parser, main

__all__ = ["build_parser", "main"]
