"""What a model file holds of a network: its config and arrays, written atomically.

:class:`NetworkFiles` is the half of :class:`bpgpu.MLP` that describes a network to a
file (``config``, ``arrays``, ``save``) and checks that it can be described: the
activations and cost by name (the user's own named for the loader's ``custom=``),
class labels that JSON can hold. Reading a file back is :func:`bpgpu.load`.
"""

from __future__ import annotations

from typing import Any

from bpgpu import activations as _acts
from bpgpu import costs as _costs
from bpgpu import io, targets
from bpgpu.layers import param_names


class NetworkFiles:
    """Model files: a base of :class:`bpgpu.MLP` (which holds the attributes used here)."""

    def config(self) -> dict:
        """The JSON config of a model file for this network.

        Raises
        ------
        ValueError
            A class label that JSON cannot hold (:func:`bpgpu.targets.to_json`).
        """
        return self._config(targets.to_json(self.classes))

    def _config(self, classes: Any) -> dict:
        """:meth:`config` with ``classes`` as given (a pickle keeps them as they are)."""
        cfg = io.model_config(
            self.sizes,
            [a.name for a in self.activations],
            self.cost.name,
            self.dtype,
            self.seed,
            self.input_scaling is not None,
        )
        own = self._own_objects()
        if own:  # the names a loader must be given objects for (bpgpu.load(custom=...))
            cfg["custom"] = own
        if self.data_info is not None:
            cfg["data"] = self.data_info
        if classes is not None:
            cfg["classes"] = classes
        return cfg

    def arrays(self) -> dict:
        """The arrays of a model file: parameters by name, and the input scaling."""
        arrays = dict(zip(param_names(self.layers), self.get_weights()))
        if self.input_scaling is not None:
            arrays["x_mean"], arrays["x_scale"] = self.input_scaling
        return arrays

    def save(self, path: Any) -> None:
        """Save architecture, weights and input scaling to ``path`` (.npz), atomically; a
        missing folder is made, as for checkpoints and the CLI's files."""
        self._check_nameable("a model file")
        io.write_archive(io.prepare_output(path, "model file"), self.config(), self.arrays())

    def _by_name(self) -> tuple[list, Any]:
        """The activations and the cost as a file or a pickle can hold them: bpgpu's by
        their names, the user's own as the objects."""
        acts = [a.name if _in_table(_acts.ACTIVATIONS, a) else a for a in self.activations]
        return acts, self.cost.name if _in_table(_costs.COSTS, self.cost) else self.cost

    def _own_objects(self) -> list[str]:
        """Names of the activations and cost of this network that are objects of the
        user's own rather than the tables' entries, each once, in layer order: a model
        file names them, and its loader must be given them (``custom``)."""
        acts, cost = self._by_name()
        return list(dict.fromkeys(o.name for o in [*acts, cost] if not isinstance(o, str)))

    def _objects(self) -> dict[str, Any]:
        """Every activation and the cost of this network by name (what a checkpoint of
        it names, to read one back for a resume)."""
        return {**{a.name: a for a in self.activations}, self.cost.name: self.cost}

    def _check_nameable(self, what: str) -> None:
        """Refuse to write ``what`` where one name would stand for two objects (a file
        names the activations and cost, and a loader gets one object per name), or where
        a class label is not what its JSON can hold."""
        targets.to_json(self.classes, what)
        seen: dict[str, Any] = {}
        for obj in [*self.activations, self.cost]:
            if seen.setdefault(obj.name, obj) is not obj:
                raise ValueError(
                    f"{what} names the activations and cost, and two different objects of "
                    f"this network are both called {obj.name!r} (one of them your own): a "
                    "loader could not tell them apart. Give yours a name of its own, e.g. "
                    f"dataclasses.replace(your_object, name='my_{obj.name}')"
                )


def _in_table(table: dict, obj) -> bool:
    """Whether ``obj`` is the entry its name has in ``table`` (not a user's own): that
    object, or an equal copy (same name, same functions and properties)."""
    return table.get(obj.name) == obj
