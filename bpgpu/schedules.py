"""Learning-rate schedules: the rate as a function of the step count (optax's meaning).

An optimizer's ``lr`` is a number or a schedule, ``count -> rate``, where ``count`` is
the number of updates already applied (0 for the first step). A schedule here is a
small frozen object, not a lambda: it pickles, compares by value (a compiled program
is keyed by it), and its :meth:`Schedule.config` records it in a checkpoint or a JSON
file, from which :func:`from_config` builds it again.

``schedule(count)`` takes a Python int (the eager path: a Python float comes back) or
an integer array, a compiled program's traced step count (JAX: the rate is computed
inside the program, so a fit compiles once, not once per rate); the array path is
written against the array's own namespace and returns a 0-d float64 array.

The lower-case names ``constant``, ``step_decay``, ``exponential_decay``,
``cosine_decay`` and ``warmup_cosine_decay`` are the classes under optax's spelling.

A schedule times a number is the schedule scaled (:class:`Scaled`), so a callback that
does ``opt.lr *= 0.1`` (or :class:`bpgpu.callbacks.ReduceLROnPlateau`) lowers a
schedule's every later rate by that factor and keeps its shape.

Examples
--------
>>> import bpgpu
>>> lr = bpgpu.schedules.cosine_decay(0.1, decay_steps=100)
>>> opt = bpgpu.optimizers.Adam(lr=lr)
>>> lr(0), lr(50), lr(100), lr(1000)
(0.1, 0.05, 0.0, 0.0)
>>> bpgpu.schedules.from_config(lr.config()) == lr
True
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any, ClassVar

import array_api_compat

from bpgpu._args import integer, real

__all__ = [
    "Schedule",
    "Constant",
    "StepDecay",
    "ExponentialDecay",
    "CosineDecay",
    "WarmupCosineDecay",
    "Scaled",
    "constant",
    "step_decay",
    "exponential_decay",
    "cosine_decay",
    "warmup_cosine_decay",
    "from_config",
    "SCHEDULES",
]


class _Host:
    """The few operations a schedule's formula uses, on Python numbers."""

    cos, floor = math.cos, math.floor

    def num(self, count):
        return float(count)

    def lower(self, x, lo):
        return max(x, lo)

    def upper(self, x, hi):
        return min(x, hi)

    def select(self, cond, a, b):
        return a if cond else b


class _Arrays:
    """The same operations on a 0-d integer array (a traced step count), in float64."""

    def __init__(self, count):
        self.xp = xp = array_api_compat.array_namespace(count)
        self.cos, self.floor = xp.cos, xp.floor

    def num(self, count):
        return self.xp.astype(count, self.xp.float64)

    def lower(self, x, lo):
        return self.xp.clip(x, min=lo)

    def upper(self, x, hi):
        return self.xp.clip(x, max=hi)

    def select(self, cond, a, b):  # a and b: arrays of the count's shape
        return self.xp.where(cond, a, b)


_HOST = _Host()


class Schedule:
    """Base class: ``schedule(count) -> rate`` for the update after ``count`` updates.

    Subclasses are frozen dataclasses whose fields are the hyper-parameters; they
    implement :meth:`rate` once, on the operations ``f`` offers (Python numbers or
    arrays), so the eager and the compiled paths share one formula. ``schedule(count)``
    gives a Python float for a Python (or NumPy) integer, a 0-d float64 array for an
    integer array. A schedule times (or divided by) a number is :class:`Scaled`.

    Examples
    --------
    A schedule of one's own: a field per hyper-parameter, a ``name``, and the formula
    once in :meth:`rate`; it works eagerly, in JAX's compiled programs and in a
    checkpoint (once added to :data:`SCHEDULES`, which :func:`from_config` reads):

    >>> from dataclasses import dataclass
    >>> from typing import ClassVar
    >>> from bpgpu import schedules
    >>> @dataclass(frozen=True)
    ... class InverseTime(schedules.Schedule):
    ...     init_value: float
    ...     name: ClassVar[str] = "inverse_time"
    ...     def rate(self, f, count):
    ...         return self.init_value / (1.0 + f.num(count))
    >>> lr = InverseTime(0.1)
    >>> lr(0), lr(1), (lr * 0.5)(1)
    (0.1, 0.05, 0.025)
    >>> lr.config()
    {'name': 'inverse_time', 'init_value': 0.1}
    """

    name: ClassVar[str] = "schedule"

    def __call__(self, count: Any) -> Any:
        """The rate for ``count`` updates already applied: a Python float for a Python
        (or NumPy) integer, a 0-d float64 array for an integer array."""
        if isinstance(count, numbers.Integral) and not isinstance(count, bool):
            if count < 0:
                raise ValueError(f"a schedule's step count is >= 0; got {count}")
            return float(self.rate(_HOST, int(count)))
        return self.rate(_Arrays(count), count)

    def rate(self, f, count):
        """The schedule's formula, written once for numbers and arrays.

        Parameters
        ----------
        f : object
            The operations the formula may use, on Python numbers (the eager path)
            or on arrays (a compiled program's traced step count): ``f.num(count)``
            (the count as a float), ``f.cos``, ``f.floor``, ``f.lower(x, lo)``,
            ``f.upper(x, hi)``, ``f.select(cond, a, b)``.
        count : int or array
            The number of updates already applied.

        Returns
        -------
        float or array
            The rate.

        Examples
        --------
        >>> from bpgpu import schedules
        >>> schedules.step_decay(0.1, step_size=10, factor=0.5)(25)  # calls rate
        0.025
        """
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """The schedule as JSON data, from which :func:`from_config` builds it again.

        Returns
        -------
        dict
            ``{"name": ..., hyper-parameter: value, ...}``.

        Examples
        --------
        >>> from bpgpu import schedules
        >>> schedules.cosine_decay(0.1, decay_steps=100).config()
        {'name': 'cosine_decay', 'init_value': 0.1, 'decay_steps': 100, 'alpha': 0.0,
         'exponent': 1.0}
        """
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {"name": self.name, **fields}

    def __mul__(self, factor: float) -> Scaled:
        base, scale = (self.schedule, self.factor) if isinstance(self, Scaled) else (self, 1.0)
        return Scaled(base, scale * real("a schedule's factor", factor, 0.0))

    __rmul__ = __mul__

    def __truediv__(self, divisor: float) -> Scaled:
        return self * (1.0 / real("a schedule's divisor", divisor, 0.0))


@dataclass(frozen=True)
class Constant(Schedule):
    """The same rate at every step.

    Parameters
    ----------
    value : float
        The rate (> 0).

    Examples
    --------
    >>> from bpgpu import schedules
    >>> schedules.constant(0.1)(0), schedules.constant(0.1)(10_000)
    (0.1, 0.1)
    """

    value: float
    name: ClassVar[str] = "constant"

    def __post_init__(self):
        object.__setattr__(self, "value", real("value", self.value, 0.0))

    def rate(self, f, count):
        return f.num(count) * 0.0 + self.value  # an array for an array count


@dataclass(frozen=True)
class StepDecay(Schedule):
    """``init_value * factor ** floor(count / step_size)``: the rate multiplied by
    ``factor`` every ``step_size`` updates (torch's ``StepLR`` counted in updates;
    optax spells it ``exponential_decay(..., staircase=True)`` or a piecewise constant
    schedule).

    Parameters
    ----------
    init_value : float
        The rate of the first ``step_size`` updates (> 0).
    step_size : int
        Updates between two decays (> 0).
    factor : float
        What each decay multiplies the rate by (> 0; < 1 decays).

    Examples
    --------
    >>> from bpgpu import schedules
    >>> lr = schedules.step_decay(0.1, step_size=100, factor=0.5)
    >>> lr(0), lr(99), lr(100), lr(250)
    (0.1, 0.1, 0.05, 0.025)
    """

    init_value: float
    step_size: int
    factor: float
    name: ClassVar[str] = "step_decay"

    def __post_init__(self):
        object.__setattr__(self, "init_value", real("init_value", self.init_value, 0.0))
        object.__setattr__(self, "step_size", integer("step_size", self.step_size))
        object.__setattr__(self, "factor", real("factor", self.factor, 0.0))

    def rate(self, f, count):
        return self.init_value * self.factor ** f.floor(f.num(count) / self.step_size)


@dataclass(frozen=True)
class ExponentialDecay(Schedule):
    """Exponential decay, optax's ``exponential_decay``.

    The rate is ``init_value * decay_rate ** p``, where
    ``p = (count - transition_begin) / transition_steps`` (``floor``-ed with
    ``staircase``) and the rate stays ``init_value`` until ``transition_begin``;
    ``end_value`` bounds it (from below when it decays, from above when it grows).

    Parameters
    ----------
    init_value : float
        The first rate (> 0).
    transition_steps : int
        Updates over which the rate is multiplied by ``decay_rate`` once (> 0).
    decay_rate : float
        The factor per ``transition_steps`` (> 0; < 1 decays, > 1 grows).
    transition_begin : int, default 0
        Updates at ``init_value`` before the decay starts (>= 0).
    staircase : bool, default False
        Decay in steps of ``transition_steps`` instead of smoothly.
    end_value : float or None, default None
        The bound the rate stops at (> 0), or None for none.

    Examples
    --------
    >>> from bpgpu import schedules
    >>> lr = schedules.exponential_decay(0.1, transition_steps=10, decay_rate=0.5)
    >>> lr(0), lr(10), lr(20)
    (0.1, 0.05, 0.025)
    >>> schedules.exponential_decay(0.1, 10, 0.5, staircase=True, end_value=0.04)(25)
    0.04
    """

    init_value: float
    transition_steps: int
    decay_rate: float
    transition_begin: int = 0
    staircase: bool = False
    end_value: float | None = None
    name: ClassVar[str] = "exponential_decay"

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "init_value", real("init_value", self.init_value, 0.0))
        if isinstance(self.transition_steps, numbers.Integral) and self.transition_steps <= 0:
            raise ValueError(
                f"transition_steps must be a positive integer; got {self.transition_steps!r} "
                "(for a rate that does not change use bpgpu.schedules.constant(init_value))"
            )
        set_(self, "transition_steps", integer("transition_steps", self.transition_steps))
        set_(self, "decay_rate", real("decay_rate", self.decay_rate, 0.0))
        set_(self, "transition_begin", integer("transition_begin", self.transition_begin, 0))
        if type(self.staircase) is not bool:
            raise ValueError(f"staircase must be True or False; got {self.staircase!r}")
        if self.end_value is not None:
            set_(self, "end_value", real("end_value", self.end_value, 0.0))

    def rate(self, f, count):
        p = f.lower(f.num(count) - self.transition_begin, 0.0) / self.transition_steps
        if self.staircase:
            p = f.floor(p)
        value = self.init_value * self.decay_rate**p
        if self.end_value is None:
            return value
        if self.decay_rate < 1:
            return f.lower(value, self.end_value)
        return f.upper(value, self.end_value)


def _half_cosine(f, done, exponent: float):
    """The cosine decays' factor: ``((1 + cos(pi * done)) / 2) ** exponent``, from 1 at
    ``done = 0`` to 0 at ``done = 1``."""
    return (0.5 * (1.0 + f.cos(math.pi * done))) ** exponent


@dataclass(frozen=True)
class CosineDecay(Schedule):
    """Cosine decay, optax's ``cosine_decay_schedule``.

    Over ``decay_steps`` updates the rate falls
    from ``init_value`` to ``alpha * init_value`` along a half cosine (raised to
    ``exponent``), and stays there: ``init_value * ((1 - alpha) * c ** exponent +
    alpha)`` with ``c = (1 + cos(pi * min(count, decay_steps) / decay_steps)) / 2``.

    Parameters
    ----------
    init_value : float
        The first rate (> 0).
    decay_steps : int
        Updates over which it decays (> 0).
    alpha : float, default 0.0
        The final rate as a fraction of ``init_value`` (>= 0).
    exponent : float, default 1.0
        The power of the cosine factor (> 0).

    Examples
    --------
    >>> from bpgpu import schedules
    >>> lr = schedules.cosine_decay(1e-3, decay_steps=10_000, alpha=0.1)
    >>> lr(0), round(lr(5_000), 12), lr(10_000)
    (0.001, 0.00055, 0.0001)
    """

    init_value: float
    decay_steps: int
    alpha: float = 0.0
    exponent: float = 1.0
    name: ClassVar[str] = "cosine_decay"

    def __post_init__(self):
        object.__setattr__(self, "init_value", real("init_value", self.init_value, 0.0))
        object.__setattr__(self, "decay_steps", integer("decay_steps", self.decay_steps))
        object.__setattr__(self, "alpha", real("alpha", self.alpha, 0.0, lo_open=False))
        object.__setattr__(self, "exponent", real("exponent", self.exponent, 0.0))

    def rate(self, f, count):
        done = f.upper(f.num(count), float(self.decay_steps)) / self.decay_steps
        c = _half_cosine(f, done, self.exponent)
        return self.init_value * ((1.0 - self.alpha) * c + self.alpha)


@dataclass(frozen=True)
class WarmupCosineDecay(Schedule):
    """Linear warmup then cosine decay, optax's ``warmup_cosine_decay_schedule``.

    The rate rises linearly from
    ``init_value`` to ``peak_value`` over ``warmup_steps`` updates, then falls along a
    half cosine (raised to ``exponent``) to ``end_value`` at update ``decay_steps``,
    and stays there. ``decay_steps`` counts the warmup too, as optax's does.

    Parameters
    ----------
    init_value : float
        The rate of the first update (>= 0; 0 is usual).
    peak_value : float
        The rate at the end of the warmup (> 0).
    warmup_steps : int
        Updates of the linear rise (>= 0).
    decay_steps : int
        Updates of warmup and decay together (> ``warmup_steps``).
    end_value : float, default 0.0
        The final rate (>= 0).
    exponent : float, default 1.0
        The power of the cosine factor (> 0).

    Examples
    --------
    >>> from bpgpu import schedules
    >>> lr = schedules.warmup_cosine_decay(0.0, 1e-3, warmup_steps=100, decay_steps=1_100)
    >>> lr(0), lr(50), lr(100), lr(1_100)
    (0.0, 0.0005, 0.001, 0.0)
    """

    init_value: float
    peak_value: float
    warmup_steps: int
    decay_steps: int
    end_value: float = 0.0
    exponent: float = 1.0
    name: ClassVar[str] = "warmup_cosine_decay"

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "init_value", real("init_value", self.init_value, 0.0, lo_open=False))
        set_(self, "peak_value", real("peak_value", self.peak_value, 0.0))
        set_(self, "warmup_steps", integer("warmup_steps", self.warmup_steps, 0))
        set_(self, "decay_steps", integer("decay_steps", self.decay_steps))
        if self.decay_steps <= self.warmup_steps:
            raise ValueError(
                f"decay_steps ({self.decay_steps}) must be more than warmup_steps "
                f"({self.warmup_steps}): it counts the warmup too, as optax's does; pass "
                f"decay_steps={self.warmup_steps} + the decay's length"
            )
        set_(self, "end_value", real("end_value", self.end_value, 0.0, lo_open=False))
        set_(self, "exponent", real("exponent", self.exponent, 0.0))

    def rate(self, f, count):
        n, w = f.num(count), self.warmup_steps
        rise = self.peak_value - self.init_value
        warm = self.init_value + rise * (f.upper(n, float(w)) / w) if w else self.peak_value
        length = self.decay_steps - w
        done = f.upper(f.lower(n - w, 0.0), float(length)) / length
        c = _half_cosine(f, done, self.exponent)
        cool = (self.peak_value - self.end_value) * c + self.end_value
        return f.select(n < w, warm, cool) if w else cool


@dataclass(frozen=True)
class Scaled(Schedule):
    """``factor * schedule(count)``: what ``schedule * factor`` makes (a callback that
    lowers the rate, :class:`bpgpu.callbacks.ReduceLROnPlateau`).

    Parameters
    ----------
    schedule : Schedule
        The schedule scaled (not itself a :class:`Scaled`: factors multiply).
    factor : float
        The factor (> 0).

    Examples
    --------
    >>> from bpgpu import schedules
    >>> lr = schedules.cosine_decay(0.1, decay_steps=100) * 0.5
    >>> lr.factor, lr(0), lr(100)
    (0.5, 0.05, 0.0)
    """

    schedule: Schedule
    factor: float
    name: ClassVar[str] = "scaled"

    def __post_init__(self):
        if not isinstance(self.schedule, Schedule) or isinstance(self.schedule, Scaled):
            raise ValueError(
                f"Scaled takes a schedule of bpgpu.schedules (not a Scaled one); got "
                f"{self.schedule!r}; write schedule * factor"
            )
        object.__setattr__(self, "factor", real("factor", self.factor, 0.0))

    def rate(self, f, count):
        return self.factor * self.schedule.rate(f, count)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "schedule": self.schedule.config(), "factor": self.factor}


constant = Constant
step_decay = StepDecay
exponential_decay = ExponentialDecay
cosine_decay = CosineDecay
warmup_cosine_decay = WarmupCosineDecay

#: The schedule classes by the name their ``config()`` records.
SCHEDULES: dict[str, type[Schedule]] = {
    c.name: c
    for c in (Constant, StepDecay, ExponentialDecay, CosineDecay, WarmupCosineDecay, Scaled)
}


def from_config(config: dict[str, Any]) -> Schedule:
    """The schedule a :meth:`Schedule.config` dict records.

    Parameters
    ----------
    config : dict
        ``{"name": ..., hyper-parameter: value, ...}``, the name one of
        :data:`SCHEDULES`.

    Returns
    -------
    Schedule
        A schedule equal to the one that wrote ``config``.

    Raises
    ------
    ValueError
        An unknown name, or hyper-parameters the schedule does not take.

    Examples
    --------
    >>> from bpgpu import schedules
    >>> schedules.from_config({"name": "step_decay", "init_value": 0.1, "step_size": 5,
    ...                        "factor": 0.5})
    StepDecay(init_value=0.1, step_size=5, factor=0.5)
    """
    if not isinstance(config, dict) or config.get("name") not in SCHEDULES:
        raise ValueError(
            f"a schedule's config names one of {', '.join(SCHEDULES)}, as "
            f"Schedule.config() writes it; got {config!r}"
        )
    args = {k: v for k, v in config.items() if k != "name"}
    cls = SCHEDULES[config["name"]]
    if cls is Scaled:
        args["schedule"] = from_config(args.get("schedule"))
    try:
        return cls(**args)
    except TypeError as e:
        raise ValueError(f"a {cls.name} schedule's config is not valid ({e}): {config!r}") from None


def parts(lr: Any) -> tuple[Schedule | None, Any]:
    """``(shape, scale)`` of an optimizer's ``lr``: a number is ``(None, lr)``, a
    schedule ``(schedule, 1.0)``, a scaled one ``(schedule, factor)``, a plain function
    ``(function, None)``. A compiled program holds the shape (a constant) and takes the
    scale as an argument, so a callback that scales a schedule compiles nothing."""
    if isinstance(lr, Scaled):
        return lr.schedule, lr.factor
    if isinstance(lr, Schedule):
        return lr, 1.0
    if callable(lr):
        return lr, None
    return None, lr
