"""scikit-learn's training loop for the stochastic solvers (``sgd``, ``adam``): epochs of
bpgpu steps on the device, ``tol`` and ``n_iter_no_change``, ``early_stopping`` on a
validation split, the learning-rate schedules."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from bpgpu._host import batch_shares
from bpgpu.batches import Batches


class StochasticFit:
    """The epochs of ``solver="sgd"`` and ``"adam"`` (a mixin of the estimators' base)."""

    def _init_epochs(self) -> None:
        """The stochastic solvers' loss curve and early-stopping state, from scratch."""
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None

    def _fit_stochastic(self, X, y, T, incremental: bool, w=None) -> None:
        if not hasattr(self, "loss_curve_"):  # warm from an L-BFGS fit: epochs start here
            self._init_epochs()
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        self.n_iter_ = 0  # this call's iterations, as scikit-learn's (t_ goes on counting)
        early = self.early_stopping
        X_val = y_val = w_val = None
        if early:
            stratify = y if self._stratify(y) else None
            parts = train_test_split(
                X,
                T,
                y,
                *([] if w is None else [w]),
                random_state=self._random_state,
                test_size=self.validation_fraction,
                stratify=stratify,
            )
            X, X_val, T, _, y, y_val = parts[:6]
            if w is not None:
                w, w_val = parts[6:]
        n = X.shape[0]
        if self.batch_size == "auto":
            batch = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than sample size. It is going "
                    "to be clipped",
                    stacklevel=3,
                )
            batch = int(np.clip(self.batch_size, 1, n))
        net, model = self._net, self._net.model
        if self._opt is None or not (self.warm_start or incremental):
            self._opt = self._optimizer(batch)
            self._opt_state = self._opt.init(model.params)
        self._opt.weight_decay = self.alpha / batch
        opt, xp, be = self._opt, model.xp, model.backend
        with be.context():
            Xd = model.input(X)
            Td = model.targets(T, n)
            batches = Batches(xp, [Xd, Td, None], batch)  # the third: each row's share
            with be.threads(batch * max(layer.n_in * layer.n_out for layer in model.layers)):
                for _ in range(self.max_iter):
                    perm = self._random_state.permutation(n) if self.shuffle else None
                    perm_d = None if perm is None else be.asarray(perm)
                    if w is not None:  # of its batch's weight, in this epoch's batches
                        shares = batch_shares(w, perm, batches.rows)
                        batches.arrays[2] = be.asarray(shares, model.dtype)
                    losses, first = [], 0
                    if be.compiles and n >= batch:  # JAX: one program for all
                        order = xp.arange(n, device=be.device) if perm_d is None else perm_d
                        self._opt_state, losses, _, first = model.epoch_spans(
                            Xd,
                            Td,
                            None,
                            order,
                            batch,
                            0,
                            n // batch,
                            opt,
                            self._opt_state,
                            True,
                            lambda: False,
                            batches.arrays[2],
                        )
                    for Xb, Tb, Wb in batches.epoch(perm_d, first):
                        self._opt_state, E, _ = model.step(
                            Xb, Tb, opt, self._opt_state, True, weights=Wb
                        )
                        losses.append(E)  # B times the batch's (weighted) mean cost
                    penalty = self._l2_penalty(xp, model.params, batch)
                    E = xp.concat([xp.reshape(v, (-1,)) for v in losses])  # scalars, vectors
                    # the epoch's read; scikit-learn reports a regression's squared
                    # error averaged over the targets (its steps sum over them, as ours)
                    loss = float(xp.sum(E) / n / self._reported_outputs() + penalty)
                    self.n_iter_ += 1
                    self.t_ += n
                    self.loss_ = loss
                    self.loss_curve_.append(loss)
                    if self.verbose:
                        print(f"Iteration {self.n_iter_}, loss = {loss:.8f}")
                    self._update_no_improvement_count(early, X_val, y_val, w_val)
                    if self.solver == "sgd" and self.learning_rate == "invscaling":
                        opt.lr = self.learning_rate_init / (self.t_ + 1) ** self.power_t
                    if self._no_improvement_count > self.n_iter_no_change:
                        if not self._slow_down(early):
                            break
                        self._no_improvement_count = 0
                    if incremental:
                        break
                    if self.n_iter_ == self.max_iter:
                        warnings.warn(
                            f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached "
                            "and the optimization hasn't converged yet.",
                            ConvergenceWarning,
                            stacklevel=3,
                        )
        if early and getattr(self, "_best_params", None) is not None:
            net.model.params = self._best_params
            self._best_params = None

    def _slow_down(self, early: bool) -> bool:
        """``n_iter_no_change`` epochs without improvement: adaptive SGD divides the
        learning rate by 5 and goes on (True); anything else stops (False)."""
        what = "Validation score" if early else "Training loss"
        msg = (
            f"{what} did not improve more than tol={self.tol:f} for "
            f"{self.n_iter_no_change} consecutive epochs."
        )
        if self.solver == "sgd" and self.learning_rate == "adaptive" and self._opt.lr > 1e-6:
            self._opt.lr /= 5.0
            if self.verbose:
                print(msg + f" Setting learning rate to {self._opt.lr:f}")
            return True
        if self.verbose:
            print(msg + " Stopping.")
        return False

    def _update_no_improvement_count(self, early: bool, X_val, y_val, w_val=None) -> None:
        if early:
            score = self._score(X_val, y_val, w_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_params = self._net.model.copy(self._net.model.params)
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            self.best_loss_ = min(self.best_loss_, self.loss_curve_[-1])
