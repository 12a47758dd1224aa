"""scikit-learn estimators on any bpgpu backend: ``BPClassifier`` and ``BPRegressor``.

They take ``MLPClassifier``'s and ``MLPRegressor``'s parameters, with the same names,
defaults and meanings, plus ``backend`` (``"auto"``: CuPy when a CUDA device works,
else NumPy) and ``dtype``; so changing one import moves a pipeline to the GPU::

    from bpgpu.sklearn import BPClassifier as MLPClassifier

scikit-learn is an optional extra (``pip install 'bpgpu[sklearn]'``); importing bpgpu never
imports it. The training loop is scikit-learn's (epochs, ``tol`` and
``n_iter_no_change``, ``early_stopping`` on a stratified validation split, the
``learning_rate`` schedules, ``warm_start``, ``partial_fit``); each step is bpgpu's
(:meth:`bpgpu.model.Model.step`), with the data on the device. ``solver="lbfgs"`` is
scipy's L-BFGS-B on the full batch, as scikit-learn's, with the loss and its gradient
from bpgpu's forward and backward pass (:meth:`bpgpu.model.Model.value_and_gradients`).
``sample_weight`` is scikit-learn's: each sample's error times its weight over its
batch's total weight (:func:`bpgpu.core.output`). What differs:

- the L2 penalty ``alpha`` enters each step as ``alpha / batch_size`` times ``W`` (so the
  last, shorter batch of an epoch gets the penalty of a full one), also with
  ``sample_weight`` (scikit-learn's divides by the batch's total weight);
- Adam and momentum are PyTorch's rules (the same for a constant learning rate; Adam
  puts ``epsilon`` after the bias correction), and weights start with bpgpu's
  initialisation (He for the ReLU family, Glorot otherwise);
- sparse inputs are made dense on the device;
- ``coefs_`` and ``intercepts_`` are copies of the network's weights in scikit-learn's
  layout (``coefs_[i]`` is ``(n_in, n_out)``); assigning them sets the network's;
- with several regression targets ``loss_`` sums the squared errors over them
  (scikit-learn's reported loss averages over them, its gradient does not).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

import bpgpu
from bpgpu import optimizers
from bpgpu._host import batch_shares
from bpgpu.batches import Batches
from bpgpu.network import rebuild

__all__ = ["BPClassifier", "BPRegressor"]

_ACTIVATIONS = {"logistic": "sigmoid"}  # scikit-learn's names that bpgpu spells otherwise


def _sparse_to_dense(X):
    return X.toarray() if hasattr(X, "toarray") else X


def _sample_weight(sample_weight, n: int) -> np.ndarray | None:
    """``sample_weight`` as float64 ``(n,)`` (a number: that weight for every sample), or
    None; weights that are negative, not finite, all zero or of another length are
    refused."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.ndim == 0:
        w = np.full(n, float(w))
    if w.shape != (n,):
        raise ValueError(f"sample_weight.shape == {w.shape}, expected {(n,)}!")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("sample_weight must be finite and non-negative")
    if not w.sum() > 0:
        raise ValueError("sample_weight sums to zero: at least one sample must count")
    return w


class _BPBase(BaseEstimator):
    """The parameters, the training loop and the pickling shared by both estimators."""

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        backend="auto",
        dtype="float64",
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.backend = backend
        self.dtype = dtype

    # ---- parameters ------------------------------------------------------------------

    def _check_params(self) -> list[int]:
        """Validate the parameters (as MLPClassifier does); the hidden sizes as a list."""
        sizes = self.hidden_layer_sizes
        sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
        if any(
            isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0 for n in sizes
        ):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        if self.solver not in ("adam", "sgd", "lbfgs"):
            raise ValueError(f"solver must be 'adam', 'sgd' or 'lbfgs'; got {self.solver!r}")
        if self.learning_rate not in ("constant", "invscaling", "adaptive"):
            raise ValueError(
                f"learning_rate must be 'constant', 'invscaling' or 'adaptive'; got "
                f"{self.learning_rate!r}"
            )
        for name, lo, hi in (
            ("alpha", 0.0, math.inf),
            ("tol", 0.0, math.inf),
            ("momentum", 0.0, 1.0),
            ("validation_fraction", 0.0, 1.0),
            ("beta_1", 0.0, 1.0),
            ("beta_2", 0.0, 1.0),
        ):
            v = getattr(self, name)
            if (
                isinstance(v, bool)
                or not isinstance(v, (int, float, np.number))
                or not lo <= v < hi
            ):
                raise ValueError(f"{name} must be in [{lo:g}, {hi:g}); got {v!r}")
        for name in ("learning_rate_init", "epsilon"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not v > 0:
                raise ValueError(f"{name} must be > 0; got {v!r}")
        for name in ("max_iter", "n_iter_no_change", "max_fun"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1; got {v!r}")
        bs = self.batch_size
        if bs != "auto" and (
            isinstance(bs, bool) or not isinstance(bs, (int, np.integer)) or bs < 1
        ):
            raise ValueError(f"batch_size must be 'auto' or an integer >= 1; got {bs!r}")
        return [int(n) for n in sizes]

    def _optimizer(self, batch: int):
        wd = self.alpha / batch  # scikit-learn's L2 term, alpha/2 |W|^2 per batch mean
        if self.solver == "adam":
            return optimizers.Adam(
                self.learning_rate_init, self.beta_1, self.beta_2, self.epsilon, weight_decay=wd
            )
        if self.momentum == 0:
            return optimizers.SGD(self.learning_rate_init, weight_decay=wd)
        cls = optimizers.Nesterov if self.nesterovs_momentum else optimizers.Momentum
        return cls(self.learning_rate_init, self.momentum, weight_decay=wd)

    # ---- fitted network, in scikit-learn's layout -------------------------------------

    def _weights(self) -> list:
        if getattr(self, "_net", None) is None:
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet.")
        return self._net.get_weights()

    @property
    def coefs_(self) -> list:
        """Weight matrices, ``coefs_[i]`` of shape ``(n_in, n_out)`` (copies)."""
        return [w.T.copy() for w in self._weights()[0::2]]

    @coefs_.setter
    def coefs_(self, coefs) -> None:
        w = self._weights()
        w[0::2] = [np.asarray(c).T for c in coefs]
        self._net.set_weights(w)

    @property
    def intercepts_(self) -> list:
        """Bias vectors, ``intercepts_[i]`` of shape ``(n_out,)`` (copies)."""
        return self._weights()[1::2]

    @intercepts_.setter
    def intercepts_(self, intercepts) -> None:
        w = self._weights()
        w[1::2] = [np.asarray(b) for b in intercepts]
        self._net.set_weights(w)

    # ---- training ----------------------------------------------------------------------

    def _fit(self, X, y, incremental: bool = False, sample_weight=None):
        hidden = self._check_params()
        first_pass = getattr(self, "_net", None) is None or (
            not self.warm_start and not incremental
        )
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        w = _sample_weight(sample_weight, X.shape[0])
        T = self._targets(y)  # what the network takes: labels, 0/1 rows, or values
        self.n_outputs_ = self._n_outputs(y)
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize([X.shape[1], *hidden, self.n_outputs_])
        if self.solver == "lbfgs":
            self._fit_lbfgs(X, T, w)
        else:
            self._fit_stochastic(X, y, T, incremental, w)
        if not self._net.model.finite():
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may contain "
                "large values and need to be preprocessed."
            )
        return self

    def _initialize(self, sizes: list[int]) -> None:
        act = _ACTIVATIONS.get(self.activation, self.activation)
        seed = int(self._random_state.randint(np.iinfo(np.int32).max))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # binary_step's zero-gradient warning
            self._net = bpgpu.MLP(
                sizes,
                act,
                self._out_activation(),
                backend=self.backend,
                dtype=self.dtype,
                seed=seed,
            )
        self.n_layers_ = len(sizes)
        self.out_activation_ = {"sigmoid": "logistic"}.get(
            self._out_activation(), self._out_activation()
        )
        self.n_iter_ = 0
        self.t_ = 0
        self._opt = self._opt_state = None
        if self.solver != "lbfgs":  # L-BFGS has no epochs: no curve, no early stopping
            self._init_epochs()

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
                    penalty = (
                        0.5
                        * self.alpha
                        * sum(xp.sum(W * W) for W in model.params[0::2] if W.ndim == 2)
                        / batch
                    )
                    E = xp.concat([xp.reshape(v, (-1,)) for v in losses])  # scalars, vectors
                    loss = float(xp.sum(E) / n + penalty)  # the epoch's read
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
        matrices = [i for i, s in enumerate(shapes) if len(s) == 2]  # the L2 term's W

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

    def _forward(self, X) -> np.ndarray:
        check_is_fitted(self, "n_iter_")
        X = validate_data(
            self, X, accept_sparse=["csr", "csc"], reset=False, dtype=(np.float64, np.float32)
        )
        X = _sparse_to_dense(X)
        return self._net.backend.to_numpy(self._net.forward(X)).astype(np.float64, copy=False)

    def fit(self, X, y, sample_weight=None):
        """Fit the model to ``X`` (``(n_samples, n_features)``) and ``y``; returns self.
        ``sample_weight`` (``(n_samples,)``, >= 0): each sample's error counts that much,
        over the batch's total weight (scikit-learn's meaning)."""
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    def _check_solver(self) -> bool:
        if self.solver not in ("sgd", "adam"):
            raise AttributeError(
                "partial_fit is only available for stochastic optimizers. "
                f"{self.solver} is not stochastic."
            )
        return True

    # ---- pickling: host arrays, rebuilt on a backend that works here -------------------

    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: object.__getstate__ gives __dict__
        net = state.pop("_net", None)
        if net is not None:
            state["_net_files"] = (net.config(), net.arrays())
            host = net.backend.to_numpy
            opt_state = state.pop("_opt_state", None)
            if opt_state is not None:
                state["_opt_state_host"] = {
                    k: (v if k == "t" else [host(a) for a in v]) for k, v in opt_state.items()
                }
            if state.get("_best_params") is not None:
                state["_best_params"] = [host(a) for a in state["_best_params"]]
        return state

    def __setstate__(self, state):
        files = state.pop("_net_files", None)
        opt_host = state.pop("_opt_state_host", None)
        super().__setstate__(state)
        if files is None:
            return
        # trained on a GPU, unpickled without one: NumPy, with a warning
        self._net = rebuild(*files, self.backend, type(self).__name__)
        dev = self._net.backend.asarray
        if opt_host is not None:
            self._opt_state = {
                k: (v if k == "t" else [dev(a) for a in v]) for k, v in opt_host.items()
            }
        if getattr(self, "_best_params", None) is not None:
            self._best_params = [dev(a) for a in self._best_params]


class BPClassifier(ClassifierMixin, _BPBase):
    """Multi-layer perceptron classifier on any bpgpu backend: scikit-learn's
    ``MLPClassifier`` (same parameters, attributes and methods; see the module docstring
    for what differs), with ``backend`` and ``dtype``.

    Binary targets train one logistic unit, several classes a softmax, multilabel
    indicator targets one logistic unit per label; the loss is the log-loss.
    """

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        X = _sparse_to_dense(X)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the "
                        f"previous call to fit. Previously got {self.classes_}, `y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    "`y` has classes not in `self.classes_`. "
                    f"`self.classes_` has {self.classes_}. 'y' has {classes}."
                )
        return X, self._label_binarizer.transform(y).astype(bool)

    def _multilabel(self) -> bool:
        return self._label_binarizer.y_type_.startswith("multilabel")

    def _out_activation(self) -> str:
        return "sigmoid" if self._multilabel() or len(self.classes_) <= 2 else "softmax"

    def _n_outputs(self, Y) -> int:
        return Y.shape[1]

    def _targets(self, Y):
        if self._multilabel() or Y.shape[1] == 1:
            return Y.astype(np.float64).reshape(Y.shape[0], -1)
        return np.argmax(Y, axis=1)  # class indices for the softmax

    def _stratify(self, Y) -> bool:
        return Y.shape[1] == 1  # as scikit-learn: stratified for two classes only

    def _score(self, X, Y, sample_weight=None) -> float:
        """Accuracy on validation rows (``Y``: their binarized labels)."""
        return accuracy_score(
            self._label_binarizer.inverse_transform(Y.astype(float)),
            self._predict(X),
            sample_weight=sample_weight,
        )

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, ``(n_samples, n_classes)``; one column per label for
        multilabel targets. Strictly between 0 and 1, as a sigmoid's and a softmax's are:
        an output that rounded to 0 or 1 (logits past +-37 in float64) is moved to the
        nearest float inside, so ``predict_log_proba`` stays finite."""
        Y, top = self._forward(X), np.nextafter(1.0, 0.0)
        if self.n_outputs_ == 1 and not self._multilabel():
            p = np.clip(Y.ravel(), 1 - top, top)  # 1 - p inside too
            return np.vstack([1 - p, p]).T
        return np.clip(Y, np.finfo(np.float64).tiny, top)

    def predict_log_proba(self, X) -> np.ndarray:
        """``log(predict_proba(X))``."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def _predict(self, X):
        Y = self._net.backend.to_numpy(self._net.forward(X)).astype(np.float64)
        return self._label_binarizer.inverse_transform(Y.ravel() if Y.shape[1] == 1 else Y)

    def predict(self, X):
        """Class labels (for multilabel targets, an indicator matrix)."""
        Y = self._forward(X)
        if self.n_outputs_ == 1:
            Y = Y.ravel()
        return self._label_binarizer.inverse_transform(Y)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over ``(X, y)``; ``classes`` (all the labels) on the first call;
        ``sample_weight`` as :meth:`fit` takes it."""
        if getattr(self, "_net", None) is None or not hasattr(self, "classes_"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
            self.classes_ = self._label_binarizer.classes_
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(
                f"`classes={classes}` is not the same as on the first call to partial_fit "
                f"(was: {self.classes_})"
            )
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        tags.input_tags.sparse = True
        return tags


class BPRegressor(RegressorMixin, _BPBase):
    """Multi-layer perceptron regressor on any bpgpu backend: scikit-learn's
    ``MLPRegressor`` (identity output, squared error), with ``backend`` and ``dtype``."""

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        loss="squared_error",
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        backend="auto",
        dtype="float64",
    ):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.backend = backend
        self.dtype = dtype

    def _validate_input(self, X, y, incremental, reset):
        if self.loss != "squared_error":
            raise ValueError(
                f"loss={self.loss!r} is not supported by bpgpu; use loss='squared_error' "
                "(the seed's quadratic cost)"
            )
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            y_numeric=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        X = _sparse_to_dense(X)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def _out_activation(self) -> str:
        return "identity"

    def _n_outputs(self, y) -> int:
        return 1 if y.ndim == 1 else y.shape[1]

    def _targets(self, y):
        return y.astype(np.float64)

    def _stratify(self, y) -> bool:
        return False

    def _score(self, X, y, sample_weight=None) -> float:
        return r2_score(y, self._predict(X), sample_weight=sample_weight)

    def _predict(self, X):
        Y = self._net.backend.to_numpy(self._net.forward(X)).astype(np.float64)
        return Y.ravel() if self.n_outputs_ == 1 else Y

    def predict(self, X):
        """Predicted values, ``(n_samples,)`` or ``(n_samples, n_outputs)``."""
        Y = self._forward(X)
        return Y.ravel() if Y.shape[1] == 1 else Y

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``(X, y)``; ``sample_weight`` as :meth:`fit` takes it."""
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.input_tags.sparse = True
        return tags
