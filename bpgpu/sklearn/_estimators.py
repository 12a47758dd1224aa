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


class BPClassifier(ClassifierMixin, _BPBase):
    """Multi-layer perceptron classifier on any bpgpu backend: scikit-learn's
    ``MLPClassifier`` (same parameters, attributes and methods; see the module docstring
    for what differs), with ``backend`` and ``dtype``.

    Binary targets train one logistic unit, several classes a softmax, multilabel
    indicator targets one logistic unit per label; the loss is the log-loss. What the
    targets are is :func:`bpgpu.targets.kind`'s answer (0/1 rows of two or more columns,
    one-hot included, are indicator targets, as scikit-learn reads them);
    ``LabelBinarizer`` encodes them.
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
        """Class probabilities, ``(n_samples, n_classes)``, in the network's dtype (float32
        for float32 inputs or ``dtype="float32"``); one column per label for multilabel
        targets. Strictly between 0 and 1, as a sigmoid's and a softmax's are: an output
        that rounded to 0 or 1 (logits past +-37 in float64) is moved to the nearest
        float inside, so ``predict_log_proba`` stays finite."""
        Y = self._forward(X)
        one = Y.dtype.type(1)
        top = np.nextafter(one, Y.dtype.type(0))
        if self.n_outputs_ == 1 and not self._multilabel():
            p = np.clip(Y.ravel(), one - top, top)  # 1 - p inside too
            return np.vstack([one - p, p]).T
        return np.clip(Y, np.finfo(Y.dtype).tiny, top)

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

    def score(self, X, y, sample_weight=None) -> float:
        """Mean accuracy on ``X`` and the labels ``y`` (scikit-learn's
        ``accuracy_score``; for multilabel targets a sample counts when all its labels
        are right), weighted by ``sample_weight`` if given."""
        return super().score(X, y, sample_weight=sample_weight)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over ``(X, y)``; ``classes`` (all the labels) on the first call;
        ``sample_weight`` as :meth:`fit` takes it."""
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


class BPRegressor(RegressorMixin, _BPBase):
    """Multi-layer perceptron regressor on any bpgpu backend: scikit-learn's
    ``MLPRegressor`` (identity output, squared error), with ``backend`` and ``dtype``.
    ``loss="poisson"`` is refused: its exp output and Poisson deviance are not among
    bpgpu's activations and costs."""

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
        """The coefficient of determination R^2 of the predictions on ``X`` against
        ``y`` (scikit-learn's ``r2_score``, averaged uniformly over several targets),
        weighted by ``sample_weight`` if given."""
        return super().score(X, y, sample_weight=sample_weight)

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
        return tags
