"""Central-difference gradient check on a NumPy float64 copy of a network."""

from __future__ import annotations

from typing import Any

import numpy as np

from bpgpu._args import integer, real
from bpgpu.core import forward_cost
from bpgpu.network import MLP

# rounding error of one float64 loss evaluation, in units of |E|: machine epsilon times
# a generous count of the operations whose errors add up in it
ROUNDING = 10 * np.finfo(np.float64).eps


def gradcheck(net, X: Any, T: Any, eps: float = 1e-5, max_entries: int | None = None) -> float:
    """Worst relative error of the backprop gradients against finite differences.

    The check runs on a float64 NumPy copy of ``net`` (same weights), so it measures the
    math, not the backend's rounding. For each parameter tensor the error is the
    relative norm of the part of the difference that rounding cannot explain,
    ``max(0, ||g - n|| - floor) / max(||g||, ||n||)``. ``g`` is the backprop gradient,
    ``n`` the central difference with steps ``eps`` and ``eps/2`` combined by Richardson
    extrapolation, ``(4 D(eps/2) - D(eps)) / 3`` (truncation error O(eps^4)), and
    ``floor`` the most that rounding in the loss values can put into ``n``:
    ``3 * 10 * 2.2e-16 * max|E| / eps`` per entry. Without the floor, tiny gradients
    fail on rounding alone: the property tests found a 6-1-5-5-4 sigmoid net whose
    first-layer bias gradient (-1.03e-6) agrees with torch autograd to 5e-14 but with
    finite differences only to 4e-12 (central) or 9e-12 (Richardson) absolute, under
    a rounding floor of 1.3e-10 (eps = 1e-5).

    A difference whose steps move a weighted input across the kink of a ReLU, leaky
    ReLU, PReLU or binary step (a trained network has inputs within ``eps`` of it)
    measures no derivative: that entry is taken again with steps 10 times smaller, up
    to three times, and left out if every step crosses.

    Parameters
    ----------
    net : MLP
    X, T : arrays
        A batch and its targets, as :meth:`MLP.loss` takes them.
    eps : float
        The larger finite-difference step. Small enough that a step rarely crosses a
        kink (2e-5 crossed one at 1.8e-5 in the prelu/relu test net), large enough that
        the rounding of the loss values (``~1e-16 |E| / eps``) stays small.
    max_entries : int or None
        Check at most this many entries per tensor (a fixed, evenly spaced subset);
        None checks every entry.

    Returns
    -------
    float
        The worst relative error over the parameter tensors.

    Examples
    --------
    >>> import numpy as np
    >>> import bpgpu
    >>> net = bpgpu.MLP([3, 4, 2], hidden="tanh", backend="numpy", seed=0)
    >>> X, y = np.random.default_rng(0).normal(size=(5, 3)), np.array([0, 1, 1, 0, 1])
    >>> bpgpu.gradcheck(net, X, y) < 1e-6
    True
    """
    if not isinstance(net, MLP):
        raise TypeError(f"gradcheck(net, X, T) checks a bpgpu.MLP; got {type(net).__name__}")
    eps = real("eps", eps, 0.0, 1.0)
    if max_entries is not None:
        max_entries = integer("max_entries", max_entries)
    ref = net.to("numpy", dtype="float64", precision=None).model
    Xb = ref.input(X)
    Tb = ref.targets(T, Xb.shape[0])
    params = ref.params
    grads = ref.gradients(Xb, Tb)
    kinks = [layer for layer in ref.layers if _kinked(ref.xp, layer, params)]
    sides = _loss_and_sides(ref, Xb, Tb, kinks)[1]
    worst = 0.0
    for p, g in zip(params, grads):
        flat = p.reshape(-1)  # a view: perturbing it perturbs the parameter
        idx = np.arange(flat.size)
        if max_entries is not None and flat.size > max_entries:
            idx = np.linspace(0, flat.size - 1, max_entries).astype(int)
        g_sel = np.asarray(g).reshape(-1)[idx]
        num = np.full(idx.size, np.nan)
        noise = 0.0  # what rounding alone can put into the differences

        for k, i in enumerate(idx):
            w, step = flat[i], eps
            for _ in range(KINK_RETRIES + 1):
                e, crossed = [], False
                for d in (step, -step, step / 2, -step / 2):
                    flat[i] = w + d
                    E, at = _loss_and_sides(ref, Xb, Tb, kinks)
                    e.append(E)
                    crossed = crossed or at != sides
                flat[i] = w
                if not crossed:
                    break
                step /= 10  # a step across a kink measures no derivative: a smaller one
            if crossed:
                continue  # a weighted input at the kink itself: the entry is left out
            wide = (e[0] - e[1]) / (2 * step)  # central differences with steps h, h/2,
            narrow = (e[2] - e[3]) / step  # combined (Richardson) to cancel the h^2 term
            num[k] = (4 * narrow - wide) / 3
            noise = max(noise, 3 * ROUNDING * max(map(abs, e)) / step)
        kept = ~np.isnan(num)
        g_sel, num = g_sel[kept], num[kept]
        floor = noise * np.sqrt(num.size)
        excess = max(0.0, float(np.linalg.norm(g_sel - num)) - floor)
        scale = max(np.linalg.norm(g_sel), np.linalg.norm(num))
        if excess > 0:
            worst = max(worst, excess / scale)
    return worst


KINK_RETRIES = 3  # a step 10x smaller each time, then the entry is left out


def _kinked(xp, layer, params) -> bool:
    """Whether the layer's activation jumps in value or slope at 0 (ReLU, leaky ReLU,
    PReLU, binary step), where a finite difference that crosses 0 is meaningless."""
    act = layer.activation
    if act.df is None:  # softmax: smooth
        return False
    a = layer.unpack(params)[2]
    x = np.full((2, layer.n_out), 1e-12)
    x[0] = -x[0]
    y = np.broadcast_to(act.f(xp, x, a), x.shape)
    slope = np.broadcast_to(act.df(xp, x, y, a), x.shape)
    return bool(np.any(np.abs(y[1] - y[0]) > 1e-9) or np.any(np.abs(slope[1] - slope[0]) > 1e-6))


def _loss_and_sides(ref, Xb, Tb, kinks) -> tuple[float, list]:
    """The batch-mean loss (as ``Model.loss``) and, for each layer with a kink, which
    side of it every weighted input is on (from the layer's input: the weighted inputs
    themselves may have been overwritten by an in-place activation)."""
    E, Ys = forward_cost(ref.backend.ops, ref.layers, ref.cost, ref.params, Xb, Tb)
    sides = []
    for layer in kinks:
        W, b = layer.unpack(ref.params)[:2]
        sides.append((Ys[layer.index - 1] @ W.T + b > 0).tobytes())
    return float(np.mean(E)), sides
