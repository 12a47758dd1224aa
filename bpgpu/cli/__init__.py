"""The ``bpgpu`` command: the parser, every command's options and ``main``
(:mod:`.parser`), what the commands do (:mod:`.commands`), data files (:mod:`.data`),
loss curves (:mod:`.plot`). It sits on top
of the library and imports it; nothing in the library imports it."""

from bpgpu.cli.parser import build_parser, main

__all__ = ["build_parser", "main"]
