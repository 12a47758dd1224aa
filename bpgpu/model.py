"""A network's math bound to one backend and dtype: the narrow interface of training.

:class:`Model` holds the layers, the cost, the backend and the current parameters, and
offers what ``MLP``, ``fit``, ``gradcheck`` and checkpoints need, by name: validated
device data in, outputs, losses, gradients, one training step, and (from
:class:`bpgpu.scoring.Scoring`) what the targets mean and the evaluation. The math is
:mod:`bpgpu.core`'s (functional); a step replaces ``params`` with the new list the core
returns (the same arrays, updated in place, on libraries that allow it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bpgpu import core, programs, schedules
from bpgpu.inputs import check_input, check_targets
from bpgpu.layers import Dense, param_names
from bpgpu.scoring import Scoring


class Model(Scoring):
    """Layers, cost and parameters on one backend (see the module docstring).

    Parameters
    ----------
    layers : list of Dense
    cost : Cost
    backend : Backend
    dtype : {"float32", "float64"}
    params : list of backend arrays, in :mod:`bpgpu.layers` order
    scaling : (mean, scale) device arrays or None
        Input standardisation applied by :meth:`input`.

    Attributes
    ----------
    classes : numpy.ndarray or None
        The labels of the outputs (host values, in output order) that :meth:`targets`
        maps class labels through; None: the labels are the output indices.
    """

    def __init__(self, layers: Sequence[Dense], cost, backend, dtype: str, params, scaling=None):
        self.layers = list(layers)
        self.cost = cost
        self.backend = backend
        self.xp = backend.xp  # resolved once per network, never per op
        self.dtype = dtype
        self.params = list(params)
        self.scaling = scaling
        self.classes = None
        self.sizes = [layers[0].n_in] + [layer.n_out for layer in layers]
        self.names = param_names(layers)

    # ---- data in -----------------------------------------------------------------

    def input(self, X: Any, what: str = "X", checked: bool = False) -> Any:
        """``X`` as a validated, standardised ``(B, n_0)`` device array (``checked``:
        its values were checked on the host, so the device is not asked again)."""
        return check_input(self, X, what, checked)

    def targets(self, T: Any, B: int, checked: bool = False) -> Any:
        """Targets as a validated ``(B, n_L)`` device array (labels become one-hot;
        ``checked`` as for :meth:`input`)."""
        return check_targets(self, T, B, checked)

    # ---- the math on validated device data ---------------------------------------

    def outputs(self, X: Any) -> Any:
        """``Y^L`` of a device batch (one program on a compiling backend)."""
        ops, layers = self.backend.ops, self.layers

        def make():
            return lambda params, X: core.forward(ops, layers, params, X)[1][-1]

        return self.program(("outputs", tuple(layers)), make)(self.params, X)

    def per_sample(self, X: Any, T: Any, params: Sequence[Any] | None = None) -> Any:
        """Per-sample cost ``(B,)`` (from the logits where the pair has a shortcut) with
        ``params`` (default: the model's)."""
        params = self.params if params is None else params
        return core.forward_cost(self.backend.ops, self.layers, self.cost, params, X, T)[0]

    def loss(self, X: Any, T: Any, params: Sequence[Any] | None = None) -> Any:
        """Batch-mean cost, a 0-d device array (no host sync)."""
        return self.xp.mean(self.per_sample(X, T, params))

    def gradients(self, X: Any, T: Any) -> list:
        """d(batch-mean loss)/d(parameter), in parameter order."""
        ops = self.backend.ops
        return core.errors(ops, self.layers, self.cost, self.params, X, T, 1 / X.shape[0])[0]

    def value_and_gradients(
        self, X: Any, T: Any, params: Sequence[Any], weights: Any = None
    ) -> tuple[Any, list]:
        """The batch-mean cost (0-d) and its gradients at ``params``, in one forward and
        backward pass (one program on a compiling backend): what a full-batch optimizer
        (L-BFGS) asks at every point it tries. ``weights``: each row's share of the
        total sample weight (summing to 1): the weighted mean (:func:`bpgpu.core.output`)."""
        ops, layers, cost = self.backend.ops, self.layers, self.cost

        def make():
            def value_and_gradients(params, X, T, weights):
                B = X.shape[0]
                scale = 1 / B if weights is None else 1.0
                grads, _, E, _ = core.backward(
                    ops, layers, cost, params, X, T, scale, True, weights
                )
                return E / B, grads

            return value_and_gradients

        key = ("value_and_gradients", tuple(layers), cost)
        return self.program(key, make)(params, X, T, weights)

    def deltas(self, X: Any, T: Any) -> list:
        """Per-sample neuron errors ``D^l``, l = 1..L, eq. (7)-(9)."""
        return core.errors(self.backend.ops, self.layers, self.cost, self.params, X, T, 1.0)[1]

    def step(
        self,
        Xb,
        Tb,
        opt,
        state: dict,
        loss: bool = True,
        where=None,
        reduce=None,
        rows=None,
        weights=None,
    ):
        """One optimizer step on a device batch; ``self.params`` becomes the result.

        Returns ``(state, E, Y)``: the new optimizer state, the summed cost (None
        unless ``loss``) and the outputs, left on the device. ``where = (epoch, batch)``
        checks every layer first (anomaly mode: a sync per tensor). ``reduce`` and
        ``rows``: data-parallel training (:func:`bpgpu.core.train_step`; on a compiling
        backend two programs, :meth:`_parallel_step`). ``weights``: each row's share of
        its (global) batch's sample weight (:func:`bpgpu.sample_weights.batch_shares`,
        :func:`bpgpu.core.output`).
        """
        if where is None and reduce is None and self.backend.compiles:
            step = self._compiled_step(opt, loss)  # one program for the whole step
            args = (self.params, self._traced_t(state), Xb, Tb, self._lr(opt), weights)
            self.params, state, E, Y = step(*args)
            return state, E, Y
        if where is None and self.backend.compiles:
            return self._parallel_step(Xb, Tb, opt, state, loss, reduce, rows, weights)
        check = None if where is None else self._anomaly_check(where)
        self.params, state, E, Y = core.train_step(
            self.backend.ops,
            self.layers,
            self.cost,
            self.params,
            Xb,
            Tb,
            opt,
            state,
            loss,
            check,
            reduce,
            rows,
            weights,
        )
        return state, E, Y

    def _compiled_step(self, opt, loss: bool):
        """The core's ``train_step`` compiled by the backend (JAX: one XLA program,
        parameters and optimizer state donated), one per optimizer settings and
        ``loss``, shared by the networks of this structure (:func:`bpgpu.programs.shared`); a
        built-in optimizer's learning rate is an argument of the program (a schedule
        changes it without compiling again)."""
        ops, layers, cost = self.backend.ops, self.layers, self.cost

        def make():
            def step(params, state, Xb, Tb, lr, weights):
                o = programs.with_lr(opt, lr)
                return core.train_step(
                    ops, layers, cost, params, Xb, Tb, o, state, loss, weights=weights
                )

            return self.backend.compile(step, donate=(0, 1))

        return programs.shared(("step", *self._structure(), *programs.opt_key(opt), loss), make)

    def _parallel_step(self, Xb, Tb, opt, state: dict, loss: bool, reduce, rows: int, weights):
        """A data-parallel step on a compiling backend: this rank's gradients as one
        program, their sum over the ranks between programs (``reduce``), the optimizer's
        update as a second program (parameters and state donated). The same arithmetic
        as :func:`bpgpu.core.train_step`'s path for summed gradients."""
        ops, layers, cost = self.backend.ops, self.layers, self.cost

        def make():
            def grads(params, Xb, Tb, scale, weights, rows):
                G, _, E, Y = core.backward(
                    ops, layers, cost, params, Xb, Tb, scale, loss, weights, rows
                )
                return G, E, Y

            def update(params, state, grads, lr):
                o = programs.with_lr(opt, lr).at(state["t"], params[0].dtype)
                return ops.optimizer_step(o, o.fused_rule(), params, grads, state)

            compile = self.backend.compile
            return compile(grads), compile(update, donate=(0, 1))

        key = ("parallel", *self._structure(), *programs.opt_key(opt), loss)
        grads_of, update = programs.shared(key, make)
        scales = self.__dict__.setdefault("_scales", {})  # a device scalar per batch size
        if rows not in scales:
            dtype, dev = self.params[0].dtype, self.backend.device
            scales[rows] = [self.xp.asarray(v, dtype=dtype, device=dev) for v in (1 / rows, rows)]
        scale, R = scales[rows]
        if weights is not None:  # the shares take the place of 1 / rows
            G, E, Y = grads_of(self.params, Xb, Tb, 1.0, weights, R)
        else:  # the global batch's mean
            G, E, Y = grads_of(self.params, Xb, Tb, scale, None, None)
        G = reduce(list(G))
        self.params, state = update(self.params, self._traced_t(state), G, self._lr(opt))
        return state, E, Y

    def epoch_spans(
        self, X, T, L, order, batch_size: int, first, full, opt, state, loss, stop, W=None
    ):
        """Full batches ``first .. full - 1`` of an epoch whose rows are ``order`` (device
        indices) as compiled programs (:meth:`epoch`): one for all of them, or one per
        span where gathering them up front would take more than ``GATHER_BYTES``;
        ``stop()`` is asked after each. ``W``: each row's share of its batch's sample
        weight (None: unweighted). Returns ``(state, E, right, end)``: lists of the
        programs' per-batch vectors and the batch after the last one run."""
        B, n = batch_size, order.shape[0]
        row = sum(a.shape[1] * a.dtype.itemsize for a in (X, T)) + 8  # + a label
        row += 0 if W is None else W.dtype.itemsize
        upfront = row * B <= UPFRONT_BATCH_BYTES
        span = max(1, GATHER_BYTES // (row * B)) if upfront else full
        Es, rights = [], []
        for lo in range(first, full, span):
            hi = min(lo + span, full)
            idx = order if lo == 0 and hi * B == n else order[lo * B : hi * B]
            state, E, right = self.epoch(X, T, L, idx, B, opt, state, loss, upfront, W)
            Es.append(E)
            rights.append(right)
            if hi < full and stop():
                return state, Es, rights, hi
        return state, Es, rights, full

    def epoch(self, X, T, L, idx, batch_size: int, opt, state, loss, upfront: bool, W=None):
        """Full batches as one compiled program (a compiling backend only): ``idx`` the
        device indices of their rows, in order, gathered before the loop (``upfront``)
        or in it; ``self.params`` becomes the result. Returns ``(state, E, right)``
        with the per-batch costs and correct counts as device vectors. One program per
        optimizer, ``loss``, batch size, span and way of gathering."""
        ops, layers, cost, scan = self.backend.ops, self.layers, self.cost, self.backend.scan
        hits = programs.hits(self.xp, layers[-1])  # not self's: a program outlives self

        def make():
            def run(params, state, X, T, L, W, idx, lr):
                o = programs.with_lr(opt, lr)
                loop = core.train_batches(
                    ops, layers, cost, o, loss, hits, scan, batch_size, upfront
                )
                return loop(params, state, X, T, L, W, idx)

            return self.backend.compile(run, donate=(0, 1))

        key = ("epoch", *self._structure(), *programs.opt_key(opt), loss, batch_size, upfront)
        args = (self.params, self._traced_t(state), X, T, L, W, idx, self._lr(opt))
        self.params, state, E, right = programs.shared(key, make)(*args)
        return state, E, right

    def _structure(self) -> tuple:
        """What a training program of this network depends on besides its arguments:
        the backend, the layers (sizes, activations) and the cost; networks that agree
        on these run the same compiled programs."""
        return (self.backend, tuple(self.layers), self.cost)

    def _lr(self, opt) -> Any:
        """A built-in optimizer's learning rate, or its schedule's scale (1 unless a
        callback scaled it), as a device scalar for a compiled program to take as an
        argument: of the weights' dtype, a scale in float64 as the schedule computes
        (None: a subclass's is part of its program). Made again only when it changes."""
        if opt.fused_rule() is None:
            return None
        shape, value = schedules.parts(opt.lr)
        if value is None:  # a plain function: called inside the program, part of it
            return None
        known = self.__dict__.get("_lr_arg")
        if known is None or known[0] != (shape is None, value):
            dtype = self.params[0].dtype if shape is None else self.xp.float64
            arg = self.xp.asarray(value, dtype=dtype, device=self.backend.device)
            known = self._lr_arg = ((shape is None, value), arg)
        return known[1]

    def _traced_t(self, state: dict) -> dict:
        """``state`` with its step count as an int64 device scalar: a compiled program
        traces it (a Python int would be a constant, one program per step)."""
        if isinstance(state["t"], int):
            # on the device explicitly: JAX compiles a program again for an argument
            # that is not committed to a device, so a plain asarray here cost every
            # fit a second compile of its epoch (the outputs it feeds back are committed)
            t = self.xp.asarray(state["t"], dtype=self.xp.int64, device=self.backend.device)
            state = {**state, "t": t}
        return state

    # ---- data split on the device ---------------------------------------------------

    def split(self, X: Any, T: Any, keep: Any, held: Any) -> tuple:
        """``(X[keep], T[keep], X[held], T[held])``: the training and validation rows of
        device data (one program on a compiling backend, not four)."""
        xp = self.xp

        def make():
            def split(X, T, keep, held):
                return tuple(xp.take(A, i, axis=0) for i in (keep, held) for A in (X, T))

            return split

        return self.program(("split",), make)(X, T, keep, held)

    # ---- parameters ------------------------------------------------------------------

    def copy(self, arrays: Sequence[Any]) -> list:
        """Device copies of ``arrays`` (parameters or optimizer slots), which a step may
        update in place; one program on a compiling backend (JAX dispatched a copy per
        array: the epoch's snapshot was a third of a small fit's time per epoch)."""
        xp = self.xp

        def make():
            return lambda arrays: [xp.asarray(a, copy=True) for a in arrays]

        return self.program(("copy",), make)(list(arrays))

    def finite(self) -> bool:
        """True when every parameter is finite (one host read)."""
        return bool(self.finite_flag())

    def finite_flag(self) -> Any:
        """Whether every parameter is finite, as a device boolean (no host read yet);
        one program on a compiling backend (eagerly, JAX compiled two small ones per
        parameter shape)."""
        xp = self.xp

        def make():
            return lambda params: xp.all(xp.stack([xp.all(xp.isfinite(p)) for p in params]))

        return self.program(("finite",), make)(self.params)

    def program(self, key: tuple, make) -> Any:
        """``make()``'s function, built once per ``key`` and this backend and, on a
        compiling backend, compiled (one program per shape of its arguments, instead of
        one per eager operation); elsewhere it runs as it is. Shared by every network
        on the backend: ``key`` names all that the function depends on besides its
        arguments, and the function does not hold the network."""

        def build():
            fn = make()
            return self.backend.compile(fn) if self.backend.compiles else fn

        return programs.shared(("program", self.backend, *key), build)

    def _anomaly_check(self, where):
        """A check that raises naming the first layer whose values or gradients are not
        finite (one sync per tensor)."""
        xp = self.xp

        def bad(a) -> bool:
            return not bool(xp.all(xp.isfinite(a)))

        def check(Xs, Ys, E, grads) -> None:
            place = None
            for layer in self.layers:
                l, name = layer.index, layer.activation.name
                if bad(Xs[l - 1]):
                    place = f"the weighted input X^{l} of layer {l} ({name})"
                elif bad(Ys[l]):
                    place = f"the output Y^{l} of layer {l} ({name})"
                if place:
                    break
            if place is None and bad(E):
                place = f"the {self.cost.name} cost"
            if place is None:
                place = next(
                    (f"the gradient d{n}" for n, g in zip(self.names, grads) if bad(g)), None
                )
            if place is not None:
                epoch, batch = where
                raise FloatingPointError(
                    f"anomaly in epoch {epoch}, batch {batch}: {place} is not finite; the "
                    "weights are those before this batch. Lower the learning rate or "
                    "standardise the inputs"
                )

        return check


# How a compiled epoch gathers its batches' rows: a
# batch smaller than UPFRONT_BATCH_BYTES is gathered with all the others before the loop
# (one gather is much cheaper than hundreds of small ones), at most GATHER_BYTES at a
# time (a span: one program each); a larger batch is gathered inside the loop (an extra
# copy of the whole epoch would cost more than the gathers).
UPFRONT_BATCH_BYTES = 64 << 10
GATHER_BYTES = 256 << 20
