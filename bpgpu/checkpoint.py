"""Checkpoints: everything a fit needs to continue exactly where it stopped.

A checkpoint is a model file (see :mod:`bpgpu.io`) with more members: the optimizer's
state per parameter (``opt.<slot>.<name>``), the best weights so far (``best.<name>``)
and, in the config, a ``training`` section with the fit's settings, the epoch, the
optimizer's step count, the host RNG state, the history, the early-stopping state and,
for a checkpoint taken mid-epoch (Ctrl-C), the position in that epoch.
"""

from __future__ import annotations

import math

from bpgpu import optimizers as _opt


def param_names_of(net) -> list[str]:
    from bpgpu.io import param_names

    return param_names([a.name for a in net.activations])


def checkpoint_shapes(cfg: dict) -> dict[str, tuple[int, ...]]:
    """Members of a checkpoint: the model's, optimizer slots, and the best weights."""
    from bpgpu.io import ModelFileError, expected_shapes, param_names

    shapes = expected_shapes(cfg)
    tr = cfg.get("training")
    try:
        opt = _opt.get(tr["settings"]["optimizer"])
        has_best = bool(tr["has_best"])
    except (TypeError, KeyError, ValueError) as e:
        raise ModelFileError(f"checkpoint 'training' section is invalid ({e})") from None
    params = param_names(cfg["activations"])
    for name in params:
        for slot in opt.slots:
            shapes[f"opt.{slot}.{name}"] = shapes[name]
        if has_best:
            shapes[f"best.{name}"] = shapes[name]
    return shapes


def write_checkpoint(
    path, net, opt, state, rng, history, best, st, position=None, rng_state=None
) -> None:
    """Everything a resumed fit needs, written atomically.

    ``position`` marks a checkpoint taken in the middle of an epoch (an interrupt): the
    batch to continue from and the epoch's partial sums; ``rng_state`` is then the host
    generator before that epoch's permutation, so the resumed fit draws it again.
    """
    from bpgpu import io

    names = param_names_of(net)
    cfg = io.model_config(net)
    cfg["kind"] = "checkpoint"
    cfg["training"] = {
        "settings": st.__dict__,
        "epoch": history.epoch[-1] if history.epoch else 0,
        "optimizer_t": opt.t,
        "rng": rng.state() if rng_state is None else rng_state,
        "position": position,
        "history": history.to_json(),
        "best_value": best["value"] if math.isfinite(best["value"]) else None,
        "wait": best["wait"],
        "has_best": best["params"] is not None,
    }
    arrays = io.model_arrays(net)
    to_np = net.backend.to_numpy
    for slot, values in state.items():
        for name, v in zip(names, values):
            arrays[f"opt.{slot}.{name}"] = to_np(v)
    if best["params"] is not None:
        for name, p in zip(names, best["params"]):
            arrays[f"best.{name}"] = to_np(p)
    io.write_archive(path, cfg, arrays)


def check_same_network(net, cfg: dict, path) -> None:
    mine = (list(net.sizes), [a.name for a in net.activations], net.cost.name, net.dtype)
    theirs = (cfg["sizes"], cfg["activations"], cfg["cost"], cfg["dtype"])
    if mine != theirs:
        raise ValueError(
            f"checkpoint {path} holds a different network {theirs}; this one is {mine}. "
            "Resume with bpgpu.load_checkpoint(path) or a network built the same way"
        )
    if cfg.get("kind") != "checkpoint":
        raise ValueError(f"{path} is a model file, not a checkpoint; fit(checkpoint=...) makes one")


def restore(net, opt, rng, history, best, cfg, arrays):
    """Load weights, optimizer state, RNG and history from a validated checkpoint."""
    tr = cfg["training"]
    names = param_names_of(net)
    net.set_weights([arrays[n] for n in names])
    if cfg.get("input_scaling"):
        net.set_input_scaling(arrays["x_mean"], arrays["x_scale"])
    state = {
        slot: [net.backend.asarray(arrays[f"opt.{slot}.{n}"], net.dtype) for n in names]
        for slot in opt.slots
    }
    opt.t = int(tr["optimizer_t"])
    rng.set_state(tr["rng"])
    from bpgpu.training import History

    for k, v in History.from_json(tr["history"]).__dict__.items():
        setattr(history, k, v)
    best["value"] = math.inf if tr["best_value"] is None else float(tr["best_value"])
    best["wait"] = int(tr["wait"])
    if tr["has_best"]:
        best["params"] = [net.backend.asarray(arrays[f"best.{n}"], net.dtype) for n in names]
    return int(tr["epoch"]), state
