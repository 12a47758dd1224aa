"""Each cost: dE/dY (eq. 4, 6) and the output error (eq. 9) against central differences,
the exact shortcuts, and the refusal of outputs outside a cost's domain."""

from __future__ import annotations

import numpy as np
import pytest

from bpgpu import activations, costs
from bpgpu.activations import ACTIVATIONS
from bpgpu.costs import COSTS

H = 1e-6


PAIRS = costs.compatible_pairs()


def test_the_allowed_pairs():
    """Quadratic on every output; each cross-entropy only with its own output."""
    want = {(a, "quadratic") for a in ACTIVATIONS}
    want |= {("sigmoid", "cross_entropy"), ("softmax", "categorical_cross_entropy")}
    assert set(PAIRS) == want and len(PAIRS) == len(want)


def batch(n=3, B=4, seed=0, probs=False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(B, n))
    X = np.where(np.abs(X) < 0.1, X + 0.2, X)  # away from the kinks
    if probs:
        T = rng.uniform(0.05, 0.95, size=(B, n))
        T /= T.sum(axis=1, keepdims=True)
    else:
        T = rng.uniform(0.05, 0.95, size=(B, n))
    return X, T


@pytest.mark.parametrize("cname", list(COSTS))
def test_dE_dY_matches_central_differences(cname, backend):
    xp, cost = backend.xp, costs.get(cname)
    rng = np.random.default_rng(3)
    Y = rng.uniform(0.1, 0.9, size=(4, 3))  # inside every cost's domain
    T = rng.uniform(0.05, 0.95, size=(4, 3))
    Tb = backend.asarray(T, "float64")

    def E(Yh):
        return float(xp.sum(cost.fn(xp, backend.asarray(Yh, "float64"), Tb)))

    numeric = np.empty_like(Y)
    for idx in np.ndindex(Y.shape):
        Yp, Ym = Y.copy(), Y.copy()
        Yp[idx] += H
        Ym[idx] -= H
        numeric[idx] = (E(Yp) - E(Ym)) / (2 * H)
    got = backend.to_numpy(cost.dE_dY(xp, backend.asarray(Y, "float64"), Tb))
    np.testing.assert_allclose(got, numeric, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("aname,cname", PAIRS)
def test_output_error_matches_central_differences(aname, cname, backend):
    """D^L = dE/dX^L, eq. (9), for every allowed (output activation, cost) pair."""
    xp, act, cost = backend.xp, activations.get(aname), costs.get(cname)
    X, T = batch(probs=cname == "categorical_cross_entropy")
    Tb = backend.asarray(T, "float64")
    a = backend.asarray(np.full(X.shape[1], 0.2), "float64") if act.has_param else None

    def E(Xh):
        Xb = backend.asarray(Xh, "float64")
        return float(xp.sum(cost.per_sample(xp, act, Xb, act.f(xp, Xb, a), Tb)))

    numeric = np.empty_like(X)
    for idx in np.ndindex(X.shape):
        Xp, Xm = X.copy(), X.copy()
        Xp[idx] += H
        Xm[idx] -= H
        numeric[idx] = (E(Xp) - E(Xm)) / (2 * H)
    Xb = backend.asarray(X, "float64")
    got = backend.to_numpy(cost.delta(xp, act, Xb, act.f(xp, Xb, a), Tb, a))
    np.testing.assert_allclose(got, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(
    "aname,cname", [("sigmoid", "cross_entropy"), ("softmax", "categorical_cross_entropy")]
)
def test_shortcut_equals_the_general_formula(aname, cname, backend):
    """Y - T equals dE/dY * f'(X) exactly in exact arithmetic; here to rounding."""
    xp, act, cost = backend.xp, activations.get(aname), costs.get(cname)
    X, T = batch(probs=cname == "categorical_cross_entropy")
    Xb, Tb = backend.asarray(X, "float64"), backend.asarray(T, "float64")
    Y = act.f(xp, Xb, None)
    short = backend.to_numpy(cost.delta(xp, act, Xb, Y, Tb))
    general = backend.to_numpy(act.vjp(xp, Xb, Y, cost.dE_dY(xp, Y, Tb)))
    np.testing.assert_allclose(short, backend.to_numpy(Y - Tb), rtol=0, atol=0)
    np.testing.assert_allclose(short, general, rtol=1e-12, atol=1e-14)
    # the cost from the logits equals the seed's formula on the outputs
    np.testing.assert_allclose(
        backend.to_numpy(cost.per_sample(xp, act, Xb, Y, Tb)),
        backend.to_numpy(cost.fn(xp, Y, Tb)),
        rtol=1e-12,
    )


@pytest.mark.parametrize("aname", ["tanh", "relu", "identity", "binary_step", "softmax", "elu"])
def test_cross_entropy_refuses_outputs_outside_its_domain(aname):
    with pytest.raises(ValueError, match="cross_entropy"):
        costs.get("cross_entropy").check_output(activations.get(aname))


def test_categorical_cross_entropy_needs_softmax():
    with pytest.raises(ValueError, match="needs output='softmax'"):
        costs.get("categorical_cross_entropy").check_output(activations.get("sigmoid"))


def test_quadratic_accepts_every_output():
    for act in ACTIVATIONS.values():
        costs.get("quadratic").check_output(act)


def test_unknown_cost_suggests_the_closest_name():
    with pytest.raises(ValueError, match="did you mean 'cross_entropy'"):
        costs.get("crossentropy")
