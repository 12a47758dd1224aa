"""``BPClassifier`` and ``BPRegressor``: ``MLPClassifier`` and ``MLPRegressor`` on any bpgpu
backend."""

from __future__ import annotations

import copy

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.metaestimators import available_if

from bpgpu import targets
from bpgpu.sklearn._base import _BPBase, _parameter_table

__all__ = ["BPClassifier", "BPRegressor"]


# The docstring sections both estimators share (their parameters and attributes are
# the same but for the classifier's classes_ and the regressor's loss): written once,
# put in for the %(...)s markers by _shared_sections.
_SECTIONS = {
    "first_parameters": """\
    hidden_layer_sizes : array-like of int, default (100,)
        The number of neurons of each hidden layer, input side first.
    activation : str, default "relu"
        The hidden layers' activation: scikit-learn's ``"identity"``, ``"logistic"``,
        ``"tanh"``, ``"relu"``, or any hidden activation of bpgpu's table
        (:func:`bpgpu.activations.table`: ``"elu"``, ``"softplus"``, ``"prelu"``, ...).
""",
    "parameters": """\
    solver : {"adam", "sgd", "lbfgs"}, default "adam"
        The optimizer: Adam, mini-batch SGD (with momentum), or L-BFGS on the full
        batch (scipy's).
    alpha : float, default 1e-4
        The strength of the L2 penalty on the weight matrices: ``alpha / 2`` times the
        sum of their squares, divided by the samples (per batch; :mod:`bpgpu.sklearn`
        says how that differs from scikit-learn).
    batch_size : int or "auto", default "auto"
        Samples per step of the stochastic solvers; ``"auto"`` is
        ``min(200, n_samples)``.
    learning_rate : {"constant", "invscaling", "adaptive"}, default "constant"
        The SGD rate's schedule: constant, ``learning_rate_init / t**power_t``, or
        divided by 5 each time ``n_iter_no_change`` epochs fail to improve by ``tol``.
    learning_rate_init : float, default 0.001
        The first learning rate (SGD and Adam).
    power_t : float, default 0.5
        The exponent of ``"invscaling"``.
    max_iter : int, default 200
        Epochs at most (L-BFGS: iterations at most).
    shuffle : bool, default True
        Draw a new sample order every epoch.
    random_state : int, RandomState or None, default None
        Seeds the initial weights, the batch order and the validation split.
    tol : float, default 1e-4
        The improvement of the loss (or the validation score) that counts.
    verbose : bool, default False
        Print the loss of every epoch.
    warm_start : bool, default False
        A new ``fit`` goes on from the fitted weights instead of starting over.
    momentum : float, default 0.9
        SGD's momentum, in [0, 1].
    nesterovs_momentum : bool, default True
        Nesterov's momentum instead of heavy-ball (with ``momentum > 0``).
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the data (stratified for a classifier) and
        stop when its score fails to improve by ``tol`` for ``n_iter_no_change``
        epochs; the best epoch's weights are kept.
    validation_fraction : float, default 0.1
        The share held out for ``early_stopping``.
    beta_1, beta_2 : float, default 0.9 and 0.999
        Adam's moment decay rates, in [0, 1).
    epsilon : float, default 1e-8
        Adam's term added to the root of the second moment.
    n_iter_no_change : int, default 10
        Epochs without an improvement of ``tol`` before stopping (or lowering an
        ``"adaptive"`` rate).
    max_fun : int, default 15000
        L-BFGS's most calls of the loss function.
    backend : str or Backend, default "auto"
        Where the network computes: ``"auto"`` (CuPy when a CUDA device works, else
        NumPy), ``"numpy"``, ``"cupy"``, ``"torch"``, ``"torch:cuda"``, ``"jax"``, ...
    dtype : {None, "float32", "float64"}, default None
        The network's floating type; None takes the inputs' (float32 inputs stay
        float32, anything else is float64), as scikit-learn does.
    precision : {None, "bfloat16", "float16", "tf32"}, default None
        Mixed precision for the products and activations (:class:`bpgpu.MLP`'s
        ``precision``); the weights stay in ``dtype``.
""",
    "attributes": """\
    loss_ : float
        The loss of the last epoch (the penalty included).
    best_loss_ : float or None
        The lowest loss reached (None with ``early_stopping``).
    loss_curve_ : list of float
        The loss of every epoch.
    validation_scores_ : list of float or None
        The validation score of every epoch, with ``early_stopping``.
    best_validation_score_ : float or None
        The best of them.
    t_ : int
        The samples seen in training, summed over the epochs.
    coefs_ : list of numpy.ndarray
        The weight matrices in scikit-learn's layout, ``(n_in, n_out)`` each (copies;
        assigning the list sets the network's).
    intercepts_ : list of numpy.ndarray
        The bias vectors, ``(n_out,)`` each.
    n_features_in_ : int
        The number of input features seen by ``fit``.
    n_iter_ : int
        The epochs run.
    n_layers_ : int
        The layers, input and output included.
    n_outputs_ : int
        The output neurons.
    out_activation_ : str
        The output layer's activation.
""",
}


def _shared_sections(cls: type) -> type:
    """The class with the shared sections put into its docstring."""
    doc = cls.__doc__
    for name, text in _SECTIONS.items():
        marker = f"    %({name})s\n"
        assert marker in doc, (cls.__name__, name)
        doc = doc.replace(marker, text)
    cls.__doc__ = doc
    return cls


@_shared_sections
class BPClassifier(ClassifierMixin, _BPBase):
    """A multi-layer perceptron classifier, scikit-learn's ``MLPClassifier`` on any backend.

    The same parameters, attributes and methods as ``MLPClassifier``, with ``backend``,
    ``dtype`` and ``precision`` added (what differs, and why: :mod:`bpgpu.sklearn`).
    Binary targets train one logistic unit, several classes a softmax, multilabel
    indicator targets one logistic unit per label; the loss is the log-loss. What the
    targets are is :func:`bpgpu.targets.kind`'s answer (0/1 rows of two or more columns,
    one-hot included, are indicator targets, as scikit-learn reads them);
    ``LabelBinarizer`` encodes them.

    Parameters
    ----------
    %(first_parameters)s
    %(parameters)s

    Attributes
    ----------
    classes_ : numpy.ndarray
        The class labels, sorted.
    %(attributes)s

    See Also
    --------
    BPRegressor : The same for regression.
    bpgpu.MLP : The network itself, with fit's every option.

    Examples
    --------
    >>> from sklearn.model_selection import train_test_split
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> import bpgpu
    >>> from bpgpu.sklearn import BPClassifier
    >>> X, y = bpgpu.datasets.load_digits()
    >>> X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    >>> model = make_pipeline(StandardScaler(), BPClassifier(hidden_layer_sizes=(32,),
    ...                       max_iter=50, random_state=0))
    >>> model.fit(X_train, y_train).score(X_test, y_test) > 0.9
    True
    """

    def _validate_input(self, X, y, incremental, reset):
        X, y = self._checked_data(X, y, reset)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
            self._indicator = targets.indicator(y)
        else:
            classes = np.arange(y.shape[1]) if self._multilabel() else targets.classes_of(y)
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

    @staticmethod
    def _sklearn_kind() -> type:
        return MLPClassifier

    def _take_fitted(self, estimator, net) -> None:
        super()._take_fitted(estimator, net)
        self.classes_ = estimator.classes_
        binarizer = getattr(estimator, "_label_binarizer", None)
        if binarizer is None:  # scikit-learn's private name; rebuilt from the classes
            binarizer = LabelBinarizer().fit(estimator.classes_)
        self._label_binarizer = copy.deepcopy(binarizer)
        self._indicator = getattr(binarizer, "y_type_", "") == "multilabel-indicator"

    def _multilabel(self) -> bool:
        """Whether the targets are indicator rows, a logistic unit per column."""
        return self._indicator

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
        """Accuracy on validation rows (``Y``: their binarized labels); NaN where the
        network's outputs are not finite (a diverging fit), as scikit-learn scores."""
        if not self._net.model.finite():
            return np.nan
        return accuracy_score(
            self._label_binarizer.inverse_transform(Y.astype(float)),
            self._predict(X),
            sample_weight=sample_weight,
        )

    def predict_proba(self, X) -> np.ndarray:
        """The probability of each class for each sample.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            The inputs (a sparse matrix is made dense on the device).

        Returns
        -------
        numpy.ndarray of shape (n_samples, n_classes)
            In the network's dtype (float32 for float32 inputs or
            ``dtype="float32"``); one column per label for multilabel targets.
            Strictly between 0 and 1, as a sigmoid's and a softmax's are: an output
            that rounded to 0 or 1 (logits past +-37 in float64) is moved to the
            nearest float inside, so ``predict_log_proba`` stays finite.

        Examples
        --------
        >>> import numpy as np
        >>> import bpgpu
        >>> from bpgpu.sklearn import BPClassifier
        >>> X, y = bpgpu.datasets.load_digits()
        >>> clf = BPClassifier(hidden_layer_sizes=(32,), max_iter=5).fit(X / 16, y)
        >>> P = clf.predict_proba(X[:3] / 16)
        >>> P.shape, bool(np.allclose(P.sum(axis=1), 1))
        ((3, 10), True)
        """
        Y = self._forward(X)
        one = Y.dtype.type(1)
        top = np.nextafter(one, Y.dtype.type(0))
        if self.n_outputs_ == 1 and not self._multilabel():
            p = np.clip(Y.ravel(), one - top, top)  # 1 - p inside too
            return np.vstack([one - p, p]).T
        return np.clip(Y, np.finfo(Y.dtype).tiny, top)

    def predict_log_proba(self, X) -> np.ndarray:
        """The logarithm of each class's probability, ``log(predict_proba(X))``.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            The inputs (a sparse matrix is made dense on the device).

        Returns
        -------
        numpy.ndarray of shape (n_samples, n_classes)
            Finite: :meth:`predict_proba` keeps the probabilities above 0.

        Examples
        --------
        >>> import numpy as np
        >>> import bpgpu
        >>> from bpgpu.sklearn import BPClassifier
        >>> X, y = bpgpu.datasets.load_digits()
        >>> clf = BPClassifier(hidden_layer_sizes=(32,), max_iter=5).fit(X / 16, y)
        >>> bool(np.isfinite(clf.predict_log_proba(X / 16)).all())
        True
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def _predict(self, X):
        Y = self._net.backend.to_numpy(self._net.forward(X)).astype(np.float64)
        return self._label_binarizer.inverse_transform(Y.ravel() if Y.shape[1] == 1 else Y)

    def predict(self, X):
        """The class of each sample.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            The inputs (a sparse matrix is made dense on the device).

        Returns
        -------
        numpy.ndarray
            ``(n_samples,)`` labels of :attr:`classes_`; for multilabel targets an
            indicator matrix ``(n_samples, n_classes)``.

        Examples
        --------
        >>> import bpgpu
        >>> from bpgpu.sklearn import BPClassifier
        >>> X, y = bpgpu.datasets.load_digits()
        >>> clf = BPClassifier(hidden_layer_sizes=(32,), max_iter=30, random_state=0)
        >>> bool((clf.fit(X / 16, y).predict(X[:200] / 16) == y[:200]).mean() > 0.9)
        True
        """
        Y = self._forward(X)
        if self.n_outputs_ == 1:
            Y = Y.ravel()
        return self._label_binarizer.inverse_transform(Y)

    def score(self, X, y, sample_weight=None) -> float:
        """The mean accuracy on data (scikit-learn's ``accuracy_score``).

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            The inputs (a sparse matrix is made dense on the device).
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            The true labels (indicator rows for multilabel targets: a sample counts
            when all its labels are right).
        sample_weight : array-like of shape (n_samples,), optional
            Weights of the samples in the mean.

        Returns
        -------
        float
            The fraction of samples classified right.

        Examples
        --------
        >>> import bpgpu
        >>> from bpgpu.sklearn import BPClassifier
        >>> X, y = bpgpu.datasets.load_digits()
        >>> clf = BPClassifier(hidden_layer_sizes=(32,), max_iter=30, random_state=0)
        >>> clf.fit(X / 16, y).score(X / 16, y) > 0.9
        True
        """
        return super().score(X, y, sample_weight=sample_weight)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Train one epoch on the data, going on from the current weights.

        Only with the stochastic solvers (``"sgd"``, ``"adam"``).

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            The inputs (a sparse matrix is made dense on the device).
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            The labels (or indicator rows).
        sample_weight : array-like of shape (n_samples,), optional
            As :meth:`fit` takes it.
        classes : array-like, optional
            Every label the model will see; required on the first call.

        Returns
        -------
        self
            The estimator, one epoch further.

        Raises
        ------
        ValueError
            ``classes`` missing on the first call, or different from the first call's.

        Examples
        --------
        >>> import numpy as np
        >>> import bpgpu
        >>> from bpgpu.sklearn import BPClassifier
        >>> X, y = bpgpu.datasets.load_digits()
        >>> clf = BPClassifier(hidden_layer_sizes=(32,), random_state=0)
        >>> for start in range(0, 1797, 600):   # the data in three pieces
        ...     _ = clf.partial_fit(X[start:start + 600] / 16, y[start:start + 600],
        ...                         classes=np.arange(10))
        >>> clf.t_   # the samples seen: every piece once
        1797
        """
        if getattr(self, "_net", None) is None or not hasattr(self, "classes_"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            self._label_binarizer = LabelBinarizer()
            self._indicator = targets.indicator(y)
            self._label_binarizer.fit(y if self._indicator else classes)
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
        return tags


@_shared_sections
class BPRegressor(RegressorMixin, _BPBase):
    """A multi-layer perceptron regressor, scikit-learn's ``MLPRegressor`` on any backend.

    The same parameters, attributes and methods as ``MLPRegressor``, with ``backend``,
    ``dtype`` and ``precision`` added (what differs, and why: :mod:`bpgpu.sklearn`):
    an identity output layer and the squared error.

    Parameters
    ----------
    %(first_parameters)s
    loss : {"squared_error"}, default "squared_error"
        The cost (the seed's quadratic cost). ``"poisson"`` is refused: its exp output
        and Poisson deviance are not among bpgpu's activations and costs.
    %(parameters)s

    Attributes
    ----------
    %(attributes)s

    See Also
    --------
    BPClassifier : The same for classification.
    bpgpu.MLP : The network itself, with fit's every option.

    Examples
    --------
    >>> import numpy as np
    >>> from bpgpu.sklearn import BPRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-1, 1, size=(500, 2))
    >>> y = X[:, 0] ** 2 + X[:, 1]
    >>> model = BPRegressor(hidden_layer_sizes=(32,), max_iter=300, random_state=0)
    >>> model.fit(X, y).score(X, y) > 0.9
    True
    """

    _parameter_constraints: dict = _parameter_table(MLPRegressor)

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
        dtype=None,
        precision=None,
    ):
        # the signature is spelled out (scikit-learn reads its parameters from it);
        # the base stores them
        super().__init__(
            hidden_layer_sizes,
            activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            backend=backend,
            dtype=dtype,
            precision=precision,
        )
        self.loss = loss

    def _validate_input(self, X, y, incremental, reset):
        if self.loss != "squared_error":
            raise ValueError(
                f"loss={self.loss!r} is not supported by bpgpu; use loss='squared_error' "
                "(the seed's quadratic cost). Poisson regression needs an exp output and "
                "the Poisson deviance, which are not among bpgpu's activations and costs"
            )
        return self._checked_data(X, y, reset, y_numeric=True)

    @staticmethod
    def _sklearn_kind() -> type:
        return MLPRegressor

    def _needs_two_to_score(self) -> bool:
        return True  # R^2 of one row is undefined

    def _out_activation(self) -> str:
        return "identity"

    def _reported_outputs(self) -> int:
        return self.n_outputs_

    def _n_outputs(self, y) -> int:
        return 1 if y.ndim == 1 else y.shape[1]

    def _targets(self, y):
        return y.astype(np.float64)

    def _stratify(self, y) -> bool:
        return False

    def _score(self, X, y, sample_weight=None) -> float:
        """R^2 on validation rows; NaN where the predictions are not finite (a diverging
        fit), as scikit-learn scores."""
        Y = self._predict(X)
        if not np.all(np.isfinite(Y)):
            return np.nan
        return r2_score(y, Y, sample_weight=sample_weight)

    def _predict(self, X):
        Y = self._net.backend.to_numpy(self._net.forward(X))
        return Y.ravel() if self.n_outputs_ == 1 else Y

    def score(self, X, y, sample_weight=None) -> float:
        """The coefficient of determination R^2 of the predictions (``r2_score``).

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            The inputs (a sparse matrix is made dense on the device).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The true values.
        sample_weight : array-like of shape (n_samples,), optional
            Weights of the samples.

        Returns
        -------
        float
            R^2, 1 for perfect predictions (averaged uniformly over several targets).

        Examples
        --------
        >>> import numpy as np
        >>> from bpgpu.sklearn import BPRegressor
        >>> rng = np.random.default_rng(0)
        >>> X = rng.uniform(-1, 1, size=(300, 2))
        >>> y = X[:, 0] - 2 * X[:, 1]
        >>> model = BPRegressor(hidden_layer_sizes=(16,), learning_rate_init=0.01,
        ...                     max_iter=200, random_state=0)
        >>> model.fit(X, y).score(X, y) > 0.95
        True
        """
        return super().score(X, y, sample_weight=sample_weight)

    def predict(self, X):
        """The predicted values.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            The inputs (a sparse matrix is made dense on the device).

        Returns
        -------
        numpy.ndarray
            ``(n_samples,)`` for one target, ``(n_samples, n_outputs)`` for several.

        Examples
        --------
        >>> import numpy as np
        >>> from bpgpu.sklearn import BPRegressor
        >>> rng = np.random.default_rng(0)
        >>> X = rng.uniform(-1, 1, size=(300, 2))
        >>> y = X[:, 0] - 2 * X[:, 1]
        >>> model = BPRegressor(hidden_layer_sizes=(16,), max_iter=5, random_state=0)
        >>> model.fit(X, y).predict(X[:4]).shape
        (4,)
        """
        Y = self._forward(X)
        return Y.ravel() if Y.shape[1] == 1 else Y

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None):
        """Train one epoch on the data, going on from the current weights.

        Only with the stochastic solvers (``"sgd"``, ``"adam"``).

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            The inputs (a sparse matrix is made dense on the device).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values.
        sample_weight : array-like of shape (n_samples,), optional
            As :meth:`fit` takes it.

        Returns
        -------
        self
            The estimator, one epoch further.

        Examples
        --------
        >>> import numpy as np
        >>> from bpgpu.sklearn import BPRegressor
        >>> rng = np.random.default_rng(0)
        >>> X = rng.uniform(-1, 1, size=(300, 2))
        >>> y = X[:, 0] - 2 * X[:, 1]
        >>> model = BPRegressor(hidden_layer_sizes=(16,), random_state=0)
        >>> for _ in range(3):
        ...     _ = model.partial_fit(X, y)
        >>> model.t_   # the samples seen: three epochs of 300
        900
        """
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
