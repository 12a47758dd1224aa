"""bpgpu.sklearn: scikit-learn's own estimator checks, its attributes and workflows, and
parity with MLPClassifier / MLPRegressor on its bundled data sets."""

from __future__ import annotations

import collections
import importlib.util
import pickle
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_diabetes, load_digits, load_iris  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from bpgpu.sklearn import BPClassifier, BPRegressor  # noqa: E402

BACKENDS = ["numpy"] + [b for b in ("torch", "jax") if importlib.util.find_spec(b)]
ESTIMATORS = [cls(backend=b) for b in BACKENDS for cls in (BPClassifier, BPRegressor)]
ESTIMATORS += [cls(solver="lbfgs", backend="numpy") for cls in (BPClassifier, BPRegressor)]


@parametrize_with_checks(ESTIMATORS)
def test_scikit_learns_estimator_checks(estimator, check):
    """Every check of scikit-learn's suite, on the NumPy backend (and torch and JAX where
    they are installed; JAX's programs are shared between the checks' many small
    estimators, so the checks take about 50 s), with no expected failures: a weight of 2
    is a repeated row for the stochastic solvers too (their default batch holds the
    check's whole data)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def test_importing_bpgpu_does_not_import_sklearn():
    import subprocess
    import sys

    code = "import sys, bpgpu; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def scaled(loader):
    X, y = loader(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def test_parameters_are_mlpclassifiers_with_the_same_defaults():
    ours, theirs = BPClassifier().get_params(), MLPClassifier().get_params()
    assert set(theirs) <= set(ours) and set(ours) - set(theirs) == {"backend", "dtype", "precision"}
    assert all(ours[k] == theirs[k] for k in theirs)
    ours, theirs = BPRegressor().get_params(), MLPRegressor().get_params()
    assert all(ours[k] == theirs[k] for k in theirs)


def test_fitted_attributes_in_scikit_learns_layout():
    X, y = scaled(load_iris)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = BPClassifier(hidden_layer_sizes=(7, 5), max_iter=300, random_state=0).fit(X, labels)
    assert list(est.classes_) == ["setosa", "versicolor", "virginica"]
    assert est.n_features_in_ == 4 and est.n_layers_ == 4 and est.n_outputs_ == 3
    assert [c.shape for c in est.coefs_] == [(4, 7), (7, 5), (5, 3)]
    assert [b.shape for b in est.intercepts_] == [(7,), (5,), (3,)]
    assert est.out_activation_ == "softmax" and est.n_iter_ == len(est.loss_curve_)
    assert est.t_ == est.n_iter_ * 150 and est.loss_ == est.loss_curve_[-1]
    assert est.best_loss_ == min(est.loss_curve_) and est.validation_scores_ is None
    proba = est.predict_proba(X[:5])
    assert proba.shape == (5, 3) and np.allclose(proba.sum(axis=1), 1)
    np.testing.assert_allclose(np.exp(est.predict_log_proba(X[:5])), proba)
    assert set(est.predict(X)) <= set(labels) and est.score(X, labels) > 0.8
    # coefs_ is the network: setting it changes the predictions
    est.coefs_ = [np.zeros_like(c) for c in est.coefs_]
    assert np.allclose(est.predict_proba(X[:3]), est.predict_proba(X[:3])[0])


def test_non_contiguous_integer_classes_binary_and_multilabel():
    X, y = scaled(load_iris)
    est = BPClassifier(max_iter=60, random_state=1).fit(X, np.array([3, 10, 42])[y])
    assert list(est.classes_) == [3, 10, 42] and set(est.predict(X)) <= {3, 10, 42}
    binary = BPClassifier(max_iter=60, random_state=1).fit(X, y == 0)
    assert binary.out_activation_ == "logistic" and binary.predict_proba(X).shape == (150, 2)
    Y = np.column_stack([y == 0, y == 2, y > 0]).astype(int)
    multi = BPClassifier(max_iter=200, random_state=1).fit(X, Y)
    assert multi.predict(X).shape == (150, 3) and multi.predict_proba(X).shape == (150, 3)
    assert (multi.predict(X) == Y).mean() > 0.9


def test_probabilities_stay_inside_zero_one_when_the_outputs_saturate():
    """Weights large enough that a sigmoid or softmax rounds to exactly 0 or 1: the
    probabilities stay strictly inside, so their logarithms are finite (scikit-learn's
    multilabel check failed on an L-BFGS fit)."""
    X, y = scaled(load_iris)
    Ys = {"binary": y == 0, "multiclass": y, "multilabel": np.column_stack([y == 0, y > 0])}
    for kind, Y in Ys.items():
        est = BPClassifier(max_iter=2, random_state=0).fit(X, Y)
        est.coefs_ = [1e3 * w for w in est.coefs_]  # logits in the thousands
        P = est.predict_proba(X)
        assert np.all((P > 0) & (P < 1)), kind
        assert np.all(np.isfinite(est.predict_log_proba(X))), kind
        if kind != "multilabel":
            np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-15)


def test_multi_output_regression():
    X, y = scaled(load_diabetes)
    Y = np.column_stack([y, -2 * y]) / y.std()
    est = BPRegressor(max_iter=200, random_state=0, learning_rate_init=0.01).fit(X, Y)
    assert est.predict(X).shape == (len(X), 2) and est.score(X, Y) > 0.4
    assert est.out_activation_ == "identity"


def test_early_stopping_partial_fit_warm_start_and_schedules():
    X, y = scaled(load_digits)
    es = BPClassifier(early_stopping=True, random_state=0, max_iter=200).fit(X, y)
    assert es.best_loss_ is None and len(es.validation_scores_) == es.n_iter_
    assert es.best_validation_score_ == max(es.validation_scores_) > 0.9
    assert es.n_iter_ < 200  # stopped by n_iter_no_change
    pf = BPClassifier(random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        pf.partial_fit(X, y)
    for _ in range(15):
        pf.partial_fit(X[:1000], y[:1000], classes=np.arange(10))
    # n_iter_ counts the last call's iterations, t_ every sample seen: scikit-learn's
    assert pf.n_iter_ == 1 and pf.t_ == 15_000 and pf.score(X[1000:], y[1000:]) > 0.8
    ws = BPClassifier(max_iter=5, warm_start=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ws.fit(X, y)
        first = ws.loss_
        ws.fit(X, y)
    assert ws.n_iter_ == 5 and len(ws.loss_curve_) == 10 and ws.loss_ < first
    inv = BPClassifier(solver="sgd", learning_rate="invscaling", max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        inv.fit(X, y)
    assert inv._opt.lr == pytest.approx(0.001 / (inv.t_ + 1) ** 0.5)
    ada = BPClassifier(
        solver="sgd",
        learning_rate="adaptive",
        n_iter_no_change=1,
        tol=10.0,
        max_iter=4,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ada.fit(X, y)
    assert ada._opt.lr < 0.001  # divided by 5 when the loss stopped improving by tol


def _from_the_same_start(ours, theirs, X, y, w, steps: int, **kw):
    """Ours and scikit-learn's estimator fitted ``steps`` iterations from the same
    weights (ours, handed to scikit-learn's after a first one-iteration fit), with
    sample weights ``w`` (or None)."""
    kw = dict(hidden_layer_sizes=(10,), random_state=0, warm_start=True, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = ours(max_iter=1, **kw).fit(X, y, sample_weight=w)
        b = theirs(max_iter=1, **{k: v for k, v in kw.items() if k != "backend"})
        b.fit(X, y, sample_weight=w)
        b.coefs_, b.intercepts_ = a.coefs_, a.intercepts_
        for est in (a, b):
            est.set_params(max_iter=steps).fit(X, y, sample_weight=w)
    return a, b


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("task", ["classifier", "regressor"])
def test_lbfgs_takes_mlpclassifiers_steps_from_the_same_start(task, backend, weighted):
    """solver="lbfgs" (it was refused): from the same weights, the same iterations as
    scikit-learn's own (its loss with the L2 term, its gradient, scipy's L-BFGS-B), with
    sample weights too (the weighted mean, the L2 term over their sum)."""
    if task == "classifier":
        (X, y), ours, theirs = scaled(load_iris), BPClassifier, MLPClassifier
    else:
        (X, y), ours, theirs = scaled(load_diabetes), BPRegressor, MLPRegressor
        y = y / y.std()
    w = np.random.default_rng(1).uniform(0.2, 3.0, size=len(y)) if weighted else None
    a, b = _from_the_same_start(ours, theirs, X, y, w, 25, solver="lbfgs", backend=backend)
    assert a.n_iter_ == b.n_iter_ == 25 and not hasattr(a, "loss_curve_")
    assert a.loss_ == pytest.approx(b.loss_, rel=1e-9)
    for mine, its in zip([*a.coefs_, *a.intercepts_], [*b.coefs_, *b.intercepts_]):
        np.testing.assert_allclose(mine, its, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-6, atol=1e-9)
    assert not hasattr(a, "partial_fit")  # not a stochastic solver, as scikit-learn says


def test_the_estimators_fit_alike_on_every_backend(backend):
    """The same fits on every backend, the GPU ones included (scikit-learn's suite above
    runs on NumPy, torch and JAX only): weights and outputs equal NumPy's in float64."""
    X, y = scaled(load_iris)
    kw = dict(hidden_layer_sizes=(8,), random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        w = np.random.default_rng(3).uniform(0.5, 2.0, size=len(y))
        for est, target, more, sw in (
            (BPClassifier, y, dict(max_iter=5), None),
            (BPClassifier, y, dict(solver="lbfgs", max_iter=10), None),
            (BPRegressor, X[:, 0], dict(solver="sgd", max_iter=5), None),
            (BPClassifier, y, dict(max_iter=5), w),
            (BPClassifier, y, dict(solver="lbfgs", max_iter=10), w),
        ):
            ref = est(backend="numpy", **kw, **more).fit(X[:, 1:], target, sample_weight=sw)
            got = est(backend=backend.name, **kw, **more).fit(X[:, 1:], target, sample_weight=sw)
            assert got._net.backend.name == backend.name and got.n_iter_ == ref.n_iter_
            for a, b in zip([*got.coefs_, *got.intercepts_], [*ref.coefs_, *ref.intercepts_]):
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(got.predict(X[:, 1:]), ref.predict(X[:, 1:]), rtol=1e-9)


@pytest.mark.parametrize("task", ["classifier", "regressor"])
def test_sample_weight_steps_as_scikit_learns_sgd_does(task):
    """Plain SGD on weighted samples from the same weights, in the same batch order:
    scikit-learn's loss curve and weights (each row's error times its weight over the
    batch's total weight); weights of 1 change nothing."""
    if task == "classifier":
        (X, y), ours, theirs = scaled(load_iris), BPClassifier, MLPClassifier
    else:
        (X, y), ours, theirs = scaled(load_diabetes), BPRegressor, MLPRegressor
        y = y / y.std()
    w = np.random.default_rng(2).uniform(0.0, 3.0, size=len(y))
    kw = dict(solver="sgd", momentum=0.0, alpha=0.0, shuffle=False, batch_size=32)
    a, b = _from_the_same_start(ours, theirs, X, y, w, 6, backend="numpy", **kw)
    # the curves from the shared start on (their first entries: each one's own start)
    np.testing.assert_allclose(a.loss_curve_[1:], b.loss_curve_[1:], rtol=1e-12)
    for mine, its in zip([*a.coefs_, *a.intercepts_], [*b.coefs_, *b.intercepts_]):
        np.testing.assert_allclose(mine, its, rtol=1e-10, atol=1e-13)
    ones, plain = (
        ours(random_state=0, max_iter=3, **kw).fit(X, y, sample_weight=s) for s in (1.0, None)
    )
    np.testing.assert_allclose(ones.coefs_[0], plain.coefs_[0], rtol=1e-12)
    unweighted = _from_the_same_start(ours, theirs, X, y, None, 6, backend="numpy", **kw)[0]
    assert not np.allclose(a.coefs_[0], unweighted.coefs_[0])  # the weights mattered


def test_several_targets_report_scikit_learns_loss_and_stop_where_it_stops():
    """Two regression targets, plain SGD from the same start: scikit-learn reports the
    squared error averaged over the targets (its steps sum over them); ``loss_curve_``
    summed them, twice scikit-learn's, so ``tol`` stopped the fit elsewhere."""
    X, y = scaled(load_diabetes)
    Y = np.c_[y, X[:, 2] - X[:, 3]] / np.array([y.std(), 1.0])
    kw = dict(solver="sgd", momentum=0.0, alpha=0.0, shuffle=False, batch_size=64)
    kw.update(tol=5e-3, n_iter_no_change=2, learning_rate_init=0.02)
    a, b = _from_the_same_start(BPRegressor, MLPRegressor, X, Y, None, 60, backend="numpy", **kw)
    np.testing.assert_allclose(a.loss_curve_[1:], b.loss_curve_[1:], rtol=1e-10)
    assert a.n_iter_ == b.n_iter_ < 61  # stopped by tol, at scikit-learn's iteration


def test_n_iter_and_t_count_as_scikit_learns_do():
    """``n_iter_`` is the last fit's iterations (a warm start's second fit: 5, not 10;
    each ``partial_fit``: 1), ``t_`` every sample seen, as scikit-learn counts them."""
    X, y = scaled(load_iris)
    counts = []
    for est in (BPClassifier, MLPClassifier):
        warm = est(max_iter=5, warm_start=True, random_state=0)
        part = est(random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warm.fit(X, y).fit(X, y)
            for _ in range(3):
                part.partial_fit(X, y, classes=[0, 1, 2])
        counts.append((warm.n_iter_, warm.t_, len(warm.loss_curve_), part.n_iter_, part.t_))
    assert counts[0] == counts[1] == (5, 1500, 10, 1, 450)


def test_bad_sample_weights_are_refused():
    X, y = scaled(load_iris)
    for w, match in (
        (np.ones(3), r"sample_weight has shape \(3,\); pass one weight per sample of X"),
        (-np.ones(150), "finite and >= 0"),
        (np.full(150, np.nan), "finite and >= 0"),
        (np.zeros(150), "zero for every sample"),
    ):
        with pytest.raises(ValueError, match=match):
            BPClassifier(max_iter=2).fit(X, y, sample_weight=w)


def test_warm_start_goes_on_across_solvers():
    """L-BFGS, then Adam from its weights (its loss curve starts there), then L-BFGS."""
    X, y = scaled(load_iris)
    est = BPClassifier(solver="lbfgs", warm_start=True, max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
        before = est.coefs_
        est.set_params(solver="adam", max_iter=3).fit(X, y)
        assert len(est.loss_curve_) == 3 and est.n_iter_ == 3
        assert np.abs(est.coefs_[0] - before[0]).max() < 0.01  # three small steps from there
        est.set_params(solver="lbfgs").fit(X, y)
    assert est.n_iter_ <= 3 and est.score(X, y) > 0.9


def test_lbfgs_objective_is_the_loss_and_its_gradient():
    from scipy.optimize import check_grad

    X, y = scaled(load_iris)
    est = BPClassifier(solver="lbfgs", alpha=0.1, hidden_layer_sizes=(4,), max_iter=3)
    with pytest.warns(ConvergenceWarning, match="lbfgs did not converge in 3 iteration"):
        est.fit(X, y)
    model = est._net.model
    fun, _ = est._lbfgs_objective(model.input(X), model.targets(y, len(y)))
    theta = np.concatenate([w.ravel() for w in est._net.get_weights()])
    W = est.coefs_
    penalty = 0.5 * 0.1 * sum(float((w * w).sum()) for w in W) / len(y)
    assert fun(theta)[0] == pytest.approx(est._net.loss(X, y) + penalty, rel=1e-12)
    assert fun(theta)[0] == pytest.approx(est.loss_, rel=1e-12)  # where it stopped
    g = fun(theta)[1]
    assert check_grad(lambda t: fun(t)[0], lambda t: fun(t)[1], theta) < 1e-6 * np.linalg.norm(g)


def test_pipeline_grid_search_cross_validation_and_clone():
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), BPClassifier(max_iter=400, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(pipe, X, y, cv=3)
        grid = GridSearchCV(pipe, {"bpclassifier__hidden_layer_sizes": [(5,), (20,)]}, cv=3)
        grid.fit(X, y)
    assert scores.mean() > 0.85 and grid.best_score_ > 0.85
    c = clone(BPClassifier(hidden_layer_sizes=(3,), backend="numpy", dtype="float32"))
    assert c.get_params()["hidden_layer_sizes"] == (3,) and c.get_params()["dtype"] == "float32"


def test_a_model_trained_on_a_gpu_unpickles_where_there_is_none(monkeypatch):
    """Pickles hold host arrays; a backend that cannot load on unpickling falls back to
    NumPy with a warning, and predicts the same."""
    X, y = scaled(load_iris)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = BPClassifier(max_iter=20, random_state=0, backend="numpy").fit(X, y)
    data = pickle.dumps(est)
    est.backend = "cupy:7"  # as if fitted on a GPU this machine does not have
    gpu_data = pickle.dumps(est)
    with pytest.warns(UserWarning, match="runs on numpy instead"):
        back = pickle.loads(gpu_data)
    assert back._net.backend.name == "numpy"
    np.testing.assert_array_equal(back.predict_proba(X), pickle.loads(data).predict_proba(X))
    back.partial_fit(X, y)  # and trains on, optimizer state included
    assert back.n_iter_ == 1 and back.t_ == 21 * len(X)


def _scores(est_cls, X_tr, y_tr, X_te, y_te, seeds, **kw):
    out = []
    for seed in seeds:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            out.append(est_cls(random_state=seed, **kw).fit(X_tr, y_tr).score(X_te, y_te))
    return np.array(out)


@pytest.mark.parametrize("loader", [load_iris, load_digits], ids=["iris", "digits"])
def test_accuracy_matches_mlpclassifier_within_seed_noise(loader):
    X, y = scaled(loader)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    kw = dict(hidden_layer_sizes=(32,), max_iter=60)
    ours = _scores(BPClassifier, X_tr, y_tr, X_te, y_te, range(4), **kw)
    theirs = _scores(MLPClassifier, X_tr, y_tr, X_te, y_te, range(4), **kw)
    noise = 2 * max(ours.std(), theirs.std(), 0.01)
    assert abs(ours.mean() - theirs.mean()) <= noise, (ours, theirs)


def test_r2_matches_mlpregressor_within_seed_noise():
    X, y = scaled(load_diabetes)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0)
    kw = dict(hidden_layer_sizes=(32,), max_iter=300, learning_rate_init=0.01)
    ours = _scores(BPRegressor, X_tr, y_tr, X_te, y_te, range(4), **kw)
    theirs = _scores(MLPRegressor, X_tr, y_tr, X_te, y_te, range(4), **kw)
    noise = 2 * max(ours.std(), theirs.std(), 0.02)
    assert abs(ours.mean() - theirs.mean()) <= noise, (ours, theirs)


@pytest.mark.parametrize("schedule", ["constant", "invscaling"])
def test_on_jax_each_iteration_is_one_compiled_program(schedule, monkeypatch):
    """The full batches of every iteration run as the compiled epoch (the last, shorter
    batch as a compiled step), with NumPy's loss curve to rounding, and a schedule that
    changes the learning rate every iteration compiles nothing more."""
    from conftest import load_backend

    import bpgpu
    from bpgpu import model as model_module
    from bpgpu import programs

    load_backend("jax")
    monkeypatch.setattr(programs, "PROGRAMS", collections.OrderedDict())  # none yet
    X, y = bpgpu.datasets.load_digits()
    kw = dict(solver="sgd", learning_rate=schedule, max_iter=4, batch_size=100)
    kw.update(random_state=0, dtype="float64", n_iter_no_change=99)
    ref = BPClassifier(backend="numpy", **kw).fit(X, y)
    real, spans = model_module.Model.epoch_spans, []
    monkeypatch.setattr(
        model_module.Model, "epoch_spans", lambda *a: (spans.append(a[5:8]), real(*a))[1]
    )
    jax_fit = BPClassifier(backend="jax", **kw).fit(X, y)
    assert spans == [(100, 0, len(X) // 100)] * 4
    np.testing.assert_allclose(jax_fit.loss_curve_, ref.loss_curve_, rtol=1e-12)
    epochs = [k for k in programs.PROGRAMS if k[0] == "epoch"]
    assert len(epochs) == 1  # one program for all four
