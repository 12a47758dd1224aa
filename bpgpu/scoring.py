"""What targets mean and how well a network's outputs meet them, on the device.

:class:`Scoring` is the half of :class:`bpgpu.model.Model` that answers "what is an
accuracy for these targets" (classes, multi-label rows, or none for regression), turns
outputs and targets into labels and correct counts, and evaluates the loss and accuracy
of data a chunk at a time, each as one program on a compiling backend. It uses the
model's layers, cost, parameters, backend and compiled programs (``Model.program``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from bpgpu import core, programs


class Scoring:
    """Classes and evaluation: a base of :class:`bpgpu.model.Model`."""

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
            E, Ys = core.forward_cost(ops, layers, cost, params, X, T)
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
