"""Every activation of the table: derivative vs central differences, and its properties."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bpgpu import activations
from bpgpu.activations import ACTIVATIONS

NAMES = list(ACTIVATIONS)
H = 1e-6


def sample_X(shape=(3, 4), seed=0):
    """Standard-normal entries kept away from the kinks at 0."""
    X = np.random.default_rng(seed).normal(size=shape)
    return np.where(np.abs(X) < 0.1, np.sign(X) * 0.1 + X, X)


def slope_for(act, n):
    return np.linspace(0.1, 0.4, n) if act.has_param else None


@pytest.mark.parametrize("name", NAMES)
def test_vjp_matches_central_differences(name, backend):
    """f'(X) * G (the softmax Jacobian for softmax) vs d/dX sum(f(X) * G), float64."""
    xp, act = backend.xp, activations.get(name)
    X = sample_X()
    G = np.random.default_rng(1).normal(size=X.shape)
    a_h = slope_for(act, X.shape[1])
    a = None if a_h is None else backend.asarray(a_h, "float64")

    def phi(Xh):
        Y = act.f(xp, backend.asarray(Xh, "float64"), a)
        return float(xp.sum(Y * backend.asarray(G, "float64")))

    numeric = np.empty_like(X)
    for idx in np.ndindex(X.shape):
        Xp, Xm = X.copy(), X.copy()
        Xp[idx] += H
        Xm[idx] -= H
        numeric[idx] = (phi(Xp) - phi(Xm)) / (2 * H)
    Xb = backend.asarray(X, "float64")
    Yb = act.f(xp, Xb, a)
    got = backend.to_numpy(act.vjp(xp, Xb, Yb, backend.asarray(G, "float64"), a))
    np.testing.assert_allclose(got, numeric, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("name", [n for n, a in ACTIVATIONS.items() if a.vjp_fn is not None])
def test_select_form_equals_derivative_times_error(name, backend):
    """The cheaper vjp_fn agrees exactly with the table's f'(X) * G."""
    xp, act = backend.xp, activations.get(name)
    X = backend.asarray(sample_X(), "float64")
    G = backend.asarray(np.random.default_rng(1).normal(size=(3, 4)), "float64")
    a = backend.asarray(slope_for(act, 4), "float64") if act.has_param else None
    Y = act.f(xp, X, a)
    np.testing.assert_allclose(
        backend.to_numpy(act.vjp_fn(xp, X, Y, G, a)),
        backend.to_numpy(act.df(xp, X, Y, a) * G),
        rtol=1e-15,
        atol=0,
    )


@pytest.mark.parametrize("name", [n for n, a in ACTIVATIONS.items() if a.has_param])
def test_parameter_derivative_matches_central_differences(name, backend):
    xp, act = backend.xp, activations.get(name)
    X = sample_X()
    G = np.random.default_rng(2).normal(size=X.shape)
    a = slope_for(act, X.shape[1])

    def phi(ah):
        Y = act.f(xp, backend.asarray(X, "float64"), backend.asarray(ah, "float64"))
        return float(xp.sum(Y * backend.asarray(G, "float64")))

    numeric = np.array([(phi(a + H * e) - phi(a - H * e)) / (2 * H) for e in np.eye(a.size)])
    Xb, ab = backend.asarray(X, "float64"), backend.asarray(a, "float64")
    dparam = act.dparam(xp, Xb, act.f(xp, Xb, ab), ab)
    got = backend.to_numpy(xp.sum(backend.asarray(G, "float64") * dparam, axis=0))
    np.testing.assert_allclose(got, numeric, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("name", NAMES)
def test_properties_hold(name):
    """The recorded properties are true of the function (checked on NumPy, float64)."""
    from bpgpu.backends import get_backend

    b = get_backend("numpy")
    act = activations.get(name)
    x = np.linspace(-15, 15, 2001).reshape(1, -1)  # float64 has not saturated here
    a = np.full(x.shape[1], 0.25) if act.has_param else None
    y = np.asarray(act.f(b.xp, x, a)).ravel()
    r = act.output_range
    assert np.all(y >= r.lo) and np.all(y <= r.hi)
    if not r.lo_closed and r.lo > -math.inf:
        assert np.all(y > r.lo)
    if not r.hi_closed and r.hi < math.inf:
        assert np.all(y < r.hi)
    if act.df is not None:  # element-wise: monotonic means never decreasing along x
        assert act.monotonic == bool(np.all(np.diff(y) >= 0))
    small = np.array([[-1e-4, 1e-4]])
    near = np.asarray(act.f(b.xp, small, None if a is None else a[:2])).ravel()
    assert act.identity_near_zero == bool(np.allclose(near, small.ravel(), rtol=1e-3, atol=0))
    # non-linear: f is not affine on three points
    three = np.array([[-2.0, 0.5, 3.0]])
    f3 = np.asarray(act.f(b.xp, three, None if a is None else a[:3])).ravel()
    affine = np.isclose((f3[1] - f3[0]) / 2.5, (f3[2] - f3[1]) / 2.5)
    if act.df is not None:
        assert act.nonlinear == (not affine)


def test_table_lists_every_activation_with_properties():
    t = activations.table()
    assert set(t) == set(ACTIVATIONS)
    assert t["sigmoid"]["output_range"] == "(0, 1)"
    assert t["binary_step"]["differentiable"] is False
    assert t["prelu"]["learnable_parameter"] is True
    assert t["softmax"]["hidden_layer"] is False


def test_logistic_is_an_alias_of_sigmoid():
    assert activations.get("logistic") is activations.get("sigmoid")


def test_unknown_activation_suggests_the_closest_name():
    with pytest.raises(ValueError, match="did you mean 'relu'"):
        activations.get("rleu")


@pytest.mark.parametrize("name", NAMES)
def test_finite_at_plus_minus_1000_in_float32(name, backend):
    xp, act = backend.xp, activations.get(name)
    X = backend.asarray(np.array([[-1000.0, -50.0, 0.0, 50.0, 1000.0]]), "float32")
    a = backend.asarray(np.full(5, 0.25), "float32") if act.has_param else None
    Y = act.f(xp, X, a)
    G = act.vjp(xp, X, Y, xp.ones_like(Y), a)
    assert np.all(np.isfinite(backend.to_numpy(Y)))
    assert np.all(np.isfinite(backend.to_numpy(G)))


def _half_relu(xp, X, a=None):
    return xp.where(X > 0, X / 2, 0 * X)


def _half_relu_slope(xp, X, Y, a=None):
    return xp.where(X > 0, 0.5 + 0 * X, 0 * X)


def _sharp_softmax(xp, X, a=None):  # softmax of 2x: another function, named "softmax"
    Z = 2 * X - xp.max(2 * X, axis=1, keepdims=True)
    E = xp.exp(Z)
    return E / xp.sum(E, axis=1, keepdims=True)


def _sharp_softmax_vjp(xp, X, Y, G, a=None):
    return 2 * Y * (G - xp.sum(G * Y, axis=1, keepdims=True))


def _own_nets(backend):
    """Networks of activations and a cost made from the tables' entries with other
    functions (dataclasses.replace, as a user writes them), some keeping the entry's
    name; and the same networks of objects written from scratch, which carry no fast
    forms. Both float64, same weights."""
    import dataclasses

    import bpgpu
    from bpgpu import costs

    relu, softmax, cce = (
        ACTIVATIONS["relu"],
        ACTIVATIONS["softmax"],
        costs.COSTS["categorical_cross_entropy"],
    )
    nets = []
    for name in ("half_relu", "relu"):  # a new name; bpgpu's name, another function
        hidden = dataclasses.replace(relu, name=name, f=_half_relu, df=_half_relu_slope)
        plain = activations.Activation(
            name,
            _half_relu,
            _half_relu_slope,
            True,
            True,
            True,
            False,
            relu.output_range,
            init=relu.init,
        )
        nets.append((hidden, plain, softmax, softmax, cce, cce))
    sharp = dataclasses.replace(softmax, f=_sharp_softmax, vjp_fn=_sharp_softmax_vjp)
    sharp_plain = activations.Activation(
        "softmax",
        _sharp_softmax,
        None,
        True,
        True,
        False,
        False,
        softmax.output_range,
        hidden_ok=False,
        vjp_fn=_sharp_softmax_vjp,
    )
    nets.append((relu, relu, sharp, sharp_plain, cce, cce))

    def twice_0(xp, T):  # the targets with class 0 weighted twice
        return xp.concat([2 * T[:, :1], T[:, 1:]], axis=1)

    def weighted(xp, Y, T):  # cross-entropy that weighs class 0 twice
        return -xp.sum(twice_0(xp, T) * xp.log(Y), axis=1)

    def weighted_dY(xp, Y, T):
        return -twice_0(xp, T) / Y

    mine = dataclasses.replace(cce, fn=weighted, dE_dY=weighted_dY)
    mine_plain = costs.Cost("categorical_cross_entropy", weighted, weighted_dY, domain=cce.domain)
    nets.append((relu, relu, softmax, softmax, mine, mine_plain))
    out = []
    for hidden, hidden_plain, output, output_plain, cost, cost_plain in nets:
        net = bpgpu.MLP([4, 6, 3], hidden, output, cost, backend=backend, dtype="float64", seed=1)
        ref = bpgpu.MLP(
            [4, 6, 3],
            hidden_plain,
            output_plain,
            cost_plain,
            backend="numpy",
            dtype="float64",
            seed=1,
        )
        out.append((net, ref))
    return out


def _truth(ref, X, T):
    """The loss as the cost's formula gives it on the network's outputs, and its
    gradients by central differences: computed outside bpgpu's backward code, its
    shortcuts and fast paths."""
    import bpgpu

    def loss(weights):
        ref.set_weights(weights)
        Y = bpgpu.to_numpy(ref.predict(X))
        return float(np.mean(ref.cost.fn(np, Y, T)))

    weights = ref.get_weights()
    grads = []
    for k, w in enumerate(weights):
        g = np.zeros_like(w)
        for i in np.ndindex(w.shape):
            up, down = [x.copy() for x in weights], [x.copy() for x in weights]
            up[k][i] += 1e-6
            down[k][i] -= 1e-6
            g[i] = (loss(up) - loss(down)) / 2e-6
        grads.append(g)
    E = loss(weights)
    return E, grads


def test_an_activation_or_cost_made_from_the_tables_computes_its_own_functions(backend):
    """``dataclasses.replace(relu, f=..., df=...)`` kept ReLU's fast forms (its select
    derivative, its CUDA expressions) and the fast paths keyed on the name "relu": the
    network trained with bpgpu's ReLU, silently (gradcheck 0.5). A softmax or a cost of
    the user's own took the softmax cross-entropy shortcut likewise. Every backend now
    computes the functions the objects hold, as the same objects written from scratch."""
    import bpgpu

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(16, 4)), np.arange(16) % 3
    T = np.eye(3)[y]
    for net, ref in _own_nets(backend):
        np.testing.assert_allclose(
            bpgpu.to_numpy(net.predict(X)), bpgpu.to_numpy(ref.predict(X)), rtol=1e-12
        )
        E, grads = _truth(ref, X, T)
        assert net.loss(X, y) == pytest.approx(E, rel=1e-12)
        for g, r in zip(net.gradients(X, y), grads):
            np.testing.assert_allclose(backend.to_numpy(g), r, rtol=1e-6, atol=1e-8)
        net.fit(X, y, epochs=2, batch_size=8)  # the training step too (fused paths)
        ref.fit(X, y, epochs=2, batch_size=8)
        for a, b in zip(net.get_weights(), ref.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)


def test_a_renamed_table_entry_keeps_its_fast_forms():
    """Only the functions decide: bpgpu's ReLU under another name is still ReLU, fused
    kernels and fast paths included; another function under ReLU's name is not."""
    import dataclasses

    relu = ACTIVATIONS["relu"]
    renamed = dataclasses.replace(relu, name="my_relu")
    assert renamed.builtin == "relu" and renamed.c_f == relu.c_f and renamed.vjp_fn is relu.vjp_fn
    other = dataclasses.replace(relu, f=_half_relu, df=_half_relu_slope)
    assert other.builtin is None and other.c_f is None and other.c_vjp is None
    assert other.vjp_fn is None
    assert all(a.builtin == name for name, a in ACTIVATIONS.items())
