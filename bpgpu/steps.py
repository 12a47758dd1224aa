"""The training step and evaluation, as methods the network inherits.

Split from :mod:`bpgpu.network` (the math: forward, backward) along the seam of who
calls it: these are driven by :func:`bpgpu.training.fit` and ``MLP.evaluate``, batch by
batch, on data already validated and on the device. Nothing here syncs with the host
except where a method says so.
"""

from __future__ import annotations

import math
from typing import Any


def _subtract_gradient(D: Any, Y: Any, W: Any) -> bool:
    """Plain SGD's weight update from a prescaled error: ``W -= D^T Y``, eq. (10)."""
    W -= D.T @ Y
    return True


class TrainingSteps:
    """Mixin of :class:`bpgpu.MLP`: one optimizer step, accuracy, device-side evaluation."""

    def _has_accuracy(self) -> bool:
        """Accuracy is defined for several outputs (argmax) or one bounded output."""
        r = self.activations[-1].output_range
        return self.sizes[-1] > 1 or (math.isfinite(r.lo) and math.isfinite(r.hi))

    def _labels(self, Y: Any) -> Any:
        """Class labels from outputs: argmax, or a threshold at mid-range for one unit."""
        xp = self.xp
        if self.sizes[-1] > 1:
            return xp.argmax(Y, axis=1)
        r = self.activations[-1].output_range
        mid = (r.lo + r.hi) / 2 if math.isfinite(r.lo) and math.isfinite(r.hi) else 0.5
        return xp.astype(Y[:, 0] >= mid, xp.int64)

    def _correct(self, Y: Any, labels: Any) -> Any:
        """Number of rows whose predicted class is ``labels``, a 0-d integer device array."""
        return self.xp.count_nonzero(self._labels(Y) == labels)

    def _train_step(
        self,
        Xb: Any,
        Tb: Any,
        Lb: Any,
        opt: Any,
        state: dict,
        decay: list,
        anomaly=None,
        metrics: bool = True,
    ):
        """One optimizer step on a device batch (``Lb``: its class labels, or None).

        Returns the summed cost and the number right as device scalars (None and None
        when ``metrics`` is False): no sync, unless ``anomaly`` = (epoch, batch) asks
        to check every layer (one sync per tensor).
        """
        xp, act = self.xp, self.activations[-1]
        params = self._params
        paths = self.backend.fast_paths()  # looked up once per step
        fast = paths.get
        Xs, Ys = self._forward(params, Xb, last=False, paths=paths)
        a = self._layer(params, len(self.activations) - 1)[2]
        metrics = metrics or anomaly is not None  # the anomaly check reads the loss
        lr = opt.prescale()  # plain SGD: lr / B scales the output error once
        scale = (1.0 if lr is None else lr) / Xb.shape[0]
        Y, loss_sum, D = self.cost.train_output(xp, act, Xs[-1], Tb, a, metrics, scale, fast)
        Ys.append(Y)
        # prescaled SGD updates each W as soon as its layer is done (W -= D^T Y; one
        # GEMM with beta = 1 on CuPy and torch), so one weight gradient at a time exists
        # instead of all of them, and b -= sum(D) is one GEMV where the backend has it;
        # not in anomaly mode, which checks every gradient first
        gemm = bias = None
        if lr is not None and anomaly is None:
            gemm, bias = fast("sgd_gemm") or _subtract_gradient, fast("sgd_bias")
        grads = self._backward(params, Xs, Ys, Tb, scale, D, gemm, bias, paths)[0]
        if anomaly is not None:
            self._check_anomaly(anomaly, Xs, Ys, loss_sum, grads)
        update = None if lr is not None else fast("opt_update")
        opt.step(xp, params, grads, state, decay, update, lr is not None)
        return loss_sum, None if Lb is None or not metrics else self._correct(Y, Lb)

    def _finite_weights(self) -> bool:
        """True when every parameter is finite (one host read)."""
        xp = self.xp
        ok = [xp.all(xp.isfinite(p)) for p in self._params]
        return bool(xp.all(xp.stack(ok)))

    def _check_anomaly(self, where, Xs, Ys, loss_sum, grads) -> None:
        """Raise naming the first layer whose values or gradients are not finite."""
        xp = self.xp
        epoch, batch = where

        def bad(a) -> bool:
            return not bool(xp.all(xp.isfinite(a)))

        place = None
        for l, act in enumerate(self.activations, start=1):
            if bad(Xs[l - 1]):
                place = f"the weighted input X^{l} of layer {l} ({act.name})"
            elif bad(Ys[l]):
                place = f"the output Y^{l} of layer {l} ({act.name})"
            if place:
                break
        if place is None and bad(loss_sum):
            place = f"the {self.cost.name} cost"
        if place is None:
            from bpgpu.io import param_names

            for name, g in zip(param_names([a.name for a in self.activations]), grads):
                if bad(g):
                    place = f"the gradient d{name}"
                    break
        if place is not None:
            raise FloatingPointError(
                f"anomaly in epoch {epoch}, batch {batch}: {place} is not finite; the "
                "weights are those before this batch. Lower the learning rate or "
                "standardise the inputs"
            )

    def _evaluate_device(self, Xd: Any, Td: Any, chunk: int = 8192) -> tuple[float, float]:
        """Mean loss and accuracy of validated device data, in chunks; one sync at the end."""
        xp, act = self.xp, self.activations[-1]
        n = Xd.shape[0]
        total = xp.zeros((), dtype=Xd.dtype, device=self.backend.device)
        correct = xp.zeros((), dtype=xp.int64, device=self.backend.device)
        for i in range(0, n, chunk):
            j = min(i + chunk, n)
            Xs, Ys = self._forward(self._params, Xd[i:j, :])
            Tc = Td[i:j, :]
            total = total + xp.sum(self.cost.per_sample(xp, act, Xs[-1], Ys[-1], Tc))
            if self._has_accuracy():
                correct = correct + self._correct(Ys[-1], self._labels(Tc))
        acc = float(correct) / n if self._has_accuracy() else math.nan
        return float(total) / n, acc
