"""Gradient-descent optimizers as pure transforms, written against the Array API.

An optimizer turns the gradients ``g`` of eq. (10)-(11) into updates (optax's shape):

- ``state = opt.init(params)``: ``{"t": 0, slot: [zeros per parameter], ...}``
- ``updates, state = opt.update(grads, state, params)``: new arrays, nothing written in
  place, so any array library runs it (the backend then adds the updates to the
  parameters, in place where the library allows it).

``update`` is a template owned by the base class: weight decay first, as a step of its
own (``add_weight_decay``: L2 on the weight matrices only, ``g + wd * W``; biases and
PReLU slopes are not decayed), then the subclass's ``rule``. The step count ``t`` is a
host integer, so bias corrections need no device sync.

``lr`` is a number or a schedule (:mod:`bpgpu.schedules`; any callable ``count -> rate``
works eagerly): the template runs the rule on :meth:`Optimizer.at`, the optimizer with
``lr`` the rate of this step, computed from the step count before the step (optax's
``count``). Rules, fused kernels and compiled programs therefore only ever see a number
(or, inside a compiled program, a traced scalar). Only a schedule object of
:mod:`bpgpu.schedules` can be recorded in a checkpoint (its ``config()``).

The rules are PyTorch's (``torch.optim.SGD`` with and without Nesterov momentum,
``torch.optim.Adam``), so results compare one to one. Each built-in rule also carries
its C text (``c_update``) beside the Python, for backends with fused kernels (CuPy);
those kernels run only for the exact built-in classes (``fused_rule``), so a subclass's
``update`` or ``rule`` is always honoured.
"""

from __future__ import annotations

import copy
import inspect
import math
import numbers
from typing import Any

import array_api_compat

from bpgpu import schedules
from bpgpu._args import real

__all__ = ["Optimizer", "SGD", "Momentum", "Nesterov", "Adam", "get", "OPTIMIZERS", "learning_rate"]


def _check(name: str, value: Any, lo: float, hi: float = math.inf, lo_open=True) -> float:
    return real(name, value, lo, hi, lo_open)


def learning_rate(lr: Any) -> Any:
    """A learning rate checked and put in the form an optimizer holds.

    Parameters
    ----------
    lr : float, Schedule, dict or callable
        A number > 0, a schedule of :mod:`bpgpu.schedules`, a schedule's config dict
        (as a checkpoint records it), or any callable ``count -> rate``.

    Returns
    -------
    float or callable
        The number as a float, or the schedule (built from its dict), or the callable.

    Raises
    ------
    ValueError
        A number <= 0, not finite, or an array.

    Examples
    --------
    >>> from bpgpu import optimizers
    >>> optimizers.learning_rate(0.1), optimizers.learning_rate({"name": "constant", "value": 0.2})
    (0.1, Constant(value=0.2))
    """
    if isinstance(lr, dict):
        return schedules.from_config(lr)
    if callable(lr):
        return lr
    if isinstance(lr, numbers.Real) or not hasattr(lr, "__array__"):
        return _check("lr", lr, 0.0)
    raise ValueError(
        f"lr must be a number > 0 or a schedule, e.g. bpgpu.schedules.cosine_decay(1e-3, "
        f"decay_steps=10_000); got {lr!r}"
    )


def lr_text(lr: Any) -> str:
    """``lr`` for a message: a number as ``%g``, a schedule by its repr."""
    return f"{lr:g}" if isinstance(lr, numbers.Real) else repr(lr)


class Optimizer:
    """Base class of the optimizers: the ``init``/``update`` template.

    Subclasses set ``name``, ``slots`` (the state arrays kept per parameter) and
    implement :meth:`rule`; :meth:`update` applies weight decay and the step's learning
    rate around it, so nothing a subclass writes can skip them.

    Parameters
    ----------
    lr : float or schedule
        Learning rate ``eta`` (> 0), or a function of the step count ``count -> eta``
        (``count``: updates already applied, 0 for the first; optax's meaning): a
        schedule of :mod:`bpgpu.schedules` (saved in checkpoints, computed inside JAX's
        compiled programs), or any callable (eager fits without a checkpoint).
        Assigning a number later (a callback) works too.
    weight_decay : float
        L2 coefficient on weight matrices (>= 0), applied per step: the gradient gets
        ``weight_decay * W`` added.

    Examples
    --------
    An optimizer of one's own (sign descent): a name, its slots, and the rule. A fit
    runs it through the template, so its weight decay and a schedule's rate apply:

    >>> import numpy as np
    >>> import bpgpu
    >>> from bpgpu.optimizers import Optimizer
    >>> class SignSGD(Optimizer):
    ...     name = "sign_sgd"
    ...     def rule(self, grads, slots, t):
    ...         return [-self.lr * ((g > 0) * 1.0 - (g < 0) * 1.0) for g in grads], slots
    >>> net = bpgpu.MLP([4, 8, 2], seed=0)
    >>> X, y = np.random.default_rng(0).normal(size=(32, 4)), np.arange(32) % 2
    >>> hist = net.fit(X, y, epochs=2, optimizer=SignSGD(lr=0.01), verbose=False)
    >>> len(hist.history["loss"])
    2
    """

    name = "base"
    slots: tuple[str, ...] = ()
    default_lr = 0.1
    c_update: tuple[tuple[str, ...], str] | None = None  # (hyper-parameters, C body)

    def __init__(self, lr: Any = None, weight_decay: float = 0.0):
        self.lr = learning_rate(self.default_lr if lr is None else lr)
        self.weight_decay = _check("weight_decay", weight_decay, 0.0, lo_open=False)

    def config(self) -> dict[str, Any]:
        """The optimizer's name and hyper-parameters, enough to build it again.

        Returns
        -------
        dict
            ``{"name": ..., "lr": ..., "weight_decay": ..., ...}``: a schedule as its
            ``config()`` dict, a plain function as itself (which a file cannot hold:
            :meth:`saveable`). :func:`get` builds the optimizer from it.

        Examples
        --------
        >>> from bpgpu import optimizers
        >>> optimizers.Momentum(lr=0.05).config()
        {'name': 'momentum', 'lr': 0.05, 'weight_decay': 0.0, 'momentum': 0.9}
        """
        lr = self.lr.config() if isinstance(self.lr, schedules.Schedule) else self.lr
        return {"name": self.name, "lr": lr, "weight_decay": self.weight_decay}

    def saveable(self) -> bool:
        """Whether :meth:`config` can be written to a file (a checkpoint).

        Returns
        -------
        bool
            True for a number or a schedule of :mod:`bpgpu.schedules` as ``lr``; False
            for a plain function.

        Examples
        --------
        >>> from bpgpu import optimizers, schedules
        >>> optimizers.SGD(lr=schedules.constant(0.1)).saveable()
        True
        >>> optimizers.SGD(lr=lambda count: 0.1).saveable()
        False
        """
        return not callable(self.lr) or isinstance(self.lr, schedules.Schedule)

    def at(self, count: Any, dtype: Any = None) -> Optimizer:
        """This optimizer as it is for the update after ``count`` updates.

        With a schedule the rule runs on the copy this returns: what a subclass keeps
        from step to step belongs in its ``slots``, not on the object.

        Parameters
        ----------
        count : int or array
            The number of updates already applied (an integer array: a compiled
            program's traced step count).
        dtype : dtype or None
            For an array ``count``, the type of the rate (the weights' dtype, so
            float32 weights stay float32).

        Returns
        -------
        Optimizer
            Itself when ``lr`` is a number; else a shallow copy whose ``lr`` is the
            schedule's rate at ``count`` (a Python float for an integer ``count``).

        Raises
        ------
        ValueError
            The schedule gave a rate that is negative or not finite.

        Examples
        --------
        >>> from bpgpu import optimizers, schedules
        >>> opt = optimizers.SGD(lr=schedules.step_decay(0.1, step_size=10, factor=0.5))
        >>> opt.at(9).lr, opt.at(10).lr
        (0.1, 0.05)
        """
        if not callable(self.lr):
            return self
        rate = self.lr(count)
        if isinstance(rate, numbers.Real):
            rate = float(rate)
            if not (math.isfinite(rate) and rate >= 0):
                raise ValueError(
                    f"the learning-rate schedule {self.lr!r} gave {rate!r} at step {count}; "
                    "a rate is a finite number >= 0"
                )
        elif dtype is not None:
            rate = array_api_compat.array_namespace(rate).astype(rate, dtype)
        now = copy.copy(self)
        now.lr = rate
        return now

    def init(self, params: list) -> dict[str, Any]:
        """The optimizer's state before the first step.

        Parameters
        ----------
        params : list of array
            The parameters, in :meth:`bpgpu.MLP.get_weights` order.

        Returns
        -------
        dict
            ``{"t": 0, slot: [zeros like each parameter], ...}``, on the parameters'
            device.

        Examples
        --------
        >>> import numpy as np
        >>> from bpgpu import optimizers
        >>> state = optimizers.Adam().init([np.ones((2, 3)), np.ones(2)])
        >>> sorted(state), state["m"][0].shape
        (['m', 't', 'v'], (2, 3))
        """
        state: dict[str, Any] = {"t": 0}
        for s in self.slots:
            state[s] = [array_api_compat.array_namespace(p).zeros_like(p) for p in params]
        return state

    def update(self, grads: list, state: dict, params: list) -> tuple[list, dict]:
        """One step: the updates to add to the parameters, and the new state.

        Weight decay is a step of its own, before the rule; the rule runs with this
        step's learning rate (:meth:`at`). Nothing is written in place.

        Parameters
        ----------
        grads : list of array
            The gradients, one per parameter.
        state : dict
            The state :meth:`init` or the previous update returned.
        params : list of array
            The parameters (weight decay reads them).

        Returns
        -------
        updates : list of array
            ``params + updates`` are the new parameters.
        state : dict
            The new state, its step count one more.

        Examples
        --------
        >>> import numpy as np
        >>> from bpgpu import optimizers
        >>> opt = optimizers.Momentum(lr=0.1, momentum=0.9)
        >>> params, grads = [np.ones(2)], [np.full(2, 0.5)]
        >>> updates, state = opt.update(grads, opt.init(params), params)
        >>> updates, state["t"]
        ([array([-0.05, -0.05])], 1)
        """
        now = self.at(state["t"], grads[0].dtype if grads else None)
        t = state["t"] + 1
        grads = now.add_weight_decay(grads, params)
        updates, slots = now.rule(grads, {s: state[s] for s in self.slots}, t)
        return updates, {"t": t, **slots}

    def add_weight_decay(self, grads: list, params: list) -> list:
        """The gradients with L2 weight decay added to the weight matrices.

        Parameters
        ----------
        grads : list of array
            The gradients.
        params : list of array
            The parameters; only the 2-D ones (weight matrices) are decayed, not
            biases or PReLU slopes.

        Returns
        -------
        list of array
            ``g + weight_decay * W`` for each weight matrix, the others unchanged.

        Examples
        --------
        >>> import numpy as np
        >>> from bpgpu import optimizers
        >>> opt = optimizers.SGD(lr=0.1, weight_decay=0.1)
        >>> opt.add_weight_decay([np.full((1, 2), 0.5), np.full(1, 0.5)],
        ...                      [np.ones((1, 2)), np.ones(1)])
        [array([[0.6, 0.6]]), array([0.5])]
        """
        wd = self.weight_decay
        if not wd:
            return grads
        return [g + wd * p if p.ndim == 2 else g for g, p in zip(grads, params)]

    def rule(self, grads: list, slots: dict, t: int) -> tuple[list, dict]:
        """The optimizer's rule, what a subclass implements.

        Parameters
        ----------
        grads : list of array
            The gradients, weight decay already added.
        slots : dict
            The state arrays by slot name (``{"velocity": [...]}``), one per parameter.
        t : int or array
            The step number, 1 for the first.

        Returns
        -------
        updates : list of array
            New arrays; ``params + updates`` are the new parameters.
        slots : dict
            The new state arrays.

        Examples
        --------
        >>> import numpy as np
        >>> from bpgpu import optimizers
        >>> optimizers.SGD(lr=0.1).rule([np.ones(2)], {}, 1)
        ([array([-0.1, -0.1])], {})
        """
        raise NotImplementedError

    def hyper(self, t: int) -> dict[str, float]:
        """The hyper-parameters of a step, by the names the fused kernel uses.

        Parameters
        ----------
        t : int
            The step number, 1 for the first.

        Returns
        -------
        dict
            :meth:`config`, with what a fused kernel (``c_update``) needs for step
            ``t`` added (Adam: the bias-corrected step and ``1 / sqrt(1 - beta2**t)``).

        Examples
        --------
        >>> from bpgpu import optimizers
        >>> h = optimizers.Adam(lr=0.001).hyper(1)
        >>> round(h["step"], 6), round(h["inv_sqrt_c2"], 4)
        (0.01, 31.6228)
        """
        return self.config()

    def fused_rule(self) -> str | None:
        """The name under which a backend may run this optimizer as one fused kernel.

        Returns
        -------
        str or None
            The built-in name for an exact built-in class; None for a subclass, which
            may change ``update`` or ``rule`` (so it always runs as written).

        Examples
        --------
        >>> from bpgpu import optimizers
        >>> class Mine(optimizers.SGD):
        ...     pass
        >>> optimizers.SGD().fused_rule(), Mine().fused_rule()
        ('sgd', None)
        """
        return self.name if type(self) in _BUILTIN else None

    def __repr__(self) -> str:
        config = {**self.config(), "lr": self.lr}
        args = ", ".join(f"{k}={v!r}" for k, v in config.items() if k != "name")
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Plain gradient descent, the seed's (10)-(11): ``w <- w - lr g``.

    Parameters
    ----------
    lr : float or schedule
        The learning rate ``eta`` (default 0.1), or a schedule (:class:`Optimizer`).
    weight_decay : float
        L2 coefficient on the weight matrices (>= 0).

    Examples
    --------
    >>> import bpgpu
    >>> from bpgpu import optimizers
    >>> net = bpgpu.MLP([64, 16, 10], seed=0)
    >>> X, y = bpgpu.datasets.load_digits()
    >>> hist = net.fit(X / 16, y, epochs=2, optimizer=optimizers.SGD(lr=0.5), verbose=False)
    >>> hist.history["loss"][1] < hist.history["loss"][0]
    True
    """

    name = "sgd"
    c_update = (("lr",), "p -= lr * g")

    def rule(self, grads, slots, t):
        return [-self.lr * g for g in grads], slots


class Momentum(Optimizer):
    """Heavy-ball momentum: ``v <- mu v + g``, ``w <- w - lr v`` (PyTorch's SGD).

    Parameters
    ----------
    lr : float or schedule
        The learning rate (default 0.1), or a schedule (:class:`Optimizer`).
    momentum : float
        ``mu``, in [0, 1].
    weight_decay : float
        L2 coefficient on the weight matrices (>= 0).

    Examples
    --------
    >>> from bpgpu import optimizers
    >>> optimizers.Momentum(lr=0.05, momentum=0.8)
    Momentum(lr=0.05, weight_decay=0.0, momentum=0.8)
    """

    name = "momentum"
    slots = ("velocity",)
    c_update = (("lr", "momentum"), "velocity = momentum * velocity + g; p -= lr * velocity")

    def __init__(self, lr: Any = None, momentum: float = 0.9, weight_decay: float = 0.0):
        super().__init__(lr, weight_decay)
        self.momentum = _check("momentum", momentum, 0.0, 1.0, lo_open=False)

    def config(self):
        return {**super().config(), "momentum": self.momentum}

    def rule(self, grads, slots, t):
        v = [self.momentum * v + g for v, g in zip(slots["velocity"], grads)]
        return [-self.lr * vi for vi in v], {"velocity": v}


class Nesterov(Momentum):
    """Nesterov momentum: ``v <- mu v + g``, ``w <- w - lr (g + mu v)``.

    Parameters
    ----------
    lr : float or schedule
        The learning rate (default 0.1), or a schedule (:class:`Optimizer`).
    momentum : float
        ``mu``, in [0, 1].
    weight_decay : float
        L2 coefficient on the weight matrices (>= 0).

    Examples
    --------
    >>> from bpgpu import optimizers
    >>> optimizers.get("nesterov", lr=0.05)
    Nesterov(lr=0.05, weight_decay=0.0, momentum=0.9)
    """

    name = "nesterov"
    c_update = (
        ("lr", "momentum"),
        "velocity = momentum * velocity + g; p -= lr * (g + momentum * velocity)",
    )

    def rule(self, grads, slots, t):
        mu = self.momentum
        v = [mu * v + g for v, g in zip(slots["velocity"], grads)]
        return [-self.lr * (g + mu * vi) for g, vi in zip(grads, v)], {"velocity": v}


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction; ``eps`` is added after the square root.

    Parameters
    ----------
    lr : float or schedule
        The learning rate (default 0.001), or a schedule (:class:`Optimizer`).
    beta1, beta2 : float
        The decay rates of the first and second moment estimates, in [0, 1].
    eps : float
        Added to the root of the second moment (> 0).
    weight_decay : float
        L2 coefficient on the weight matrices (>= 0), added to the gradient (Adam's
        L2, not AdamW's decoupled decay).

    Examples
    --------
    >>> from bpgpu import optimizers, schedules
    >>> optimizers.Adam(lr=schedules.cosine_decay(1e-3, decay_steps=10_000))
    Adam(lr=CosineDecay(init_value=0.001, decay_steps=10000, alpha=0.0, exponent=1.0), ...)
    """

    name = "adam"
    slots = ("m", "v")
    default_lr = 0.001
    c_update = (
        ("beta1", "beta2", "step", "inv_sqrt_c2", "eps"),
        "m = beta1 * m + ((T)1 - beta1) * g; v = beta2 * v + ((T)1 - beta2) * g * g;"
        " p -= step * m / (sqrt(v) * inv_sqrt_c2 + eps)",
    )

    def __init__(
        self,
        lr: Any = None,
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

    def hyper(self, t):
        c1, c2 = 1 - self.beta1**t, 1 - self.beta2**t
        return {**self.config(), "step": self.lr / c1, "inv_sqrt_c2": 1 / _sqrt(c2)}

    def rule(self, grads, slots, t):
        b1, b2 = self.beta1, self.beta2
        m = [b1 * m + (1 - b1) * g for m, g in zip(slots["m"], grads)]
        v = [b2 * v + (1 - b2) * (g * g) for v, g in zip(slots["v"], grads)]
        h = self.hyper(t)
        step, root = h["step"], _sqrt(1 - b2**t)
        xp = array_api_compat.array_namespace(*grads)
        if not isinstance(t, int):  # a traced step count: its float64 factors would promote
            # (asarray: NumPy gives a scalar, not an array, for arithmetic on 0-d arrays)
            step, root = (xp.asarray(x, dtype=grads[0].dtype) for x in (step, root))
        updates = [-step * mi / (xp.sqrt(vi) / root + self.eps) for mi, vi in zip(m, v)]
        return updates, {"m": m, "v": v}


def _sqrt(x):
    """``math.sqrt`` of a host number; of a traced step count (a compiled step), ``x**0.5``."""
    return math.sqrt(x) if isinstance(x, (int, float)) else x**0.5


#: The built-in optimizer classes by name (``optimizer="adam"``).
OPTIMIZERS: dict[str, type[Optimizer]] = {c.name: c for c in (SGD, Momentum, Nesterov, Adam)}
_BUILTIN = frozenset(OPTIMIZERS.values())


def get(spec: str | Optimizer | dict, **kwargs: Any) -> Optimizer:
    """An optimizer from a name, a config dict or an object.

    Parameters
    ----------
    spec : str, dict or Optimizer
        A name of :data:`OPTIMIZERS`, a :meth:`Optimizer.config` dict, or an optimizer
        (returned as it is).
    **kwargs
        Hyper-parameters for a name or a dict (``lr=0.01``); not with an object.

    Returns
    -------
    Optimizer
        The optimizer.

    Raises
    ------
    ValueError
        An unknown name (the message lists the known ones), a dict without a name, or
        hyper-parameters given beside an object.
    TypeError
        A hyper-parameter the optimizer does not take (the message lists those it
        does).

    Examples
    --------
    >>> from bpgpu import optimizers
    >>> optimizers.get("adam", lr=0.01)
    Adam(lr=0.01, weight_decay=0.0, beta1=0.9, beta2=0.999, eps=1e-08)
    >>> optimizers.get({"name": "sgd", "lr": 0.5})
    SGD(lr=0.5, weight_decay=0.0)
    """
    if isinstance(spec, Optimizer):
        if kwargs:
            raise ValueError("pass hyper-parameters to the optimizer object, not to fit()")
        return spec
    if isinstance(spec, dict):
        spec = dict(spec)
        if "name" not in spec:
            raise ValueError(
                f"an optimizer dict names its optimizer: {{'name': 'adam', 'lr': 1e-3}}; "
                f"got {spec!r}"
            )
        name = spec.pop("name")
        return get(name, **spec, **kwargs)
    if spec not in OPTIMIZERS:
        from bpgpu._errors import unknown_name

        raise unknown_name("optimizer", spec, OPTIMIZERS)
    cls = OPTIMIZERS[spec]
    known = [p for p in inspect.signature(cls).parameters if p not in ("self", "args", "kwargs")]
    wrong = [k for k in kwargs if k not in known]
    if wrong:
        raise TypeError(
            f"optimizer {spec!r} takes {', '.join(known)}; got {', '.join(map(repr, wrong))}"
        )
    return cls(**kwargs)
