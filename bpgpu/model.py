"""A network's math bound to one backend and dtype: the narrow interface of training.

:class:`Model` holds the layers, the cost, the backend and the current parameters, and
offers what ``MLP``, ``fit``, ``gradcheck`` and checkpoints need, by name: validated
device data in, outputs, losses, gradients, one training step, (from
:class:`bpgpu.compiled_training.CompiledTraining`) a step or an epoch's full batches as
one compiled program, and (from :class:`bpgpu.scoring.Scoring`) what the targets mean
and the evaluation. The math is
:mod:`bpgpu.core`'s (functional); a step replaces ``params`` with the new list the core
returns (the same arrays, updated in place, on libraries that allow it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bpgpu import core, programs
from bpgpu.compiled_training import CompiledTraining
from bpgpu.inputs import check_input, check_targets
from bpgpu.layers import Dense, param_names
from bpgpu.scoring import Scoring


class Model(CompiledTraining, Scoring):
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
    precision : Precision or None
        Mixed precision of the steps and outputs (:mod:`bpgpu.precision`).

    Attributes
    ----------
    classes : numpy.ndarray or None
        The labels of the outputs (host values, in output order) that :meth:`targets`
        maps class labels through; None: the labels are the output indices.
    """

    def __init__(
        self,
        layers: Sequence[Dense],
        cost,
        backend,
        dtype: str,
        params,
        scaling=None,
        precision=None,
    ):
        self.layers = list(layers)
        self.cost = cost
        self.backend = backend
        self.xp = backend.xp  # resolved once per network, never per op
        self.dtype = dtype
        self.params = list(params)
        self.scaling = scaling
        self.precision = precision  # a bpgpu.precision.Precision, or None: full precision
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
        ops, layers, precision = self.backend.ops, self.layers, self.precision

        def make():
            return lambda params, X: core.outputs(ops, layers, params, X, precision)

        return self.program(("outputs", tuple(layers), precision), make)(self.params, X)

    def per_sample(self, X: Any, T: Any, params: Sequence[Any] | None = None) -> Any:
        """Per-sample cost ``(B,)`` (from the logits where the pair has a shortcut) with
        ``params`` (default: the model's)."""
        params = self.params if params is None else params
        ops = self.backend.ops
        return core.forward_cost(ops, self.layers, self.cost, params, X, T, self.precision)[0]

    def loss(self, X: Any, T: Any, params: Sequence[Any] | None = None) -> Any:
        """Batch-mean cost, a 0-d device array (no host sync)."""
        return self.xp.mean(self.per_sample(X, T, params))

    def gradients(self, X: Any, T: Any) -> list:
        """d(batch-mean loss)/d(parameter), in parameter order."""
        ops, B = self.backend.ops, X.shape[0]
        return core.errors(ops, self.layers, self.cost, self.params, X, T, 1 / B, self.precision)[0]

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
        ops = self.backend.ops
        return core.errors(ops, self.layers, self.cost, self.params, X, T, 1.0, self.precision)[1]

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
            self.precision,
        )
        return state, E, Y

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

    def eager_step(self):
        """:meth:`step` for one process on a backend that does not compile, without
        anomaly checks, as one function with the core's arguments bound once:
        ``step(Xb, Tb, opt, state, loss, weights) -> (state, E, Y)`` (on a small network
        the dispatch of :meth:`step` is a noticeable part of a step). None on a
        compiling backend: its step is a program (:meth:`step`)."""
        if self.backend.compiles:
            return None
        ops, layers, cost, train_step = self.backend.ops, self.layers, self.cost, core.train_step
        precision = self.precision

        def step(Xb, Tb, opt, state, loss, weights):
            self.params, state, E, Y = train_step(
                ops,
                layers,
                cost,
                self.params,
                Xb,
                Tb,
                opt,
                state,
                loss,
                weights=weights,
                precision=precision,
            )
            return state, E, Y

        return step

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
