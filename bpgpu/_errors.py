"""Error helpers shared by the core: messages that say how to fix the problem."""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Iterable

# What other libraries call our names (keys as _normal() writes them): ours, and what
# differs where something does
_HALF_SQUARES = ("quadratic", " (1/2 sum of squares per sample, eq. (3))")
SYNONYMS: dict[str, tuple[str, str]] = {
    # costs
    "mse": _HALF_SQUARES,
    "mean_squared_error": _HALF_SQUARES,
    "squared_error": _HALF_SQUARES,
    "l2": _HALF_SQUARES,
    "bce": ("cross_entropy", ""),
    "binary_crossentropy": ("cross_entropy", ""),
    "log_loss": ("cross_entropy", " (with a sigmoid output)"),
    "cce": ("categorical_cross_entropy", ""),
    "categorical_crossentropy": ("categorical_cross_entropy", ""),
    "sparse_categorical_crossentropy": ("categorical_cross_entropy", " (it takes integer labels)"),
    "nll": ("categorical_cross_entropy", " (with a softmax output)"),
    # activations
    "linear": ("identity", ""),
    "none": ("identity", ""),
    "step": ("binary_step", ""),
    "heaviside": ("binary_step", ""),
    "atan": ("arctan", ""),
    "leakyrelu": ("leaky_relu", ""),
    "lrelu": ("leaky_relu", ""),
    "soft_plus": ("softplus", ""),
    # optimizers
    "sgd_momentum": ("momentum", ""),
    "nag": ("nesterov", ""),
}


def _normal(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def unknown_name(kind: str, name: object, valid: Iterable[str]) -> ValueError:
    """A ValueError for an unknown ``kind`` name, suggesting the closest valid one: the
    same name in other case or with '-' for '_' ("ReLU", "cross-entropy"), what another
    library calls it ("mse"), or a close spelling."""
    valid = sorted(set(valid))
    by_normal = {_normal(v): v for v in valid}
    key = _normal(str(name))
    if key in by_normal:
        hint = f"did you mean {by_normal[key]!r}? "
    elif key in SYNONYMS and SYNONYMS[key][0] in valid:
        ours, note = SYNONYMS[key]
        hint = f"did you mean {ours!r}{note}? "
    else:
        close = difflib.get_close_matches(key, list(by_normal), n=1, cutoff=0.5)
        hint = f"did you mean {by_normal[close[0]]!r}? " if close else ""
    return ValueError(f"unknown {kind} {name!r}; {hint}valid names: {', '.join(valid)}")


def keywords_checked(method):
    """Refuse a keyword argument ``method`` does not take with the closest one it does
    (``fit(patiance=3)``: "did you mean 'patience'?"), as misspelt activation names are;
    the signature stays ``method``'s own for ``inspect``, IDEs and the reference."""
    params = inspect.signature(method).parameters
    named = [
        n
        for n, p in params.items()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and n != "self"
    ]

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        for key in kwargs:
            if key not in named:
                close = difflib.get_close_matches(key, named, n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}? " if close else ""
                # named by the caller's class (MLP.fit), not the base that defines it
                owner = type(args[0]).__name__ if args else ""
                where = f"{owner}.{method.__name__}" if owner else method.__qualname__
                raise TypeError(
                    f"{where}() got an unexpected keyword argument {key!r}; "
                    f"{hint}it takes {', '.join(named)}"
                )
        return method(*args, **kwargs)

    return wrapper
