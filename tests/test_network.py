"""The whole network: gradcheck for every pair, the seed's golden example, the API."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import TOL, rel_norm

import bpgpu
from bpgpu.activations import ACTIVATIONS
from bpgpu.costs import compatible_pairs

HIDDEN = [n for n, a in ACTIVATIONS.items() if a.hidden_ok]


OUTPUT_COST = compatible_pairs()


def data(n_in=3, n_out=2, B=5, cost="quadratic", seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(B, n_in))
    if cost == "categorical_cross_entropy":
        return X, rng.integers(0, n_out, size=B)
    return X, rng.uniform(0.05, 0.95, size=(B, n_out))


def make(hidden, output, cost, backend="numpy", dtype="float64", sizes=(3, 4, 3, 2), seed=1):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # binary_step's zero-gradient warning
        return bpgpu.MLP(list(sizes), hidden, output, cost, backend=backend, dtype=dtype, seed=seed)


@pytest.mark.parametrize("output,cost", OUTPUT_COST)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_gradcheck_every_pair(hidden, output, cost, backend):
    """Backprop vs central differences (<= 1e-6), and this backend vs the NumPy reference."""
    net = make(hidden, output, cost, backend=backend)
    X, T = data(cost=cost)
    assert bpgpu.gradcheck(net, X, T) <= 1e-6
    ref = net.to("numpy")
    for g, r in zip(net.gradients(X, T), ref.gradients(X, T)):
        assert rel_norm(g, r) <= TOL["float64"]


@pytest.mark.parametrize("output,cost", OUTPUT_COST)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_float32_finite_at_plus_minus_1000(hidden, output, cost, backend):
    net = make(hidden, output, cost, backend=backend, dtype="float32")
    X = np.array([[1000.0, -1000.0, 1000.0], [-1000.0, 1000.0, -1000.0], [1000.0] * 3])
    T = data(B=3, cost=cost)[1]
    assert np.all(np.isfinite(bpgpu.to_numpy(net.forward(X))))
    assert np.isfinite(net.loss(X, T))
    for g in net.gradients(X, T):
        assert np.all(np.isfinite(bpgpu.to_numpy(g)))


def test_golden_2_2_1_sigmoid_quadratic_one_sgd_step(backend):
    """A hand-worked step: 2-2-1 sigmoid, quadratic cost, x = (0.05, 0.10), t = 0.01, eta = 0.5.

    (1) x^1 = W1 x + b1 = (0.15*0.05 + 0.20*0.10 + 0.35, 0.25*0.05 + 0.30*0.10 + 0.35)
            = (0.3775, 0.3925);  y^1 = s(x^1) = (0.593269992107, 0.596884378260)
        x^2 = 0.40*0.593269992107 + 0.45*0.596884378260 + 0.60 = 1.105905967060
        y^2 = s(1.105905967060) = 0.751365069552
    (9) d^2 = (y - t) y (1 - y) = 0.741365069552 * 0.751365069552 * 0.248634930448
            = 0.138498561629
    (8) d^1 = y^1 (1 - y^1) * w^2 d^2
            = (0.241300709 * 0.40 * 0.138498561629, 0.240613417 * 0.45 * 0.138498561629)
            = (0.013367920423, 0.014996075489)
    (10) W2 <- W2 - 0.5 d^2 y^1 = (0.40 - 0.5*0.138498561629*0.593269992107, ...)
            = (0.358916479718, 0.408666186076);  b2 <- 0.60 - 0.5*0.138498561629 = 0.530750719186
    (11) W1[i, j] <- W1[i, j] - 0.5 d^1_i x_j, e.g. 0.15 - 0.5*0.013367920423*0.05 = 0.149665801989
         b1 <- 0.35 - 0.5 d^1 = (0.343316039789, 0.342501962256)
    """
    net = bpgpu.MLP([2, 2, 1], "sigmoid", "sigmoid", "quadratic", backend=backend, dtype="float64")
    net.set_weights(
        [
            np.array([[0.15, 0.20], [0.25, 0.30]]),
            np.array([0.35, 0.35]),
            np.array([[0.40, 0.45]]),
            np.array([0.60]),
        ]
    )
    X, T = np.array([[0.05, 0.10]]), np.array([[0.01]])
    assert net.loss(X, T) == pytest.approx(0.5 * (0.01 - 0.751365069552) ** 2, rel=1e-11)
    D1, D2 = (bpgpu.to_numpy(d) for d in net.deltas(X, T))
    np.testing.assert_allclose(D2, [[0.138498561629]], rtol=1e-11)
    np.testing.assert_allclose(D1, [[0.013367920423, 0.014996075489]], rtol=1e-10)
    net.sgd_step(X, T, lr=0.5)
    W1, b1, W2, b2 = net.get_weights()
    np.testing.assert_allclose(W2, [[0.358916479718, 0.408666186076]], rtol=1e-11)
    np.testing.assert_allclose(b2, [0.530750719186], rtol=1e-11)
    np.testing.assert_allclose(
        W1, [[0.149665801989, 0.199331603979], [0.249625098113, 0.299250196226]], rtol=1e-11
    )
    np.testing.assert_allclose(b1, [0.343316039789, 0.342501962256], rtol=1e-11)


def test_deltas_are_per_sample_errors(backend):
    """Row i of D^l is the bias gradient of sample i alone; eq. (8) links the layers."""
    net = make("tanh", "sigmoid", "cross_entropy", backend=backend)
    X, T = data()
    D = [bpgpu.to_numpy(d) for d in net.deltas(X, T)]
    assert [d.shape for d in D] == [(5, 4), (5, 3), (5, 2)]
    for i in range(X.shape[0]):
        g = net.gradients(X[i : i + 1], T[i : i + 1])
        for l, d in enumerate(D):
            np.testing.assert_allclose(d[i], bpgpu.to_numpy(g[2 * l + 1]), rtol=1e-12)
    # (8): D^1 = f'(X^1) * (D^2 @ W^2) with f = tanh, f' = 1 - y^2
    W1, b1, W2 = net.get_weights()[:3]
    Y1 = np.tanh(X @ W1.T + b1)
    np.testing.assert_allclose(D[0], (1 - Y1**2) * (D[1] @ W2), rtol=1e-12)


def test_sgd_step_is_w_minus_lr_gradient(backend):
    net = make("prelu", "softmax", "categorical_cross_entropy", backend=backend)
    X, y = data(cost="categorical_cross_entropy")
    before = net.get_weights()
    grads = [bpgpu.to_numpy(g) for g in net.gradients(X, y)]
    net.sgd_step(X, y, lr=0.3)
    for w0, g, w1 in zip(before, grads, net.get_weights()):
        np.testing.assert_allclose(w1, w0 - 0.3 * g, rtol=1e-14, atol=1e-16)


def test_same_seed_same_weights_on_every_backend(backend):
    a = bpgpu.MLP([5, 7, 3], backend=backend, seed=42).get_weights()
    b = bpgpu.MLP([5, 7, 3], backend="numpy", seed=42).get_weights()
    c = bpgpu.MLP([5, 7, 3], backend="numpy", seed=43).get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def test_initialisation_he_for_relu_glorot_otherwise():
    he = bpgpu.MLP([400, 300, 2], "relu", backend="numpy", dtype="float64").get_weights()[0]
    gl = bpgpu.MLP([400, 300, 2], "tanh", backend="numpy", dtype="float64").get_weights()[0]
    assert he.std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    assert gl.std() == pytest.approx(np.sqrt(6 / 700) / np.sqrt(3), rel=0.02)
    assert np.abs(gl).max() <= np.sqrt(6 / 700)
    prelu = bpgpu.MLP([3, 4, 2], "prelu", backend="numpy").get_weights()
    assert len(prelu) == 5 and np.all(prelu[2] == np.float32(0.25))


def test_float32_network_agrees_with_float64(backend):
    net = make("elu", "softmax", "categorical_cross_entropy", backend=backend, dtype="float32")
    X, y = data(cost="categorical_cross_entropy")
    ref = net.to("numpy", dtype="float64")
    for g, r in zip(net.gradients(X, y), ref.gradients(X, y)):
        assert rel_norm(g, r) <= TOL["float32"]
    assert bpgpu.to_numpy(net.gradients(X, y)[0]).dtype == np.float32


def test_integer_labels_equal_one_hot_targets():
    net = make("relu", "softmax", "categorical_cross_entropy")
    X, y = data(cost="categorical_cross_entropy")
    assert net.loss(X, y) == net.loss(X, np.eye(2)[y])
    assert net.loss(X, y[:, None]) == net.loss(X, y)  # a column of labels is labels too
    assert net.loss(X, y[:, None].astype(float)) == net.loss(X, y)  # 0.0, 1.0: labels
    with pytest.raises(TypeError, match=r"whole numbers 0..1; .* targets of shape \(5, 2\)"):
        net.loss(X, y[:, None] + 0.25)  # one column of other numbers: neither


def test_boolean_labels_are_classes_0_and_1(backend):
    """y = X[:, 0] > 0 is how people write two classes: False/True are labels 0 and 1
    for softmax outputs, and targets 0.0 and 1.0 for one sigmoid unit; fit agrees."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(40, 3))
    yb = X[:, 0] > 0
    yi = yb.astype(np.int64)
    for sizes, output in (([3, 4, 2], "softmax"), ([3, 4, 3], "softmax"), ([3, 1], "sigmoid")):
        a = bpgpu.MLP(sizes, output=output, backend=backend, dtype="float64", seed=1)
        b = a.to(backend)
        assert a.loss(X, yb) == a.loss(X, yi) == a.loss(X, yb[:, None])
        for g, r in zip(a.gradients(X, yb), a.gradients(X, yi)):
            assert rel_norm(g, r) == 0.0
        ha = a.fit(X, yb, epochs=2, batch_size=8, validation_data=(X[:8], yb[:8]), seed=2)
        hb = b.fit(X, yi, epochs=2, batch_size=8, validation_data=(X[:8], yi[:8]), seed=2)
        assert ha.history == {**hb.history, "time": ha.time}
        assert a.evaluate(X, yb) == b.evaluate(X, yi)


def test_default_cost_follows_the_output():
    assert bpgpu.MLP([2, 3, 4], backend="numpy").cost.name == "categorical_cross_entropy"
    assert bpgpu.MLP([2, 1], output="sigmoid", backend="numpy").cost.name == "cross_entropy"
    assert bpgpu.MLP([2, 1], output="tanh", backend="numpy").cost.name == "quadratic"


def test_one_sigmoid_unit_takes_1d_targets():
    net = bpgpu.MLP([3, 1], output="sigmoid", backend="numpy", dtype="float64")
    X = np.ones((4, 3))
    assert net.loss(X, np.array([0, 1, 1, 0])) == net.loss(X, np.array([[0], [1], [1], [0]]))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"sizes": [3]}, "at least 2"),
        ({"sizes": [3, 0, 2]}, "positive integers"),
        ({"hidden": "softmax"}, "output layer only"),
        ({"hidden": ["relu"]}, "2 hidden layers"),
        ({"output": "tanh", "cost": "cross_entropy"}, r"outputs in \(0, 1\)"),
        ({"output": "sigmoid", "cost": "categorical_cross_entropy"}, "needs output='softmax'"),
        ({"dtype": "float16"}, "float32"),
        ({"hidden": "rellu"}, "did you mean 'relu'"),
        ({"hidden": "ReLU"}, "did you mean 'relu'"),  # torch's spelling
        ({"hidden": "LeakyReLU"}, "did you mean 'leaky_relu'"),
        ({"output": "linear"}, "did you mean 'identity'"),  # Keras's name
        ({"output": "identity", "cost": "mse"}, r"did you mean 'quadratic' \(1/2 sum of"),
        ({"output": "sigmoid", "cost": "BCE"}, "did you mean 'cross_entropy'"),
        ({"output": "sigmoid", "cost": "cross-entropy"}, "did you mean 'cross_entropy'"),
        ({"backend": "nunpy"}, "did you mean 'numpy'"),
        ({"seed": -1}, "seed must be"),
        ({"seed": "0"}, "seed must be"),
    ],
)
def test_constructor_refuses_bad_arguments(kwargs, match):
    args = {"sizes": [3, 4, 4, 2], "backend": "numpy", **kwargs}
    with pytest.raises(ValueError, match=match):
        bpgpu.MLP(**args)


def test_activation_objects_are_taken_like_their_names():
    from bpgpu.activations import ACTIVATIONS

    net = bpgpu.MLP([3, 4, 4, 2], hidden=ACTIVATIONS["tanh"], output=ACTIVATIONS["softmax"])
    assert [a.name for a in net.activations] == ["tanh", "tanh", "softmax"]
    assert net.config()["activations"] == ["tanh", "tanh", "softmax"]


def test_binary_step_warns_about_its_zero_gradient():
    with pytest.warns(UserWarning, match="zero gradient"):
        bpgpu.MLP([3, 4, 2], hidden="binary_step", backend="numpy")


@pytest.mark.parametrize(
    "X,err,match",
    [
        (np.ones((4, 2)), ValueError, "has 2 features, the network expects 3"),
        (np.ones(3), ValueError, "reshape"),
        (np.ones((0, 3)), ValueError, "empty"),
        (np.array([[1.0, np.nan, 0.0]]), ValueError, "NaN"),
        (np.ones((2, 3), dtype=complex), TypeError, "real numbers"),
    ],
)
def test_bad_input_gets_a_clear_error(X, err, match, backend):
    net = make("relu", "softmax", "categorical_cross_entropy", backend=backend)
    with pytest.raises(err, match=match):
        net.forward(X)


def test_values_only_the_cast_makes_infinite_are_named_as_such(backend):
    """1e39 is finite in float64 and inf in float32: the error says so (not "contains
    NaN or inf", which the data do not), for inputs and targets; a float64 net takes it."""
    X = np.ones((4, 3))
    X[1, 2] = 1e39
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's overflow in the cast
        net = bpgpu.MLP([3, 4, 2], backend=backend, dtype="float32")
        with pytest.raises(ValueError, match="X: values beyond float32's range"):
            net.forward(X)
        reg = bpgpu.MLP([3, 4, 1], output="identity", backend=backend, dtype="float32")
        before = reg.get_weights()
        with pytest.raises(ValueError, match="targets: values beyond float32's range"):
            reg.fit(np.ones((4, 3)), X[:, 2], epochs=1)
        assert all(np.array_equal(a, b) for a, b in zip(reg.get_weights(), before))
        with pytest.raises(ValueError, match="X contains NaN or inf"):  # NaN stays NaN
            net.forward(np.where(X > 1, np.nan, X))
    assert bpgpu.MLP([3, 4, 2], backend=backend, dtype="float64").forward(X).shape == (4, 2)


def test_targets_built_from_labels_are_not_checked_for_nan(monkeypatch):
    """One-hot rows made from integer labels cannot hold NaN or inf: only the inputs and
    targets given as numbers are checked (each check a device read)."""
    from bpgpu import inputs

    checked = []
    real = inputs._all_finite
    monkeypatch.setattr(inputs, "_all_finite", lambda xp, A: checked.append(A.shape) or real(xp, A))
    net = make("relu", "softmax", "categorical_cross_entropy")
    X, y = data(cost="categorical_cross_entropy")
    net.loss(X, y)
    assert checked == [(5, 3)]  # X only
    net.loss(X, np.eye(2)[y])
    assert checked == [(5, 3), (5, 3), (5, 2)]  # X, then X and the given rows


def test_bad_targets_get_a_clear_error():
    net = make("relu", "softmax", "categorical_cross_entropy")
    X = np.ones((3, 3))
    with pytest.raises(ValueError, match="0..1"):
        net.loss(X, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="expected"):
        net.loss(X, np.ones((3, 5)))
    with pytest.raises(TypeError, match="whole numbers 0..1; these float64 targets hold other"):
        net.loss(X, np.array([0.0, 0.5, 1.0]))
    with pytest.raises(TypeError, match="whole numbers 0..1; these float64 targets hold other"):
        net.loss(X, np.array([0.0, np.nan, 1.0]))


def test_labels_read_as_floats_are_labels(backend):
    """Labels from pandas, a CSV or np.loadtxt come as 0.0, 1.0, 2.0 (a column, too): the
    same network, loss, gradients and fit as integer labels."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.integers(0, 3, size=40)
    nets = [bpgpu.MLP([3, 4, 3], backend=backend, dtype="float64", seed=1) for _ in range(3)]
    ys = [y, y.astype(np.float64), y.astype(np.float32).reshape(-1, 1)]
    losses = [net.loss(X, t) for net, t in zip(nets, ys)]
    grads = [[bpgpu.to_numpy(g) for g in net.gradients(X, t)] for net, t in zip(nets, ys)]
    hist = [net.fit(X, t, epochs=2, batch_size=8).loss for net, t in zip(nets, ys)]
    for k in (1, 2):
        assert losses[k] == losses[0] and hist[k] == hist[0]
        assert all(np.array_equal(a, b) for a, b in zip(grads[k], grads[0]))


def test_soft_categorical_targets_get_exact_gradients(backend):
    """Probability rows (label smoothing): Y - T is dE/dX when each row sums to 1."""
    X = np.random.default_rng(3).normal(size=(6, 3))
    T = np.full((6, 4), 0.1 / 4) + 0.9 * np.eye(4)[[0, 1, 2, 3, 0, 1]]
    net = bpgpu.MLP([3, 5, 4], backend="numpy", dtype="float64", seed=2)
    assert bpgpu.gradcheck(net, X, T) < 1e-7
    other = net.to(backend)
    for a, b in zip(other.gradients(X, T), net.gradients(X, T)):
        assert rel_norm(a, b) <= TOL["float64"]


def test_set_weights_refuses_and_changes_nothing(backend):
    net = make("prelu", "sigmoid", "quadratic", backend=backend)
    before = net.get_weights()
    bad_shape = [w.copy() for w in before]
    bad_shape[3] = np.ones((7, 7))
    with pytest.raises(ValueError, match="shape"):
        net.set_weights(bad_shape)
    bad_value = [w.copy() for w in before]
    bad_value[-1] = np.full_like(bad_value[-1], np.inf)
    with pytest.raises(ValueError, match="NaN or inf"):
        net.set_weights(bad_value)
    with pytest.raises(ValueError, match="expected 8 arrays"):
        net.set_weights(before[:-1])
    assert all(np.array_equal(a, b) for a, b in zip(before, net.get_weights()))


def test_to_copies_weights_exactly(backend):
    net = make("prelu", "softmax", "categorical_cross_entropy", dtype="float32")
    moved = net.to(backend)
    assert moved.backend is backend and net.backend.name == "numpy"
    assert all(np.array_equal(a, b) for a, b in zip(net.get_weights(), moved.get_weights()))


def test_pickle_and_deepcopy_give_the_same_network(backend):
    """A pickle (multiprocessing, joblib) or ``copy.deepcopy`` (keeping the best model)
    round-trips the network exactly: backend, dtype, weights, input scaling and data
    record; a copy trains on without touching the original."""
    import copy
    import pickle

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.integers(0, 2, size=40)
    net = bpgpu.MLP([3, 4, 2], "prelu", backend=backend, dtype="float64", init="glorot_uniform")
    net.set_input_scaling(X.mean(axis=0), X.std(axis=0))
    net.data_info = {"source": "test", "classes": [0, 1]}
    for twin in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net), copy.copy(net)):
        assert (twin.backend.name, twin.dtype, twin.init) == (
            backend.name,
            "float64",
            "glorot_uniform",
        )
        assert repr(twin) == repr(net) and twin.data_info == net.data_info
        for a, b in zip(twin.get_weights(), net.get_weights()):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(
            bpgpu.backends.to_host(twin.predict(X)), bpgpu.backends.to_host(net.predict(X))
        )
    before = net.get_weights()
    twin.fit(X, y, epochs=2, batch_size=8)
    assert not np.array_equal(twin.get_weights()[0], before[0])
    for a, b in zip(net.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_a_gpu_network_unpickles_on_numpy_where_there_is_no_gpu(monkeypatch):
    import pickle

    net = make("relu", "softmax", "categorical_cross_entropy")
    monkeypatch.setattr(net.backend, "name", "cupy:7")  # as if built on a GPU not here
    data = pickle.dumps(net)
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="pickled on .cupy:7.*runs on numpy instead"):
        back = pickle.loads(data)
    assert back.backend.name == "numpy"
    for a, b in zip(back.get_weights(), net.get_weights()):
        np.testing.assert_array_equal(a, b)
    monkeypatch.setattr(net.backend, "name", "my-own-backend")  # a user's Backend object
    data = pickle.dumps(net)
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="pickled on 'my-own-backend'"):
        assert pickle.loads(data).backend.name == "numpy"


def test_bad_learning_rate_changes_nothing():
    net = make("relu", "softmax", "categorical_cross_entropy")
    before = net.get_weights()
    X, y = data(cost="categorical_cross_entropy")
    for lr in (0, -1.0, float("nan"), "0.1"):
        with pytest.raises(ValueError, match="lr"):
            net.sgd_step(X, y, lr=lr)
    assert all(np.array_equal(a, b) for a, b in zip(before, net.get_weights()))


def test_gradcheck_steps_around_a_kink():
    """A weighted input nearer a kink than the finite-difference step (a trained network
    of the ReLU family has some): a difference across it measures no derivative (here
    8e-2 off, with PReLU's slope -1). gradcheck takes smaller steps there, or leaves the
    entry out."""
    net = bpgpu.MLP([2, 2, 1], hidden="prelu", output="identity", cost="quadratic", dtype="float64")
    W1, b1, a1 = np.array([[1.0, 0.0], [0.5, -1.0]]), np.array([-1.0 + 3e-6, 0.2]), [-1.0, 0.25]
    net.set_weights([W1, b1, np.array(a1), np.array([[1.5, -0.5]]), np.array([0.1])])
    X = np.array([[1.0, 0.0], [0.3, 0.7], [-0.4, 0.9]])  # X^1 of row 1, unit 1: 3e-6
    T = np.array([[0.5], [-0.2], [0.3]])
    assert bpgpu.gradcheck(net, X, T) <= 1e-6


def test_gradcheck_refuses_a_bad_step_or_subset_and_what_is_not_a_network():
    net = bpgpu.MLP([3, 4, 2], hidden="tanh", seed=0)
    X, T = np.random.default_rng(0).normal(size=(5, 3)), np.arange(5) % 2
    for eps in (0, -1e-5, float("nan"), 1.0, "1e-5"):
        with pytest.raises(ValueError, match="eps must be a finite number > 0 and < 1"):
            bpgpu.gradcheck(net, X, T, eps=eps)
    for k in (0, 2.5):
        with pytest.raises(ValueError, match="max_entries must be a positive integer"):
            bpgpu.gradcheck(net, X, T, max_entries=k)
    with pytest.raises(TypeError, match="checks a bpgpu.MLP; got list"):
        bpgpu.gradcheck([net], X, T)
    assert bpgpu.gradcheck(net, X, T, eps=np.float32(1e-5), max_entries=np.int64(3)) < 1e-6


@pytest.mark.parametrize("hidden", ["tanh", "prelu"])
def test_gradcheck_catches_a_wrong_derivative(hidden):
    """An activation whose backward pass is 1% off: gradcheck must say so (every other
    gradcheck test passes a check that would also pass if it measured nothing)."""
    import dataclasses

    from bpgpu import activations

    good = activations.get(hidden)
    bad = dataclasses.replace(
        good,
        name=f"{hidden}_off",
        vjp_fn=lambda xp, X, Y, G, a=None: 1.01 * good.vjp(xp, X, Y, G, a),
        c_f=None,
        c_vjp=None,
    )
    X, T = np.random.default_rng(0).normal(size=(8, 3)), np.arange(8) % 2
    net = bpgpu.MLP([3, 5, 2], hidden=bad, backend="numpy", dtype="float64", seed=1)
    assert bpgpu.gradcheck(net, X, T) > 1e-3
    fine = bpgpu.MLP([3, 5, 2], hidden=good, backend="numpy", dtype="float64", seed=1)
    assert bpgpu.gradcheck(fine, X, T) <= 1e-6


@pytest.mark.parametrize("name", ["numpy", "jax"])
def test_an_activation_of_your_own_need_not_be_hashable(name):
    """Compiled programs are shared by a key that holds the layers' activations; one of
    the user's own with a list among its fields cannot be hashed: it trains and
    predicts all the same, its programs made for it alone."""
    import dataclasses

    from conftest import load_backend

    from bpgpu import activations

    be = load_backend(name)
    act = dataclasses.replace(activations.get("tanh"), name="mine", aliases=["x"], c_f=None)
    X, y = np.random.default_rng(0).normal(size=(10, 3)), np.arange(10) % 2
    net = bpgpu.MLP([3, 4, 2], hidden=act, backend=be, dtype="float64", seed=1)
    ref = bpgpu.MLP([3, 4, 2], hidden="tanh", backend="numpy", dtype="float64", seed=1)
    for n in (net, ref):
        n.fit(X, y, epochs=2, batch_size=4)
    assert rel_norm(net.predict(X), ref.predict(X)) <= 1e-12


@pytest.mark.parametrize(
    "hidden, output, cost",
    [
        ("tanh", "softmax", "categorical_cross_entropy"),
        ("relu", "sigmoid", "cross_entropy"),
        ("prelu", "identity", "quadratic"),
        ("tanh", "prelu", "quadratic"),  # a learnable output: dE/dY weighted
    ],
)
def test_sample_weights_count_a_row_as_often_as_its_weight(hidden, output, cost, backend):
    """Whole numbers as sample weights: the weighted mean loss and its gradients are
    those of the batch with each row repeated that often (core.output's weights, each
    row's share of the batch's total, as fit and the scikit-learn estimators pass
    them), on every backend."""
    rng = np.random.default_rng(4)
    n_out = 1 if output == "sigmoid" else 3
    X = rng.normal(size=(7, 4))
    T = rng.uniform(0.05, 0.95, size=(7, n_out)) if output == "sigmoid" else rng.integers(0, 3, 7)
    w = np.array([1, 3, 0, 2, 1, 1, 4])
    net = bpgpu.MLP(
        [4, 5, n_out],
        hidden=hidden,
        output=output,
        cost=cost,
        dtype="float64",
        backend=backend,
        seed=2,
    )
    m = net.model
    wd = backend.asarray(w / w.sum(), "float64")
    E, G = m.value_and_gradients(m.input(X), m.targets(T, 7), m.params, wd)
    rep = np.repeat(np.arange(7), w)
    E_rep, G_rep = m.value_and_gradients(m.input(X[rep]), m.targets(T[rep], len(rep)), m.params)
    assert float(E) == pytest.approx(float(E_rep), rel=1e-12)
    for a, b in zip(G, G_rep):
        np.testing.assert_allclose(bpgpu.to_numpy(a), bpgpu.to_numpy(b), rtol=1e-10, atol=1e-14)


def test_summary_and_parameter_count_follow_the_layers():
    """``n_params`` counts what ``get_weights`` holds (PReLU slopes included); the
    summary lists every layer's W shape, activation and count, and the total."""
    for sizes, hidden in (([64, 256, 128, 10], "prelu"), ([3, 2], "relu"), ([5, 4, 4, 2], "tanh")):
        net = bpgpu.MLP(sizes, hidden=hidden, backend="numpy", dtype="float64")
        assert net.n_params == sum(w.size for w in net.get_weights())
        lines = net.summary().splitlines()
        assert len(lines) == len(sizes) + 1  # a header, a row per layer, the totals
        for l, (n_in, n_out) in enumerate(zip(sizes, sizes[1:]), start=1):
            fields = lines[l].split()
            count = n_out * n_in + n_out * (2 if hidden == "prelu" and l < len(sizes) - 1 else 1)
            assert fields[0] == str(l) and f"({n_out}, {n_in})" in lines[l]
            assert fields[-1] == f"{count:,}"
        assert lines[-1].startswith(f"{net.n_params:,} parameters (")
        assert f"{net.n_params * 8 / 1024:,.1f} KiB of float64" in lines[-1]
