"""Networks from elsewhere: a torch ``Sequential`` and a fitted scikit-learn MLP.

:func:`from_torch` reads the modules :meth:`bpgpu.MLP.to_torch` writes (and any
Sequential of ``Linear`` layers and the activations bpgpu has); :func:`from_sklearn`
reads ``MLPClassifier`` and ``MLPRegressor``'s fitted ``coefs_`` and ``intercepts_``.
Each gives an :class:`bpgpu.MLP` whose outputs are the source's, to rounding.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from bpgpu.activations import ELU_ALPHA, LEAKY_SLOPE
from bpgpu.network import MLP

__all__ = ["from_torch", "from_sklearn"]


def _torch_activation(module: Any, width: int) -> tuple[str, np.ndarray | None]:
    """bpgpu's name of a torch activation module (and PReLU's slopes, one per unit);
    a ValueError where bpgpu has that function with other constants; ``""`` where bpgpu
    has no such activation."""
    from torch import nn

    from bpgpu import torch_modules as ours

    simple = {
        nn.Sigmoid: "sigmoid",
        nn.Tanh: "tanh",
        nn.ReLU: "relu",
        ours.BinaryStep: "binary_step",
        ours.Arctan: "arctan",
    }
    kind = type(module)
    if kind in simple:
        return simple[kind], None
    constants = {  # bpgpu's entry, the module's constant and bpgpu's value of it
        nn.LeakyReLU: ("leaky_relu", "negative_slope", LEAKY_SLOPE),
        nn.ELU: ("elu", "alpha", ELU_ALPHA),
        nn.Softplus: ("softplus", "beta", 1),
    }
    if kind in constants:
        name, attr, value = constants[kind]
        if getattr(module, attr) != value:
            raise ValueError(
                f"bpgpu's {name} has {attr}={value}, a constant of its table; only that "
                "one converts"
                + (" (nn.PReLU learns a slope of its own)" if name == "leaky_relu" else "")
            )
        if kind is nn.Softplus and module.threshold < 20:  # linear past it: not ln(1 + e^x)
            raise ValueError("bpgpu's softplus has no threshold (linear past it)")
        return name, None
    if kind is nn.Softmax:
        if module.dim not in (1, -1):
            raise ValueError("bpgpu's softmax runs over the outputs, dim=-1")
        return "softmax", None
    if kind is nn.PReLU:
        if module.weight.numel() not in (1, width):
            raise ValueError(f"{module.weight.numel()} slopes after a layer of {width} units")
        a = module.weight.detach().cpu().double().numpy()
        return "prelu", np.broadcast_to(a, (width,)).copy()
    return "", None


def _flat(module: Any) -> list:
    """The modules of a Sequential, nested Sequentials opened, ``Identity`` and dropout
    (which pass inputs through when predicting) left out; a lone Linear as one."""
    from torch import nn

    if isinstance(module, nn.Sequential):
        return [m for child in module for m in _flat(child)]
    if type(module) is nn.Identity:
        return []
    if isinstance(module, _dropout()):
        warnings.warn(
            f"{type(module).__name__} is left out: bpgpu has no dropout (it passes inputs "
            "through when predicting, so the outputs are the module's); a fit of the "
            "converted network trains without it",
            UserWarning,
            stacklevel=4,
        )
        return []
    return [module]


def _dropout() -> tuple:
    """torch's dropout modules: each passes its input through in eval mode."""
    from torch import nn

    return (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)


def _name(module: Any) -> str:
    """A module as a message shows it: its one-line repr, or its class's name."""
    text = repr(module)
    return text if "\n" not in text and len(text) <= 80 else type(module).__name__


def _unsupported(module: Any, i: int, why: str = "bpgpu has no such layer") -> ValueError:
    return ValueError(
        f"module {i} ({_name(module)}): {why}. from_torch takes Linear layers, each "
        "followed by at most one of Sigmoid, Tanh, ReLU, LeakyReLU(0.01), PReLU, "
        "ELU(alpha=1.0), Softplus(beta=1), Softmax(dim=-1) (last only), and bpgpu's "
        "Standardize (first), BinaryStep, Arctan; Identity and Dropout are left out"
    )


def from_torch(
    module: Any,
    cost: str | None = None,
    backend: Any = None,
    seed: int = 0,
    output: str | None = None,
) -> MLP:
    """An :class:`bpgpu.MLP` with the layers and weights of a torch ``Sequential``.

    Parameters
    ----------
    module : torch.nn.Sequential or torch.nn.Linear
        ``Linear`` layers, each followed by at most one supported activation module (none:
        identity); bpgpu's ``Standardize`` may come first (the input scaling), as
        :meth:`bpgpu.MLP.to_torch` writes it. Nested Sequentials are opened; ``Identity``
        and dropout modules are left out (dropout with a warning: bpgpu has none). Weights
        in float32 or float64 (the network's dtype), on any device.
    cost : str or None
        The network's cost (None: the natural one for its output activation).
    backend : str, Backend or None
        Where the network runs.
    seed : int
        The network's seed (its later shuffles; the weights are the module's).
    output : str or None
        An output activation to put after a module that ends in a ``Linear`` layer: a
        classifier trained on raw scores (``CrossEntropyLoss``: ``"softmax"``;
        ``BCEWithLogitsLoss``: ``"sigmoid"``), whose probabilities bpgpu then gives.
        None: as the module ends.

    Returns
    -------
    MLP
        Its ``predict`` equals ``module(x)`` to rounding (after ``output``, if given).

    Raises
    ------
    TypeError
        ``module`` is not a ``Sequential`` or a ``Linear`` (a ``torch.export`` program's
        module, a ``ModuleList``, a class of your own).
    ValueError
        The first module bpgpu has no counterpart for, named with its position; widths
        that do not chain; a dtype other than float32 and float64; ``output`` after a
        module that has an output activation.

    Examples
    --------
    >>> import torch
    >>> import bpgpu
    >>> seq = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    >>> net = bpgpu.from_torch(seq, output="softmax", backend="numpy")
    >>> net.sizes, [a.name for a in net.activations]
    ([3, 5, 2], ['tanh', 'softmax'])
    """
    from torch import nn

    from bpgpu.torch_modules import Standardize

    if not isinstance(module, (nn.Sequential, nn.Linear)):
        raise TypeError(
            f"from_torch takes a torch.nn.Sequential (or one Linear); got "
            f"{type(module).__name__}. A file? Load the module it holds first; a "
            "torch.export program cannot be converted: convert the module it came from"
        )
    mods = _flat(module)
    scaling, weights, acts, sizes = None, [], [], []
    i = 0
    if mods and isinstance(mods[0], Standardize):
        scaling = (mods[0].mean, mods[0].scale)
        i = 1
    while i < len(mods):
        lin = mods[i]
        if type(lin) is not nn.Linear:
            if not sizes:
                raise _unsupported(lin, i, "a bpgpu network starts with a Linear layer")
            raise _unsupported(lin, i, "a Linear layer is due here: one activation per layer")
        if sizes and lin.in_features != sizes[-1]:
            raise ValueError(
                f"module {i} ({_name(lin)}) takes {lin.in_features} inputs, the layer "
                f"before gives {sizes[-1]}"
            )
        sizes = sizes or [lin.in_features]
        sizes.append(lin.out_features)
        W = lin.weight.detach().cpu()
        b = lin.bias.detach().cpu() if lin.bias is not None else W.new_zeros(lin.out_features)
        weights += [W, b]
        name, a = "identity", None
        if i + 1 < len(mods) and type(mods[i + 1]) is not nn.Linear:
            try:
                name, a = _torch_activation(mods[i + 1], lin.out_features)
            except ValueError as e:
                raise ValueError(f"module {i + 1} ({_name(mods[i + 1])}): {e}") from None
            if not name:
                raise _unsupported(mods[i + 1], i + 1)
            i += 1
        if name == "softmax" and i + 1 < len(mods):
            raise _unsupported(mods[i], i, "softmax belongs on the output layer only")
        acts.append(name)
        if a is not None:
            weights.append(a)
        i += 1
    if not sizes:
        raise ValueError("the module holds no Linear layer: nothing to convert")
    if output is not None:
        if type(mods[-1]) is not nn.Linear:
            raise ValueError(
                f"output={output!r}: the module ends in {_name(mods[-1])}, an output "
                "activation already; output= is for a module that ends in a Linear layer"
            )
        acts[-1] = output
    dtype = str(weights[0].dtype).removeprefix("torch.")
    if dtype not in ("float32", "float64"):
        raise ValueError(
            f"the Linear weights are {dtype}; bpgpu networks are float32 or float64: convert "
            "the module first (module.float())"
        )
    host = [np.asarray(w.numpy() if hasattr(w, "numpy") else w, dtype=dtype) for w in weights]
    net = _network(sizes, acts, cost, backend, dtype, seed, host)
    if scaling is not None:
        net.set_input_scaling(*(t.detach().cpu().double().numpy() for t in scaling))
    return net


def _network(sizes, acts, cost, backend, dtype, seed, weights) -> MLP:
    """The MLP of converted layers (a hidden binary step's warning was the source's)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MLP._with_weights(
            sizes, acts[:-1], acts[-1], cost, backend, dtype, seed, weights=list(weights)
        )


# scikit-learn's activation names -> bpgpu's
_SKLEARN_ACTIVATIONS = {
    "identity": "identity",
    "logistic": "sigmoid",
    "tanh": "tanh",
    "relu": "relu",
    "softmax": "softmax",
}


def from_sklearn(estimator: Any, backend: Any = None, dtype: str | None = None) -> MLP:
    """An :class:`bpgpu.MLP` with the layers and weights of a fitted scikit-learn MLP.

    Parameters
    ----------
    estimator : sklearn.neural_network.MLPClassifier or MLPRegressor
        Fitted (``coefs_`` and ``intercepts_`` set).
    backend : str, Backend or None
        Where the network runs.
    dtype : {"float32", "float64"} or None
        None: the dtype of the estimator's weights.

    Returns
    -------
    MLP
        ``predict`` gives the estimator's ``predict_proba`` for a multi-class classifier
        (one column of the positive class for two classes, one per label for multilabel),
        its ``predict`` for a regressor (as a column); ``classify`` gives its ``predict``
        (``classes`` are the classifier's ``classes_``). The cost is the estimator's
        loss: categorical cross-entropy (softmax), cross-entropy (logistic), quadratic
        (regressor).

    Raises
    ------
    TypeError
        Not an MLPClassifier or MLPRegressor.
    ValueError
        Not fitted, or an activation bpgpu has not.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from sklearn.neural_network import MLPClassifier
    >>> import bpgpu
    >>> X, y = np.random.default_rng(0).normal(size=(30, 4)), np.arange(30) % 3
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")  # a short fit does not converge
    ...     mlp = MLPClassifier(hidden_layer_sizes=(6,), max_iter=5, random_state=0).fit(X, y)
    >>> net = bpgpu.from_sklearn(mlp, backend="numpy")
    >>> bool((bpgpu.to_numpy(net.classify(X)) == mlp.predict(X)).all())
    True
    """
    kind = next((c.__name__ for c in type(estimator).__mro__ if c.__name__ in _SK_KINDS), None)
    if kind is None:
        raise TypeError(
            f"from_sklearn takes a fitted MLPClassifier or MLPRegressor; got "
            f"{type(estimator).__name__}" + _HINTS.get(type(estimator).__name__, "")
        )
    if not hasattr(estimator, "coefs_"):
        raise ValueError(f"this {kind} is not fitted yet: fit it first")
    if getattr(estimator, "loss", "") == "poisson":
        raise ValueError(
            "MLPRegressor(loss='poisson') predicts exp of its last layer, an output bpgpu "
            "has not (its regression is the squared error of an identity output)"
        )
    hidden = _SKLEARN_ACTIVATIONS.get(estimator.activation)
    out = _SKLEARN_ACTIVATIONS.get(estimator.out_activation_)
    if hidden is None or out is None:
        bad = estimator.activation if hidden is None else estimator.out_activation_
        raise ValueError(f"activation {bad!r}: bpgpu has {', '.join(_SKLEARN_ACTIVATIONS)}")
    dtype = dtype or str(np.asarray(estimator.coefs_[0]).dtype)
    weights = []
    for W, b in zip(estimator.coefs_, estimator.intercepts_):
        weights += [np.asarray(W).T, np.asarray(b)]  # coefs_ are (n_in, n_out): W^T
    sizes = [weights[0].shape[1], *(w.shape[0] for w in weights[::2])]
    cost = {"softmax": "categorical_cross_entropy", "sigmoid": "cross_entropy"}.get(
        out, "quadratic"
    )
    acts = [hidden] * (len(sizes) - 2) + [out]
    net = _network(sizes, acts, cost, backend, dtype, 0, [w.astype(dtype) for w in weights])
    classes = getattr(estimator, "classes_", None)
    if kind == "MLPClassifier" and _single_label(estimator):
        net.classes = np.asarray(classes)
    return net


_SK_KINDS = ("MLPClassifier", "MLPRegressor")
_HINTS = {
    "Pipeline": ". A Pipeline: convert its MLP, from_sklearn(pipe[-1]), and give the network "
    "a StandardScaler before it as net.set_input_scaling(scaler.mean_, scaler.scale_)",
    "BPClassifier": " (bpgpu's own already: pickle it, as scikit-learn's models are)",
    "BPRegressor": " (bpgpu's own already: pickle it, as scikit-learn's models are)",
}


def _single_label(estimator: Any) -> bool:
    """Whether a classifier predicts one class per sample (not a 0/1 row per label)."""
    binarizer = getattr(estimator, "_label_binarizer", None)
    return getattr(binarizer, "y_type_", "") != "multilabel-indicator"
