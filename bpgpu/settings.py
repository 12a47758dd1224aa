"""Fit's settings: its arguments merged with a checkpoint's (a conflict is an error), the
callbacks checked, and the optimizer the fit runs, with the hyper-parameters a resumed
run had reached. Nothing here touches the network or the data."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from bpgpu import optimizers as _opt
from bpgpu._args import integer, real
from bpgpu.callbacks import Callback
from bpgpu.host_rng import fresh_seed
from bpgpu.io import ModelFileError


class _NetworkSeed:
    """``fit``'s default seed: the network's (``MLP(seed=...)``); ``seed=None`` asks for
    a fresh one."""

    def __repr__(self) -> str:
        return "<the network's seed>"


NETWORK_SEED = _NetworkSeed()


@dataclass(frozen=True)
class Settings:
    """A fit's settings, validated once and fixed for the run: what a checkpoint stores,
    and what a resumed fit must agree with (:func:`resolve_settings` merges the two)."""

    epochs: int
    batch_size: int
    validation_split: float
    shuffle: bool
    patience: int | None
    min_delta: float
    seed: int
    optimizer: dict

    def record(self) -> dict[str, Any]:
        """The settings as a checkpoint's JSON holds them."""
        return asdict(self)


@dataclass(frozen=True)
class FitOptions:
    """``MLP.fit``'s options as the caller gave them (see its docstring); the settings a
    checkpoint records are resolved from them by :func:`resolve_settings`."""

    epochs: Any = 10
    batch_size: Any = 32
    optimizer: Any = None
    lr: Any = None
    weight_decay: Any = 0.0
    validation_data: Any = None
    validation_split: Any = 0.0
    shuffle: Any = True
    patience: Any = None
    min_delta: Any = 0.0
    restore_best: Any = True
    callbacks: Any = ()
    checkpoint: Any = None
    resume: Any = None
    seed: Any = NETWORK_SEED
    detect_anomaly: Any = False
    handle_interrupt: Any = True
    train_metrics: Any = True
    verbose: Any = False
    comm: Any = None
    sample_weight: Any = None
    class_weight: Any = None
    graphs: Any = None
    standardize: Any = False

    def settings_kw(self) -> dict[str, Any]:
        """The options :func:`resolve_settings` merges with a checkpoint's."""
        keys = ("epochs", "batch_size", "optimizer", "lr", "weight_decay", "validation_split")
        keys += ("shuffle", "patience", "min_delta", "seed")
        return {k: getattr(self, k) for k in keys}


def _same(a: Any, b: Any) -> bool:
    """Equal, and both or neither a bool (``True`` is not the batch size 1)."""
    return isinstance(a, bool) == isinstance(b, bool) and bool(a == b)


def _build_optimizer(kw: dict) -> _opt.Optimizer:
    spec = "sgd" if kw["optimizer"] is None else kw["optimizer"]
    extra = {}
    if kw["lr"] is not None:
        extra["lr"] = kw["lr"]
    if kw["weight_decay"]:
        extra["weight_decay"] = kw["weight_decay"]
    if isinstance(spec, _opt.Optimizer):
        if extra:
            raise ValueError("set lr and weight_decay on the optimizer object, not in fit()")
        return spec
    return _opt.get(spec, **extra)


_HOOKS = ("on_train_begin", "on_batch_end", "on_epoch_end", "on_train_end")


def callback_list(callbacks) -> list:
    """``callbacks`` as a list of objects with the four hooks, or a TypeError that says
    what to pass."""
    if isinstance(callbacks, Callback) or not hasattr(callbacks, "__iter__"):
        raise TypeError(
            f"callbacks must be a list of Callback objects; got {callbacks!r} "
            "(for one callback pass callbacks=[cb])"
        )
    out = list(callbacks)
    for cb in out:
        if isinstance(cb, type):  # callbacks=[MyCallback]: the class, not an object of it
            raise TypeError(
                f"callbacks holds the class {cb.__name__}, not an object of it; pass "
                f"{cb.__name__}()"
            )
        missing = [h for h in _HOOKS if not callable(getattr(cb, h, None))]
        if missing:
            raise TypeError(
                f"callbacks holds {cb!r}, which has no {', '.join(missing)}; subclass "
                "bpgpu.Callback and override the hooks you need"
            )
    return out


def resolve_settings(
    seed: int | None, kw: dict, training: dict | None, fresh=fresh_seed
) -> tuple[Settings, Any, dict | None]:
    """Fit's keyword arguments merged with a checkpoint's ``training`` section (conflicts
    are errors), validated; the optimizer object; and, resuming, the hyper-parameters it
    had at the checkpoint (for :func:`reload_optimizer`, once every check has passed)."""
    saved = None if training is None else training["settings"]
    # fit's defaults (FitOptions'); a setting left at its default takes the checkpoint's
    keys = ("batch_size", "validation_split", "shuffle", "patience", "min_delta", "seed")
    defaults = {f.name: f.default for f in fields(FitOptions) if f.name in keys}
    merged = {}
    for k, default in defaults.items():
        given = kw[k]
        unset = given is default if default in (None, NETWORK_SEED) else _same(given, default)
        if saved is not None and not unset and not _same(given, saved[k]):
            raise ValueError(
                f"{k}={given!r} differs from the checkpoint's {saved[k]!r}; a resumed fit keeps "
                "its settings (omit the argument, or start a new fit without resume=)"
            )
        merged[k] = saved[k] if saved is not None else given
    if merged["seed"] is NETWORK_SEED:
        merged["seed"] = seed
    kw["epochs"] = integer("epochs", kw["epochs"])
    merged["batch_size"] = integer("batch_size", merged["batch_size"])
    merged["validation_split"] = real(
        "validation_split", merged["validation_split"], 0.0, 1.0, lo_open=False
    )
    if merged["patience"] is not None:
        merged["patience"] = integer("patience", merged["patience"])
    merged["min_delta"] = real("min_delta", merged["min_delta"], 0.0, lo_open=False)
    if type(merged["shuffle"]) is not bool:
        raise ValueError(f"shuffle must be True or False; got {merged['shuffle']!r}")
    if merged["seed"] is None:
        merged["seed"] = fresh()  # drawn once; data-parallel: rank 0's, for every rank
    else:
        merged["seed"] = integer("seed", merged["seed"], lo=0)
    if training is None:
        opt = _build_optimizer(kw)
        return Settings(epochs=kw["epochs"], optimizer=opt.config(), **merged), opt, None
    opt, now = _resumed_optimizer(kw, training)
    return Settings(epochs=kw["epochs"], optimizer=saved["optimizer"], **merged), opt, now


def _resumed_optimizer(kw: dict, training: dict) -> tuple[_opt.Optimizer, dict]:
    """The optimizer a resumed fit runs, and its hyper-parameters at the checkpoint.

    The object passed to fit, when one is (so that a callback holding it, a learning-rate
    schedule, goes on working, and a class of the user's own keeps its rule): it must be
    of the checkpoint's class and have the hyper-parameters the run started with, or
    those it had at the checkpoint. Otherwise a built-in built from the checkpoint; a
    checkpoint trained with a class of the user's own needs that class passed again.
    """
    first = training["settings"]["optimizer"]
    now = training.get("optimizer_now", first)  # absent before checkpoints recorded them
    cls = training.get("optimizer_class")
    numbers = isinstance(now, dict) and all(
        (type(v) in (int, float) and math.isfinite(v)) or (k == "lr" and _schedule(v))
        for k, v in now.items()
        if k != "name"
    )
    same = isinstance(first, dict) and numbers and now.keys() == first.keys()
    if not (same and now.get("name") == first.get("name")):
        raise ModelFileError(
            f"the checkpoint's optimizer record is not valid ({first!r}, now {now!r})"
        )
    builtin = _opt.OPTIMIZERS.get(first.get("name"))
    ours = cls is None or (builtin is not None and builtin.__qualname__ == cls)
    if kw["optimizer"] is None and kw["lr"] is None and not kw["weight_decay"]:
        if not ours or builtin is None:
            kind = cls or first.get("name")
            raise ValueError(
                f"the checkpoint was trained with {kind}, an optimizer class of your own; "
                f"pass it again when resuming: fit(..., optimizer={kind}(...), resume=...)"
            )
        try:  # the built-in as it was at the checkpoint (its constructor checks the values)
            return _opt.get(now), now
        except (TypeError, ValueError) as e:
            raise ModelFileError(f"the checkpoint's optimizer record is not valid ({e})") from None
    opt = _build_optimizer(kw)
    if opt.config() not in (first, now):
        raise ValueError(
            f"optimizer {opt.config()} differs from the checkpoint's {first}; omit "
            "optimizer/lr/weight_decay when resuming"
        )
    if cls is not None and type(opt).__qualname__ != cls:
        raise ValueError(
            f"the checkpoint was trained with optimizer class {cls}, this is "
            f"{type(opt).__qualname__}; resume with the same class"
        )
    return opt, now


def _schedule(config: Any) -> bool:
    """Whether ``config`` is a learning-rate schedule's record (:mod:`bpgpu.schedules`)."""
    try:
        _opt.schedules.from_config(config)
    except ValueError:
        return False
    return True


def reload_optimizer(opt: _opt.Optimizer, now: dict) -> None:
    """Give ``opt`` the hyper-parameters it had at the checkpoint (a callback may have
    changed its learning rate, or scaled its schedule, since the run started), as
    torch's ``load_state_dict`` gives an optimizer its param groups' rates back."""
    for k, v in now.items():
        if k != "name" and hasattr(opt, k):
            setattr(opt, k, _opt.learning_rate(v) if k == "lr" else v)


def check_saveable(opt: _opt.Optimizer) -> None:
    """Refuse, before training, a checkpoint of an optimizer whose learning rate is a
    plain function: a file cannot record it."""
    if not opt.saveable():
        raise ValueError(
            f"the optimizer's lr is {opt.lr!r}, a function a checkpoint cannot record; "
            "use a schedule of bpgpu.schedules (e.g. bpgpu.schedules.cosine_decay(1e-3, "
            "decay_steps=10_000)), or fit without checkpoint="
        )
