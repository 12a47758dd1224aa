"""Checkpoints: everything a fit needs to continue exactly where it stopped, as a file.

A checkpoint is a model file (see :mod:`bpgpu.io`) with more members: the optimizer's
state per parameter (``opt.<slot>.<name>``), the best weights so far (``best.<name>``)
and, in the config, a ``training`` section (the fit's settings, the epoch, the
optimizer's step count, the host RNG state, the history, the early-stopping state and,
for a checkpoint taken mid-epoch, the position in that epoch). This module reads and
writes that layout from host arrays and plain data; :mod:`bpgpu.training` decides what
goes in and puts it back.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from bpgpu import io, safetensors_file
from bpgpu._paths import file_path


def write(
    path: str | os.PathLike,
    config: dict,
    arrays: dict[str, np.ndarray],
    names: Sequence[str],
    slots: dict[str, Sequence[np.ndarray]],
    best: Sequence[np.ndarray] | None,
    training: dict[str, Any],
) -> None:
    """Write a checkpoint atomically: a model's ``config`` and ``arrays``, the optimizer
    ``slots`` and ``best`` weights per parameter ``names``, and the ``training`` section."""
    cfg = {**config, "kind": "checkpoint", "training": {**training, "has_best": best is not None}}
    arrays = dict(arrays)
    for slot, values in slots.items():
        for name, v in zip(names, values):
            arrays[f"opt.{slot}.{name}"] = v
    for name, p in zip(names, best or ()):
        arrays[f"best.{name}"] = p
    io.write_archive(path, cfg, arrays)


def check_path(path: str | os.PathLike) -> None:
    """Refuse a checkpoint name that promises another format: a checkpoint is bpgpu's
    ``.npz`` archive (it holds the optimizer's state and the run, which no export
    format has)."""
    path = file_path(path, "checkpoint")
    suffix = os.path.splitext(path)[1].lower()
    if suffix in (*io.EXPORT_SUFFIXES, safetensors_file.SUFFIX):
        raise ValueError(
            f"checkpoint {path}: a checkpoint is an .npz archive (the weights, "
            f"the optimizer's state and the run), never {suffix}; name it .npz"
        )


def read(path: str | os.PathLike, custom: dict | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """A checkpoint's validated config and arrays (``custom``: objects of the user's own
    that it names, by name)."""
    return io.read_archive(path, io.checkpoint_shapes, custom=custom, what="checkpoint")


def check_same_network(mine: dict, cfg: dict, path) -> None:
    """Refuse a checkpoint of another network (``mine``: this network's model config);
    an activation or cost of the user's own is another than bpgpu's of its name, and
    outputs that stand for other classes make another network."""
    keys = ("sizes", "activations", "cost", "dtype")

    def what(c: dict) -> tuple:
        own = c.get("custom", [])
        classes = c.get("classes")
        if classes is None:  # a checkpoint of bpgpu train from before the config held them
            recorded = io.recorded_classes(c)
            classes = None if recorded is None else recorded.tolist()
        return (
            *(c[k] for k in keys),
            *([f"your own: {', '.join(own)}"] if own else []),
            *([f"classes {classes}"] if classes is not None else []),
        )

    if what(mine) != what(cfg):
        raise ValueError(
            f"checkpoint {path} holds a different network {what(cfg)}; this one is "
            f"{what(mine)}. Resume with a network built the same way "
            "(bpgpu.load(path) gives one)"
        )


def slots_of(arrays: dict, names: Sequence[str], slots: Sequence[str]) -> dict[str, list]:
    """The optimizer's saved state arrays, per slot, in parameter order."""
    return {s: [arrays[f"opt.{s}.{n}"] for n in names] for s in slots}


def best_of(arrays: dict, names: Sequence[str], cfg: dict) -> list | None:
    """The saved best weights, or None when the checkpoint has none."""
    if not cfg["training"]["has_best"]:
        return None
    return [arrays[f"best.{n}"] for n in names]
