"""scikit-learn's training loop at its edges (issue #27 part 8): the adaptive learning
rate's no-improvement counter and ``tol``, and ``partial_fit`` whose first batch lacks
some of ``classes``; compared with scikit-learn's own MLPClassifier where it can be.

Public behaviour only (the parameters, the fitted attributes, the verbose lines that
report every division of the learning rate), so the tests keep guarding while the loop
is rewritten. tests/MUTATIONS.md lists the bugs each was seen to catch.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import load_iris  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from bpgpu.sklearn import BPClassifier  # noqa: E402

X_IRIS, Y_IRIS = load_iris(return_X_y=True)
X_IRIS = StandardScaler().fit_transform(X_IRIS)


def verbose_fit(est, X, y, **fit_kw):
    """Fit with ``verbose=True``: the estimator and the lines that are not a loss
    (``Iteration k, loss = ...``): the counter's verdicts and the learning rates."""
    out = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(out):
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.set_params(verbose=True).fit(X, y, **fit_kw)
    return est, [line for line in out.getvalue().splitlines() if not line.startswith("Iteration")]


def rates(lines):
    """The learning rates the verbose lines set, as printed (``%f``)."""
    return [line.rsplit(" ", 1)[1] for line in lines if "Setting learning rate to" in line]


ADAPTIVE = dict(solver="sgd", learning_rate="adaptive", hidden_layer_sizes=(10,), random_state=0)


def from_the_same_start(steps, **kw):
    """Ours and scikit-learn's, ``steps`` iterations from the same weights (ours after
    a first one-iteration fit, handed to scikit-learn's): plain SGD in a fixed order, so
    the loss curves agree to rounding; and each one's verbose lines."""
    kw = dict(ADAPTIVE, momentum=0.0, alpha=0.0, shuffle=False, batch_size=32, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = BPClassifier(max_iter=1, warm_start=True, backend="numpy", **kw).fit(X_IRIS, Y_IRIS)
        b = MLPClassifier(max_iter=1, warm_start=True, **kw).fit(X_IRIS, Y_IRIS)
    b.coefs_, b.intercepts_ = a.coefs_, a.intercepts_
    a, ours = verbose_fit(a.set_params(max_iter=steps), X_IRIS, Y_IRIS)
    b, theirs = verbose_fit(b.set_params(max_iter=steps), X_IRIS, Y_IRIS)
    return a, b, ours, theirs


@pytest.mark.parametrize(
    "tol, lr, wait",
    [(1e-3, 0.5, 3), (1e-2, 0.5, 3), (3e-3, 1.0, 3), (1e-3, 0.5, 1), (3e-3, 0.3, 5)],
)
def test_adaptive_learning_rate_divides_where_scikit_learns_does(tol, lr, wait):
    """From the same weights: the same losses, the same epochs at which the rate is
    divided by 5 (the counter reset after each division, and by every improvement of
    more than ``tol``), the same stop once it is at most 1e-6, the same ``n_iter_``."""
    kw = dict(tol=tol, learning_rate_init=lr, n_iter_no_change=wait)
    a, b, ours, theirs = from_the_same_start(300, **kw)
    assert a.n_iter_ == b.n_iter_ < 300  # stopped by the rate, not by max_iter
    np.testing.assert_allclose(a.loss_curve_[1:], b.loss_curve_[1:], rtol=1e-10)
    assert len(rates(theirs)) >= 3 and ours[:-1] == theirs[:-1]
    assert ours[-1].endswith("Stopping.") and theirs[-1].endswith("Stopping.")


@pytest.mark.parametrize("wait", [1, 2, 3])
def test_adaptive_learning_rate_without_any_improvement(wait):
    """``tol`` so large that no epoch after the first improves (the first always does,
    on an infinite best): the rate is divided every ``wait + 1`` epochs (the counter
    starts again from 0 each time) until it is at most 1e-6: 1e-3 takes 5 divisions,
    then the fit stops at the sixth verdict. scikit-learn's counts the same."""
    for est in (BPClassifier(backend="numpy", **ADAPTIVE), MLPClassifier(**ADAPTIVE)):
        est, lines = verbose_fit(est.set_params(tol=1e3, n_iter_no_change=wait), X_IRIS, Y_IRIS)
        assert est.n_iter_ == 1 + 6 * (wait + 1), type(est).__name__
        assert rates(lines) == ["0.000200", "0.000040", "0.000008", "0.000002", "0.000000"]
        assert lines[-1].endswith("Stopping.") and len(lines) == 6


@pytest.mark.parametrize(
    "lr, divisions",
    # 5e-6 / 5 is 1.0000000000000002e-06 in float64: above 1e-6, divided once more
    [(1e-6, 0), (1.0000001e-6, 1), (9.9999999e-7, 0), (5e-6, 2), (4.9999e-6, 1)],
)
def test_adaptive_learning_rate_stops_at_or_below_one_in_a_million(lr, divisions):
    """A rate of at most 1e-6 is not divided again: the fit stops (scikit-learn's
    ``learning_rate <= 1e-6``); just above it, it is divided once more."""
    assert sum(1 for k in range(10) if lr / 5.0**k > 1e-6) == divisions  # the arithmetic
    kw = dict(tol=1e3, n_iter_no_change=1, learning_rate_init=lr)
    for est in (BPClassifier(backend="numpy", **ADAPTIVE), MLPClassifier(**ADAPTIVE)):
        est, lines = verbose_fit(est.set_params(**kw), X_IRIS, Y_IRIS)
        assert len(rates(lines)) == divisions, (type(est).__name__, lines)
        assert est.n_iter_ == 1 + 2 * (divisions + 1)


def test_a_loss_that_ties_the_best_improves_by_exactly_tol_zero():
    """A learning rate so small that no update changes the loss: every epoch's loss is
    the first's exactly. With ``tol=0`` a tie is an improvement of exactly ``tol``, which
    counts (scikit-learn's ``loss > best_loss - tol`` is no improvement): the fit runs
    to ``max_iter``; with a ``tol > 0`` it stops at epoch ``n_iter_no_change + 2``."""
    kw = dict(ADAPTIVE, learning_rate_init=1e-30, n_iter_no_change=2, max_iter=12)
    kw.update(shuffle=False)  # the same order of the sums each epoch
    for cls in (BPClassifier, MLPClassifier):
        more = {"backend": "numpy"} if cls is BPClassifier else {}
        est, lines = verbose_fit(cls(tol=0.0, **kw, **more), X_IRIS, Y_IRIS)
        assert len(set(est.loss_curve_)) == 1  # the plateau is exact
        assert est.n_iter_ == 12 and lines == [], cls.__name__
        est, lines = verbose_fit(cls(tol=1e-12, **kw, **more), X_IRIS, Y_IRIS)
        assert est.n_iter_ == 4 and lines[-1].endswith("Stopping."), cls.__name__


@pytest.mark.parametrize("learning_rate", ["constant", "adaptive"])
def test_a_plateau_stops_a_constant_rate_at_the_first_verdict(learning_rate):
    """The same counter without divisions: a constant rate stops at the first verdict."""
    kw = dict(ADAPTIVE, learning_rate=learning_rate, learning_rate_init=1e-30, shuffle=False)
    kw.update(tol=1e-12, n_iter_no_change=4, max_iter=50)
    est, lines = verbose_fit(BPClassifier(backend="numpy", **kw), X_IRIS, Y_IRIS)
    assert est.n_iter_ == 6 and rates(lines) == [] and len(lines) == 1


def test_the_adaptive_stop_says_why_as_scikit_learns_does():
    kw = dict(ADAPTIVE, tol=1e3, n_iter_no_change=1)
    _, ours = verbose_fit(BPClassifier(backend="numpy", **kw), X_IRIS, Y_IRIS)
    _, theirs = verbose_fit(MLPClassifier(**kw), X_IRIS, Y_IRIS)
    assert ours == theirs


def test_a_warm_start_fit_starts_again_at_learning_rate_init():
    """Two warm-start fits of 4 epochs, no epoch improving after the first: the second
    fit divides from ``learning_rate_init`` again (0.0002, then 0.00004; the counter
    carries over), as scikit-learn's does; BPClassifier's goes on from 0.0002."""
    kw = dict(ADAPTIVE, tol=1e3, n_iter_no_change=1, max_iter=4, warm_start=True)
    seen = []
    for est in (BPClassifier(backend="numpy", **kw), MLPClassifier(**kw)):
        est, first = verbose_fit(est, X_IRIS, Y_IRIS)
        est, second = verbose_fit(est, X_IRIS, Y_IRIS)
        seen.append((rates(first), rates(second)))
    assert seen[1] == (["0.000200"], ["0.000200", "0.000040"])  # scikit-learn's
    assert seen[0] == seen[1]


# ---- partial_fit whose first batch lacks some of ``classes`` -----------------------------


def batches_of(X, y, kinds):
    """Rows of the classes ``kinds`` only."""
    keep = np.isin(y, kinds)
    return X[keep], y[keep]


@pytest.mark.parametrize(
    "labels",
    [[0, 1, 2], ["setosa", "versicolor", "virginica"], [10, -3, 7]],
    ids=["ints", "strings", "unsorted"],
)
def test_partial_fit_builds_every_class_from_a_first_batch_without_one(labels):
    """``classes`` names three; the first batch holds two: a softmax of three units,
    ``classes_`` sorted, probabilities of three columns; a later batch with the third
    class trains it, and the network learns to predict it."""
    y = np.asarray(labels, dtype=object if isinstance(labels[0], str) else None)[Y_IRIS]
    names = np.unique(y)
    X1, y1 = batches_of(X_IRIS, y, names[:2])
    est = BPClassifier(hidden_layer_sizes=(8,), random_state=0, learning_rate_init=0.05)
    ref = MLPClassifier(hidden_layer_sizes=(8,), random_state=0, learning_rate_init=0.05)
    for e in (est, ref):
        e.partial_fit(X1, y1, classes=list(labels))
        assert list(e.classes_) == list(names)
        assert e.predict_proba(X_IRIS).shape == (150, 3)
        assert e.coefs_[-1].shape == (8, 3) and e.n_outputs_ == 3
        assert e.out_activation_ == "softmax"
    for _ in range(30):
        est.partial_fit(X_IRIS, y)
    assert names[2] in set(est.predict(X_IRIS)) and est.score(X_IRIS, y) > 0.8
    assert est.n_iter_ == 1 and est.t_ == len(y1) + 30 * 150
    assert est.coefs_[-1].shape == (8, 3)


@pytest.mark.parametrize("labels", [[0, 1], ["no", "yes"]], ids=["ints", "strings"])
@pytest.mark.parametrize("first", [0, 1])
def test_partial_fit_of_two_classes_from_a_first_batch_of_one(labels, first):
    """Binary: one logistic unit whatever the first batch holds; ``classes_`` both;
    a second batch with the other class trains it."""
    y = np.asarray(labels)[(X_IRIS[:, 2] > 0).astype(int)]
    X1, y1 = batches_of(X_IRIS, y, [labels[first]])
    est = BPClassifier(hidden_layer_sizes=(6,), random_state=0, learning_rate_init=0.05)
    est.partial_fit(X1, y1, classes=labels)
    for _ in range(9):
        est.partial_fit(X1, y1)
    assert list(est.classes_) == sorted(labels) and est.n_outputs_ == 1
    assert est.coefs_[-1].shape == (6, 1) and est.out_activation_ == "logistic"
    proba = est.predict_proba(X_IRIS)
    assert proba.shape == (150, 2) and np.allclose(proba.sum(axis=1), 1.0)
    # the one class seen pulls its probability up: the column that belongs to it
    assert proba[:, list(est.classes_).index(labels[first])].mean() > 0.5
    for _ in range(20):
        est.partial_fit(X_IRIS, y)
    assert set(est.predict(X_IRIS)) == set(labels) and est.score(X_IRIS, y) > 0.9


@pytest.mark.parametrize("missing", [0, 1, 2])
def test_partial_fit_on_a_batch_without_a_class_steps_as_scikit_learns(missing):
    """From the same weights, one epoch of plain SGD on a batch that lacks class
    ``missing``: the same loss and weights as MLPClassifier's (the classes keep their
    columns: none shifts into the missing one's)."""
    kw = dict(hidden_layer_sizes=(7,), solver="sgd", momentum=0.0, alpha=0.0)
    kw.update(shuffle=False, batch_size=16, learning_rate_init=0.05, random_state=0)
    a = BPClassifier(backend="numpy", **kw).partial_fit(X_IRIS, Y_IRIS, classes=[0, 1, 2])
    b = MLPClassifier(**kw).partial_fit(X_IRIS, Y_IRIS, classes=[0, 1, 2])
    b.coefs_, b.intercepts_ = a.coefs_, a.intercepts_
    X2, y2 = batches_of(X_IRIS, Y_IRIS, [k for k in range(3) if k != missing])
    a.partial_fit(X2, y2)
    b.partial_fit(X2, y2)
    assert a.loss_ == pytest.approx(b.loss_, rel=1e-10)
    for mine, its in zip([*a.coefs_, *a.intercepts_], [*b.coefs_, *b.intercepts_]):
        np.testing.assert_allclose(mine, its, rtol=1e-9, atol=1e-12)


def test_partial_fit_refuses_classes_outside_the_first_calls():
    X1, y1 = batches_of(X_IRIS, Y_IRIS, [0, 1])
    est = BPClassifier(random_state=0).partial_fit(X1, y1, classes=[0, 1])
    with pytest.raises(ValueError, match="classes not in"):
        est.partial_fit(X_IRIS, Y_IRIS)
    with pytest.raises(ValueError, match="not the same as on the first call"):
        est.partial_fit(X1, y1, classes=[0, 1, 2])
    assert list(est.classes_) == [0, 1] and est.n_outputs_ == 1


# ---- scikit-learn's behaviour where the estimators claim it (#31) ----------------------


def _agreement_cases():
    """(kind, parameter, value) for every value scikit-learn's own constraint generators
    make of each parameter, valid and invalid, and values users pass that they miss."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.utils._param_validation import (
        generate_invalid_param_val,
        generate_valid_param,
        make_constraint,
    )

    extra = {
        "n_iter_no_change": [np.inf, 1, 0],
        "hidden_layer_sizes": [(), 5, (5, 0), np.array([3, 4]), (np.int64(3),)],
        "batch_size": [1, 10**6, 0],
        "activation": ["sigmoidd", "softmax", "logistic"],
        "validation_fraction": [0.5, 0.0, 1.0],
        "learning_rate": ["invscaling", "adaptive", "optimal"],
        "momentum": [0.0, 1.0, 1.5],
        "beta_1": [0.0, 1.0],
        "alpha": [0.0, -1.0],
        "tol": [0.0],
        "max_iter": [1, 0],
    }
    cases = []
    for sk in (MLPClassifier, MLPRegressor):
        for name, constraints in sk._parameter_constraints.items():
            values = []
            for c in map(make_constraint, constraints):
                for make in (generate_valid_param, generate_invalid_param_val):
                    try:
                        values.append(make(c))
                    except NotImplementedError:
                        pass
            values += extra.get(name, [])
            cases += [(sk.__name__, name, v) for v in values if not (name == "loss")]
    return cases


def _outcome(est, X, y) -> str:
    from sklearn.utils._param_validation import InvalidParameterError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            est.fit(X, y)
            return "accepted"
        except InvalidParameterError:
            return "refused by the constraints"
        except (ValueError, TypeError) as e:
            return f"refused: {type(e).__name__}"


def test_every_value_scikit_learn_accepts_is_accepted_and_what_it_refuses_refused():
    pytest.importorskip("sklearn")
    from sklearn import neural_network

    from bpgpu.sklearn import BPClassifier, BPRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    ours = {"MLPClassifier": BPClassifier, "MLPRegressor": BPRegressor}
    differ = []
    for kind, name, value in _agreement_cases():
        y = (X[:, 0] > 0).astype(int) if kind == "MLPClassifier" else X[:, 0]
        kw = {name: value} if name == "max_iter" else {name: value, "max_iter": 3}
        theirs = _outcome(getattr(neural_network, kind)(**kw), X, y)
        mine = _outcome(ours[kind](backend="numpy", **kw), X, y)
        if theirs != mine:
            differ.append(f"{kind}({name}={value!r}): scikit-learn {theirs}, bpgpu {mine}")
    assert not differ, "\n".join(differ)


def test_an_unknown_activation_is_refused_with_scikit_learns_kind_of_message():
    pytest.importorskip("sklearn")
    from sklearn.utils._param_validation import InvalidParameterError

    from bpgpu.sklearn import BPClassifier

    with pytest.raises(InvalidParameterError, match="The 'activation' parameter of BPClassifier"):
        BPClassifier(activation="sigmoidd").fit(np.zeros((4, 2)), [0, 1, 0, 1])


def test_a_diverging_fit_with_early_stopping_ends_as_scikit_learns_with_nan_scores():
    pytest.importorskip("sklearn")
    from sklearn.exceptions import ConvergenceWarning

    from bpgpu.sklearn import BPRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)) * 10
    y = X[:, 0] * 100
    est = BPRegressor(
        learning_rate_init=10.0, early_stopping=True, max_iter=30, solver="sgd", random_state=0
    )
    with pytest.warns(ConvergenceWarning, match="stopped being finite"):
        est.fit(X, y)
    assert np.isnan(est.validation_scores_[-1]) and np.isnan(est.loss_curve_[-1])
    assert np.isfinite(est.best_validation_score_)
    assert est.best_validation_score_ == np.nanmax(est.validation_scores_)
    assert np.all(np.isfinite(est.predict(X)))  # the best epoch's weights


def test_a_validation_split_too_small_to_score_is_refused_before_anything_changes():
    pytest.importorskip("sklearn")
    from sklearn.exceptions import NotFittedError

    from bpgpu.sklearn import BPClassifier, BPRegressor

    X = np.random.default_rng(0).normal(size=(10, 3))
    est = BPRegressor(early_stopping=True, validation_fraction=0.1)
    with pytest.raises(ValueError, match="holds out 1 .* R\\^2 needs at least 2"):
        est.fit(X, X[:, 0])
    with pytest.raises(NotFittedError):
        est.predict(X)
    est.set_params(validation_fraction=0.2).fit(X, X[:, 0])  # 2 rows: scored
    assert np.all(np.isfinite(est.validation_scores_))
    clf = BPClassifier(early_stopping=True, validation_fraction=0.1, max_iter=2)
    with pytest.raises(ValueError, match="holds out 1 .* one of each of the 2 classes"):
        clf.fit(X, (X[:, 0] > 0).astype(int))  # scikit-learn's split refuses it too
    with pytest.raises(NotFittedError):
        clf.predict(X)
    clf.fit(X, np.arange(10) % 3)  # three classes, not stratified: one row scores


def test_poisson_loss_is_refused_with_the_reason():
    pytest.importorskip("sklearn")
    from bpgpu.sklearn import BPRegressor

    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match="loss='poisson' is not supported by bpgpu"):
        BPRegressor(loss="poisson").fit(X, np.exp(X[:, 0]))


@pytest.mark.parametrize(
    ("x_dtype", "dtype", "want"),
    [
        (np.float32, None, np.float32),  # float32 in, float32 out, as scikit-learn
        (np.float64, None, np.float64),
        (np.float64, "float32", np.float32),
        (np.float32, "float64", np.float64),
    ],
)
def test_the_dtype_in_is_the_dtype_out(x_dtype, dtype, want):
    pytest.importorskip("sklearn")
    from bpgpu.sklearn import BPClassifier, BPRegressor

    X = np.random.default_rng(0).normal(size=(60, 3)).astype(x_dtype)
    clf = BPClassifier(max_iter=3, dtype=dtype, backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, (X[:, 0] > 0).astype(int))
        reg = BPRegressor(max_iter=3, dtype=dtype, backend="numpy").fit(X, X[:, 0])
    for a in (clf.predict_proba(X), reg.predict(X), *clf.coefs_, *reg.intercepts_):
        assert a.dtype == want
    assert np.all((clf.predict_proba(X) > 0) & (clf.predict_proba(X) < 1))
