"""``solver="lbfgs"``: scipy's L-BFGS-B on the full batch, with the loss and its gradient
from one forward and backward pass on the device."""

from __future__ import annotations

import math
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from bpgpu.layers import role_of


class LBFGSFit:
    """The full-batch L-BFGS fit (a mixin of the estimators' base)."""

    def _lbfgs_objective(self, Xd, Td, w=None):
        """``fun(theta) -> (loss, gradient)`` for ``scipy.optimize.minimize``: ``theta``
        the parameters flattened in ``get_weights`` order (float64, on the host), the loss
        the batch-mean cost of the device data ``(Xd, Td)`` plus ``alpha / 2 |W|^2 / n``
        (scikit-learn's; with sample weights ``w`` the weighted mean, and their sum for
        ``n``), and its gradient from one forward and backward pass on the device; and
        ``unpack(theta)``, the parameters as device arrays."""
        model = self._net.model
        be = model.backend
        n = Xd.shape[0] if w is None else float(w.sum())
        Wd = None if w is None else be.asarray(w / w.sum(), model.dtype)  # each row's share
        shapes = [tuple(p.shape) for p in model.params]
        ends = np.cumsum([math.prod(s) for s in shapes])
        roles = role_of(model.layers)
        matrices = [i for i, role in enumerate(roles) if role == "W"]  # the L2 term's

        def split(theta):  # the host parameters, shaped
            return [p.reshape(s) for p, s in zip(np.split(theta, ends[:-1]), shapes)]

        def device(parts):
            return [be.asarray(np.ascontiguousarray(p), model.dtype) for p in parts]

        def unpack(theta):
            return device(split(theta))

        def fun(theta):
            parts = split(theta)
            E, grads = model.value_and_gradients(Xd, Td, device(parts), Wd)
            grads = [be.to_numpy(g).astype(np.float64) for g in grads]
            penalty = 0.0
            for i in matrices:
                penalty += float(np.vdot(parts[i], parts[i]))
                grads[i] = grads[i] + self.alpha / n * parts[i]
            loss = float(E) + 0.5 * self.alpha * penalty / n
            return loss, np.concatenate([g.reshape(-1) for g in grads])

        return fun, unpack

    def _fit_lbfgs(self, X, T, w=None) -> None:
        """Full-batch L-BFGS (``scipy.optimize``'s L-BFGS-B, as ``MLPClassifier``'s
        ``solver="lbfgs"``): ``max_iter`` iterations, ``max_fun`` loss evaluations,
        ``tol`` on the projected gradient; the data stay on the device, the parameters
        cross to the host and back at each evaluation."""
        from scipy.optimize import minimize

        model = self._net.model
        be = model.backend
        with be.context():
            Xd, Td = model.input(X), model.targets(T, X.shape[0])
            fun, unpack = self._lbfgs_objective(Xd, Td, w)
            theta = np.concatenate(
                [be.to_numpy(p).astype(np.float64).ravel() for p in model.params]
            )
            res = minimize(
                fun,
                theta,
                method="L-BFGS-B",
                jac=True,
                options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol},
            )
            model.params = unpack(res.x)
        self.n_iter_ = int(res.nit)
        self.loss_ = float(res.fun)
        if self.verbose:
            print(f"lbfgs: {res.nit} iterations, {res.nfev} evaluations, loss = {res.fun:.8f}")
        if res.status != 0:
            warnings.warn(
                f"lbfgs did not converge in {res.nit} iteration(s) (status {res.status}: "
                f"{res.message}); raise max_iter (now {self.max_iter}) or max_fun (now "
                f"{self.max_fun}), or scale the data",
                ConvergenceWarning,
                stacklevel=3,
            )
