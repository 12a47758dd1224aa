"""``MLP``: the public face of a network, a thin layer over the model, training and files.

The math lives in :mod:`bpgpu.core` (functional forward and backward), bound to a
backend by :class:`bpgpu.model.Model`; ``fit`` in :mod:`bpgpu.training`; model files in
:mod:`bpgpu.io`. This class validates what users pass, runs every public call inside
its backend's device context (turning the library's out-of-memory error into
``DeviceMemoryError``) and converts between host and device arrays. Rows are samples;
layer ``l`` has ``W`` of shape ``(n_l, n_{l-1})``, ``b`` of shape ``(n_l,)`` and, for
PReLU, a slope ``a`` of shape ``(n_l,)``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

from bpgpu import activations as _acts
from bpgpu import costs as _costs
from bpgpu import io, safetensors_file, streaming, targets
from bpgpu._args import dtype_name, integer, real, widths
from bpgpu._paths import file_path
from bpgpu.backends import Backend, BackendUnavailable, get_backend
from bpgpu.initial_weights import INITS, init_weights
from bpgpu.layers import build, param_names
from bpgpu.model import Model
from bpgpu.network_fit import Fitting
from bpgpu.network_weights import NetworkWeights, on_device
from bpgpu.precision import policy as precision_policy
from bpgpu.sample_weights import sample_weights

_DEFAULT_COST = {"softmax": "categorical_cross_entropy", "sigmoid": "cross_entropy"}


class MLP(Fitting, NetworkWeights):
    """A fully connected network trained by backpropagation.

    Parameters
    ----------
    sizes : sequence of int
        ``[n_0, n_1, ..., n_L]``: inputs, each hidden layer, outputs. Sizes, seed and
        dtype take NumPy integers and dtypes as well as Python ones.
    hidden : str or sequence of str
        Activation of every hidden layer, or one name per hidden layer.
    output : str
        Activation of the output layer.
    cost : str or None
        ``"quadratic"``, ``"cross_entropy"`` or ``"categorical_cross_entropy"``; None picks
        the natural one for ``output`` (softmax: categorical, sigmoid: cross-entropy,
        otherwise quadratic).
    backend : str or Backend or None
        ``"auto"``, ``"numpy"``, ``"cupy"``, ``"torch"``, ...; None reads ``$BPGPU_BACKEND``
        and falls back to ``"auto"``.
    dtype : {"float32", "float64"}
        The weights' and arrays' floating type.
    seed : int or None
        Seed of the host ``numpy.random.Generator`` that draws the initial weights.
    init : str
        Initial weights: ``"auto"`` (He normal for the ReLU family, Glorot uniform
        otherwise), ``"he_normal"``, ``"he_uniform"``, ``"glorot_uniform"``,
        ``"glorot_normal"``, ``"lecun_normal"``, ``"scaled_normal"`` (weights
        N(0, 1/n_in), biases N(0, 1): the default of Nielsen's ``network2``) or
        ``"normal"`` (weights and biases N(0, 1): his ``network.py``).
    precision : {None, "bfloat16", "float16", "tf32"}
        Mixed precision (:mod:`bpgpu.precision`): the products and activations of fit,
        predict and evaluate in this type, the weights, the optimizer's state, the loss
        and the softmax/cross-entropy sums in float32 (``dtype`` must be float32).
        bfloat16 and float16 on torch and JAX (CPU and GPU), float16 on CuPy, tf32 on
        torch:cuda; other backends refuse it. None: every array in ``dtype``.

    Attributes
    ----------
    classes : numpy.ndarray or None
        The class label of each output (see the property).

    See Also
    --------
    load : A network from a model file.
    bpgpu.sklearn.BPClassifier : The same network as a scikit-learn estimator.

    Examples
    --------
    >>> import numpy as np
    >>> import bpgpu
    >>> net = bpgpu.MLP([4, 8, 3], hidden="tanh", backend="numpy", dtype="float64", seed=0)
    >>> X, y = np.random.default_rng(0).normal(size=(6, 4)), np.array([0, 1, 2, 0, 1, 2])
    >>> [g.shape for g in net.gradients(X, y)]
    [(8, 4), (8,), (3, 8), (3,)]
    >>> history = net.fit(X, y, epochs=3, lr=0.5)
    >>> len(history.loss), net.classify(X).shape
    (3, (6,))
    """

    @classmethod
    def _with_weights(cls, *args: Any, weights: Sequence[Any], **kwargs: Any) -> MLP:
        """The network of ``MLP(*args, **kwargs)`` with these weights instead of
        drawn ones (a model file's, a converted model's: nothing drawn to be replaced)."""
        net = cls.__new__(cls)
        net._preset = list(weights)
        net.__init__(*args, **kwargs)
        return net

    def __init__(
        self,
        sizes: Sequence[int],
        hidden: str | Sequence[str] = "relu",
        output: str = "softmax",
        cost: str | None = None,
        backend: str | Backend | None = None,
        dtype: str = "float32",
        seed: int | None = 0,
        *,
        init: str = "auto",
        precision: str | None = None,
    ):
        sizes = widths(sizes)
        n_hidden = len(sizes) - 2
        if isinstance(hidden, (str, _acts.Activation)):  # an object, as output= takes one
            names = [hidden] * n_hidden
        elif isinstance(hidden, (list, tuple)):
            names = list(hidden)
        else:
            raise ValueError(
                f"hidden must be an activation name (e.g. 'relu') or a list of one name per "
                f"hidden layer; got {hidden!r}"
            )
        if len(names) != n_hidden:
            raise ValueError(
                f"hidden lists {len(names)} activations but sizes has {n_hidden} hidden layers"
            )
        acts = [_acts.get(n) for n in names] + [_acts.get(output)]
        if acts[-1].name == "softmax" and sizes[-1] < 2:
            raise ValueError(
                f"output='softmax' over {sizes[-1]} output always gives 1: use at least 2 "
                "outputs (one per class), or one output with output='sigmoid' for two classes"
            )
        if cost is None:
            cost = _DEFAULT_COST.get(acts[-1].name, "quadratic")
        cost_obj = _costs.get(cost)
        cost_obj.check_output(acts[-1])
        for i, act in enumerate(acts[:-1], start=1):
            if not act.hidden_ok:
                raise ValueError(
                    f"{act.name!r} belongs on the output layer only; hidden layer {i} needs "
                    f"another activation (e.g. 'relu')"
                )
        dtype = dtype_name(dtype)
        if seed is not None:
            seed = integer("seed", seed, lo=0)
        if init not in INITS:
            from bpgpu._errors import unknown_name

            raise unknown_name("init", init, INITS)
        backend = get_backend(backend)
        backend.dtype(dtype)  # refuses a dtype the device lacks (float64 on MPS)
        for i, act in enumerate(acts, start=1):
            if not act.differentiable:
                where = "the output layer" if i == len(acts) else f"hidden layer {i}"
                warnings.warn(
                    f"{act.name} in {where} has a zero gradient almost everywhere: "
                    f"the layers up to {where} will not learn by backpropagation",
                    UserWarning,
                    stacklevel=2,
                )
        self.sizes = sizes
        self.activations = acts
        self.cost = cost_obj
        self.seed = seed
        self.input_scaling: tuple[Any, Any] | None = None  # host copies, saved with the model
        # what the network was trained on (``bpgpu train`` records source, split, task,
        # classes and a fingerprint): saved with the model, JSON data
        self.data_info: dict | None = None
        self.init = init
        layers = build(sizes, acts)
        mixed = precision_policy(precision, backend, dtype)
        self.model = Model(layers, cost_obj, backend, dtype, params=[], precision=mixed)
        preset = self.__dict__.pop("_preset", None)  # with_weights: no random draw
        self.set_weights(init_weights(layers, seed, init) if preset is None else preset)

    def to(self, backend: str | Backend, dtype: str | None = None, precision: Any = "same") -> MLP:
        """A copy of this network on another backend (and dtype), with identical weights.

        Parameters
        ----------
        backend : str or Backend
            ``"numpy"``, ``"cupy"``, ``"torch:cuda"``, ... (:func:`bpgpu.list_backends`).
        dtype : {None, "float32", "float64"}
            The copy's floating type; None keeps this network's.
        precision : {"same", None, "bfloat16", "float16", "tf32"}
            The copy's mixed precision; ``"same"`` keeps this network's, None is full
            precision.

        Returns
        -------
        MLP
            The copy (classes and input scaling included); this network is unchanged.

        Raises
        ------
        BackendUnavailable
            The backend cannot load here (the message says how to fix it).

        Examples
        --------
        >>> import bpgpu
        >>> net = bpgpu.MLP([2, 3, 2], backend="numpy", seed=0)
        >>> twin = net.to("numpy", dtype="float64")
        >>> twin.dtype, bool((twin.get_weights()[0] == net.get_weights()[0]).all())
        ('float64', True)
        """
        backend = get_backend(backend)
        dtype = self.dtype if dtype is None else dtype_name(dtype)
        precision = self.precision if precision == "same" else precision
        mixed = precision_policy(precision, backend, dtype)
        backend.dtype(dtype)
        net = object.__new__(MLP)
        net.__dict__.update(self.__dict__)
        net.input_scaling = None
        net.model = Model(self.layers, self.cost, backend, dtype, params=[], precision=mixed)
        net.model.classes = self.model.classes  # read-only: shared
        net.set_weights(self.get_weights())
        if self.input_scaling is not None:
            net.set_input_scaling(*self.input_scaling)
        return net

    # ---- the math --------------------------------------------------------------------

    @on_device
    def forward(self, X: Any) -> Any:
        """The network's outputs ``Y^L``: the seed's (1) and ``y = f(x)``, layer by layer.

        ``predict`` is the same method.

        Parameters
        ----------
        X : array_like or str
            Inputs ``(B, n_0)``: an array of any supported library, NumPy, a memory
            map or a ``.npy`` path (many rows are read a chunk at a time).

        Returns
        -------
        array
            ``(B, n_L)``, an array of the network's backend (:func:`bpgpu.to_numpy`
            copies it to the host).

        Examples
        --------
        >>> import numpy as np
        >>> import bpgpu
        >>> net = bpgpu.MLP([2, 3, 2], backend="numpy", seed=0)
        >>> Y = net.forward(np.ones((4, 2)))
        >>> Y.shape, bool(np.allclose(Y.sum(axis=1), 1))   # softmax rows
        ((4, 2), True)
        """
        X, step = self._rows(X)
        if step is None:
            return self.model.outputs(self.model.input(X))
        parts = [
            self.model.outputs(self.model.input(X[s : s + step]))
            for s in range(0, X.shape[0], step)
        ]
        return self.xp.concat(parts, axis=0)

    def _rows(self, X: Any, what: str = "X") -> tuple[Any, int | None]:
        """``X`` opened (a .npy path) and the rows to read at a time (None: all)."""
        itemsize = 8 if self.dtype == "float64" else 4
        return streaming.inference_rows(X, max(self.sizes), itemsize, what)

    predict = forward

    @on_device
    def loss(self, X: Any, T: Any) -> float:
        """The batch-mean cost: the seed's (3) or (5), averaged over the samples.

        ``fit``, ``evaluate``, ``gradients`` and ``deltas`` take targets as this does.
        Class labels are the output indices 0..K-1, or labels of any kind (text, any
        hashable values) of the network's :attr:`classes`, which a fit on such labels
        sets; an unknown label is refused, naming it.

        Parameters
        ----------
        X : array_like
            Inputs ``(B, n_0)``: an array of any supported library, or NumPy.
        T : array_like
            Targets: ``(B, n_L)`` rows, ``(B,)`` for one output, or class labels
            ``(B,)`` (the output indices 0..K-1, or labels of :attr:`classes`). For
            categorical cross-entropy, ``(B, n_L)`` rows are probabilities (>= 0,
            summing to 1).

        Returns
        -------
        float
            The mean over the batch of each sample's cost.

        Examples
        --------
        >>> import numpy as np
        >>> import bpgpu
        >>> net = bpgpu.MLP([2, 3, 2], backend="numpy", seed=0)
        >>> X = np.array([[0.5, -1.0], [1.0, 2.0]])
        >>> net.loss(X, [0, 1]) == net.loss(X, np.eye(2))   # labels or one-hot rows
        True
        """
        Xb = self.model.input(X)
        return float(self.model.loss(Xb, self.model.targets(T, Xb.shape[0])))

    @on_device
    def gradients(self, X: Any, T: Any) -> list:
        """The gradient of the batch-mean loss for every parameter, the seed's (10)-(11).

        Parameters
        ----------
        X : array_like
            Inputs ``(B, n_0)``: an array of any supported library, or NumPy.
        T : array_like
            Targets, as :meth:`loss` takes them.

        Returns
        -------
        list of array
            ``d loss / d parameter``, arrays of the backend, in :meth:`get_weights`
            order and shapes.

        Examples
        --------
        >>> import numpy as np
        >>> import bpgpu
        >>> net = bpgpu.MLP([2, 3, 2], dtype="float64", seed=0)
        >>> X, y = np.array([[0.5, -1.0], [1.0, 2.0]]), np.array([0, 1])
        >>> [g.shape for g in net.gradients(X, y)]
        [(3, 2), (3,), (2, 3), (2,)]
        >>> bool(bpgpu.gradcheck(net, X, y) < 1e-6)   # against central differences
        True
        """
        Xb = self.model.input(X)
        return self.model.gradients(Xb, self.model.targets(T, Xb.shape[0]))

    @on_device
    def deltas(self, X: Any, T: Any) -> list:
        """The neuron errors ``D^l = dE/dX^l`` of every layer, the seed's (7)-(9).

        For teaching and debugging: what the backward recursion computes, per sample.

        Parameters
        ----------
        X : array_like
            Inputs ``(B, n_0)``: an array of any supported library, or NumPy.
        T : array_like
            Targets, as :meth:`loss` takes them.

        Returns
        -------
        list of array
            ``[D^1, ..., D^L]``, each ``(B, n_l)``, of each sample's own cost (not
            divided by the batch size).

        Examples
        --------
        >>> import numpy as np
        >>> import bpgpu
        >>> net = bpgpu.MLP([2, 3, 2], dtype="float64", seed=0)
        >>> X, y = np.array([[0.5, -1.0], [1.0, 2.0]]), np.array([0, 1])
        >>> D = net.deltas(X, y)
        >>> [d.shape for d in D]
        [(2, 3), (2, 2)]
        >>> bool(np.allclose(D[-1], net.forward(X) - np.eye(2)))   # (9): Y - T
        True
        """
        Xb = self.model.input(X)
        return self.model.deltas(Xb, self.model.targets(T, Xb.shape[0]))

    @on_device
    def sgd_step(self, X: Any, T: Any, lr: float = 0.1) -> None:
        """One gradient-descent step on a batch: ``w <- w - lr dE/dw``, the seed's (10)-(11).

        Parameters
        ----------
        X : array_like
            Inputs ``(B, n_0)``: an array of any supported library, or NumPy.
        T : array_like
            Targets, as :meth:`loss` takes them.
        lr : float
            The learning rate ``eta`` (> 0).

        Examples
        --------
        >>> import numpy as np
        >>> import bpgpu
        >>> net = bpgpu.MLP([2, 3, 2], seed=0)
        >>> X, y = np.array([[0.5, -1.0], [1.0, 2.0]]), np.array([0, 1])
        >>> before = net.loss(X, y)
        >>> net.sgd_step(X, y, lr=0.5)
        >>> net.loss(X, y) < before
        True
        """
        lr = real("lr", lr, 0.0)
        grads = self.gradients(X, T)
        m = self.model
        m.params = self.backend.ops.apply_updates(m.params, [-lr * g for g in grads])

    # ---- training and evaluation -------------------------------------------------

    @on_device
    def classify(self, X: Any, multilabel: bool = False) -> Any:
        """The class of each sample: the argmax of the outputs, or a threshold.

        One output unit is thresholded at the middle of its range (0.5 for a sigmoid).

        Parameters
        ----------
        X : array_like
            Inputs ``(B, n_0)``: an array of any supported library, or NumPy.
        multilabel : bool
            Threshold every output unit: a network that tags each sample with any
            number of labels (sigmoid outputs, the seed's per-unit cross-entropy).

        Returns
        -------
        array
            ``(B,)`` output indices, an array of the backend; where :attr:`classes`
            are set and are not 0..K-1, a NumPy array of those labels. With
            ``multilabel``, ``(B, n_L)`` 0/1 integers.

        Examples
        --------
        >>> import numpy as np
        >>> import bpgpu
        >>> net = bpgpu.MLP([2, 3, 2], backend="numpy", seed=0)
        >>> X = np.array([[0.5, -1.0], [1.0, 2.0]])
        >>> bool((net.classify(X) == net.forward(X).argmax(axis=1)).all())
        True
        >>> tagger = bpgpu.MLP([2, 3, 4], output="sigmoid", seed=0)
        >>> tagger.classify(X, multilabel=True).shape
        (2, 4)
        """
        if type(multilabel) is not bool:
            raise ValueError(f"multilabel must be True or False; got {multilabel!r}")
        yes = self.model.labels(self.forward(X), multilabel)
        if multilabel:
            return self.xp.astype(yes, self.xp.int64)
        if not targets.plain(self.classes):  # the labels the network was fit on
            return targets.decode(self.backend.to_numpy(yes), self.classes)
        return yes

    @on_device
    def evaluate(self, X: Any, y: Any, sample_weight: Any = None) -> dict[str, float]:
        """The loss and accuracy on data.

        Accuracy is NaN where the targets are not classes: one unbounded output, or
        several unbounded ones, identity say, with targets that are not one-hot rows or
        labels. Several separate bounded outputs (sigmoid) whose targets are 0/1 rows
        that are not all one-hot are multi-label: a row is right when every unit is
        (``classify(X, multilabel=True)`` equals its target row; scikit-learn's subset
        accuracy).

        Parameters
        ----------
        X : array_like or str
            Inputs ``(N, n_0)``, also a memory map or a ``.npy`` path (read a chunk at a
            time).
        y : array_like or str
            Targets as :meth:`loss` takes them (class labels of :attr:`classes` too).
        sample_weight : array_like, optional
            One weight >= 0 per sample, as ``fit`` takes them: both numbers become
            weighted means (scikit-learn's ``score(X, y, sample_weight)``).

        Returns
        -------
        dict
            ``{"loss": mean cost, "accuracy": fraction classified right}``.

        Examples
        --------
        >>> import bpgpu
        >>> X, y = bpgpu.datasets.load_digits()
        >>> net = bpgpu.MLP([64, 32, 10], seed=0)
        >>> _ = net.fit(X, y, epochs=5, optimizer="adam", lr=0.01, standardize=True)
        >>> scores = net.evaluate(X, y)
        >>> sorted(scores), scores["accuracy"] > 0.9
        (['accuracy', 'loss'], True)
        """
        X, step = self._rows(X)
        y, _ = self._rows(y, "y") if isinstance(y, (str, os.PathLike)) else (y, None)
        w = None
        if sample_weight is not None:
            if streaming.streamed(sample_weight):  # a .npy path: its array, a memory map
                sample_weight = streaming.open_host(sample_weight, "sample_weight")
            w = sample_weights(sample_weight, _length(X) or 0)
        weigh = dict(weigh_accuracy=True)
        if step is None:
            Xd = self.model.input(X)
            Td = self.model.targets(y, Xd.shape[0])
            wd = None if w is None else self.backend.asarray(w, self.dtype)
            loss, acc = self.model.evaluate(Xd, Td, weights=wd, **weigh)
            return {"loss": loss, "accuracy": acc}
        n, rows = X.shape[0], _length(y)
        if rows != n:  # before the chunks, which would each be off by a different count
            got = "a scalar" if rows is None else f"{rows} rows"
            raise ValueError(
                f"X has {n} samples but the targets have {got}; pass one target per row of X"
            )
        facts = []  # what accuracy means, from all the targets first where they decide it
        if self.model.targets_decide():
            for s in range(0, n, step):
                part = y[s : s + step]
                facts.append(self.model.target_facts(self.model.targets(part, len(part))))
        kind = self.model.kind_from(facts)
        loss = right = 0.0
        for s in range(0, n, step):  # a chunk at a time: sums of chunk means
            Xd = self.model.input(X[s : s + step])
            Td = self.model.targets(y[s : s + step], Xd.shape[0])
            ws = None if w is None else w[s : s + step]
            wd = None if ws is None else self.backend.asarray(ws, self.dtype)
            part, acc = self.model.evaluate(Xd, Td, accuracy=kind, weights=wd, **weigh)
            mass = Xd.shape[0] if ws is None else float(ws.sum())  # chunk means back to sums
            loss += part * mass
            right += 0.0 if mass == 0 else acc * mass
        total = n if w is None else float(w.sum())
        return {"loss": loss / total, "accuracy": right / total}

    def __reduce__(self):
        """Pickles and copies (``copy.copy`` too: an independent network) hold what a model
        file holds, host arrays, and the backend's name: unpickled where that backend
        cannot load (a GPU's network on a laptop), the network runs on NumPy, with a
        warning. Activations and a cost of the user's own travel as the objects."""
        acts, cost = self._by_name()  # bpgpu's by name: the tables' lambdas do not pickle
        own = None if all(isinstance(o, str) for o in [*acts, cost]) else (tuple(acts), cost)
        args = (self._config(self.classes), self.arrays(), self.backend.name, "network", self.init)
        return rebuild, (*args, own)

    def __repr__(self) -> str:
        acts = ", ".join(a.name for a in self.activations)
        return (
            f"MLP({self.sizes}, activations=[{acts}], cost={self.cost.name!r}, "
            f"backend={self.backend.name!r}, dtype={self.dtype!r}"
            + ("" if self.precision is None else f", precision={self.precision!r}")
            + ")"
        )


def _length(a: Any) -> int | None:
    """``len(a)``, or None for what has none (a number, a 0-d array)."""
    try:
        return len(a)
    except TypeError:
        return None


def from_config(cfg: dict, arrays: dict, backend: Any = None, own=None, custom=None) -> MLP:
    """The network a validated model-file config and its arrays describe (``own``: the
    activation objects and cost to use instead of the names, from a pickle; ``custom``:
    the user's objects for the names the config marks as such, from a loader)."""
    acts, cost = io.resolved(cfg, custom) if own is None else (list(own[0]), own[1])
    weights = [arrays[n] for n in param_names(build(cfg["sizes"], acts))]
    try:
        net = MLP._with_weights(
            cfg["sizes"],
            acts[:-1],
            acts[-1],
            cost,
            backend=backend,
            dtype=cfg["dtype"],
            seed=cfg["seed"],
            weights=weights,
        )
    except ValueError as e:
        raise io.ModelFileError(f"the model in this file is not valid: {e}") from None
    if cfg.get("input_scaling"):
        net.set_input_scaling(arrays["x_mean"], arrays["x_scale"])
    net.data_info = cfg.get("data")
    classes = cfg.get("classes", io.recorded_classes(cfg))
    if classes is not None:
        net.classes = classes
    return net


def rebuild(
    cfg: dict, arrays: dict, backend: Any, what: str = "network", init: str = "auto", own=None
):
    """A pickled network (its model-file config and arrays, and ``own`` activation and
    cost objects, if any) on ``backend``, or on NumPy, with a warning that names the
    ``what`` and why, where that backend cannot load here."""
    try:
        backend = get_backend(backend)
    except (BackendUnavailable, ValueError) as e:  # ValueError: a user's own backend
        warnings.warn(
            f"this {what} was pickled on {backend!r}, which cannot load here ({e}); it runs "
            "on numpy instead",
            UserWarning,
            stacklevel=3,
        )
        backend = get_backend("numpy")
    with warnings.catch_warnings():  # the constructor's warnings came when it was built
        warnings.simplefilter("ignore")
        net = from_config(cfg, arrays, backend, own)
    net.init = init
    return net


def load(
    path: str | os.PathLike,
    backend: Any = None,
    max_bytes: int = io.DEFAULT_MAX_BYTES,
    custom: dict[str, Any] | None = None,
):
    """Load a model saved by :meth:`MLP.save` (``.npz`` or ``.safetensors``, told apart by
    their first bytes) or a checkpoint onto ``backend``.

    Parameters
    ----------
    path : str or PathLike
        A model file (``.npz`` or ``.safetensors``) or a checkpoint.
    backend : str, Backend or None
        Where the loaded network runs (None: ``$BPGPU_BACKEND`` or auto).
    max_bytes : int
        Refuse files whose config declares more array bytes than this.
    custom : dict of str to Activation or Cost, optional
        The activations and cost of your own that the model was built with, by their
        names (a file names them and cannot hold code): ``custom={"swish": swish}``.

    Returns
    -------
    MLP
        The saved network, its weights, input scaling and classes, on ``backend``.

    Raises
    ------
    ModelFileError
        The file is not a valid bpgpu model, or names an object of your own that
        ``custom`` does not give; nothing is allocated beyond the bound.
    TypeError
        An object in ``custom`` is not of the kind the file uses it as.

    Examples
    --------
    >>> import os, tempfile
    >>> import bpgpu
    >>> path = os.path.join(tempfile.mkdtemp(), "m.npz")
    >>> bpgpu.MLP([2, 3, 2], backend="numpy", seed=1).save(path)
    >>> bpgpu.load(path, backend="numpy").sizes
    [2, 3, 2]
    """
    path = file_path(path, "model file")
    if path.lower().endswith(safetensors_file.SUFFIX) or safetensors_file.looks_like(path):
        cfg, arrays = safetensors_file.read(path, max_bytes, custom)
    else:
        cfg, arrays = io.read_model(path, max_bytes, custom)
    return from_config(cfg, arrays, backend, custom=custom)
