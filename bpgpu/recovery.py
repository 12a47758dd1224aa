"""When training does not go to plan: divergence, Ctrl-C, and resuming mid-epoch.

The unhappy paths of :class:`bpgpu.trainer.Trainer`: restoring the weights an epoch
started from, replaying up to the last batch whose loss was finite, turning Ctrl-C into
a request to stop after the batch, and validating the mid-epoch position a checkpoint
carries.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading

from bpgpu.io import ModelFileError
from bpgpu.optimizers import lr_text

log = logging.getLogger("bpgpu")


def position_of(pos, n_batches: int):
    """A mid-epoch checkpoint's position, validated (it comes from a file)."""
    if pos is None:
        return None
    ok = (
        isinstance(pos, dict)
        and type(pos.get("batch")) is int
        and 0 < pos["batch"] < n_batches
        and (pos.get("correct") is None or (type(pos["correct"]) is int and pos["correct"] >= 0))
        and (
            pos.get("losses", 0) is None
            or (
                isinstance(pos.get("losses"), list)
                and len(pos["losses"]) == pos["batch"]
                and all(isinstance(v, (int, float)) and math.isfinite(v) for v in pos["losses"])
            )
        )
    )
    if not ok:
        raise ModelFileError(
            f"the checkpoint's mid-epoch position {pos!r} does not fit this fit "
            f"({n_batches} batches per epoch); resume with the same data and batch size"
        )
    return pos


@contextlib.contextmanager
def interruptible(enabled: bool):
    """Turn the first Ctrl-C into a request to stop after the current batch.

    A second Ctrl-C raises KeyboardInterrupt at once. Only in the main thread, where
    Python delivers signals; elsewhere the flag is never set. A process that ignores
    SIGINT (a background job of a script, ``signal.signal(SIGINT, SIG_IGN)``) keeps
    ignoring it, as Python itself does at start-up.
    """
    flag = threading.Event()
    if (
        not enabled
        or threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    ):
        yield flag
        return

    def on_sigint(signum, frame):
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()
        log.warning("bpgpu: stopping after the current batch (Ctrl-C again to abort now)")

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def snapshot(model, state: dict) -> tuple[list, dict]:
    """Device copies of the parameters and the optimizer state (steps may update both
    in place): what an epoch starts from."""
    return _copies(model, model.params, state)


def restore(model, saved: tuple[list, dict]) -> dict:
    """Put back the parameters of :func:`snapshot`; returns its optimizer state. Copies
    again, so the snapshot stays as it was whatever later steps do in place."""
    model.params, state = _copies(model, *saved)
    return state


def _copies(model, params: list, state: dict) -> tuple[list, dict]:
    """Copies of ``params`` and of an optimizer state, in one :meth:`~bpgpu.model.Model.copy`
    (one program on JAX, not one per array). The step count too once a compiled step made
    it a device scalar: JAX's step takes its state as a donated buffer and deletes it."""
    slots = {k: v for k, v in state.items() if k != "t"}
    t = state["t"]
    device_t = not isinstance(t, int)
    flat = [*params, *(a for v in slots.values() for a in v), *([t] if device_t else [])]
    copies = iter(model.copy(flat))
    new_params = [next(copies) for _ in params]
    new_state = {k: [next(copies) for _ in v] for k, v in slots.items()}
    new_state["t"] = next(copies) if device_t else t
    return new_params, new_state


def diverged(trainer, saved, host, first, perm_d, epoch):
    """Restore the last weights known finite, then raise naming the batch.

    Either a batch's loss (``host``: the epoch's per-batch losses, from ``first``) is not
    finite (the batch before it made the weights bad), or every loss was finite but the
    weights are not: then the epoch's last update did it.
    """
    model, run, batches = trainer.model, trainer.run, trainer.batches
    opt, n_batches = run.opt, batches.count
    # counted from `first`; none: the last batch's update made the weights non-finite
    k = next((i for i, v in enumerate(host) if not math.isfinite(v)), len(host))
    run.state = restore(model, saved)
    # replay up to the last batch whose loss was finite: its starting weights are the
    # last ones known good (the update it made is what the bad batch started from)
    for bi in range(first, first + k - 1):
        Xb, Tb, _, Wb = batches(perm_d, bi)
        trainer.step(Xb, Tb, None, False, batches.rows[bi], Wb)
    advice = (
        f"Lower the learning rate (now {lr_text(opt.lr)}), standardise the inputs, or pass "
        "detect_anomaly=True to find the first layer that overflows"
    )
    if k == len(host):
        raise FloatingPointError(
            f"the weights became NaN or inf in the update of batch {first + k} of "
            f"{n_batches} in epoch {epoch} (its loss was finite); the weights that batch "
            f"started from are restored. {advice}"
        )
    bad = first + k + 1
    where = (
        f"the weights that batch {bad - 1} of epoch {epoch} started from (the last finite "
        "batch loss)"
        if k > 0
        else f"the weights at the start of epoch {epoch}"
    )
    raise FloatingPointError(
        f"the training loss became {host[k]} in epoch {epoch}, batch {bad} of {n_batches}; "
        f"{where} are restored. {advice}"
    )
