"""What both estimators share: their parameters, the network, fitting, pickling."""

from __future__ import annotations

import copy
import difflib
import warnings

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.neural_network import MLPClassifier
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import StrOptions  # scikit-learn's own table checks
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

import bpgpu
from bpgpu import optimizers
from bpgpu.activations import ACTIVATIONS
from bpgpu.backends import Backend
from bpgpu.layers import by_layer
from bpgpu.network import rebuild
from bpgpu.sample_weights import sample_weights
from bpgpu.sklearn._epochs import StochasticFit
from bpgpu.sklearn._lbfgs import LBFGSFit

# scikit-learn's names that bpgpu spells otherwise
_ACTIVATIONS = {"logistic": "sigmoid", "identity": "identity", "tanh": "tanh", "relu": "relu"}


def _sparse_to_dense(X):
    return X.toarray() if hasattr(X, "toarray") else X


def _parameter_table(estimator: type) -> dict:
    """Every parameter's accepted values, in scikit-learn's declarative form: those of
    ``estimator`` (``MLPClassifier`` or ``MLPRegressor``: what it accepts, bpgpu accepts),
    with every hidden activation of bpgpu's table too, and ``backend``, ``dtype`` and
    ``precision``."""
    hidden = {a.name for a in ACTIVATIONS.values() if a.hidden_ok}
    return {
        **estimator._parameter_constraints,
        "activation": [StrOptions({*_ACTIVATIONS, *hidden})],
        "backend": [str, Backend],
        "dtype": [StrOptions({"float32", "float64"}), np.dtype, type, None],
        "precision": [StrOptions({"bfloat16", "float16", "tf32"}), None],
    }


class _BPBase(StochasticFit, LBFGSFit, BaseEstimator):
    """The parameters, the training loop and the pickling shared by both estimators."""

    _parameter_constraints: dict = _parameter_table(MLPClassifier)

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
        dtype=None,
        precision=None,
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
        self.precision = precision

    # ---- parameters ------------------------------------------------------------------

    def _check_params(self) -> list[int]:
        """Validate every parameter against :attr:`_parameter_constraints` (scikit-learn's
        own check and messages); the hidden sizes as a list."""
        self._validate_params()
        sizes = self.hidden_layer_sizes
        sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
        if any(
            isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0 for n in sizes
        ):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
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

    # ---- from a fitted scikit-learn MLP --------------------------------------------------

    @classmethod
    def from_sklearn(cls, estimator, **params):
        """This estimator, fitted, from a fitted ``MLPClassifier`` (``MLPRegressor``): the
        same weights, classes and parameters, and ``warm_start=True``, so that
        :meth:`fit` trains on from where scikit-learn stopped.

        Parameters
        ----------
        estimator : sklearn.neural_network.MLPClassifier or MLPRegressor
            Fitted; the kind this class stands for.
        **params
            Parameters to set instead of the estimator's (``backend``, ``dtype``,
            ``max_iter``, ...; ``warm_start=False`` makes the next ``fit`` start over).

        Returns
        -------
        BPClassifier or BPRegressor
            ``predict`` (and ``predict_proba``) give the estimator's. The optimizer's
            state (Adam's moments, the momentum) starts afresh: scikit-learn does not
            expose it.

        Raises
        ------
        TypeError
            ``estimator`` is not of the kind this class stands for.

        Examples
        --------
        >>> import warnings
        >>> from sklearn.exceptions import ConvergenceWarning
        >>> from sklearn.neural_network import MLPClassifier
        >>> import bpgpu
        >>> from bpgpu.sklearn import BPClassifier
        >>> X, y = bpgpu.datasets.load_digits()
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore", ConvergenceWarning)
        ...     mlp = MLPClassifier(hidden_layer_sizes=(16,), max_iter=20).fit(X / 16, y)
        >>> clf = BPClassifier.from_sklearn(mlp, backend="numpy")
        >>> bool((clf.predict(X / 16) == mlp.predict(X / 16)).all())
        True
        """
        from bpgpu.converters import from_sklearn

        want = cls._sklearn_kind()
        if want.__name__ not in (c.__name__ for c in type(estimator).__mro__):
            raise TypeError(
                f"{cls.__name__}.from_sklearn takes a fitted {want.__name__}; got "
                f"{type(estimator).__name__}"
            )
        mine = cls._get_param_names()
        for key in params:
            if key not in mine:
                close = difflib.get_close_matches(key, mine, n=1, cutoff=0.6)
                raise TypeError(
                    f"{cls.__name__}.from_sklearn() got an unexpected parameter {key!r}; "
                    + (f"did you mean {close[0]!r}? " if close else "")
                    + f"it takes {cls.__name__}'s parameters: {', '.join(mine)}"
                )
        shared = {k: v for k, v in estimator.get_params().items() if k in mine}
        est = cls(**{**shared, "warm_start": True, **params})
        est._check_params()
        net = from_sklearn(estimator, backend=est.backend, dtype=est.dtype)  # None: theirs
        net.classes = None  # the estimator maps its labels (classes_) to the outputs
        if est.precision is not None:
            net = net.to(net.backend, precision=est.precision)
        est._take_fitted(estimator, net)
        return est

    def _take_fitted(self, estimator, net) -> None:
        """The fitted state of a scikit-learn MLP, on ``net`` (its weights)."""
        self._net = net
        self._random_state = check_random_state(self.random_state)
        self._opt = self._opt_state = None
        for name in ("n_features_in_", "feature_names_in_", "n_layers_", "n_outputs_"):
            if hasattr(estimator, name):
                setattr(self, name, getattr(estimator, name))
        self.out_activation_ = estimator.out_activation_
        self.n_iter_, self.t_ = estimator.n_iter_, estimator.t_
        self.loss_ = estimator.loss_
        if hasattr(estimator, "loss_curve_"):  # a stochastic solver's curve goes on
            self._init_epochs()
            self.loss_curve_ = list(estimator.loss_curve_)
            for name in ("best_loss_", "validation_scores_", "best_validation_score_"):
                if getattr(estimator, name, None) is not None:  # copies: theirs stay theirs
                    setattr(self, name, copy.deepcopy(getattr(estimator, name)))
            self._no_improvement_count = getattr(estimator, "_no_improvement_count", 0)

    # ---- fitted network, in scikit-learn's layout -------------------------------------

    def _fitted_net(self):
        """The fitted network, or scikit-learn's NotFittedError."""
        if getattr(self, "_net", None) is None:
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet.")
        return self._net

    def _by_layer(self) -> list[dict]:
        """The fitted parameters as one ``{role: host array}`` per layer."""
        net = self._fitted_net()
        return by_layer(net.layers, net.get_weights())

    def _set_role(self, role: str, arrays, transpose: bool) -> None:
        """Replace every layer's ``role`` parameter (``coefs_`` are ``W`` transposed)."""
        weights = self._fitted_net().get_weights()
        arrays = list(arrays)
        if len(arrays) != len(self._net.layers):
            raise ValueError(
                f"expected {len(self._net.layers)} arrays, one per layer; got {len(arrays)}"
            )
        for layer, a in zip(self._net.layers, arrays):
            a = np.asarray(a)
            weights[layer.position(role)] = a.T if transpose else a
        self._net.set_weights(weights)

    @property
    def coefs_(self) -> list:
        """The weight matrices, ``coefs_[i]`` of shape ``(n_in, n_out)`` (copies).

        Assigning a list of matrices of those shapes sets the network's weights.

        Examples
        --------
        >>> import bpgpu
        >>> from bpgpu.sklearn import BPClassifier
        >>> X, y = bpgpu.datasets.load_digits()
        >>> clf = BPClassifier(hidden_layer_sizes=(32,), max_iter=2).fit(X / 16, y)
        >>> [W.shape for W in clf.coefs_]
        [(64, 32), (32, 10)]
        """
        return [p["W"].T.copy() for p in self._by_layer()]

    @coefs_.setter
    def coefs_(self, coefs) -> None:
        self._set_role("W", coefs, transpose=True)

    @property
    def intercepts_(self) -> list:
        """The bias vectors, ``intercepts_[i]`` of shape ``(n_out,)`` (copies).

        Assigning a list of vectors of those shapes sets the network's biases.

        Examples
        --------
        >>> import bpgpu
        >>> from bpgpu.sklearn import BPClassifier
        >>> X, y = bpgpu.datasets.load_digits()
        >>> clf = BPClassifier(hidden_layer_sizes=(32,), max_iter=2).fit(X / 16, y)
        >>> [b.shape for b in clf.intercepts_]
        [(32,), (10,)]
        """
        return [p["b"] for p in self._by_layer()]

    @intercepts_.setter
    def intercepts_(self, intercepts) -> None:
        self._set_role("b", intercepts, transpose=False)

    def _l2_penalty(self, xp, params, n) -> object:
        """scikit-learn's L2 term, ``alpha / 2 * sum of |W|^2 / n``, over the weight
        matrices of every layer (device arrays; ``n``: the batch or the sample count)."""
        squares = sum(xp.sum(p["W"] * p["W"]) for p in by_layer(self._net.layers, params))
        return 0.5 * self.alpha * squares / n

    # ---- training ----------------------------------------------------------------------

    def _fit(self, X, y, incremental: bool = False, sample_weight=None):
        hidden = self._check_params()
        first_pass = getattr(self, "_net", None) is None or (
            not self.warm_start and not incremental
        )
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        w = None if sample_weight is None else sample_weights(sample_weight, X.shape[0])
        T = self._targets(y)  # what the network takes: labels, 0/1 rows, or values
        self.n_outputs_ = self._n_outputs(y)
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            if self.early_stopping and self.solver != "lbfgs":
                self._check_validation_size(X.shape[0], y)  # before anything changes
            self._initialize([X.shape[1], *hidden, self.n_outputs_], X.dtype)
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

    def _initialize(self, sizes: list[int], x_dtype=np.float64) -> None:
        act = _ACTIVATIONS.get(self.activation, self.activation)
        # dtype=None: the inputs' (float32 inputs stay float32, as scikit-learn keeps them)
        dtype = self.dtype if self.dtype is not None else np.dtype(x_dtype).name
        seed = int(self._random_state.randint(np.iinfo(np.int32).max))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # binary_step's zero-gradient warning
            self._net = bpgpu.MLP(
                sizes,
                act,
                self._out_activation(),
                backend=self.backend,
                dtype=dtype,
                seed=seed,
                precision=self.precision,
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

    def _checked_data(self, X, y, reset: bool, **kw):
        """``(X, y)`` through scikit-learn's ``validate_data`` (sparse made dense, a
        one-column ``y`` made 1-D with its warning); ``kw``: more of its checks."""
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            dtype=(np.float64, np.float32),
            reset=reset,
            **kw,
        )
        X = _sparse_to_dense(X)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # made dense on the device (_checked_data)
        return tags

    def _reported_outputs(self) -> int:
        """What the summed cost of a sample is divided by in ``loss_`` (scikit-learn's
        regressor averages its squared error over the targets)."""
        return 1

    def _forward(self, X) -> np.ndarray:
        check_is_fitted(self, "n_iter_")
        X = validate_data(
            self, X, accept_sparse=["csr", "csc"], reset=False, dtype=(np.float64, np.float32)
        )
        X = _sparse_to_dense(X)
        return self._net.backend.to_numpy(self._net.forward(X))  # in the network's dtype

    def fit(self, X, y, sample_weight=None):
        """Train the network on the data, from new weights unless ``warm_start``.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            The inputs (a sparse matrix is made dense on the device).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels (or indicator rows) for the classifier, values for the
            regressor.
        sample_weight : array-like of shape (n_samples,), optional
            Each sample's error counts that much (>= 0), over its batch's total weight
            (scikit-learn's meaning).

        Returns
        -------
        self
            The fitted estimator.

        Examples
        --------
        >>> import bpgpu
        >>> from bpgpu.sklearn import BPClassifier
        >>> X, y = bpgpu.datasets.load_digits()
        >>> clf = BPClassifier(hidden_layer_sizes=(32,), max_iter=30, random_state=0)
        >>> clf.fit(X / 16, y).n_iter_
        30
        """
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
