"""Training steps replayed from a captured CUDA graph (CuPy, torch on a CUDA device).

On a GPU a small network's step is bound by the host: launching its kernels one by one
takes longer than running them. A graph records the kernels of one step once and
replays them with one call. This module decides what to capture, when to capture again,
and keeps every array the graph touches alive and in place; the capture itself is the
backend's (``Backend.capture(fn)`` returns an object with ``replay()``). One piece for
every backend, tested on the CPU with a graph that records the step and replays it by
calling it again (``tests/test_graphs.py``).

The captured step reads nothing the host hands it per batch. Before a run of replays
the host writes, once: the epoch's permutation into ``perm``, the batch index into
``pos``, the step count into ``t``, the learning rate (or a schedule's scale) into
``lr``, the weights and optimizer state into the graph's own arrays (only where the
network's are other arrays: after a restore, a resume or ``set_weights``). Each replay
then gathers batch ``pos``'s rows on the device, runs the core's ``train_step``, writes
the results back where the step made new arrays, records the batch's summed cost and
correct count at ``pos`` and adds one to ``pos``. A step is captured again when what
the graph holds as a constant changes: the optimizer's class and settings (but not its
learning rate, a device scalar), ``train_metrics``, the sample weights' presence.

A step that cannot be captured runs eagerly, and the fit says why once
(:class:`GraphUnavailable`).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from bpgpu import core, programs, schedules

log = logging.getLogger("bpgpu")

ENV = "BPGPU_GRAPHS"


class GraphUnavailable(RuntimeError):
    """Why this fit's steps are not replayed from a graph (one line)."""


def wanted(option: Any) -> bool:
    """``fit(graphs=...)``: True or False, or None for ``$BPGPU_GRAPHS`` (``1`` on,
    ``0`` or unset off: off by default until a GPU run has shown replayed fits equal
    to eager ones and faster)."""
    if option is None:
        value = os.environ.get(ENV, "0").strip().lower()
        if value not in ("0", "1", "", "false", "true", "no", "yes", "off", "on"):
            raise ValueError(f"{ENV} must be 1 or 0; got {value!r}")
        return value in ("1", "true", "yes", "on")
    if type(option) is not bool:
        raise ValueError(f"graphs must be True, False or None ($BPGPU_GRAPHS); got {option!r}")
    return option


def refusal(model, data, opt, *, dist=None, anomaly=False) -> str | None:
    """Why a fit's steps cannot be replayed from a graph, or None."""
    backend = model.backend
    if not getattr(backend, "graphs", False):
        return f"{backend.name} has no CUDA graphs (CuPy or torch on a CUDA device have them)"
    if dist is not None:
        return "a data-parallel step sums gradients over the ranks between its kernels"
    if data.host is not None:
        return "streamed data are gathered on the host, batch by batch"
    if anomaly:
        return "detect_anomaly reads every layer's values on the host"
    mixed = model.precision
    if mixed is not None and mixed.scaled:
        return "float16's loss scaling reads whether each step's gradients were finite"
    if schedules.parts(opt.lr)[1] is None:
        return (
            f"the learning rate {opt.lr!r} is a plain function run on the host each step; "
            "use a schedule of bpgpu.schedules"
        )
    return None


class StepGraph:
    """An epoch's full batches as replays of one captured step.

    Parameters
    ----------
    model : Model
    data : Data
        The training data on the device (their arrays stay where they are for the fit).
    batches : Batches
        The epoch's batches (for the sample weights' shares of this epoch).
    batch_size : int
    metrics : bool
        Record each batch's summed cost and correct count (``train_metrics``).
    """

    def __init__(self, model, data, batches, batch_size: int, metrics: bool):
        self.model, self.data, self.batches = model, data, batches
        self.B, self.metrics = batch_size, metrics
        self.full = data.n // batch_size  # the short last batch runs eagerly
        self.graph = None
        self.key: tuple | None = None
        self.failed: str | None = None  # why the capture was refused (then: eager)
        xp, dev = model.xp, model.backend.device
        dtype = model.params[0].dtype
        i64 = xp.int64
        self.perm = xp.arange(data.n, dtype=i64, device=dev)  # this epoch's order
        self.base = xp.arange(batch_size, dtype=i64, device=dev)  # rows of a batch
        self.iota = xp.arange(self.full, dtype=i64, device=dev)  # batch numbers
        self.pos = xp.zeros((), dtype=i64, device=dev)  # the batch the next replay runs
        self.t = xp.zeros((), dtype=i64, device=dev)  # the optimizer's step count
        self.E = xp.zeros(self.full, dtype=dtype, device=dev)  # each batch's summed cost
        self.right = xp.zeros(self.full, dtype=i64, device=dev)  # and correct rows
        self.lr = None  # the learning rate (or a schedule's scale) as a device scalar
        self.lr_value = None
        self.W = None  # this epoch's shares of the sample weights
        self.params: list = []
        self.slots: dict[str, list] = {}

    # ---- what the graph holds ---------------------------------------------------------

    def _key(self, opt) -> tuple:
        """What a captured step holds as constants besides its arrays."""
        return (programs.opt_key(opt), self.metrics, self.batches.shares is not None)

    def _set_lr(self, opt) -> None:
        """The rate of a built-in optimizer (a schedule's scale) into ``self.lr``,
        written in place so the graph reads the new value."""
        shape, value = schedules.parts(opt.lr)
        if opt.fused_rule() is None:
            return  # an optimizer of the user's own: its rate is part of its key
        xp, dev = self.model.xp, self.model.backend.device
        if self.lr is None or self.lr_value != (shape is None, value):
            dtype = self.model.params[0].dtype if shape is None else xp.float64
            new = xp.asarray(value, dtype=dtype, device=dev)
            if self.lr is None or self.lr.dtype != new.dtype:
                self.lr = new  # a new array: the step is captured again (the key says so)
            else:
                self.lr[...] = new
            self.lr_value = (shape is None, value)

    def _adopt(self, state: dict) -> None:
        """The network's weights and optimizer state into the graph's own arrays (copied
        only where they are other arrays), and the step count into ``t``."""
        model = self.model
        if not self.params:
            self.params = list(model.params)
            self.slots = {k: list(v) for k, v in state.items() if k != "t"}
        for mine, now in zip(self.params, model.params):
            if mine is not now:
                mine[...] = now
        for k, arrays in self.slots.items():
            for mine, now in zip(arrays, state[k]):
                if mine is not now:
                    mine[...] = now
        self.t[...] = int(state["t"])  # a device count (a compiled step's) read once
        model.params = list(self.params)

    # ---- the step ---------------------------------------------------------------------

    def _step(self, opt):
        """The step a graph captures: batch ``pos`` of ``perm``, trained in place. Every
        array it touches is bound here, as a graph holds them: one replaced later (not
        written into) is not seen, on a GPU or in the CPU tests' fake graph."""
        model, data, xp = self.model, self.data, self.model.xp
        ops, layers, cost = model.backend.ops, model.layers, model.cost
        hits = programs.hits(xp, layers[-1]) if self.metrics else None
        traced = programs.with_lr(opt, self.lr)
        metrics, B, precision = self.metrics, self.B, model.precision
        labels = data.labels if metrics else None
        X, T, W, perm, base, iota = data.X, data.T, self.W, self.perm, self.base, self.iota
        pos, t, E_all, right_all = self.pos, self.t, self.E, self.right
        params, slots = list(self.params), {k: list(v) for k, v in self.slots.items()}

        def step():
            rows = xp.take(perm, base + pos * B)
            Xb, Tb = xp.take(X, rows, axis=0), xp.take(T, rows, axis=0)
            Wb = None if W is None else xp.take(W, rows, axis=0)
            new, state, E, Y = core.train_step(
                ops,
                layers,
                cost,
                params,
                Xb,
                Tb,
                traced,
                {"t": t, **slots},
                metrics,
                weights=Wb,
                precision=precision,
            )
            _write_back(params, new)
            for k, arrays in slots.items():
                _write_back(arrays, state[k])
            t[...] = state["t"]
            here = iota == pos
            if metrics:
                E_all[...] = xp.where(here, E, E_all)
                if labels is not None:
                    right = hits(Y, xp.take(labels, rows, axis=0))
                    right_all[...] = xp.where(here, right, right_all)
            pos[...] = pos + 1

        return step

    # ---- an epoch ---------------------------------------------------------------------

    def run(self, perm, first: int, run, after_batch, stopped) -> tuple[list, list, int]:
        """Batches ``first .. full - 1`` of the epoch with order ``perm`` (None: in
        order), replayed; ``after_batch(bi)`` is called after each (per-batch
        callbacks), and ``stopped()`` asked. Returns ``(E, right, end)`` as
        :meth:`bpgpu.model.Model.epoch_spans` does: the per-batch costs and correct
        counts as device vectors, and the batch after the last one run. ``run.state``
        and the network's weights are the graph's arrays after it. A refused capture
        sets ``failed`` and returns after the batch that warmed it up."""
        model, xp, full = self.model, self.model.xp, self.full
        opt = run.opt
        self._adopt(run.state)
        if perm is None:
            self.perm[...] = xp.arange(self.data.n, dtype=xp.int64, device=model.backend.device)
        else:
            self.perm[...] = xp.astype(perm, xp.int64)
        shares = self.batches.shares
        if shares is not None:
            if self.W is None or self.W.shape != shares.shape:
                self.W = xp.asarray(shares, copy=True)
            else:
                self.W[...] = shares
        self.pos[...] = first
        t0, bi = int(run.state["t"]), first
        self._set_lr(opt)
        if self.graph is None or self.key != self._key(opt):
            step = self._step(opt)
            step()  # batch `first`, for real: kernels compiled, memory pools warm
            bi += 1
            try:
                self.graph = model.backend.capture(step)
                self.key = self._key(opt)
            except Exception as e:  # noqa: BLE001 - any refusal: the rest runs eagerly
                self.graph, self.failed = None, f"{type(e).__name__}: {e}"
            after_batch(first)
        while self.graph is not None and bi < full:
            if bi > first and stopped():
                break
            self.graph.replay()
            bi += 1
            after_batch(bi - 1)
        run.state = {"t": t0 + bi - first, **{k: list(v) for k, v in self.slots.items()}}
        model.params = list(self.params)
        E = [xp.asarray(self.E[first:bi], copy=True)] if self.metrics else []
        right = [xp.asarray(self.right[first:bi], copy=True)] if self._counts() else []
        return E, right, bi

    def _counts(self) -> bool:
        return self.metrics and self.data.labels is not None


def _write_back(mine: list, new: list) -> None:
    """The step's results into the graph's arrays, where the step made new ones."""
    for a, b in zip(mine, new):
        if a is not b:
            a[...] = b
