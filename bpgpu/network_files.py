"""What a model file holds of a network: its config and arrays, written atomically.

:class:`NetworkFiles` is the half of :class:`bpgpu.MLP` that describes a network to a
file (``config``, ``arrays``, ``save``) and checks that it can be described: the
activations and cost by name (the user's own named for the loader's ``custom=``),
class labels that JSON can hold. Reading a file back is :func:`bpgpu.load`.
"""

from __future__ import annotations

import os
from typing import Any

from bpgpu import activations as _acts
from bpgpu import costs as _costs
from bpgpu import io, safetensors_file, targets
from bpgpu._paths import file_path
from bpgpu.backends._install import install_hint
from bpgpu.layers import param_names

# what export writes, by the file's suffix; save writes the two bpgpu reads back
EXPORTS = {
    ".onnx": "an ONNX graph, for onnxruntime.InferenceSession",
    ".pt2": "a torch.export program, for torch.export.load(...).module()",
    ".pt": "the torch state_dict, for net.to_torch().load_state_dict(torch.load(...))",
    ".safetensors": "safetensors, named as net.to_torch().state_dict() names them",
    ".npz": "bpgpu's model file",
}


def model_format(path: Any, what: str = "model file") -> str:
    """``"safetensors"`` or ``"npz"``: the model file ``save`` writes to ``path`` (by its
    suffix; any but ``.safetensors`` is an npz archive, as it always was). An export
    format there is refused with the call that writes it."""
    path = file_path(path, what)
    suffix = os.path.splitext(path)[1].lower()
    if suffix in io.EXPORT_SUFFIXES:
        hint = (
            "torch's own files: .pt2 (a program) or .pt (the state_dict)"
            if suffix == ".pth"
            else f"write it with net.export({path!r}) (bpgpu export MODEL OUT{suffix})"
        )
        raise ValueError(
            f"{path}: a {what} is .npz or .safetensors (bpgpu reads them back); {suffix} "
            f"is no {what}: {hint}"
        )
    return "safetensors" if suffix == safetensors_file.SUFFIX else "npz"


def _torch_modules():
    """:mod:`bpgpu.torch_modules`, or an ImportError that says how to install torch."""
    try:
        import bpgpu.torch_modules as torch_modules
    except ImportError as e:
        if e.name != "torch":
            raise
        hint = install_hint("torch")
        raise ImportError(f"exporting to torch needs PyTorch: {hint}") from None
    return torch_modules


class NetworkFiles:
    """Model files: a base of :class:`bpgpu.MLP` (which holds the attributes used here)."""

    def config(self) -> dict:
        """The JSON config of a model file for this network.

        Returns
        -------
        dict
            The format and its version, bpgpu's version, ``sizes``, ``activations``,
            ``cost``, ``dtype``, ``seed``, whether there is an input scaling, and the
            classes where set: what :func:`bpgpu.load` builds the network from.

        Raises
        ------
        ValueError
            A class label that JSON cannot hold (:func:`bpgpu.targets.to_json`).

        Examples
        --------
        >>> import bpgpu
        >>> cfg = bpgpu.MLP([4, 8, 3], hidden="tanh").config()
        >>> cfg["sizes"], cfg["activations"], cfg["cost"]
        ([4, 8, 3], ['tanh', 'softmax'], 'categorical_cross_entropy')
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
        """The arrays of a model file: the parameters by name, and the input scaling.

        Returns
        -------
        dict of numpy.ndarray
            ``W1``, ``b1`` (``a1`` for PReLU), ``W2``, ... and, with an input scaling,
            ``x_mean`` and ``x_scale``.

        Examples
        --------
        >>> import bpgpu
        >>> sorted(bpgpu.MLP([4, 8, 3]).arrays())
        ['W1', 'W2', 'b1', 'b2']
        """
        arrays = dict(zip(param_names(self.layers), self.get_weights()))
        if self.input_scaling is not None:
            arrays["x_mean"], arrays["x_scale"] = self.input_scaling
        return arrays

    def save(self, path: Any) -> None:
        """Save architecture, weights and input scaling to ``path``, atomically; a missing
        folder is made, as for checkpoints and the CLI's files.

        The format follows the suffix: ``.safetensors`` writes tensors named as
        ``to_torch().state_dict()`` names them with the config in the header's metadata
        (:mod:`bpgpu.safetensors_file`); any other suffix (``.npz``) bpgpu's zip archive.
        :func:`bpgpu.load` reads both. An export format (``.onnx``, ``.pt2``, ``.pt``,
        ``.pth``) is refused: :meth:`export` writes those.

        Parameters
        ----------
        path : str or path-like
            The file; ``.safetensors``, or ``.npz`` (any other suffix writes the
            ``.npz`` archive).

        Raises
        ------
        ValueError
            An export suffix (:meth:`export` writes those), two different activations
            or costs of this network under one name, or a class label that JSON cannot
            hold.

        Examples
        --------
        >>> import os, tempfile
        >>> import numpy as np
        >>> import bpgpu
        >>> net = bpgpu.MLP([4, 8, 3], seed=0)
        >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
        >>> net.save(path)
        >>> again = bpgpu.load(path)
        >>> X = np.ones((2, 4))
        >>> bool((again.predict(X) == net.predict(X)).all())
        True
        """
        kind = model_format(path)
        self._check_nameable("a model file")
        path = io.prepare_output(path, "model file")
        if kind == "safetensors":
            safetensors_file.write(path, self.config(), self.arrays(), self.layers)
        else:
            io.write_archive(path, self.config(), self.arrays())

    def export(self, path: Any) -> None:
        """Write the network for another runtime, the format by the suffix of ``path``.

        ``.onnx``: an ONNX graph (opset 17, dynamic batch, input scaling inside) for ONNX
        Runtime; needs the ``onnx`` extra. ``.pt2``: a ``torch.export``
        program of :meth:`to_torch`'s module, run without bpgpu by
        ``torch.export.load(path).module()``. ``.pt``: that module's ``state_dict``
        (``torch.save``; ``torch.load`` reads it, weights only, into ``to_torch()``).
        ``.safetensors`` and ``.npz``: :meth:`save`. The programs compute
        :meth:`predict` (the outputs, input scaling included). Everything is checked and
        built before the file is written, atomically: a refused export writes nothing.

        Parameters
        ----------
        path : str or path-like
            The file: ``.onnx``, ``.pt2``, ``.pt``, ``.safetensors`` or ``.npz``.

        Raises
        ------
        ValueError
            An unknown suffix, or an activation of your own (no other runtime has it).
        ImportError
            The library the format needs is not installed (the message says how).

        Examples
        --------
        The network in ONNX Runtime, no bpgpu needed there:

        >>> import os, tempfile
        >>> import numpy as np
        >>> import onnxruntime
        >>> import bpgpu
        >>> net = bpgpu.MLP([4, 8, 3], seed=0)
        >>> path = os.path.join(tempfile.mkdtemp(), "model.onnx")
        >>> net.export(path)
        >>> session = onnxruntime.InferenceSession(path)
        >>> X = np.ones((2, 4), dtype=np.float32)
        >>> (Y,) = session.run(None, {session.get_inputs()[0].name: X})
        >>> bool(np.allclose(Y, net.predict(X), atol=1e-6))
        True
        """
        path = file_path(path, "export")
        suffix = os.path.splitext(path)[1].lower()
        if suffix not in EXPORTS:
            raise ValueError(f"{path}: export writes {', '.join(EXPORTS)} (chosen by the suffix)")
        if suffix in (".safetensors", ".npz"):
            self.save(path)
            return
        if suffix == ".onnx":
            from bpgpu.onnx_file import model_proto

            proto = model_proto(self.layers, self.arrays(), self._scaled, self.config())
            data = proto.SerializeToString()
            io.atomic_write(io.prepare_output(path, "export"), lambda f: f.write(data))
            return
        modules = _torch_modules()
        seq = self.to_torch()
        if suffix == ".pt":
            state = seq.state_dict()
            write = lambda f: modules.torch.save(state, f)  # noqa: E731
        else:
            program = modules.program(seq, self.sizes[0])
            write = lambda f: modules.torch.export.save(program, f)  # noqa: E731
        io.atomic_write(io.prepare_output(path, "export"), write)

    def to_torch(self) -> Any:
        """This network as a ``torch.nn.Sequential`` on the CPU, in its dtype, in eval mode.

        The modules are ``[Standardize,] Linear, activation, Linear, ...`` (torch's
        activation modules; small ones of bpgpu's where torch has none:
        ``Standardize`` for the input scaling, ``BinaryStep``, ``Arctan``). Its outputs
        equal :meth:`predict`'s; its ``state_dict`` names are those of a
        ``.safetensors`` file of this network.

        Returns
        -------
        torch.nn.Sequential
            The module, its weights copies of this network's.

        Raises
        ------
        ImportError
            torch is not installed.
        ValueError
            An activation of your own: torch has no module for it.

        Examples
        --------
        >>> import numpy as np
        >>> import torch
        >>> import bpgpu
        >>> net = bpgpu.MLP([4, 8, 3], seed=0)
        >>> module = net.to_torch()
        >>> X = np.ones((2, 4), dtype=np.float32)
        >>> Y = module(torch.from_numpy(X)).detach().numpy()
        >>> bool(np.allclose(Y, net.predict(X), atol=1e-6))
        True
        """
        return _torch_modules().sequential(self.layers, self.arrays(), self._scaled)

    @property
    def _scaled(self) -> bool:
        return self.input_scaling is not None

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
