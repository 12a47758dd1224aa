"""Training as compiled programs, on a backend that compiles (JAX): a step, a
data-parallel step's two halves, and an epoch's full batches.

:class:`CompiledTraining` is the half of :class:`bpgpu.model.Model` that builds them.
Each program is made once per structure (backend, layers, cost), optimizer settings
and shapes, and shared by every network of that structure
(:func:`bpgpu.programs.shared`); the learning rate and the step count are arguments
(device scalars), so a schedule or a resumed count never compiles a program again.
"""

from __future__ import annotations

from typing import Any

from bpgpu import core, programs, schedules

# How a compiled epoch gathers its batches' rows: a
# batch smaller than UPFRONT_BATCH_BYTES is gathered with all the others before the loop
# (one gather is much cheaper than hundreds of small ones), at most GATHER_BYTES at a
# time (a span: one program each); a larger batch is gathered inside the loop (an extra
# copy of the whole epoch would cost more than the gathers).
UPFRONT_BATCH_BYTES = 64 << 10
GATHER_BYTES = 256 << 20


class CompiledTraining:
    """Compiled training programs: a base of :class:`bpgpu.model.Model` (which holds
    ``backend``, ``xp``, ``layers``, ``cost`` and ``params``)."""

    def _compiled_step(self, opt, loss: bool):
        """The core's ``train_step`` compiled by the backend (JAX: one XLA program,
        parameters and optimizer state donated), one per optimizer settings and
        ``loss``, shared by the networks of this structure (:func:`bpgpu.programs.shared`); a
        built-in optimizer's learning rate is an argument of the program (a schedule
        changes it without compiling again)."""
        ops, layers, cost, precision = self.backend.ops, self.layers, self.cost, self.precision

        def make():
            def step(params, state, Xb, Tb, lr, weights):
                o = programs.with_lr(opt, lr)
                return core.train_step(
                    ops,
                    layers,
                    cost,
                    params,
                    Xb,
                    Tb,
                    o,
                    state,
                    loss,
                    weights=weights,
                    precision=precision,
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
        precision = self.precision
        hits = programs.hits(self.xp, layers[-1])  # not self's: a program outlives self

        def make():
            def run(params, state, X, T, L, W, idx, lr):
                o = programs.with_lr(opt, lr)
                loop = core.train_batches(
                    ops, layers, cost, o, loss, hits, scan, batch_size, upfront, precision
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
        return (self.backend, tuple(self.layers), self.cost, self.precision)

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
