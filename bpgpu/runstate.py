"""What a fit carries from epoch to epoch, and how a checkpoint holds it.

:class:`Data` is the training data on the device (and the validation data);
:class:`Run` is everything a checkpoint holds, in memory (optimizer state, host RNG,
history, early stopping). :func:`fresh_run` starts one, :func:`resume_run` puts a
checkpoint back, :func:`save_checkpoint` writes one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from bpgpu import checkpoint as _ckpt
from bpgpu.history import History
from bpgpu.host_rng import HostRNG
from bpgpu.io import ModelFileError
from bpgpu.precision import scaler_state
from bpgpu.settings import Settings


@dataclass
class Data:
    """The training data on the device, validated, and the validation data (or None)."""

    X: Any
    T: Any
    labels: Any  # class labels of T, once, when accuracy is defined
    Xv: Any = None
    Tv: Any = None
    host: tuple | None = None  # streamed: (X, T, training rows or None) on the host
    accuracy: str | None = "classes"  # what it means for the targets (Model.accuracy_kind)
    w: Any = None  # each training row's sample weight, on the host (None: unweighted)
    Wv: Any = None  # the validation rows' sample weights, on the device (None: unweighted)

    @property
    def n(self) -> int:
        if self.host is not None:
            X, _, rows = self.host
            return X.shape[0] if rows is None else len(rows)
        return self.X.shape[0]


@dataclass
class Best:
    """Early stopping: the best monitored value, its weights (with patience) and the
    epochs waited since."""

    value: float = math.inf
    params: list | None = None
    wait: int = 0


@dataclass
class Run:
    """Everything a checkpoint holds, in memory."""

    opt: Any
    state: dict
    rng: Any  # draws each epoch's permutation: a HostRNG, or any object with permutation(n)
    history: History
    best: Best = field(default_factory=Best)
    start: int = 0  # epochs already done
    position: dict | None = None  # where a mid-epoch checkpoint stopped
    data: dict | None = None  # rows and fingerprint of the training data, for checkpoints


def fresh_run(model, st: Settings, opt) -> Run:
    """A run from the start: zeroed optimizer state, the settings' seed."""
    state = opt.init(model.params)
    if model.precision is not None and model.precision.scaled:
        state["scaler"] = scaler_state(model.xp, model.backend.device)
    return Run(opt, state, HostRNG(st.seed), History(seed=st.seed))


def resume_run(net, model, st: Settings, opt, ckpt, fingerprint: dict | None):
    """The checkpoint ``ckpt = (path, config, arrays)`` put back: ``(run, undo)``.

    Everything in the file is checked before the network changes; then the network gets
    the checkpoint's weights and input scaling (so the data are standardised as they
    were), and ``undo()`` puts the old ones back if a later check refuses the resume.
    ``fingerprint`` (of the data given now) must match the one the checkpoint recorded.
    """
    path, cfg, arrays = ckpt
    try:
        tr = cfg["training"]
        start = int(tr["epoch"])
        history = History.from_json(tr["history"])
        rng = HostRNG(st.seed)
        rng.set_state(tr["rng"])
        best = Best(
            value=math.inf if tr["best_value"] is None else float(tr["best_value"]),
            wait=int(tr["wait"]),
        )
        t = int(tr["optimizer_t"])
        scaled = tr.get("loss_scale")  # [scale, clean, skipped]: a float16 fit's
        if scaled is not None:
            scaled = [float(scaled[0]), int(scaled[1]), int(scaled[2])]
        saved_data = tr.get("data")  # None in checkpoints written before it was recorded
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ModelFileError(
            f"{path}: the checkpoint's training section is not valid ({type(e).__name__}: {e})"
        ) from None
    if start > st.epochs:  # start == epochs: the fit is done, its result as it is
        raise ValueError(
            f"the checkpoint is at epoch {start}, past the epochs={st.epochs} asked for; "
            f"pass epochs > {start} to train further (epochs={start}: its result)"
        )
    if saved_data is not None and fingerprint is not None and saved_data != fingerprint:
        raise ValueError(
            f"{path} was written training on other data ({saved_data.get('rows')} rows, "
            f"fingerprint {saved_data.get('fingerprint')}; these are {fingerprint['rows']} "
            f"rows, fingerprint {fingerprint['fingerprint']}): resume with the data it was "
            "trained on, or start a new fit without resume="
        )
    undo = _put_back(net, model, path, cfg, arrays)
    device = model.backend.asarray
    slots = _ckpt.slots_of(arrays, model.names, opt.slots)
    state = {"t": t, **{s: [device(a, model.dtype) for a in v] for s, v in slots.items()}}
    if model.precision is not None and model.precision.scaled:
        xp, dev = model.xp, model.backend.device
        state["scaler"] = scaler_state(xp, dev)
        if scaled is not None:  # the scale goes on; another precision's run starts one
            kinds = (xp.float32, xp.int64, xp.int64)
            state["scaler"] = [xp.asarray(v, dtype=k, device=dev) for v, k in zip(scaled, kinds)]
    saved_best = _ckpt.best_of(arrays, model.names, cfg)
    if saved_best is not None:
        best.params = [device(a, model.dtype) for a in saved_best]
    return Run(opt, state, rng, history, best, start, tr.get("position")), undo


def _put_back(net, model, path, cfg: dict, arrays: dict):
    """Give the network the checkpoint's weights and input scaling; returns ``undo()``,
    which puts the network's own back."""
    weights, scaling = net.get_weights(), net.input_scaling

    def undo() -> None:
        net.set_weights(weights)
        net.set_input_scaling(*(scaling or (None, None)))

    try:
        net.set_weights([arrays[n] for n in model.names])
        if cfg.get("input_scaling"):
            net.set_input_scaling(arrays["x_mean"], arrays["x_scale"])
        else:
            net.set_input_scaling(None, None)
    except (KeyError, TypeError, ValueError) as e:
        undo()
        raise ModelFileError(f"{path}: the checkpoint's weights are not valid ({e})") from None
    return undo


def save_checkpoint(path, net, model, run: Run, st: Settings, position=None, rng_state=None):
    """Write the run to ``path``: after an epoch, or mid-epoch at ``position`` (then
    ``rng_state`` is the generator before that epoch's permutation, drawn again on
    resume). The data's fingerprint (``run.data``) goes with it."""
    h = run.history
    host = model.backend.to_numpy
    training = {
        "settings": st.record(),
        "epoch": h.epoch[-1] if h.epoch else 0,
        "optimizer_t": int(run.state["t"]),  # a device scalar after a compiled step
        # its hyper-parameters now (a schedule changes the rate), class and state slots
        "optimizer_now": run.opt.config(),
        "optimizer_class": type(run.opt).__qualname__,
        "optimizer_slots": list(run.opt.slots),
        "rng": run.rng.state() if rng_state is None else rng_state,
        "position": position,
        "history": h.to_json(),
        "best_value": run.best.value if math.isfinite(run.best.value) else None,
        "wait": run.best.wait,
        "data": run.data,
        "precision": net.precision,  # how it computed (a resumed CLI run keeps it)
    }
    if "scaler" in run.state:  # float16's loss scale: read once, as the JSON holds it
        scale, clean, skipped = run.state["scaler"]
        training["loss_scale"] = [float(scale), int(clean), int(skipped)]
    slots = {s: [host(v) for v in run.state[s]] for s in run.opt.slots}
    best = None if run.best.params is None else [host(p) for p in run.best.params]
    _ckpt.write(path, net.config(), net.arrays(), model.names, slots, best, training)
