"""The multi-layer network of the seed, batched, written once against the Array API.

Rows are samples. Layer ``l`` has weights ``W`` of shape ``(n_l, n_{l-1})`` and bias
``b`` of shape ``(n_l,)``; PReLU layers add a slope ``a`` of shape ``(n_l,)``.
Equation numbers refer to the seed (see DESIGN.md section 1).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from bpgpu import activations as _acts
from bpgpu import costs as _costs
from bpgpu._host import host_copy, init_weights
from bpgpu.backends import Backend, get_backend
from bpgpu.inputs import InputChecks
from bpgpu.io import param_shapes
from bpgpu.steps import TrainingSteps

DTYPES = ("float32", "float64")
F = TypeVar("F", bound=Callable[..., Any])


def on_device(method: F) -> F:
    """Run a public method inside its backend's device context (CuPy on device N > 0),
    turning the library's out-of-memory error into :class:`DeviceMemoryError`."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self.backend.context():
            try:
                return method(self, *args, **kwargs)
            except Exception as e:  # device out of memory becomes a DeviceMemoryError,
                # built while the device is still current (its pool, not device 0's)
                clear = self.backend.translate(e)
                if clear is None:
                    raise
                raise clear from e

    return wrapper  # type: ignore[return-value]


_DEFAULT_COST = {"softmax": "categorical_cross_entropy", "sigmoid": "cross_entropy"}


class MLP(InputChecks, TrainingSteps):
    """A fully connected network trained by backpropagation.

    Parameters
    ----------
    sizes : sequence of int
        ``[n_0, n_1, ..., n_L]``: inputs, each hidden layer, outputs.
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
    seed : int or None
        Seed of the host ``numpy.random.Generator`` that draws the initial weights.
    """

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
        _weights: Sequence[Any] | None = None,
    ):
        sizes = list(sizes)
        if len(sizes) < 2 or not all(
            isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in sizes
        ):
            raise ValueError(
                f"sizes must list at least 2 positive integers [n_inputs, ..., n_outputs]; "
                f"got {sizes!r}"
            )
        n_hidden = len(sizes) - 2
        names = [hidden] * n_hidden if isinstance(hidden, str) else list(hidden)
        if len(names) != n_hidden:
            raise ValueError(
                f"hidden lists {len(names)} activations but sizes has {n_hidden} hidden layers"
            )
        acts = [_acts.get(n) for n in names] + [_acts.get(output)]
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
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be 'float32' or 'float64'; got {dtype!r}")
        if seed is not None and (type(seed) is not int or seed < 0):
            raise ValueError(f"seed must be a non-negative integer or None; got {seed!r}")
        self.backend = get_backend(backend)
        self.backend.dtype(dtype)  # refuses a dtype the device lacks (float64 on MPS)
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
        self.dtype = dtype
        self.seed = seed
        self.xp = self.backend.xp  # resolved once per network, never per op
        # per layer: (l, activation, index of its W in the flat [W, b, (a), ...] list)
        self._plan: list[tuple[int, Any, int]] = []
        i = 0
        for l, act in enumerate(acts):
            self._plan.append((l, act, i))
            i += 3 if act.has_param else 2
        self._params: list[Any] = []
        self.input_scaling: tuple[Any, Any] | None = None
        self._scaling: tuple[Any, Any] | None = None
        self.set_weights(init_weights(sizes, acts, seed) if _weights is None else _weights)

    # ---- weights ---------------------------------------------------------------------

    def _shapes(self) -> list[tuple[int, ...]]:
        return list(param_shapes(self.sizes, [a.name for a in self.activations]).values())

    def get_weights(self) -> list:
        """Host NumPy copies ``[W1, b1, (a1), W2, b2, ...]``."""
        return [self.backend.to_numpy(p) for p in self._params]

    @on_device
    def set_weights(self, weights: Sequence[Any]) -> None:
        """Copy ``weights`` (same order and shapes as :meth:`get_weights`) into the network.

        Arrays of any supported library are accepted and cast to the network's dtype.
        Nothing is changed when any of them is refused.
        """
        shapes = self._shapes()
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
        self._params = [self.backend.asarray(a, self.dtype) for a in host]

    def to(self, backend: str | Backend, dtype: str | None = None) -> MLP:
        """A copy of this network on another backend (and dtype), with identical weights."""
        net = object.__new__(MLP)
        net.__dict__.update(self.__dict__)
        net.backend = get_backend(backend)
        net.dtype = dtype or self.dtype
        net.backend.dtype(net.dtype)
        net.xp = net.backend.xp
        net.set_weights(self.get_weights())
        if self.input_scaling is not None:
            net.set_input_scaling(*self.input_scaling)
        return net

    @on_device
    def set_input_scaling(self, mean: Any, scale: Any) -> None:
        """Standardise every input as ``(X - mean) / scale`` (shapes ``(n_0,)``) from now on.

        Saved with the model, so a loaded network takes raw inputs. ``None`` for both
        switches it off.
        """
        if mean is None and scale is None:
            self.input_scaling = self._scaling = None
            return
        n0 = self.sizes[0]
        m = host_copy(mean, self.dtype, "mean")
        s = host_copy(scale, self.dtype, "scale")
        if m.shape != (n0,) or s.shape != (n0,):
            raise ValueError(f"mean and scale must have shape ({n0},); got {m.shape}, {s.shape}")
        if not (bool(abs(m).max() < math.inf) and bool(s.min() > 0) and bool(s.max() < math.inf)):
            raise ValueError("mean must be finite and scale finite and > 0")
        self.input_scaling = (m, s)
        self._scaling = (self.backend.asarray(m, self.dtype), self.backend.asarray(s, self.dtype))

    # ---- the math --------------------------------------------------------------------

    def _layer(self, params: list, l: int) -> tuple[Any, Any, Any]:
        """``W``, ``b`` and the activation parameter (or None) of layer ``l`` (0-based)."""
        i = self._plan[l][2]
        return params[i], params[i + 1], params[i + 2] if self.activations[l].has_param else None

    def _forward(
        self, params: list, Y: Any, last: bool = True, paths: dict | None = None
    ) -> tuple[list, list]:
        """Weighted inputs ``Xs[l]`` and outputs ``Ys[l]`` (``Ys[0]`` is the input).

        ``last=False`` stops before the output activation (the caller fuses it with the
        cost): ``Ys`` then has one entry fewer. ``paths``: the backend's fast paths, when
        the caller looked them up already.
        """
        xp = self.xp
        paths = self.backend.fast_paths() if paths is None else paths
        fused = paths.get("bias_act")  # one launch for + b and f on CuPy
        n = len(self._plan) if last else len(self._plan) - 1  # layers with f applied here
        Xs, Ys = [], [Y]
        for l, act, i in self._plan:
            b = params[i + 1]
            a = params[i + 2] if act.has_param else None
            XW = Y @ params[i].T
            if fused is not None and l < n:
                out = fused(XW, b, act, a)
                if out is not None:
                    X, Y = out
                    Xs.append(X)
                    Ys.append(Y)
                    continue
            XW += b  # (1), in place: the product is a fresh array, and a large
            Xs.append(XW)  # temporary costs page faults on the CPU and memory on the GPU
            if l < n:
                Y = act.f(xp, XW, a)
                Ys.append(Y)
        return Xs, Ys

    def _loss(self, params: list, X: Any, T: Any) -> Any:
        """Batch-mean cost as a 0-d backend array (no host sync)."""
        Xs, Ys = self._forward(params, X)
        return self.xp.mean(self.cost.per_sample(self.xp, self.activations[-1], Xs[-1], Ys[-1], T))

    def _backward(
        self,
        params: list,
        Xs: list,
        Ys: list,
        T: Any,
        scale: float = 1.0,
        D: Any = None,
        update: Any = None,
        update_bias: Any = None,
        paths: dict | None = None,
    ) -> tuple[list, list]:
        """Gradients of ``scale * (sum of per-sample costs)`` in parameter order, and the
        neuron errors ``D^l`` times ``scale`` per layer.

        ``scale=1/B`` gives the gradients of the batch mean (scaling the output error once
        is cheaper than dividing every gradient); ``scale=1`` the per-sample errors of
        eq. (7)-(9). ``D`` is the output error when the caller computed it already.
        ``update(D, Y, W) -> bool`` (prescaled SGD's ``sgd_gemm`` fast path) may apply
        ``W -= D^T Y`` itself, after ``W`` has served the recursion, and
        ``update_bias(D, b) -> bool`` (``sgd_bias``) ``b -= sum(D)``; such a gradient is
        then None (already applied).
        """
        xp, L = self.xp, len(self._plan)
        paths = self.backend.fast_paths() if paths is None else paths
        fused = paths.get("act_vjp")
        grads: list[Any] = [None] * len(params)
        deltas: list[Any] = [None] * L
        # output error (9); a learnable output activation needs dE/dY for its parameter
        G = None
        if self.activations[-1].has_param:
            G = self.cost.dE_dY(xp, Ys[L], T)
            G = G if scale == 1 else G * scale
        elif D is None:
            D = self.cost.delta(xp, self.activations[-1], Xs[-1], Ys[L], T)
            D = D if scale == 1 else D * scale
        for l, act, i in reversed(self._plan):
            a = params[i + 2] if act.has_param else None
            if G is not None:  # G = dE/dY^l, from the cost or from layer l+1
                D = None if fused is None else fused(Xs[l], Ys[l + 1], G, act, a)
                if D is None:
                    D = act.vjp(xp, Xs[l], Ys[l + 1], G, a)  # (8)
            deltas[l] = D
            if a is not None:
                grads[i + 2] = xp.sum(G * act.dparam(xp, Xs[l], Ys[l + 1], a), axis=0)
            if update_bias is None or not update_bias(D, params[i + 1]):
                grads[i + 1] = xp.sum(D, axis=0)  # (11)
            W = params[i]
            if l > 0:
                G = D @ W  # dE/dY^{l-1}, the sum in (8), before W changes
            if update is None or not update(D, Ys[l], W):
                grads[i] = D.T @ Ys[l]  # (10)
        return grads, deltas

    # ---- public API ------------------------------------------------------------------

    @on_device
    def forward(self, X: Any) -> Any:
        """Network outputs ``Y^L``, shape ``(B, n_L)``, as a backend array."""
        return self._forward(self._params, self._input(X))[1][-1]

    predict = forward

    @on_device
    def loss(self, X: Any, T: Any) -> float:
        """Batch-mean cost of section 1 as a Python float.

        ``T`` is ``(B, n_L)`` targets, ``(B,)`` for one output, or integer class labels
        ``(B,)`` with categorical_cross_entropy (whose ``(B, n_L)`` targets must be
        probability rows: >= 0, summing to 1).
        """
        Xb = self._input(X)
        return float(self._loss(self._params, Xb, self._targets(T, Xb.shape[0])))

    @on_device
    def gradients(self, X: Any, T: Any) -> list:
        """``d loss / d parameter`` for every parameter, in :meth:`get_weights` order."""
        Xb = self._input(X)
        Xs, Ys = self._forward(self._params, Xb)
        T = self._targets(T, Xb.shape[0])
        return self._backward(self._params, Xs, Ys, T, scale=1 / Xb.shape[0])[0]

    @on_device
    def deltas(self, X: Any, T: Any) -> list:
        """Per-sample neuron errors ``D^l = dE/dX^l``, shape ``(B, n_l)``, l = 1..L; (7)-(9)."""
        Xb = self._input(X)
        Xs, Ys = self._forward(self._params, Xb)
        return self._backward(self._params, Xs, Ys, self._targets(T, Xb.shape[0]))[1]

    @on_device
    def sgd_step(self, X: Any, T: Any, lr: float = 0.1) -> None:
        """One gradient-descent step on the batch: ``w <- w - lr dE/dw``, eq. (10)-(11)."""
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"lr must be a positive finite number; got {lr!r}")
        grads = self.gradients(X, T)
        for p, g in zip(self._params, grads):
            p -= lr * g

    def _snapshot(self, arrays: list) -> list:
        """Device copies of ``arrays`` (parameters or optimizer state), which are updated
        in place."""
        return [self.xp.asarray(a, copy=True) for a in arrays]

    # ---- training and evaluation -------------------------------------------------

    @on_device
    def classify(self, X: Any) -> Any:
        """Class labels ``(B,)``: argmax of the outputs, or for one output unit a threshold
        at the middle of its range (0.5 for a sigmoid)."""
        return self._labels(self.forward(X))

    @on_device
    def evaluate(self, X: Any, y: Any) -> dict[str, float]:
        """``{"loss": mean cost, "accuracy": fraction classified right}`` (accuracy is NaN
        for one unbounded output, where classes are not defined)."""
        Xd = self._input(X)
        loss, acc = self._evaluate_device(Xd, self._targets(y, Xd.shape[0]))
        return {"loss": loss, "accuracy": acc}

    @on_device
    def fit(self, X: Any, y: Any, epochs: int = 10, **kwargs: Any):
        """Train by mini-batch gradient descent; returns a :class:`bpgpu.History`.

        Parameters
        ----------
        X, y : arrays
            Training inputs ``(N, n_0)`` and targets (as :meth:`loss` takes them).
        epochs : int
            Train until this many epochs are done (counting a resumed checkpoint's).
        batch_size : int, default 32
        optimizer : str, dict or Optimizer, default "sgd"
            ``"sgd"``, ``"momentum"``, ``"nesterov"``, ``"adam"``, or an object such as
            ``bpgpu.optimizers.Adam(lr=1e-3)``.
        lr : float, optional
            Learning rate (default 0.1, Adam 0.001).
        weight_decay : float, default 0
            L2 coefficient on the weight matrices.
        validation_data : (X_val, y_val), optional
        validation_split : float, default 0
            Hold out this fraction of ``(X, y)`` (a seeded random subset) for validation.
        shuffle : bool, default True
            Draw a new batch order each epoch from the host generator.
        patience : int, optional
            Early stopping: stop after this many epochs without improvement of the
            validation loss (the training loss without validation data).
        min_delta : float, default 0
            Smallest decrease that counts as an improvement.
        restore_best : bool, default True
            With ``patience``, end with the weights of the best epoch.
        callbacks : sequence of Callback
        checkpoint : path, optional
            Save weights, optimizer state, RNG state and history after every epoch.
        resume : path, optional
            Continue from a checkpoint; the result equals an uninterrupted run on the
            same backend.
        seed : int, optional
            Seed of the shuffling and of the validation split (default: the network's).
        detect_anomaly : bool, default False
            Check every layer's values and gradients each batch (a sync per tensor, so
            slow) and stop naming the first that is not finite.
        train_metrics : bool, default True
            Compute the training loss and accuracy of every batch (a few small array
            operations per step, summed on the device and read once per epoch).
            False skips them for speed: ``history.loss`` and ``history.accuracy`` are
            NaN, early stopping needs validation data, and divergence is found from
            the weights at the end of the epoch (the epoch's start is restored).
        handle_interrupt : bool, default True
            The first Ctrl-C stops training after the current batch (weights
            consistent, ``history.interrupted`` set, a checkpoint written when
            ``checkpoint`` is given); a second one aborts at once.

        Raises
        ------
        FloatingPointError
            The loss became NaN or inf; the message names the epoch and batch, and the
            weights are those of the last batch whose loss was finite.
        DeviceMemoryError
            The GPU ran out of memory; lower ``batch_size``.
        """
        from bpgpu.training import fit

        return fit(self, X, y, epochs, **kwargs)

    def save(self, path: Any) -> None:
        """Save architecture, weights and input scaling to ``path`` (.npz), atomically."""
        from bpgpu.io import save

        save(self, path)

    def __repr__(self) -> str:
        acts = ", ".join(a.name for a in self.activations)
        return (
            f"MLP({self.sizes}, activations=[{acts}], cost={self.cost.name!r}, "
            f"backend={self.backend.name!r}, dtype={self.dtype!r})"
        )
