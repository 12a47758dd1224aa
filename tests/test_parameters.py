"""Options and parameters by name: ``fit``'s signature lists every option (a misspelt one
gets the closest name), the estimators check every parameter from one table, and each
layer's parameters are found by their role (W, b, a PReLU slope), never by position."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest

import bpgpu
from bpgpu import optimizers
from bpgpu.activations import ACTIVATIONS

HIDDEN = sorted(name for name, a in ACTIVATIONS.items() if a.hidden_ok)


def blobs(n=48, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    return rng.normal(size=(n, 4)) + 2 * np.eye(3, 4)[y], y


# ---- fit's options -----------------------------------------------------------------------


def test_fit_lists_every_option_keyword_only():
    params = inspect.signature(bpgpu.MLP.fit).parameters
    kinds = {p.kind for p in params.values()}
    assert inspect.Parameter.VAR_KEYWORD not in kinds
    assert list(params)[:4] == ["self", "X", "y", "epochs"]
    options = [n for n, p in params.items() if p.kind is p.KEYWORD_ONLY]
    for name in ("batch_size", "optimizer", "patience", "checkpoint", "comm", "class_weight"):
        assert name in options
        assert f"{name} :" in bpgpu.MLP.fit.__doc__  # each documented under its name
    assert params["batch_size"].default == 32 and params["shuffle"].default is True


def test_fits_defaults_are_the_options_the_trainer_merges():
    """The signature users read and FitOptions (what a resume merges against) name the
    same options with the same defaults."""
    from dataclasses import fields

    from bpgpu.settings import FitOptions

    params = inspect.signature(bpgpu.MLP.fit).parameters
    shown = {n: p.default for n, p in params.items() if n not in ("self", "X", "y")}
    assert shown == {f.name: f.default for f in fields(FitOptions)}


@pytest.mark.parametrize(
    "wrong, right",
    [("patiance", "patience"), ("batchsize", "batch_size"), ("learning_rate", None)],
)
def test_a_misspelt_option_names_the_closest_and_changes_nothing(wrong, right):
    X, y = blobs()
    net = bpgpu.MLP([4, 5, 3], backend="numpy", seed=0)
    before = net.get_weights()
    with pytest.raises(
        TypeError, match=rf"^MLP\.fit\(\) got an unexpected keyword argument '{wrong}'"
    ) as info:
        net.fit(X, y, epochs=1, **{wrong: 3})
    if right is not None:
        assert f"did you mean '{right}'?" in str(info.value)
    else:
        assert "did you mean" not in str(info.value)
    assert "it takes X, y, epochs, batch_size" in str(info.value)
    for a, b in zip(before, net.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_options_cannot_be_passed_by_position():
    X, y = blobs()
    with pytest.raises(TypeError):
        bpgpu.MLP([4, 3], backend="numpy").fit(X, y, 1, 16)


def test_a_seed_left_out_is_the_networks_and_none_a_fresh_one():
    X, y = blobs()
    a, b, c = (bpgpu.MLP([4, 5, 3], backend="numpy", seed=3) for _ in range(3))
    a.fit(X, y, epochs=2, batch_size=8)
    b.fit(X, y, epochs=2, batch_size=8, seed=3)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert a.fit(X, y, epochs=1).seed == 3
    seeds = {c.fit(X, y, epochs=1, seed=None).seed for _ in range(3)}
    assert len(seeds) == 3 and all(isinstance(s, int) for s in seeds)
    assert "= <the network's seed>" in str(inspect.signature(bpgpu.MLP.fit))


def test_resuming_an_option_left_at_its_default_takes_the_checkpoints(tmp_path):
    X, y = blobs()
    ck = tmp_path / "run.ckpt.npz"
    net = bpgpu.MLP([4, 5, 3], backend="numpy", dtype="float64", seed=0)
    net.fit(X, y, epochs=2, batch_size=8, shuffle=False, checkpoint=ck)
    whole = bpgpu.MLP([4, 5, 3], backend="numpy", dtype="float64", seed=0)
    whole.fit(X, y, epochs=4, batch_size=8, shuffle=False)
    net.fit(X, y, epochs=4, resume=ck)  # batch_size and shuffle from the checkpoint
    for a, b in zip(net.get_weights(), whole.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="batch_size=16 differs from the checkpoint's 8"):
        net.fit(X, y, epochs=5, batch_size=16, resume=ck)
    with pytest.raises(ValueError, match="shuffle=1 differs"):  # 1 is not False's kind
        net.fit(X, y, epochs=5, shuffle=1, resume=ck)


# ---- parameters by layer and role -------------------------------------------------------


@pytest.mark.parametrize("act", HIDDEN)
def test_layer_weights_name_each_parameter(act):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # binary_step's zero gradient
        net = bpgpu.MLP([4, 5, 6, 3], hidden=act, backend="numpy", seed=1)
    layers = net.layer_weights()
    flat = net.get_weights()
    assert len(layers) == 3
    expect = ["W", "b", "a"] if ACTIVATIONS[act].has_param else ["W", "b"]
    assert [list(p) for p in layers] == [expect, expect, ["W", "b"]]
    shapes = [(5, 4), (6, 5), (3, 6)]
    k = 0
    for layer, p, shape in zip(net.layers, layers, shapes):
        assert p["W"].shape == shape and p["b"].shape == shape[:1]
        for role in p:  # the same arrays as the flat list, in its order
            np.testing.assert_array_equal(p[role], flat[k])
            assert layer.position(role) == k
            k += 1
    assert k == len(flat)


@pytest.mark.parametrize("act", HIDDEN)
def test_weight_decay_reaches_every_weight_matrix_and_nothing_else(act):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = bpgpu.MLP([4, 5, 6, 3], hidden=act, backend="numpy", dtype="float64", seed=1)
    params = net.model.params
    zeros = [np.zeros_like(p) for p in params]
    decayed = optimizers.SGD(lr=1.0, weight_decay=0.5).add_weight_decay(zeros, params)
    for layer in net.layers:
        for role, g in layer.named(decayed).items():
            want = 0.5 * layer.named(params)["W"] if role == "W" else 0 * g
            np.testing.assert_array_equal(g, want)


# ---- the estimators ---------------------------------------------------------------------

sklearn = pytest.importorskip("sklearn")
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402

from bpgpu.sklearn import BPClassifier, BPRegressor  # noqa: E402

SKLEARN_ACTIVATIONS = ["identity", "logistic", "tanh", "relu"]


def iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


@pytest.mark.parametrize("act", sorted({*HIDDEN, *SKLEARN_ACTIVATIONS} - {"sigmoid"}))
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_coefs_and_intercepts_are_each_layers_for_every_activation(act, solver):
    X, y = iris()
    est = BPClassifier(hidden_layer_sizes=(5, 4), activation=act, solver=solver, max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    assert [c.shape for c in est.coefs_] == [(4, 5), (5, 4), (4, 3)]
    assert [b.shape for b in est.intercepts_] == [(5,), (4,), (3,)]
    for c, b, p in zip(est.coefs_, est.intercepts_, est._net.layer_weights()):
        np.testing.assert_array_equal(c, p["W"].T)
        np.testing.assert_array_equal(b, p["b"])
    est.coefs_ = [2 * c for c in est.coefs_]  # the setters put each back in its place
    est.intercepts_ = [b + 1 for b in est.intercepts_]
    for c, b, p in zip(est.coefs_, est.intercepts_, est._net.layer_weights()):
        np.testing.assert_array_equal(c, p["W"].T)
        np.testing.assert_array_equal(b, p["b"])
    with pytest.raises(ValueError, match="expected 3 arrays, one per layer"):
        est.coefs_ = est.coefs_[:2]


@pytest.mark.parametrize("act", ["relu", "prelu", "elu"])
def test_the_l2_penalty_counts_every_weight_matrix(act):
    """Stochastic solvers' reported loss and L-BFGS's objective both add
    ``alpha / 2 * sum |W|^2 / n`` over every layer's W, with a slope among them."""
    X, y = iris()
    est = BPClassifier(hidden_layer_sizes=(5, 4), activation=act, alpha=0.3, max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    want = 0.5 * 0.3 * sum(float(np.sum(c**2)) for c in est.coefs_) / 7
    got = float(est._l2_penalty(np, est._net.model.params, 7))
    assert got == pytest.approx(want, rel=1e-12)
    model = est._net.model
    Xd, Td = model.input(X), model.targets(est._targets(est._label_binarizer.transform(y)), 150)
    theta = np.concatenate([p.ravel() for p in est._net.get_weights()])
    with_l2, g = est._lbfgs_objective(Xd, Td)[0](theta)
    est.alpha = 0.0
    without, g0 = est._lbfgs_objective(Xd, Td)[0](theta)
    want = 0.5 * 0.3 * sum(float(np.sum(c**2)) for c in est.coefs_) / 150
    assert with_l2 - without == pytest.approx(want, rel=1e-9)
    k = 0
    for layer in est._net.layers:  # the gradient's L2 term on W only
        for role, p in layer.named(est._net.get_weights()).items():
            part = (g - g0)[k : k + p.size].reshape(p.shape)
            np.testing.assert_allclose(part, 0.3 / 150 * p if role == "W" else 0 * p, atol=1e-12)
            k += p.size


# every value scikit-learn accepts is accepted, every one it refuses refused, alike
CASES = [
    ("activation", "sigmoidd"),
    ("activation", "softmax"),
    ("solver", "newton"),
    ("alpha", -1.0),
    ("batch_size", 0),
    ("batch_size", "big"),
    ("learning_rate", "cosine"),
    ("learning_rate_init", 0.0),
    ("power_t", -0.5),
    ("max_iter", 0),
    ("shuffle", "yes"),
    ("tol", -1e-3),
    ("momentum", 1.5),
    ("nesterovs_momentum", 1),
    ("early_stopping", None),
    ("validation_fraction", 1.0),
    ("beta_1", 1.0),
    ("beta_2", -0.1),
    ("epsilon", 0.0),
    ("n_iter_no_change", 0),
    ("n_iter_no_change", np.inf),
    ("max_fun", 0),
    ("random_state", "seed"),
    ("hidden_layer_sizes", "wide"),
    ("momentum", 0.0),
    ("batch_size", 7),
]


@pytest.mark.parametrize("name, value", CASES, ids=[f"{n}={v!r}" for n, v in CASES])
@pytest.mark.parametrize(
    "ours, theirs", [(BPClassifier, MLPClassifier), (BPRegressor, MLPRegressor)]
)
def test_parameters_are_accepted_and_refused_as_scikit_learn_does(ours, theirs, name, value):
    X, y = iris()
    outcomes, messages = [], []
    for cls in (ours, theirs):
        est = cls(**{"hidden_layer_sizes": (3,), "max_iter": 2, name: value})
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(X, y)
            outcomes.append(None)
        except (TypeError, ValueError) as e:
            outcomes.append(type(e).__name__)
            messages.append(str(e))
    assert outcomes[0] == outcomes[1]
    if outcomes[0] is not None:  # and with scikit-learn's own words
        assert f"The '{name}' parameter of {ours.__name__} must be" in messages[0]


def test_every_parameter_is_in_the_table():
    for cls in (BPClassifier, BPRegressor):
        assert set(cls._parameter_constraints) == set(cls().get_params())
