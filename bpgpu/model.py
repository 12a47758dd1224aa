"""A network's math bound to one backend and dtype: the narrow interface of training.

:class:`Model` holds the layers, the cost, the backend and the current parameters, and
offers what ``MLP``, ``fit``, ``gradcheck`` and checkpoints need, by name: validated
device data in, outputs, losses, gradients, one training step, evaluation. The math is
:mod:`bpgpu.core`'s (functional); a step replaces ``params`` with the new list the core
returns (the same arrays, updated in place, on libraries that allow it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from bpgpu import core, programs, schedules
from bpgpu.inputs import check_input, check_targets
from bpgpu.layers import Dense, param_names


class Model:
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
        return forward_cost(self.backend.ops, self.layers, self.cost, params, X, T)[0]

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

    # ---- classes and evaluation ----------------------------------------------------

    def _bounded_output(self) -> bool:
        """Whether the output activation's range is bounded (softmax, sigmoid, tanh, ...)."""
        return programs.bounded(self.layers[-1])

    def has_accuracy(self) -> bool:
        """Accuracy is defined for several outputs (argmax) or one bounded output."""
        return self.sizes[-1] > 1 or self._bounded_output()

    def accuracy_kind(self, T: Any) -> str | None:
        """What accuracy means for the validated targets ``T`` (one device read where the
        targets decide it, none where the output layer does):

        - ``"classes"``: the argmax of the outputs (one unit: its threshold) against the
          targets' classes; for a bounded output layer (softmax, sigmoid, tanh, ...), and
          for an unbounded one (identity, ReLU, ...) with several outputs only when every
          target row is one-hot (class labels);
        - ``"multilabel"``: several bounded outputs whose targets are each the low or the
          high end of the range (0 or 1 for a sigmoid) and some row is not one-hot:
          every unit is a yes or a no, and a row is right when all of them are;
        - None: no accuracy (regression targets)."""
        return self.kind_from([self.target_facts(T)])

    def targets_decide(self) -> bool:
        """Whether the targets decide what accuracy means (else the output layer does:
        none, or classes for one unit, softmax)."""
        if not self.has_accuracy():
            return False
        top = self.layers[-1]
        separate = top.activation.df is not None  # softmax's units are one choice
        return not self._bounded_output() or (top.n_out > 1 and separate)

    def target_facts(self, T: Any) -> tuple[bool, bool]:
        """``(two_valued, one_hot)`` of validated targets: every value the low or the high
        end of a bounded output's range; every row one-hot (one 1 and 0s, or one high
        end and low ends). One program and one device read, where the targets decide
        (:meth:`kind_from`); elsewhere nothing is read."""
        if not self.targets_decide():
            return True, True
        xp = self.xp
        r = self.layers[-1].activation.output_range
        lo, hi = (r.lo, r.hi) if self._bounded_output() else (0.0, 1.0)

        def make():
            def each(T, a, b):  # (every value a or b, and every row one b)
                ends = xp.all((T == a) | (T == b))
                return ends, ends & xp.all(xp.sum(xp.astype(T == b, T.dtype), axis=1) == 1)

            def facts(T):
                ends, hot = each(T, lo, hi)
                return xp.stack([ends, hot | each(T, 0.0, 1.0)[1]])

            return facts

        two_valued, one_hot = self.backend.to_numpy(self.program(("facts", lo, hi), make)(T))
        return bool(two_valued), bool(one_hot)

    def kind_from(self, facts: Sequence[tuple[bool, bool]]) -> str | None:
        """:meth:`accuracy_kind` from the :meth:`target_facts` of every chunk of a data set
        (read a chunk at a time; none needed where :meth:`targets_decide` is False)."""
        two_valued = all(ends for ends, _ in facts)
        one_hot = all(hot for _, hot in facts)
        if not self.has_accuracy():
            return None
        if not self.targets_decide():
            return "classes"
        if not self._bounded_output():
            return "classes" if one_hot else None
        return "classes" if one_hot or not two_valued else "multilabel"

    def labels(self, Y: Any, multilabel: bool = False) -> Any:
        """Class labels from outputs: argmax, or a threshold at mid-range for one unit;
        ``multilabel``: every unit's threshold, ``(B, n_L)`` booleans (one program on a
        compiling backend, as :meth:`correct`)."""
        xp, top = self.xp, self.layers[-1]
        make = lambda: programs.labeller(xp, top, multilabel)  # noqa: E731
        return self.program(("labels", top, multilabel), make)(Y)

    def target_labels(self, T: Any, kind: str | None) -> Any:
        """What :meth:`correct` compares outputs with, from validated targets of
        :meth:`accuracy_kind` ``kind``: class labels, or multi-label rows."""
        return self.labels(T, multilabel=kind == "multilabel")

    def correct(self, Y: Any, labels: Any) -> Any:
        """Number of rows whose predicted class is ``labels`` (multi-label rows ``(B, n_L)``:
        every unit right), a 0-d integer device array."""
        xp, top = self.xp, self.layers[-1]
        return self.program(("correct", top), lambda: programs.hits(xp, top))(Y, labels)

    def split(self, X: Any, T: Any, keep: Any, held: Any) -> tuple:
        """``(X[keep], T[keep], X[held], T[held])``: the training and validation rows of
        device data (one program on a compiling backend, not four)."""
        xp = self.xp

        def make():
            def split(X, T, keep, held):
                return tuple(xp.take(A, i, axis=0) for i in (keep, held) for A in (X, T))

            return split

        return self.program(("split",), make)(X, T, keep, held)

    def evaluate(
        self,
        X: Any,
        T: Any,
        chunk: int = 8192,
        accuracy: str | None = "auto",
        weights: Any = None,
        weigh_accuracy: bool = False,
    ) -> tuple[float, float]:
        """Mean loss and accuracy of validated device data, in chunks; one sync at the end.
        On a compiling backend each chunk is one program (compiled once per shape).
        ``accuracy``: what it means, as :meth:`accuracy_kind` says ("auto": from ``T``);
        NaN where it is None. ``weights``: one per row (sample weights, a device array):
        the loss is their weighted mean, and so is the accuracy with ``weigh_accuracy``."""
        kind = self.accuracy_kind(T) if accuracy == "auto" else accuracy
        xp, n = self.xp, X.shape[0]
        weighted = weights is not None
        key = ("sums", tuple(self.layers), self.cost, kind, weighted, weighted and weigh_accuracy)
        sums = self.program(key, lambda: self._chunk_sums(kind, weighted, weigh_accuracy))
        totals, rights, masses = [], [], []
        for i in range(0, n, chunk):
            j = min(i + chunk, n)
            if i == 0 and j == n:
                part = (X, T, weights)
            else:
                part = (X[i:j, :], T[i:j, :], weights[i:j] if weighted else None)
            E, right, mass = sums(self.params, *part)
            totals.append(E)
            rights.append(right)
            masses.append(mass)

        def total(parts):
            return parts[0] if len(parts) == 1 else xp.sum(xp.stack(parts))

        # the rows, or their total weight (0 only in a chunk of a larger set: its sums are 0)
        W = (float(total(masses)) or 1.0) if weighted else n
        acc = math.nan
        if kind is not None:
            acc = float(total(rights)) / (W if weighted and weigh_accuracy else n)
        return float(total(totals)) / W, acc

    def _chunk_sums(self, kind: str | None, weighted: bool = False, weigh_accuracy=False):
        """``sums(params, X, T, w) -> (summed cost, correct count, total weight)`` of a
        chunk, accuracy of :meth:`accuracy_kind` ``kind`` (the count 0 where it is None);
        ``weighted``: the cost (and with ``weigh_accuracy`` the count) summed times the
        rows' weights ``w``."""
        xp = self.xp
        ops, layers, cost = self.backend.ops, self.layers, self.cost
        # not self's: the program outlives self
        right_rows = programs.right_rows(xp, layers[-1])
        labels = programs.labeller(xp, layers[-1], kind == "multilabel")

        def sums(params, X, T, w):
            E, Ys = forward_cost(ops, layers, cost, params, X, T)
            right = xp.zeros((), dtype=xp.int64)
            if kind is not None:
                ok = right_rows(Ys[-1], labels(T))
                if weighted and weigh_accuracy:
                    right = xp.sum(xp.astype(ok, w.dtype) * w)
                else:
                    right = xp.count_nonzero(ok)
            if not weighted:
                return xp.sum(E), right, xp.zeros((), dtype=E.dtype)
            return xp.sum(E * w), right, xp.sum(w)

        return sums

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


def forward_cost(ops, layers, cost, params, X, T) -> tuple[Any, list]:
    """Per-sample cost ``(B,)`` (from the logits where the pair has a shortcut) of a
    device batch and every layer's output ``Ys`` (``Ys[0]`` the input): the loss as
    :meth:`Model.loss`, the scoring program and ``gradcheck`` compute it."""
    Xs, Ys = core.forward(ops, layers, params, X)
    return cost.per_sample(ops.xp, layers[-1].activation, Xs[-1], Ys[-1], T), Ys
