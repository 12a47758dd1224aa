"""What a network holds and how it goes in and out: the backend, the classes, the
weights and the input scaling.

:class:`NetworkWeights` is the half of :class:`bpgpu.MLP` that holds its state: the
weights as host copies (``get_weights``, by layer and name with ``layer_weights``) and
back (``set_weights``, checked before anything changes), the class labels of the
outputs, the input scaling saved with the model, and the size and summary of the
network. :func:`on_device` runs a public method inside its backend's device context.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from bpgpu import streaming, targets
from bpgpu.backends import Backend
from bpgpu.initial_weights import host_copy
from bpgpu.layers import by_layer, param_shapes
from bpgpu.network_files import NetworkFiles

F = TypeVar("F", bound=Callable[..., Any])


def on_device(method: F) -> F:
    """Run a public method inside its backend's device context (CuPy on device N > 0;
    TF32 products for ``precision="tf32"``), turning the library's out-of-memory error
    into :class:`DeviceMemoryError`."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        mixed = self.model.precision
        tf32 = mixed is not None and mixed.name == "tf32"
        with self.backend.context(), self.backend.tf32() if tf32 else contextlib.nullcontext():
            try:
                return method(self, *args, **kwargs)
            except Exception as e:  # device out of memory becomes a DeviceMemoryError,
                # built while the device is still current (its pool, not device 0's)
                clear = self.backend.translate(e)
                if clear is None:
                    raise
                raise clear from e

    return wrapper  # type: ignore[return-value]


class NetworkWeights(NetworkFiles):
    """A network's state: a base of :class:`bpgpu.MLP` (which builds ``model``,
    ``sizes``, ``activations``, ``cost`` and ``input_scaling``)."""

    # ---- what the network is -----------------------------------------------------------

    @property
    def backend(self) -> Backend:
        return self.model.backend

    @property
    def dtype(self) -> str:
        return self.model.dtype

    @property
    def precision(self) -> str | None:
        """The mixed precision the network computes in (``MLP(precision=...)``), or None."""
        mixed = self.model.precision
        return None if mixed is None else mixed.name

    @property
    def xp(self) -> Any:
        """The backend's array namespace."""
        return self.model.xp

    @property
    def layers(self) -> list:
        """The :class:`bpgpu.layers.Dense` layers, input to output."""
        return self.model.layers

    @property
    def classes(self) -> Any:
        """The class label of each output, in output order (a read-only NumPy array, as
        scikit-learn's ``classes_``), or None: the labels are the output indices 0..K-1.

        A fit on labels that are not numbers (``["cat", "dog", ...]``, any hashable
        values) sets them as it starts, sorted as :func:`numpy.unique` sorts them (labels
        of kinds that do not sort together are refused: set the classes instead); a fit
        on integer labels 0..K-1 leaves them None. Once set, every call that takes targets (``fit``,
        ``evaluate``, ``loss``, ``gradients``, ``deltas``, ``class_weight``'s keys) takes
        labels of these classes and refuses others, naming them; a later fit may hold
        some of the classes only. ``classify`` answers with the labels unless they are
        0..K-1. Saved in model files (text, integer, float and boolean labels).

        Set it to name the outputs before a fit: ``net.classes = [10, 20, 30]`` (numbers
        that are not 0..K-1, in the order you want), or to include a class the training
        data lack; one label per output (two for one sigmoid unit: below and above its
        threshold). ``None`` clears it."""
        return self.model.classes

    @classes.setter
    def classes(self, values: Any) -> None:
        self.model.classes = None if values is None else targets.for_outputs(values, self.sizes[-1])

    def _learn_classes(self, y: Any) -> None:
        """Take the classes from the labels of a fit where the network has none and the
        labels are not numbers (text, objects); see :attr:`classes`."""
        if self.classes is None and not streaming.streamed(y):
            labels = targets.text_labels(y)
            if labels is not None:
                self.model.classes = targets.for_outputs(
                    targets.classes_of(labels), self.sizes[-1], "y"
                )

    # ---- weights ---------------------------------------------------------------------

    def get_weights(self) -> list:
        """Host NumPy copies ``[W1, b1, (a1), W2, b2, ...]``."""
        return [self.backend.to_numpy(p) for p in self.model.params]

    def layer_weights(self) -> list[dict[str, Any]]:
        """Host NumPy copies by layer and name: one ``{"W": ..., "b": ...}`` per layer,
        input to output, with ``"a"`` (the slope) for a PReLU layer."""
        return by_layer(self.layers, self.get_weights())

    @on_device
    def set_weights(self, weights: Sequence[Any]) -> None:
        """Copy ``weights`` (same order and shapes as :meth:`get_weights`) into the network.

        Arrays of any supported library are accepted and cast to the network's dtype.
        Nothing is changed when any of them is refused.
        """
        shapes = list(param_shapes(self.layers).values())
        weights = list(weights)
        if len(weights) != len(shapes):
            raise ValueError(
                f"expected {len(shapes)} arrays (W, b[, slope] per layer), got {len(weights)}"
            )
        host = []
        for k, (w, shape) in enumerate(zip(weights, shapes)):
            a = host_copy(w, self.dtype, f"weights[{k}]")
            if a.shape != shape:
                raise ValueError(f"weights[{k}] has shape {a.shape}, expected {shape}")
            if not bool(abs(a).max(initial=0.0) < math.inf):
                raise ValueError(f"weights[{k}] contains NaN or inf; pass finite values")
            host.append(a)
        self.model.params = [self.backend.asarray(a, self.dtype) for a in host]

    @on_device
    def set_input_scaling(self, mean: Any, scale: Any) -> None:
        """Standardise every input as ``(X - mean) / scale`` (shapes ``(n_0,)``) from now on.

        Saved with the model, so a loaded network takes raw inputs. ``None`` for both
        switches it off.
        """
        if mean is None and scale is None:
            self.input_scaling = self.model.scaling = None
            return
        n0 = self.sizes[0]
        m = host_copy(mean, self.dtype, "mean")
        s = host_copy(scale, self.dtype, "scale")
        if m.shape != (n0,) or s.shape != (n0,):
            raise ValueError(f"mean and scale must have shape ({n0},); got {m.shape}, {s.shape}")
        if not (bool(abs(m).max() < math.inf) and bool(s.min() > 0) and bool(s.max() < math.inf)):
            raise ValueError("mean must be finite and scale finite and > 0")
        self.input_scaling = (m, s)
        self.model.scaling = (
            self.backend.asarray(m, self.dtype),
            self.backend.asarray(s, self.dtype),
        )

    @property
    def n_params(self) -> int:
        """The number of trainable numbers: every ``W``, ``b`` and PReLU slope."""
        return sum(math.prod(shape) for layer in self.model.layers for shape in layer.shapes)

    def summary(self) -> str:
        """A table of the layers (weight shapes, activation, parameters) and the totals,
        as Keras's ``model.summary()`` prints one: ``print(net.summary())``."""
        rows = [("layer", "W", "activation", "parameters")]
        for layer in self.model.layers:
            count = sum(math.prod(shape) for shape in layer.shapes)
            shape = f"({layer.n_out}, {layer.n_in})"
            rows.append((str(layer.index), shape, layer.activation.name, f"{count:,}"))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = [
            "  ".join([*(v.ljust(w) for v, w in zip(r[:3], widths)), r[3].rjust(widths[3])])
            for r in rows
        ]
        itemsize = 8 if self.dtype == "float64" else 4
        lines.append(
            f"{self.n_params:,} parameters ({self.n_params * itemsize / 1024:,.1f} KiB of "
            f"{self.dtype}); cost {self.cost.name}; backend {self.backend.name}"
        )
        return "\n".join(lines)
