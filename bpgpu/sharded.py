"""Data-parallel steps with the optimizer update shared out over the ranks (ZeRO-1).

With the update replicated, every rank runs the optimizer on the whole network after
the Allreduce: on a CPU, where the ranks share a machine's cores, Adam's element-wise
update (memory-bound, a dozen passes over the weights) then costs as much on each rank
as in one process, and a 2-rank fit stayed 1.22x slower than one process on a job one
process does alone (``benchmarks/NOTES.md`` section 27). Sharded, a step is:

1. each rank's gradients of its share of the global batch (eq. 10-11), in one flat
   buffer in parameter order;
2. ``Reduce_scatter``: each rank receives the sum over the ranks of its own contiguous
   slice of that buffer (a slice may start or end inside a parameter);
3. each rank updates only its slice of the parameters and keeps the optimizer state of
   that slice only fresh (the rule is element-wise, so a slice updates as the whole);
4. ``Allgatherv`` in place: every rank gets every slice of the new parameters, which
   live in one flat buffer (the network's parameters are views of it).

The arithmetic is the replicated step's, element for element, so the weights stay
bit-identical on every rank and equal the single-process fit to rounding. The optimizer
state is gathered at the end of every epoch (one ``Allgatherv`` per slot), so what a
checkpoint, an early-stopping snapshot or the next fit reads is the whole state.

Used for the built-in optimizers with state (momentum, Nesterov, Adam; plain SGD has no
update worth sharing and keeps its layer-by-layer path) on host memory (NumPy), without
anomaly mode or a reduced precision, and not when ``BPGPU_SHARDED_UPDATE=0``
(:func:`sharding`). Host buffers for MPI, so NumPy by nature.
"""

from __future__ import annotations

import os

import numpy as np

from bpgpu import core


def sharding(model, opt, dist, anomaly: bool) -> str | None:
    """Why a data-parallel fit keeps the replicated update (None: it can shard)."""
    if os.environ.get("BPGPU_SHARDED_UPDATE", "1").strip() == "0":
        return "BPGPU_SHARDED_UPDATE=0"
    if dist is None or dist.size < 2:
        return "one rank"
    if not all(hasattr(dist.comm, m) for m in ("Reduce_scatter", "Allgatherv")):
        return "the communicator has no Reduce_scatter/Allgatherv"
    if model.backend.library != "numpy":
        return f"{model.backend.name} arrays are not host memory"
    if opt.fused_rule() is None or not opt.slots:
        return "not a built-in optimizer with state"
    if anomaly or (model.precision is not None and model.precision.reduced):
        return "anomaly mode or a reduced precision"
    if len({p.dtype for p in model.params}) != 1:
        return "parameters of several dtypes"
    return None


class ShardedUpdate:
    """The sharded step of one data-parallel fit (see the module's text).

    Parameters
    ----------
    dist : Distributed
        The ranks.
    model : Model
        The network's math; its parameters become views of one flat buffer.
    """

    def __init__(self, dist, model):
        self.dist, self.model = dist, model
        params = model.params
        self.shapes = [tuple(p.shape) for p in params]
        sizes = [int(np.prod(s, dtype=np.int64)) for s in self.shapes]
        self.starts = np.concatenate([[0], np.cumsum(sizes)]).tolist()
        n, size = self.starts[-1], dist.size
        bounds = [n * r // size for r in range(size + 1)]
        self.counts = [bounds[r + 1] - bounds[r] for r in range(size)]
        self.displs = bounds[:-1]
        self.lo, self.hi = bounds[dist.rank], bounds[dist.rank + 1]
        dtype = np.dtype(params[0].dtype)
        self.P = np.empty(n, dtype)  # the parameters, flat: every rank's slices
        self.G = np.empty(n, dtype)  # this rank's gradients, flat
        self.g = np.empty(self.hi - self.lo, dtype)  # its slice, summed over the ranks
        self.flag = np.zeros(1, dtype)
        self.views = self._views(self.P)
        self.mine = self._pieces()
        self.slots: dict[str, np.ndarray] = {}
        self.state: dict | None = None  # the run's state dict this object keeps up

    # ---- layout -----------------------------------------------------------------------

    def _views(self, flat: np.ndarray) -> list:
        """``flat`` as one array per parameter (views)."""
        return [flat[a:b].reshape(s) for a, b, s in zip(self.starts, self.starts[1:], self.shapes)]

    def _pieces(self) -> list[tuple[int, int, int, bool]]:
        """This rank's slice, parameter by parameter: ``(start, stop, offset in the
        slice, is a weight matrix)``, flat positions of the whole buffer."""
        out = []
        for a, b, s in zip(self.starts, self.starts[1:], self.shapes):
            lo, hi = max(a, self.lo), min(b, self.hi)
            if lo < hi:
                out.append((lo, hi, lo - self.lo, len(s) == 2))
        return out

    def _slice(self, flat: np.ndarray, offset: int = 0) -> list:
        """This rank's pieces of a flat buffer (views); a piece of a weight matrix is
        a 1-row matrix, so weight decay (2-D parameters only) still finds it."""
        return [
            flat[lo - offset : hi - offset].reshape((1, -1) if matrix else (-1,))
            for lo, hi, _, matrix in self.mine
        ]

    # ---- keeping the network's arrays -----------------------------------------------

    def _adopt(self, run) -> None:
        """Make the network's parameters views of the flat buffer, and take the run's
        optimizer state, when something else replaced them (the start of the fit, an
        epoch restored after divergence, a callback's ``set_weights``)."""
        model = self.model
        if any(p is not v for p, v in zip(model.params, self.views)):
            for v, p in zip(self.views, model.params):
                v[...] = np.asarray(p)
            model.params = list(self.views)
        if run.state is not self.state:
            state = {"t": run.state["t"]}
            for s in run.opt.slots:
                flat = self.slots.setdefault(s, np.empty_like(self.P))
                for v, a in zip(self._views(flat), run.state[s]):
                    v[...] = np.asarray(a)
                state[s] = self._views(flat)
            self.state = run.state = state

    # ---- one step ---------------------------------------------------------------------

    def step(self, run, Xb, Tb, loss: bool, rows: int, weights, stop: bool):
        """One optimizer step on this rank's share ``Xb`` of a global batch of ``rows``
        rows: ``(E, Y, any rank asked to stop)``; ``E`` and ``Y`` this rank's, as the
        replicated step returns them."""
        from mpi4py import MPI

        self._adopt(run)
        model, comm = self.model, self.dist.comm
        ops = model.backend.ops
        scale = 1.0 / (rows if weights is None else 1)
        grads, _, E, Y = core.backward(
            ops, model.layers, model.cost, model.params, Xb, Tb, scale, loss, weights, rows
        )
        np.concatenate([np.reshape(g, -1) for g in grads], out=self.G)
        comm.Reduce_scatter(self.G, self.g, recvcounts=self.counts, op=MPI.SUM)
        self.flag[0] = 1.0 if stop else 0.0
        comm.Allreduce(MPI.IN_PLACE, self.flag, op=MPI.SUM)
        state = self.state
        if self.mine:
            opt = run.opt
            mine = {"t": state["t"], **{s: self._slice(self.slots[s]) for s in opt.slots}}
            params = self._slice(self.P)
            g = self._slice(self.g, self.lo)
            new, after = ops.optimizer_step(opt, opt.fused_rule(), params, g, mine)
            for p, q in zip(params, new):
                if q is not p:
                    p[...] = q
            for s in opt.slots:
                for v, a in zip(mine[s], after[s]):
                    if a is not v:
                        v[...] = a
        state["t"] += 1
        comm.Allgatherv(MPI.IN_PLACE, [self.P, (self.counts, self.displs)])
        return E, Y, bool(self.flag[0] > 0)

    def gather_state(self) -> None:
        """Every rank's slice of the optimizer state to every rank (collective): the
        state is whole again, for checkpoints, snapshots and the next fit."""
        from mpi4py import MPI

        for flat in self.slots.values():
            self.dist.comm.Allgatherv(MPI.IN_PLACE, [flat, (self.counts, self.displs)])


def sharded_update(model, opt, dist, anomaly: bool) -> ShardedUpdate | None:
    """A :class:`ShardedUpdate` for this fit, or None where the update stays
    replicated (:func:`sharding`)."""
    if sharding(model, opt, dist, anomaly) is not None:
        return None
    return ShardedUpdate(dist, model)
