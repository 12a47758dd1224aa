"""The math of section 1 as functions of (parameters, batch): forward, the backward
recursion, gradients and one training step.

Everything here returns new arrays or what ``ops`` (the backend's operations) returns;
nothing writes into an array it was given. So an immutable library (JAX) runs it as it
is, and a mutable one speeds it up inside ``ops`` only (in-place bias, ReLU and
updates). Equation numbers are the seed's. ``params`` is the flat list
``[W1, b1, (a1), W2, ...]`` that :mod:`bpgpu.layers` lays out; rows are samples.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from bpgpu.layers import Dense
from bpgpu.precision import next_scaler


def forward(ops, layers: Sequence[Dense], params: Sequence[Any], Y: Any, last: bool = True):
    """Weighted inputs ``Xs[l]`` (1) and outputs ``Ys[l]`` (``Ys[0]`` is the input).

    ``last=False`` stops before the output activation (the caller fuses it with the
    cost): ``Ys`` then has one entry fewer.
    """
    Xs, Ys = [], [Y]
    top = layers[-1]
    for layer in layers:
        X, Y = layer.forward(ops, params, Y, last or layer is not top)
        Xs.append(X)
        if Y is not None:
            Ys.append(Y)
    return Xs, Ys


def mixed_forward(ops, layers, params, X, precision):
    """Forward (1) in ``precision``'s compute type, stopped before the output
    activation: ``(P, Xs, Ys, XL)``, the weights cast down, every layer's weighted
    inputs and the hidden layers' outputs in the compute type, and the output layer's
    weighted input cast back to float32 (for its activation and the cost)."""
    xp, low = ops.xp, precision.compute
    P = [xp.astype(p, low) for p in params]
    Xs, Ys = forward(ops, layers, P, xp.astype(X, low), last=False)
    return P, Xs, Ys, xp.astype(Xs[-1], precision.master)


def top_output(ops, layers, params, XL):
    """``Y^L = f(X^L)`` of the output layer, with its own parameter if it has one."""
    top = layers[-1]
    a = params[top.offset + 2] if top.has_param else None
    return top.activation.f(ops.xp, XL, a)


def outputs(ops, layers, params, X, precision=None):
    """``Y^L`` of a batch; with a narrower ``precision``, the products and hidden
    activations in its compute type and the output activation in float32, as a
    training step runs them (:func:`mixed_step`)."""
    if precision is None or not precision.reduced:
        return forward(ops, layers, params, X)[1][-1]
    return top_output(ops, layers, params, mixed_forward(ops, layers, params, X, precision)[3])


def backprop(
    ops, layers: Sequence[Dense], params: Sequence[Any], Xs: list, Ys: list, D: Any, G: Any
) -> Iterator[tuple[Dense, Any, Any]]:
    """Yield ``(layer, D^l, G^l)`` from the output layer down: the recursion (8).

    Start from the output error ``D`` (9), or, for a learnable output activation, from
    ``G = dE/dY^L`` (then ``D^L`` is made here). ``G^l = dE/dY^l`` is what a learnable
    activation's gradient needs (None where ``D^l`` came from the cost). The product
    ``D^l W^l`` that the next layer down needs is taken *before* the yield, so the
    caller may update ``W^l`` as soon as it has the layer's error.
    """
    for layer in reversed(layers):
        l, i = layer.index - 1, layer.offset
        G_l = G
        if G is not None:
            a = params[i + 2] if layer.has_param else None
            D = ops.act_vjp(Xs[l], Ys[l + 1], G, layer.activation, a)  # (8)
        G = D @ params[i] if l > 0 else None  # dE/dY^{l-1}, the sum in (8), with W^l
        yield layer, D, G_l


def gradients(ops, layers, params, Xs: list, Ys: list, D: Any, G: Any) -> tuple[list, list]:
    """Gradients in parameter order (10)-(11) and the neuron errors ``D^l`` per layer,
    both in the scale of the output error they start from."""
    grads: list[Any] = [None] * len(params)
    deltas: list[Any] = [None] * len(layers)
    for layer, D_l, G_l in backprop(ops, layers, params, Xs, Ys, D, G):
        l = layer.index - 1
        deltas[l] = D_l
        a = layer.unpack(params)[2]
        grads[layer.offset : layer.stop] = layer.gradients(
            ops.xp, D_l, Ys[l], G_l, Xs[l], Ys[l + 1], a
        )
    return grads, deltas


def output(
    ops, layers, cost, params, Xs: list, T: Any, scale: float, loss: bool, weights=None, rows=None
):
    """Output ``Y^L``, the summed cost (None unless ``loss``), and ``scale`` times the
    output error ``D`` (9), or for a learnable output activation ``G = dE/dY``.

    ``weights``: each row's share of its batch's total sample weight (``sample_weight``
    over the batch's sum, :func:`bpgpu.sample_weights.batch_shares`; data-parallel, of the
    global batch): each row's error is multiplied by it, in the place of ``1/B`` (pass
    ``scale`` without it), and the cost is ``rows`` (the global batch's, default this
    batch's) times the weighted mean, so that summed over batches (and ranks) and
    divided by the rows it is the weighted loss."""
    top = layers[-1]
    a = params[top.offset + 2] if top.has_param else None
    if weights is None:
        return cost.train_output(ops, top.activation, Xs[-1], T, a, loss, scale)
    xp = ops.xp
    Y, _, D, G = cost.train_output(ops, top.activation, Xs[-1], T, a, False, scale)
    col = xp.reshape(weights, (-1, 1))
    E = None
    if loss:
        per_row = cost.per_sample(xp, top.activation, Xs[-1], Y, T)
        E = (Xs[-1].shape[0] if rows is None else rows) * xp.sum(weights * per_row)
    return Y, E, None if D is None else D * col, None if G is None else G * col


def errors(ops, layers, cost, params, X: Any, T: Any, scale: float, precision=None):
    """Forward and backward on a batch: ``(grads, deltas)`` of ``scale`` times the
    summed cost (``scale = 1/B``: the batch mean; 1: the per-sample errors (7)-(9));
    with a narrower ``precision``, computed as its steps compute them, in float32."""
    if precision is not None and precision.reduced:
        # float16: scaled, or its small errors would underflow
        S = "auto" if precision.scaled else None
        return mixed_backward(ops, layers, cost, params, X, T, scale, precision, loss_scale=S)[:2]
    return backward(ops, layers, cost, params, X, T, scale)[:2]


def backward(
    ops,
    layers,
    cost,
    params,
    X: Any,
    T: Any,
    scale: float,
    loss: bool = False,
    weights=None,
    rows=None,
):
    """:func:`errors`, with the batch's summed cost (None unless ``loss``) and outputs:
    ``(grads, deltas, E, Y)``; ``weights`` and ``rows`` as :func:`output` takes them."""
    Xs, Ys = forward(ops, layers, params, X, last=False)
    Y, E, D, G = output(ops, layers, cost, params, Xs, T, scale, loss, weights, rows)
    return (*gradients(ops, layers, params, Xs, Ys + [Y], D, G), E, Y)


def sgd_lr(opt) -> float | None:
    """Plain SGD's learning rate when the step may fold it into the output error: only
    for the exact built-in SGD (a subclass's own ``update`` must run) without weight
    decay (which adds ``wd * W`` to the unscaled gradient)."""
    return opt.lr if opt.fused_rule() == "sgd" and not opt.weight_decay else None


def train_step(
    ops,
    layers,
    cost,
    params: list,
    Xb: Any,
    Tb: Any,
    opt,
    state: dict,
    loss: bool = True,
    check: Callable[[list, list, Any, list], None] | None = None,
    reduce: Callable[[list], list] | None = None,
    rows: int | None = None,
    weights: Any = None,
    precision=None,
):
    """One optimizer step on a device batch: ``(params, state, E, Y)``, ``E`` the batch's
    summed cost (None unless ``loss``) and ``Y`` its outputs, both left on the device.

    Plain built-in SGD folds ``lr / B`` into the output error and updates each layer as
    soon as its error is known (``W - D^T Y``: one GEMM with ``beta = 1`` on CuPy and
    torch), so one weight gradient at a time exists. Any other optimizer gets the
    gradients and runs through ``ops.optimizer_step``. ``check(Xs, Ys, E, grads)`` runs
    before anything changes (anomaly mode; it also turns the prescaled path off).

    Data-parallel training: ``Xb`` is this rank's share of a global batch of ``rows``
    rows (the gradients are of the global mean), and ``reduce(grads)`` sums them over
    the ranks before the optimizer step (the prescaled path is off). ``weights``: each
    row's share of the (global) batch's sample weight, as :func:`output` takes them.
    A learning-rate schedule gives the rate of this step from ``state["t"]``
    (:meth:`bpgpu.optimizers.Optimizer.at`), a traced count inside a compiled program.
    ``precision``: a :class:`bpgpu.precision.Precision` with a narrower compute type
    runs :func:`mixed_step` instead.
    """
    if precision is not None and precision.reduced:
        return mixed_step(
            ops,
            layers,
            cost,
            params,
            Xb,
            Tb,
            opt,
            state,
            precision,
            loss,
            check,
            reduce,
            rows,
            weights,
        )
    opt = opt.at(state["t"], params[0].dtype)  # a schedule's rate for this step
    lr = None if check is not None else sgd_lr(opt)
    rows = Xb.shape[0] if rows is None else rows
    if reduce is not None and lr is not None:
        # data-parallel plain SGD: -lr/B in the output error makes the gradients the
        # updates themselves; each layer's are summed over the ranks as soon as they
        # exist (while they are still in cache) and added to its weights
        Xs, Ys = forward(ops, layers, params, Xb, last=False)
        scale = -lr / rows if weights is None else -lr
        Y, E, D, G = output(ops, layers, cost, params, Xs, Tb, scale, loss, weights, rows)
        Ys.append(Y)
        new = list(params)
        for layer, D_l, G_l in backprop(ops, layers, params, Xs, Ys, D, G):
            l, i, j = layer.index - 1, layer.offset, layer.stop
            a = layer.unpack(params)[2]
            g = layer.gradients(ops.xp, D_l, Ys[l], G_l, Xs[l], Ys[l + 1], a)
            new[i:j] = ops.apply_updates(params[i:j], reduce(g))
        return new, {**state, "t": state["t"] + 1}, E, Y
    if reduce is not None:
        lr = None  # the gradients must be summed before any update
    scale = (1.0 if lr is None else lr) / (rows if weights is None else 1)
    Xs, Ys = forward(ops, layers, params, Xb, last=False)
    loss = loss or check is not None  # the anomaly check reads the loss
    Y, E, D, G = output(ops, layers, cost, params, Xs, Tb, scale, loss, weights, rows)
    Ys.append(Y)
    if lr is None:
        grads = gradients(ops, layers, params, Xs, Ys, D, G)[0]
        if reduce is not None:
            grads = reduce(grads)
        if check is not None:
            check(Xs, Ys, E, grads)
        params, state = ops.optimizer_step(opt, opt.fused_rule(), params, grads, state)
        return params, state, E, Y
    new = list(params)
    for layer, D_l, G_l in backprop(ops, layers, params, Xs, Ys, D, G):
        l, i = layer.index - 1, layer.offset
        new[i] = ops.sgd_weight(D_l, Ys[l], params[i])  # (10), lr already in D
        new[i + 1] = ops.sgd_bias(D_l, params[i + 1])  # (11)
        if layer.has_param:
            a = params[i + 2]
            da = layer.activation_gradient(ops.xp, G_l, Xs[l], Ys[l + 1], a)
            new[i + 2] = ops.apply_updates([a], [-da])[0]
    return new, {**state, "t": state["t"] + 1}, E, Y


def mixed_backward(
    ops,
    layers,
    cost,
    params,
    X,
    T,
    scale,
    precision,
    loss=False,
    weights=None,
    rows=None,
    loss_scale=None,
):
    """:func:`backward` with the products and activations in ``precision.compute``:
    ``(grads, deltas, E, Y)``. The float32 weights and the batch are cast down, forward
    (1) and the backward recursion (8) run in the compute type, the output layer's
    weighted input is cast back to float32 for the output activation and the cost
    (their sums in float32), the output error (9) cast down (times ``loss_scale``
    first, if given; ``"auto"``: the power of two that brings the largest error to
    2**12 over the rows) and the gradients (10)-(11) and errors cast up (and divided
    by it): float32 gradients and deltas, the float32 cost and outputs, and every
    layer's weighted inputs and outputs (the compute type's but the output layer's)."""
    xp = ops.xp
    low, high = precision.compute, precision.master
    P, Xs, Ys, XL = mixed_forward(ops, layers, params, X, precision)
    top = [*Xs[:-1], XL]
    Y, E, D, G = output(ops, layers, cost, params, top, T, scale, loss, weights, rows)
    if isinstance(loss_scale, str):  # "auto": the power of two that brings the largest
        # error to 2**12 / rows (room for the sums over the rows below float16's 65504)
        big = xp.max(xp.stack([xp.max(xp.abs(A)) for A in (D, G) if A is not None]))
        tiny = xp.asarray(2.0**-100, dtype=high)
        room = xp.asarray(2.0**12 / X.shape[0], dtype=high)
        loss_scale = xp.exp2(xp.floor(xp.log2(room / xp.maximum(big, tiny))))
    if loss_scale is not None:  # before the errors lose their small values
        D, G = (None if A is None else A * loss_scale for A in (D, G))
    Ys.append(xp.astype(Y, low))
    D = None if D is None else xp.astype(D, low)
    G = None if G is None else xp.astype(G, low)
    grads, deltas = gradients(ops, layers, P, Xs, Ys, D, G)
    grads = [xp.astype(g, high) for g in grads]
    deltas = [xp.astype(d, high) for d in deltas]
    if loss_scale is not None:
        grads = [g / loss_scale for g in grads]
        deltas = [d / loss_scale for d in deltas]
    return grads, deltas, E, Y, top, Ys


def mixed_step(
    ops, layers, cost, params, Xb, Tb, opt, state, precision, loss, check, reduce, rows, weights
):
    """:func:`train_step` in a narrower ``precision`` (:func:`mixed_backward`); the
    gradients reach the anomaly check, the sum over ranks and the optimizer's update
    of the float32 weights in float32.

    With loss scaling (float16: ``state["scaler"]``, :mod:`bpgpu.precision`) a step whose
    gradients are not finite changes nothing but the scaler (on a library whose updates
    write in place, one read of a flag a step, as torch's GradScaler does; elsewhere the
    update is computed and not taken)."""
    xp = ops.xp
    rows = Xb.shape[0] if rows is None else rows
    scale = 1.0 / (rows if weights is None else 1)
    scaler = state.get("scaler") if precision.scaled else None
    grads, _, E, Y, Xs, Ys = mixed_backward(
        ops,
        layers,
        cost,
        params,
        Xb,
        Tb,
        scale,
        precision,
        loss or check is not None,
        weights,
        rows,
        None if scaler is None else scaler[0],
    )
    if reduce is not None:
        grads = reduce(grads)
    if check is not None:
        check(Xs, [*(xp.astype(v, precision.master) for v in Ys[:-1]), Y], E, grads)
    if scaler is None:
        params, state = ops.optimizer_step(opt, opt.fused_rule(), params, grads, state)
        return params, state, E, Y
    finite = xp.all(xp.stack([xp.all(xp.isfinite(g)) for g in grads]))
    kept = {k: v for k, v in state.items() if k != "scaler"}
    if ops.in_place:
        if bool(finite):
            params, kept = ops.optimizer_step(opt, opt.fused_rule(), params, grads, kept)
    else:
        new, after = ops.optimizer_step(opt, opt.fused_rule(), params, grads, kept)
        params = [xp.where(finite, n, o) for n, o in zip(new, params)]
        kept = {
            k: xp.where(finite, after[k], v)
            if k == "t"
            else [xp.where(finite, n, o) for n, o in zip(after[k], v)]
            for k, v in kept.items()
        }
    return params, {**kept, "scaler": next_scaler(xp, scaler, finite)}, E, Y


def train_batches(
    ops, layers, cost, opt, loss: bool, hits, scan, batch_size: int, upfront, precision=None
):
    """Full batches as one loop a compiling backend runs as one program:
    ``run(params, state, X, T, L, W, idx) -> (params, state, E, right)``, ``E`` and
    ``right`` the per-batch summed costs and correct counts (zeros unless ``loss``).
    ``idx`` holds the rows of whole batches in order (``batch_size`` each), reshaped to
    one batch per row; ``scan(body, carry, xs)`` (the backend's loop, JAX: ``lax.scan``)
    hands ``body`` one batch at a time. ``upfront``: the rows are gathered once, before
    the loop (for small batches one gather is much cheaper than one per batch; for large
    ones the extra copy of the span costs more than it saves), else inside it.
    ``hits(Y, L)``: how many rows of outputs ``Y`` the labels ``L`` call right. ``W``:
    each row's share of its batch's sample weight (None: unweighted). ``precision``:
    as :func:`train_step` takes it."""
    xp = ops.xp

    def run(params, state, X, T, L, W, idx):
        n = idx.shape[0] // batch_size
        rows = xp.reshape(idx, (n, batch_size))

        def gather(A, i):
            return None if A is None else xp.take(A, xp.reshape(i, (-1,)), axis=0)

        def body(carry, batch):
            params, state = carry
            if upfront:
                Xb, Tb, Lb, Wb = batch
            else:
                Xb, Tb, Lb, Wb = (gather(A, batch) for A in (X, T, L, W))
            params, state, E, Y = train_step(
                ops,
                layers,
                cost,
                params,
                Xb,
                Tb,
                opt,
                state,
                loss,
                weights=Wb,
                precision=precision,
            )
            zero = xp.zeros((), dtype=X.dtype)
            right = xp.zeros((), dtype=xp.int64)
            if loss and Lb is not None:
                right = xp.astype(hits(Y, Lb), xp.int64)
            return (params, state), (zero if E is None else E, right)

        def whole(A):
            return None if A is None else xp.reshape(gather(A, idx), (n, batch_size, *A.shape[1:]))

        xs = (whole(X), whole(T), whole(L), whole(W)) if upfront else rows
        (params, state), (E, right) = scan(body, (params, state), xs)
        return params, state, E, right

    return run


def forward_cost(ops, layers, cost, params, X, T, precision=None) -> tuple[Any, list]:
    """Per-sample cost ``(B,)`` (from the logits where the pair has a shortcut) of a
    device batch and every layer's output ``Ys`` (``Ys[0]`` the input): the loss as
    :meth:`bpgpu.model.Model.loss`, the scoring program and ``gradcheck`` compute it.
    With a narrower ``precision``, the hidden layers in its compute type and the output
    layer's activation and cost in float32, as its steps compute them."""
    if precision is not None and precision.reduced:
        _, _, Ys, XL = mixed_forward(ops, layers, params, X, precision)
        YL = top_output(ops, layers, params, XL)
        return cost.per_sample(ops.xp, layers[-1].activation, XL, YL, T), [*Ys, YL]
    Xs, Ys = forward(ops, layers, params, X)
    return cost.per_sample(ops.xp, layers[-1].activation, Xs[-1], Ys[-1], T), Ys
