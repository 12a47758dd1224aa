"""What users pass: NumPy types accepted like Python ones, wrong kinds refused naming the
argument, targets checked against the cost, and what a textbook user needs (init
schemes, integer labels with every cost)."""

from __future__ import annotations

import numpy as np
import pytest

import bpgpu
from bpgpu import optimizers


def blobs(n=48, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    return rng.normal(size=(n, 4)) + 2 * np.eye(3, 4)[y], y


def test_numpy_scalars_and_dtypes_are_accepted_like_python_ones():
    X, y = blobs()
    a = bpgpu.MLP(np.array([4, 6, 3]), backend="numpy", dtype=np.float64, seed=np.int64(2))
    b = bpgpu.MLP([4, 6, 3], backend="numpy", dtype="float64", seed=2)
    assert a.sizes == [4, 6, 3] and all(type(n) is int for n in a.sizes)
    assert a.dtype == "float64" and bpgpu.MLP([4, 3], dtype=np.dtype("float32")).dtype == "float32"
    kw = dict(epochs=np.int64(2), batch_size=np.int64(16), lr=np.float32(0.1), seed=np.int64(1))
    a.fit(X, y, patience=np.int32(5), weight_decay=np.float32(0.001), **kw)
    b.fit(
        X,
        y,
        patience=5,
        weight_decay=float(np.float32(0.001)),
        **{k: v.item() for k, v in kw.items()},
    )
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert optimizers.Adam(lr=np.float32(0.01), beta1=np.float64(0.8)).beta1 == 0.8
    a.sgd_step(X, y, lr=np.float32(0.05))
    assert a.to("numpy", dtype=np.float32).dtype == "float32"


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: bpgpu.MLP(4), "sizes must be a sequence of layer widths"),
        (lambda: bpgpu.MLP("64,10"), "sizes must be a sequence"),
        (lambda: bpgpu.MLP([4, 2.5, 3]), "positive integers"),
        (lambda: bpgpu.MLP([4, True, 3]), "positive integers"),
        (lambda: bpgpu.MLP([4, 6, 3], hidden=None), "hidden must be an activation name"),
        (lambda: bpgpu.MLP([4, 6, 3], dtype="float16"), "dtype must be"),
        (lambda: bpgpu.MLP([4, 6, 3], dtype=np.int32), "dtype must be"),
        (lambda: bpgpu.MLP([4, 6, 3], seed=1.5), "seed must be"),
        (lambda: bpgpu.MLP([4, 6, 3], init="xavier"), "unknown init 'xavier'"),
        (lambda: bpgpu.MLP([4, 1], output="softmax"), "softmax.*always gives 1"),
        (lambda: bpgpu.MLP([4, 6, 1], output="softmax"), "one output with output='sigmoid'"),
    ],
)
def test_wrong_kinds_of_arguments_are_refused_naming_them(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    "kw, err, match",
    [
        ({"callbacks": bpgpu.Callback()}, TypeError, r"callbacks=\[cb\]"),
        ({"callbacks": [object()]}, TypeError, "no on_train_begin"),
        ({"callbacks": [bpgpu.Callback]}, TypeError, r"the class Callback, .* pass Callback\(\)"),
        ({"optimizer": {"name": "momentum", "mom": 0.8}}, TypeError, "takes lr, momentum, w"),
        ({"optimizer": {"lr": 0.1}}, ValueError, "an optimizer dict names its optimizer"),
        ({"batch_size": 0}, ValueError, "batch_size must be a positive integer"),
        ({"batch_size": 8.0}, ValueError, "batch_size must be a positive integer"),
        ({"epochs": np.float64(2)}, ValueError, "epochs must be a positive integer"),
        ({"shuffle": "yes"}, ValueError, "shuffle must be True or False"),
        ({"validation_split": 1.0}, ValueError, "validation_split must be"),
        ({"lr": np.float32(-1)}, ValueError, "lr must be"),
    ],
)
def test_bad_fit_arguments_name_the_argument_and_change_nothing(kw, err, match):
    X, y = blobs()
    net = bpgpu.MLP([4, 6, 3], backend="numpy")
    before = net.get_weights()
    args = {"epochs": 1, **kw}
    with pytest.raises(err, match=match):
        net.fit(X, y, **args)
    for a, b in zip(net.get_weights(), before):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cost", ["quadratic", "cross_entropy"])
def test_integer_class_labels_work_with_every_cost(cost):
    """The textbook one-hots labels for the quadratic and per-unit costs: so do we."""
    X, y = blobs()
    output = "sigmoid"
    net = bpgpu.MLP([4, 6, 3], output=output, cost=cost, backend="numpy", dtype="float64")
    one_hot = np.eye(3)[y]
    assert net.loss(X, y) == net.loss(X, one_hot)
    for g, h in zip(net.gradients(X, y), net.gradients(X, one_hot)):
        np.testing.assert_array_equal(g, h)
    assert net.fit(X, y, epochs=2).loss[-1] > 0


@pytest.mark.parametrize("bad", [np.where(blobs()[1] == 0, -1.0, 1.0), np.full(48, 1.5)])
def test_cross_entropy_refuses_targets_outside_zero_one(bad):
    """-1/+1 labels on a sigmoid unit gave negative losses and 0.53 accuracy, no error."""
    X, _ = blobs()
    net = bpgpu.MLP([4, 6, 1], output="sigmoid", backend="numpy")
    before = net.get_weights()
    for call in (lambda: net.loss(X, bad), lambda: net.fit(X, bad, epochs=1)):
        with pytest.raises(ValueError, match=r"must lie in \[0, 1\].*\(y \+ 1\) / 2"):
            call()
    for a, b in zip(net.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    good = (bad + 1) / 2 if bad.min() < 0 else None
    if good is not None:
        assert net.loss(X, good) > 0


def test_nielsens_initialisation_is_available():
    """network2's default: biases N(0, 1), weights N(0, 1/n_in), drawn per layer."""
    net = bpgpu.MLP(
        [784, 30, 10],
        hidden="sigmoid",
        output="sigmoid",
        cost="cross_entropy",
        init="scaled_normal",
        dtype="float64",
        backend="numpy",
        seed=7,
    )
    W1, b1, W2, b2 = net.get_weights()
    rng = np.random.default_rng(7)
    np.testing.assert_array_equal(b1, rng.normal(size=30))
    np.testing.assert_array_equal(W1, rng.normal(0.0, np.sqrt(1 / 784), size=(30, 784)))
    assert abs(W2.std() * np.sqrt(30) - 1) < 0.2 and abs(b2.std() - 1) < 0.8
    big = bpgpu.MLP([784, 30, 10], init="normal", backend="numpy", seed=7).get_weights()[0]
    assert 0.9 < big.std() < 1.1
    for init in ("he_uniform", "glorot_normal", "lecun_normal"):
        W = bpgpu.MLP([400, 300, 10], init=init, backend="numpy").get_weights()[0]
        want = {"he_uniform": 2 / 400, "glorot_normal": 2 / 700, "lecun_normal": 1 / 400}[init]
        assert abs(W.var() / want - 1) < 0.05, init


def test_auto_init_is_the_previous_default():
    """`init="auto"` draws exactly what bpgpu drew before there was a choice."""
    a = bpgpu.MLP([5, 7, 3], hidden="relu", output="sigmoid", backend="numpy", seed=3)
    rng = np.random.default_rng(3)
    W1 = rng.normal(0.0, np.sqrt(2 / 5), size=(7, 5))
    r = np.sqrt(6 / 10)
    W2 = rng.uniform(-r, r, size=(3, 7))
    np.testing.assert_array_equal(a.get_weights()[0], W1.astype(np.float32))
    np.testing.assert_array_equal(a.get_weights()[2], W2.astype(np.float32))
