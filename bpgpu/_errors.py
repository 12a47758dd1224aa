"""Error helpers shared by the core: messages that say how to fix the problem."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def unknown_name(kind: str, name: object, valid: Iterable[str]) -> ValueError:
    """A ValueError for an unknown ``kind`` name, suggesting the closest valid one."""
    valid = sorted(set(valid))
    close = difflib.get_close_matches(str(name), valid, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return ValueError(f"unknown {kind} {name!r}; {hint}valid names: {', '.join(valid)}")
