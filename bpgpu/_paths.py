"""File paths as the user passes them: a str, a ``pathlib.Path`` or bytes."""

from __future__ import annotations

import os


def file_path(path, what: str = "file") -> str:
    """``path`` as a string (a str, any ``os.PathLike`` or bytes); anything else is a
    TypeError that says what to pass."""
    try:
        return os.fsdecode(path)
    except TypeError:
        raise TypeError(
            f"{what} must be a file path (a str or a pathlib.Path); got {path!r} "
            f"({type(path).__name__})"
        ) from None
