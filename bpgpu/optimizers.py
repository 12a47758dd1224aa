"""Gradient-descent optimizers, written against the Array API.

Each optimizer turns the gradients ``g`` of eq. (10)-(11) into new parameters. The state
(velocities, moments) is a list of backend arrays per slot, kept beside the parameters.
Parameters and state are updated in place (the standard's in-place operators): no
allocation per step, which matters for large layers and on GPUs. L2 weight decay adds
``weight_decay * W`` to the gradient of the weight matrices only: biases and PReLU
slopes are not decayed.

The update rules are PyTorch's (``torch.optim.SGD`` with and without Nesterov momentum,
``torch.optim.Adam``), so results can be compared one to one.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["Optimizer", "SGD", "Momentum", "Nesterov", "Adam", "get", "OPTIMIZERS"]


def _check(name: str, value: Any, lo: float, hi: float = math.inf, lo_open=True) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > lo if lo_open else value >= lo) and value < hi
    if not ok:
        bound = f"{'>' if lo_open else '>='} {lo:g}" + (f" and < {hi:g}" if hi < math.inf else "")
        raise ValueError(f"{name} must be a finite number {bound}; got {value!r}")
    return float(value)


class Optimizer:
    """Base class. Subclasses set ``name``, ``slots`` (state arrays per parameter) and
    implement :meth:`update`.

    Parameters
    ----------
    lr : float
        Learning rate ``eta`` (> 0).
    weight_decay : float
        L2 coefficient on weight matrices (>= 0).
    """

    name = "base"
    slots: tuple[str, ...] = ()
    default_lr = 0.1

    def __init__(self, lr: float | None = None, weight_decay: float = 0.0):
        self.lr = _check("lr", self.default_lr if lr is None else lr, 0.0)
        self.weight_decay = _check("weight_decay", weight_decay, 0.0, lo_open=False)
        self.t = 0  # steps taken; a host integer, so bias corrections need no sync

    def config(self) -> dict[str, Any]:
        """Name and hyper-parameters, enough to rebuild the optimizer."""
        return {"name": self.name, "lr": self.lr, "weight_decay": self.weight_decay}

    def init_state(self, xp, params: list) -> dict[str, list]:
        """Zeroed state for ``params``: ``{slot: [array per parameter]}``."""
        return {s: [xp.zeros_like(p) for p in params] for s in self.slots}

    def prescale(self) -> float | None:
        """The factor the backward pass may fold into the output error, so that the
        gradients arrive already multiplied by it (None: plain gradients, please)."""
        return None

    def step(
        self,
        xp,
        params: list,
        grads: list,
        state: dict,
        decay: list[bool],
        fast=None,
        prescaled: bool = False,
    ):
        """One step: every parameter (and the state) is updated in place.

        ``fast`` is the backend's fused ``opt_update`` (one kernel per parameter on
        CuPy) or None; it may decline a case, which then takes the generic update.
        ``prescaled``: the gradients are already multiplied by :meth:`prescale` (None
        for one the backward pass applied itself).
        The gradients are consumed: an update may overwrite them.
        """
        self.t += 1
        if prescaled:  # plain SGD with lr folded into the error: w <- w - (lr g)
            for p, g in zip(params, grads):
                if g is not None:  # None: a fused GEMM applied it already
                    p -= g
            return
        wd = self.weight_decay
        hyper = self.hyper() if fast else None
        for i, (p, g) in enumerate(zip(params, grads)):
            g = g + wd * p if wd and decay[i] else g
            if fast and fast(self.name, p, g, [state[s][i] for s in self.slots], hyper):
                continue
            self.update(xp, i, p, g, state)

    def hyper(self) -> dict:
        """Hyper-parameters of this step, for a fused update kernel."""
        return self.config()

    def update(self, xp, i: int, p, g, state: dict) -> None:
        """Update parameter ``p`` (index ``i``) in place from its gradient ``g``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Plain gradient descent, eq. (10)-(11): ``w <- w - lr g``."""

    name = "sgd"

    def prescale(self):
        # lr times the gradient costs one multiply per parameter per step; folded into
        # the output error it is one multiply of a (B, n_L) array. Not with weight
        # decay, which adds wd * W to the unscaled gradient.
        return None if self.weight_decay else self.lr

    def update(self, xp, i, p, g, state):
        g *= self.lr  # the gradient is consumed: scaling it in place saves a temporary
        p -= g


class Momentum(Optimizer):
    """Heavy-ball momentum: ``v <- mu v + g``, ``w <- w - lr v``."""

    name = "momentum"
    slots = ("velocity",)

    def __init__(self, lr: float | None = None, momentum: float = 0.9, weight_decay: float = 0.0):
        super().__init__(lr, weight_decay)
        self.momentum = _check("momentum", momentum, 0.0, 1.0, lo_open=False)

    def config(self):
        return {**super().config(), "momentum": self.momentum}

    def update(self, xp, i, p, g, state):
        v = state["velocity"][i]
        v *= self.momentum
        v += g
        p -= self.lr * v


class Nesterov(Momentum):
    """Nesterov momentum: ``v <- mu v + g``, ``w <- w - lr (g + mu v)``."""

    name = "nesterov"

    def update(self, xp, i, p, g, state):
        v = state["velocity"][i]
        v *= self.momentum
        v += g
        p -= self.lr * (g + self.momentum * v)


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction; ``eps`` is added after the square root."""

    name = "adam"
    slots = ("m", "v")
    default_lr = 0.001

    def __init__(
        self,
        lr: float | None = None,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(lr, weight_decay)
        self.beta1 = _check("beta1", beta1, 0.0, 1.0, lo_open=False)
        self.beta2 = _check("beta2", beta2, 0.0, 1.0, lo_open=False)
        self.eps = _check("eps", eps, 0.0)

    def config(self):
        return {**super().config(), "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    def hyper(self):
        c1, c2 = 1 - self.beta1**self.t, 1 - self.beta2**self.t
        return {**self.config(), "step": self.lr / c1, "inv_sqrt_c2": 1 / math.sqrt(c2)}

    def update(self, xp, i, p, g, state):
        m, v = state["m"][i], state["v"][i]
        m *= self.beta1
        m += (1 - self.beta1) * g
        v *= self.beta2
        v += (1 - self.beta2) * (g * g)
        c1 = 1 - self.beta1**self.t
        c2 = 1 - self.beta2**self.t
        p -= (self.lr / c1) * m / (xp.sqrt(v) / math.sqrt(c2) + self.eps)


OPTIMIZERS: dict[str, type[Optimizer]] = {c.name: c for c in (SGD, Momentum, Nesterov, Adam)}


def get(spec: str | Optimizer | dict, **kwargs: Any) -> Optimizer:
    """An optimizer from a name (with keyword hyper-parameters), a config dict or an object."""
    if isinstance(spec, Optimizer):
        if kwargs:
            raise ValueError("pass hyper-parameters to the optimizer object, not to fit()")
        return spec
    if isinstance(spec, dict):
        spec = dict(spec)
        name = spec.pop("name")
        return get(name, **spec, **kwargs)
    if spec not in OPTIMIZERS:
        from bpgpu._errors import unknown_name

        raise unknown_name("optimizer", spec, OPTIMIZERS)
    return OPTIMIZERS[spec](**kwargs)
