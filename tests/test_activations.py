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
