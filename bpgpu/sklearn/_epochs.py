"""scikit-learn's stochastic solvers (``sgd``, ``adam``) on bpgpu's one trainer: the
epochs are :class:`bpgpu.trainer.Trainer`'s; what scikit-learn decides between epochs
(its reported loss with the L2 term, ``tol`` and ``n_iter_no_change``, ``early_stopping``
on a validation split, the ``adaptive`` and ``invscaling`` learning rates) is the
callback :class:`SklearnEpochs`."""

from __future__ import annotations

import math
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from bpgpu.callbacks import Callback
from bpgpu.history import History
from bpgpu.precision import scaler_state
from bpgpu.runstate import Run
from bpgpu.settings import Settings
from bpgpu.training import train_epochs


class _Permutations:
    """Each epoch's order from the estimator's ``random_state`` (a NumPy RandomState),
    as scikit-learn draws it; the trainer asks for nothing else of it."""

    def __init__(self, random_state):
        self.random_state = random_state

    def permutation(self, n: int) -> np.ndarray:
        return self.random_state.permutation(n)

    def state(self) -> None:  # no checkpoints: nothing to record
        return None


class SklearnEpochs(Callback):
    """scikit-learn's bookkeeping at the end of each epoch of ``est``'s fit: ``loss_``
    and ``loss_curve_``, ``n_iter_`` and ``t_``, the no-improvement counter against
    ``tol`` (on the validation score with ``early_stopping``, else the training loss),
    ``invscaling``'s rate, ``adaptive``'s division by 5; True stops the fit."""

    per_batch = False

    def __init__(self, est, weight: float, n: int, validation):
        # weight: what the L2 term is divided by (the batch's size, or expected weight)
        self.est, self.weight, self.n, self.validation = est, weight, n, validation
        self.converged = False  # stopped by the no-improvement rule

    def on_epoch_end(self, net, epoch: int, logs: dict) -> bool:
        est, model = self.est, net.model
        penalty = float(est._l2_penalty(model.xp, model.params, self.weight))
        # scikit-learn reports a regression's squared error averaged over the targets
        # (its steps sum over them, as ours)
        loss = logs["loss"] / est._reported_outputs() + penalty
        est.n_iter_ += 1
        est.t_ += self.n
        est.loss_ = loss
        est.loss_curve_.append(loss)
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {loss:.8f}")
        early = self.validation is not None
        est._update_no_improvement_count(early, *(self.validation or (None, None, None)))
        if est.solver == "sgd" and est.learning_rate == "invscaling":
            est._opt.lr = est.learning_rate_init / (est.t_ + 1) ** est.power_t
        if est._no_improvement_count > est.n_iter_no_change:
            if not est._slow_down(early):
                self.converged = True
                return True
            est._no_improvement_count = 0
        return False


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
        batch = self._batch(X.shape[0])
        # scikit-learn divides the L2 term by the batch's total sample weight (its size
        # without weights): here by the expected total, batch * mean weight, which is
        # the total itself for a full batch, so a weight of 2 is a repeated row there
        weight = batch if w is None else batch * float(np.mean(w))
        net, model = self._net, self._net.model
        if self._opt is None or not incremental:  # as scikit-learn: a new one every fit
            self._opt = self._optimizer(batch)
            self._opt_state = self._opt.init(model.params)
            if model.precision is not None and model.precision.scaled:  # float16's scale
                self._opt_state["scaler"] = scaler_state(model.xp, model.backend.device)
        self._opt.weight_decay = self.alpha / weight
        st = Settings(
            epochs=1 if incremental else self.max_iter,
            batch_size=batch,
            validation_split=0.0,
            shuffle=bool(self.shuffle),
            patience=None,
            min_delta=0.0,
            seed=0,  # unused: the order comes from random_state
            optimizer=self._opt.config(),
        )
        run = Run(self._opt, self._opt_state, _Permutations(self._random_state), History())
        watch = SklearnEpochs(self, weight, X.shape[0], (X_val, y_val, w_val) if early else None)
        try:
            h = train_epochs(net, X, T, st, run, [watch], sample_weight=w)
        except FloatingPointError as e:
            if not (early and getattr(self, "_best_params", None) is not None):
                raise ValueError(
                    "Solver produced non-finite parameter weights. The input data may "
                    "contain large values and need to be preprocessed."
                ) from e
            h = self._diverged(e)  # early stopping: the best weights, as scikit-learn ends
        self._opt_state = run.state
        if h.interrupted:
            warnings.warn("Training interrupted by user.", stacklevel=3)
        elif not incremental and not watch.converged and self.n_iter_ == self.max_iter:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached "
                "and the optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=3,
            )
        if early and getattr(self, "_best_params", None) is not None:
            net.model.params = self._best_params
            self._best_params = None

    def _check_validation_size(self, n: int, y) -> None:
        """Refuse, before anything changes, an early-stopping split too small to score:
        R^2 of one row is undefined (every epoch's score would be NaN, with a warning),
        and a stratified split needs a row of every class."""
        held = math.ceil(self.validation_fraction * n)  # as train_test_split takes it
        need, why = (2, "R^2 needs at least 2") if self._needs_two_to_score() else (1, "")
        if self._stratify(y):
            need, why = 2, "a stratified split needs one of each of the 2 classes"
        if held < need:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} of {n} samples holds out "
                f"{held} for early stopping's validation score; {why}. Pass a larger "
                "validation_fraction or more samples, or early_stopping=False"
            )

    def _needs_two_to_score(self) -> bool:
        return False  # accuracy scores one row; the regressor's R^2 does not

    def _batch(self, n: int) -> int:
        """The batch size: ``"auto"`` is ``min(200, n)``; a size past ``n`` is clipped,
        with scikit-learn's warning."""
        if self.batch_size == "auto":
            return min(200, n)
        if self.batch_size > n:
            warnings.warn(
                "Got `batch_size` less than 1 or larger than sample size. It is going "
                "to be clipped",
                stacklevel=4,
            )
        return int(np.clip(self.batch_size, 1, n))

    def _diverged(self, error: FloatingPointError):
        """A fit with early stopping whose loss stopped being finite: the epoch is
        recorded as scikit-learn records one (a NaN loss and validation score), the fit
        ends with the best validation score's weights (put back by the caller) and says
        so, as scikit-learn's fit ends rather than raising."""
        self.loss_curve_.append(np.nan)
        self.validation_scores_.append(np.nan)
        self.n_iter_ += 1
        warnings.warn(
            f"the loss stopped being finite in iteration {self.n_iter_} ({error}); the "
            f"weights of the best validation score ({self.best_validation_score_:.6g}) are "
            "kept. Lower learning_rate_init or scale the inputs",
            ConvergenceWarning,
            stacklevel=4,
        )
        return History(interrupted=False)

    def _slow_down(self, early: bool) -> bool:
        """``n_iter_no_change`` epochs without improvement: adaptive SGD divides the
        learning rate by 5 and goes on (True); anything else stops (False)."""
        what = "Validation score" if early else "Training loss"
        msg = (
            f"{what} did not improve more than tol={self.tol:f} for "
            f"{self.n_iter_no_change} consecutive epochs."
        )
        adaptive = self.solver == "sgd" and self.learning_rate == "adaptive"
        if adaptive and self._opt.lr > 1e-6:
            self._opt.lr /= 5.0
            if self.verbose:
                print(msg + f" Setting learning rate to {self._opt.lr:f}")
            return True
        if self.verbose:
            print(msg + (" Learning rate too small. Stopping." if adaptive else " Stopping."))
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
