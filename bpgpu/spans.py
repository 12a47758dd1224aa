"""An epoch's full batches as programs: compiled (JAX) or replayed from a CUDA graph.

:class:`ProgramSpans` is the half of :class:`bpgpu.trainer.Trainer` that hands the full
batches of an epoch to a program instead of stepping through them one by one: JAX's
compiled epochs (:meth:`bpgpu.model.Model.epoch_spans`) and CUDA-graph replay
(:class:`bpgpu.graphs.StepGraph`). Both give the per-batch costs and correct counts as
device vectors and the batch after the last one run; the rest of the epoch (the short
last batch, or all of it after a stop) runs eagerly in the trainer's loop.
"""

from __future__ import annotations

import logging

from bpgpu.callbacks import has_batch_hook
from bpgpu.graphs import StepGraph, refusal

log = logging.getLogger("bpgpu")


class ProgramSpans:
    """Compiled and replayed spans: a base of :class:`bpgpu.trainer.Trainer` (which
    holds the model, run, data, batches, settings, callbacks and stop flag)."""

    def _graph(self):
        """The fit's :class:`~bpgpu.graphs.StepGraph`, or None (the reason said once)."""
        why = refusal(self.model, self.data, self.run.opt, dist=self.dist, anomaly=self.anomaly)
        if why is not None:
            _no_graphs(why)
            return None
        B = self.settings.batch_size
        return StepGraph(self.model, self.data, self.batches, B, self.metrics)

    def _compiled_spans(self, perm, first: int, full: int):
        """Full batches ``first .. full - 1`` as compiled programs (JAX): ``(E, right,
        end)``, their per-batch vectors and the batch after the last one run."""
        model, data = self.model, self.data
        order = perm
        if order is None:  # unshuffled: the rows in order
            order = model.xp.arange(data.n, device=model.backend.device)
        self.run.state, E, right, end = model.epoch_spans(
            data.X,
            data.T,
            data.labels,
            order,
            self.settings.batch_size,
            first,
            full,
            self.run.opt,
            self.run.state,
            self.metrics,
            self.stop.is_set,
            self.batches.shares,
        )
        return E, right, end

    def _replayed(self, perm, first: int):
        """Full batches from ``first`` replayed from a CUDA graph (:mod:`bpgpu.graphs`):
        ``(E, right, end)`` as :meth:`_compiled_spans` gives them; per-batch callbacks
        are called after each replay. A refused capture ends the graphs for this fit
        (the reason said once) and the rest of the epoch runs eagerly."""
        hooks = [cb for cb in self.callbacks if has_batch_hook(cb)]
        net, stop = self.net, self.stop

        def after_batch(bi):
            for cb in hooks:
                if cb.on_batch_end(net, bi):
                    stop.request()

        graph = self.graph
        spans = graph.run(perm, first, self.run, after_batch, stop.check())
        if graph.failed is not None:
            self.graph = None
            _no_graphs(f"the capture failed ({graph.failed})")
        return spans


_SAID: set[str] = set()


def _no_graphs(why: str) -> None:
    """Say once per reason why a fit that asked for CUDA graphs runs eagerly."""
    if why not in _SAID:
        _SAID.add(why)
        log.warning("bpgpu: graphs=True, but the steps run eagerly: %s", why)
