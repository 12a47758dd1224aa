"""Whole-network gradients against PyTorch autograd (float64), for every hidden
activation and every allowed (output, cost) pair: an implementation that shares no code
with bpgpu's."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import bpgpu
from bpgpu.activations import ACTIVATIONS
from bpgpu.costs import compatible_pairs

torch = pytest.importorskip("torch")
F = torch.nn.functional

HIDDEN = [n for n, a in ACTIVATIONS.items() if a.hidden_ok]


def torch_act(name, x, a=None):
    """The activation written with torch's own functions."""
    return {
        "identity": lambda: x,
        "binary_step": lambda: (x >= 0).to(x.dtype) + 0 * x,  # in the graph, gradient 0
        "sigmoid": lambda: torch.sigmoid(x),
        "tanh": lambda: torch.tanh(x),
        "arctan": lambda: torch.atan(x),
        "relu": lambda: F.relu(x),
        "leaky_relu": lambda: F.leaky_relu(x, 0.01),
        "prelu": lambda: F.prelu(x, a),
        "elu": lambda: F.elu(x, 1.0),
        "softplus": lambda: F.softplus(x),
        "softmax": lambda: torch.softmax(x, dim=1),
    }[name]()


def torch_loss(cost, logits, y, t):
    if cost == "quadratic":
        return (0.5 * ((t - y) ** 2).sum(dim=1)).mean()
    if cost == "cross_entropy":
        return F.binary_cross_entropy_with_logits(logits, t, reduction="none").sum(1).mean()
    return F.cross_entropy(logits, t)  # t: class probabilities


@pytest.mark.parametrize("output,cost", compatible_pairs())
@pytest.mark.parametrize("hidden", HIDDEN)
def test_gradients_match_torch_autograd(hidden, output, cost):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = bpgpu.MLP([4, 5, 3], hidden, output, cost, backend="numpy", dtype="float64", seed=3)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(6, 4))
    T = rng.uniform(0.05, 0.95, size=(6, 3))
    if cost == "categorical_cross_entropy":
        T /= T.sum(axis=1, keepdims=True)
    params = [torch.tensor(w, requires_grad=True) for w in net.get_weights()]
    has_a = [ACTIVATIONS[hidden].has_param, ACTIVATIONS[output].has_param]
    A, i = torch.tensor(X), 0
    for layer, name in enumerate((hidden, output)):
        W, b = params[i], params[i + 1]
        a = params[i + 2] if has_a[layer] else None
        i += 3 if has_a[layer] else 2
        logits = A @ W.T + b
        A = torch_act(name, logits, a)
    torch_loss(cost, logits, A, torch.tensor(T)).backward()
    for ours, theirs in zip(net.gradients(X, T), params):
        np.testing.assert_allclose(ours, theirs.grad.numpy(), rtol=1e-10, atol=1e-14)
