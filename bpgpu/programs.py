"""Compiled programs shared by every network of one structure.

On a compiling backend (JAX) each program costs a compile at its first call per shape
(about a second for a training epoch on the digits). A program here reads nothing of a
network but what its key names (backend, layers, cost, optimizer settings) and takes
parameters, optimizer state and data as arguments, so another network of the same
shape (the next fold of a cross-validation, a clone in a grid search, another seed)
runs the programs the first one compiled. The most recently used ``LIMIT`` are kept.
A program must not hold its network: that would keep ``LIMIT`` networks' weights alive.
"""

from __future__ import annotations

import copy
import math
import threading
from collections import OrderedDict

from bpgpu import schedules

PROGRAMS: OrderedDict = OrderedDict()
LIMIT = 32
_LOCK = threading.Lock()  # networks may train in threads (a grid search's jobs)


def shared(key: tuple, make):
    """The program (or programs) for ``key``, made by ``make()`` the first time (which
    only wraps it: JAX compiles at the first call). A key that cannot be hashed (an
    activation or cost of the user's own holding a list) is not kept: made each time."""
    try:
        hash(key)
    except TypeError:
        return make()
    with _LOCK:
        found = PROGRAMS.get(key)
        if found is None:
            found = PROGRAMS[key] = make()
            while len(PROGRAMS) > LIMIT:
                PROGRAMS.popitem(last=False)
        else:
            PROGRAMS.move_to_end(key)
        return found


def bounded(top) -> bool:
    """Whether the output range of layer ``top``'s activation is bounded (softmax,
    sigmoid, tanh, ...)."""
    r = top.activation.output_range
    return math.isfinite(r.lo) and math.isfinite(r.hi)


def mid_range(top) -> float:
    """The threshold between no and yes of an output unit of layer ``top``: the middle
    of its range (0.5 for a sigmoid, 0 for tanh; 0.5 for an unbounded output)."""
    r = top.activation.output_range
    return (r.lo + r.hi) / 2 if bounded(top) else 0.5


def labeller(xp, top, multilabel: bool = False):
    """Class labels from the outputs of a network whose output layer is ``top``: argmax,
    or for one unit a threshold at mid-range (0.5 for an unbounded output); with
    ``multilabel`` each unit's yes or no, a ``(B, n_L)`` boolean array."""
    mid = mid_range(top)
    if multilabel:
        return lambda Y: Y >= mid
    if top.n_out > 1:
        return lambda Y: xp.argmax(Y, axis=1)
    return lambda Y: xp.astype(Y[:, 0] >= mid, xp.int64)


def right_rows(xp, top):
    """``right(Y, L) -> (B,)`` booleans: whether :func:`labeller` labels each row of
    outputs ``Y`` as ``L`` says: class labels ``(B,)``, or multi-label rows ``(B, n_L)``
    (a row is right when every unit is)."""
    of, yes = labeller(xp, top), labeller(xp, top, multilabel=True)

    def right(Y, L):
        return xp.all(yes(Y) == L, axis=1) if L.ndim == 2 else of(Y) == L

    return right


def hits(xp, top):
    """``hits(Y, L) -> 0-d count`` of the rows :func:`right_rows` calls right."""
    right = right_rows(xp, top)
    return lambda Y, L: xp.count_nonzero(right(Y, L))


def opt_key(opt) -> tuple:
    """What a compiled program of ``opt`` depends on. A built-in optimizer: its settings
    but the learning rate's number or scale (an argument of the program:
    :meth:`bpgpu.model.Model._lr`), so each fit's fresh ``"adam"`` and a callback that
    changes the rate run the programs compiled first; a schedule's shape is part of the
    key (its hyper-parameters are constants of the program; the step count is traced).
    Anything else: the object itself and all its settings, a schedule by its object (a
    subclass may keep more state than its settings say, and use its ``lr`` in Python)."""
    settings = {**opt.config(), "lr": opt.lr} if callable(opt.lr) else opt.config()
    if opt.fused_rule() is None:
        return (id(opt), type(opt), tuple(sorted(settings.items())))
    shape = schedules.parts(opt.lr)[0]
    return (None, type(opt), tuple(sorted((k, v) for k, v in settings.items() if k != "lr")), shape)


def with_lr(opt, lr):
    """``opt`` inside a compiled program: with its learning rate the traced ``lr``, or,
    for a schedule, the schedule's shape times the traced scale ``lr``."""
    if lr is None:
        return opt
    traced = copy.copy(opt)
    shape = schedules.parts(opt.lr)[0]
    traced.lr = lr if shape is None else _TracedScale(shape, lr)
    return traced


class _TracedScale:
    """``scale * shape(count)`` with a traced ``scale``: a scaled schedule inside a
    compiled program (the scale is an argument, so scaling compiles nothing)."""

    def __init__(self, shape, scale):
        self.shape, self.scale = shape, scale

    def __call__(self, count):
        return self.scale * self.shape(count)
