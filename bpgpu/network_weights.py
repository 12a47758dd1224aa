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
        """The backend the network computes on (``MLP(backend=...)``, ``net.to(...)``).

        Examples
        --------
        >>> import bpgpu
        >>> bpgpu.MLP([2, 3, 2], backend="numpy").backend.name
        'numpy'
        """
        return self.model.backend

    @property
    def dtype(self) -> str:
        """The floating type of the weights and arrays: ``"float32"`` or ``"float64"``.

        Examples
        --------
        >>> import bpgpu
        >>> bpgpu.MLP([2, 3, 2], dtype="float64").dtype
        'float64'
        """
        return self.model.dtype

    @property
    def precision(self) -> str | None:
        """The mixed precision the network computes in (``MLP(precision=...)``), or None.

        Examples
        --------
        >>> import bpgpu
        >>> print(bpgpu.MLP([2, 3, 2], backend="numpy").precision)
        None
        """
        mixed = self.model.precision
        return None if mixed is None else mixed.name

    @property
    def xp(self) -> Any:
        """The backend's array namespace (Array API standard), for arrays of its kind.

        Examples
        --------
        >>> import bpgpu
        >>> net = bpgpu.MLP([2, 3, 2], backend="numpy")
        >>> net.xp.zeros((1, 2)).shape
        (1, 2)
        """
        return self.model.xp

    @property
    def layers(self) -> list:
        """The :class:`bpgpu.layers.Dense` layers, input to output.

        Examples
        --------
        >>> import bpgpu
        >>> net = bpgpu.MLP([4, 8, 3], hidden="tanh")
        >>> [(layer.n_in, layer.n_out, layer.activation.name) for layer in net.layers]
        [(4, 8, 'tanh'), (8, 3, 'softmax')]
        """
        return self.model.layers

    @property
    def classes(self) -> Any:
        """The class label of each output, in output order, or None (labels 0..K-1).

        A read-only NumPy array, as scikit-learn's ``classes_``; None means the labels
        are the output indices 0..K-1.

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
        threshold). ``None`` clears it.

        Examples
        --------
        >>> import numpy as np
        >>> import bpgpu
        >>> net = bpgpu.MLP([2, 4, 2], seed=0)
        >>> _ = net.fit(np.ones((4, 2)), ["dog", "cat", "dog", "cat"], epochs=1)
        >>> net.classes
        array(['cat', 'dog'], dtype='<U3')
        >>> net.classify(np.ones((1, 2)))[0] in ("cat", "dog")
        True
        """
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
        """Host NumPy copies of every parameter, layer by layer.

        Returns
        -------
        list of numpy.ndarray
            ``[W1, b1, (a1), W2, b2, ...]``: ``W`` ``(n_out, n_in)``, ``b`` ``(n_out,)``,
            and a PReLU layer's slopes ``a`` ``(n_out,)``.

        Examples
        --------
        >>> import bpgpu
        >>> [w.shape for w in bpgpu.MLP([2, 3, 2]).get_weights()]
        [(3, 2), (3,), (2, 3), (2,)]
        """
        return [self.backend.to_numpy(p) for p in self.model.params]

    def layer_weights(self) -> list[dict[str, Any]]:
        """Host NumPy copies of the parameters, by layer and name.

        Returns
        -------
        list of dict
            One ``{"W": ..., "b": ...}`` per layer, input to output, with ``"a"`` (the
            slopes) for a PReLU layer.

        Examples
        --------
        >>> import bpgpu
        >>> layers = bpgpu.MLP([2, 3, 2], hidden="prelu").layer_weights()
        >>> [sorted(layer) for layer in layers], layers[0]["a"]
        ([['W', 'a', 'b'], ['W', 'b']], array([0.25, 0.25, 0.25], dtype=float32))
        """
        return by_layer(self.layers, self.get_weights())

    @on_device
    def set_weights(self, weights: Sequence[Any]) -> None:
        """Copy weights into the network.

        Arrays of any supported library are accepted and cast to the network's dtype.
        Nothing is changed when any of them is refused.

        Parameters
        ----------
        weights : sequence of array
            The same order and shapes as :meth:`get_weights` gives.

        Raises
        ------
        ValueError
            A wrong number of arrays, a wrong shape, or values that are not finite;
            the message names the array.

        Examples
        --------
        >>> import bpgpu
        >>> a, b = bpgpu.MLP([2, 3, 2], seed=0), bpgpu.MLP([2, 3, 2], seed=1)
        >>> b.set_weights(a.get_weights())
        >>> all((u == v).all() for u, v in zip(a.get_weights(), b.get_weights()))
        True
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
        """Standardise every input as ``(X - mean) / scale`` from now on.

        Saved with the model, so a loaded network takes raw inputs.

        Parameters
        ----------
        mean : array_like or None
            ``(n_0,)``, subtracted from each input row; None (with ``scale`` None)
            switches the scaling off.
        scale : array_like or None
            ``(n_0,)``, each > 0, dividing it.

        Raises
        ------
        ValueError
            Wrong shapes, a scale <= 0, values that are not finite, or one of the two
            None.

        Examples
        --------
        >>> import numpy as np
        >>> import bpgpu
        >>> X, y = bpgpu.datasets.load_digits()
        >>> mean, scale = bpgpu.datasets.standardize(X)
        >>> net, plain = bpgpu.MLP([64, 10], seed=0), bpgpu.MLP([64, 10], seed=0)
        >>> net.set_input_scaling(mean, scale)
        >>> raw, scaled = net.predict(X[:5]), plain.predict((X[:5] - mean) / scale)
        >>> bool(np.allclose(raw, scaled, atol=1e-5))   # raw pixels in, standardised inside
        True
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
        """The number of trainable numbers: every ``W``, ``b`` and PReLU slope.

        Examples
        --------
        >>> import bpgpu
        >>> bpgpu.MLP([64, 32, 10]).n_params   # 64*32 + 32 + 32*10 + 10
        2410
        """
        return sum(math.prod(shape) for layer in self.model.layers for shape in layer.shapes)

    def summary(self) -> str:
        """A table of the layers and the totals, as Keras's ``model.summary()`` prints.

        Returns
        -------
        str
            One line per layer (weight shape, activation, parameters), then the number
            of parameters, their memory, the cost and the backend.

        Examples
        --------
        >>> import bpgpu
        >>> print(bpgpu.MLP([2, 3, 2], backend="numpy").summary())
        layer  W       activation  parameters
        1      (3, 2)  relu                 9
        2      (2, 3)  softmax              8
        17 parameters (0.1 KiB of float32); cost categorical_cross_entropy; backend numpy
        """
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
