"""A network as an ONNX graph, for ONNX Runtime and every other ONNX consumer.

The graph takes ``input`` of shape ``(batch, n_0)`` (the batch dimension dynamic) in the
network's dtype and gives ``output``, ``(batch, n_L)``: what :meth:`bpgpu.MLP.predict`
gives. The input scaling is inside the graph (``Sub``, ``Div``), each layer is one
``Gemm`` (``Y W^T + b``, eq. 1) and its activation one ONNX operator (binary step a
comparison and a cast). Initializers are named as in :mod:`bpgpu.interchange`; the
config, classes included, is in the model's metadata (``bpgpu``). Needs the ``onnx``
package (the ``onnx`` extra: ``pip install -e '.[onnx]'`` in the checkout).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from bpgpu.activations import ELU_ALPHA, LEAKY_SLOPE
from bpgpu.backends._install import install_hint
from bpgpu.interchange import exportable, layout
from bpgpu.layers import Dense

__all__ = ["OPSET", "ACTIVATION_OPS", "model_proto"]

OPSET = 17  # every operator below as it is since opset 13 (Softmax over one axis)
IR_VERSION = 8  # the IR of opset 17: readable by ONNX Runtime 1.11 and later

# bpgpu's activation -> (ONNX operator, its attributes); None: no operator (identity).
# ONNX Runtime's CPU provider has no float64 kernel of Elu, Softplus and Atan: a float64
# graph writes them in operators it has (_double_form)
ACTIVATION_OPS: dict[str, tuple[str, dict] | None] = {
    "identity": None,
    "binary_step": ("GreaterOrEqual", {}),  # then Cast to the float type
    "sigmoid": ("Sigmoid", {}),
    "tanh": ("Tanh", {}),
    "arctan": ("Atan", {}),
    "relu": ("Relu", {}),
    # leaky ReLU as PRelu with a constant slope in the network's dtype: LeakyRelu's alpha
    # attribute is a float32, 1e-10 off 0.01 in a float64 graph
    "leaky_relu": ("PRelu", {}),
    "prelu": ("PRelu", {}),  # its slope a^l, shape (n,), broadcasts over the rows
    "elu": ("Elu", {"alpha": ELU_ALPHA}),
    "softplus": ("Softplus", {}),
    "softmax": ("Softmax", {"axis": -1}),
}


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError(
            f"exporting to ONNX needs the onnx package: {install_hint('onnx')} "
            "(and onnxruntime to run the file)"
        ) from None
    return onnx


def _double_form(m, x: str, node, const) -> str:
    """ELU, softplus and arctan of ``x`` in operators ONNX Runtime runs in float64:
    ``max(x, 0) + alpha (e^min(x, 0) - 1)``, ``max(x, 0) + ln(1 + e^-|x|)``, and arctan
    from its float32 value and one Newton step on ``sin y - x cos y = 0`` (whose second
    derivative is 0 at the root: the step takes the float32 error of 1e-7 below float64
    rounding); ``+-pi/2`` at ``x = +-inf``."""
    k = m.index
    if m.kind == "arctan":
        from onnx import TensorProto

        y0 = node("Cast", [x], f"{k}.x32", to=TensorProto.FLOAT)
        y0 = node("Cast", [node("Atan", [y0], f"{k}.atan32")], f"{k}.y0", to=TensorProto.DOUBLE)
        sin, cos = node("Sin", [y0], f"{k}.sin"), node("Cos", [y0], f"{k}.cos")
        g = node("Sub", [sin, node("Mul", [x, cos], f"{k}.xcos")], f"{k}.g")
        dg = node("Add", [cos, node("Mul", [x, sin], f"{k}.xsin")], f"{k}.dg")
        y1 = node("Sub", [y0, node("Div", [g, dg], f"{k}.newton")], f"{k}.y1")
        half_pi = node(
            "Mul",
            [node("Sign", [x], f"{k}.sign"), const(f"{k}.half_pi", math.pi / 2)],
            f"{k}.limit",
        )
        return node("Where", [node("IsInf", [x], f"{k}.inf"), half_pi, y1], f"{k}.arctan")
    zero = const(f"{k}.zero", 0.0)
    pos = node("Max", [x, zero], f"{k}.pos")
    if m.kind == "elu":
        e = node("Exp", [node("Min", [x, zero], f"{k}.neg")], f"{k}.exp")
        em1 = node("Sub", [e, const(f"{k}.one", 1.0)], f"{k}.expm1")
        tail = node("Mul", [em1, const(f"{k}.alpha", ELU_ALPHA)], f"{k}.tail")
    else:
        e = node("Exp", [node("Neg", [node("Abs", [x], f"{k}.abs")], f"{k}.nabs")], f"{k}.exp")
        tail = node("Log", [node("Add", [e, const(f"{k}.one", 1.0)], f"{k}.1pe")], f"{k}.log")
    return node("Add", [pos, tail], f"{k}.{m.kind}")


def model_proto(layers: Sequence[Dense], arrays: dict[str, Any], scaled: bool, config: dict) -> Any:
    """The checked ``onnx.ModelProto`` of a network: ``layers``, its host ``arrays`` by
    bpgpu's names, the input scaling where ``scaled``; ``config`` goes to the metadata."""
    exportable(layers, "ONNX", list(ACTIVATION_OPS))
    onnx = _onnx()
    from onnx import TensorProto, helper, numpy_helper

    dtype = np.dtype(config["dtype"])
    elem = {np.dtype("float32"): TensorProto.FLOAT, np.dtype("float64"): TensorProto.DOUBLE}[dtype]
    inits, nodes, x = [], [], "input"

    def const(name: str, value) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def node(op: str, inputs: list[str], name: str, **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    for m in layout(layers, scaled):
        t = {attr: const(f"{m.index}.{attr}", arrays[ours]) for attr, ours in m.tensors.items()}
        if m.kind == "standardize":
            x = node("Sub", [x, t["mean"]], f"{m.index}.centred")
            x = node("Div", [x, t["scale"]], f"{m.index}.scaled")
        elif m.kind == "linear":  # (1): X = Y W^T + b
            x = node("Gemm", [x, t["weight"], t["bias"]], f"{m.index}.gemm", transB=1)
        elif ACTIVATION_OPS[m.kind] is not None:
            op, attrs = ACTIVATION_OPS[m.kind]
            if m.kind == "binary_step":
                x = node(op, [x, const(f"{m.index}.zero", 0.0)], f"{m.index}.step")
                x = node("Cast", [x], f"{m.index}.{m.kind}", to=elem)
            elif m.kind == "leaky_relu":
                x = node(op, [x, const(f"{m.index}.slope", [LEAKY_SLOPE])], f"{m.index}.leaky")
            elif dtype == np.float64 and m.kind in ("elu", "softplus", "arctan"):
                x = _double_form(m, x, node, const)
            else:
                x = node(op, [x, *t.values()], f"{m.index}.{m.kind}", **attrs)
    nodes.append(helper.make_node("Identity", [x], ["output"], name="output"))
    n_in, n_out = layers[0].n_in, layers[-1].n_out
    graph = helper.make_graph(
        nodes,
        "bpgpu_mlp",
        [helper.make_tensor_value_info("input", elem, ["batch", n_in])],
        [helper.make_tensor_value_info("output", elem, ["batch", n_out])],
        inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="bpgpu",
        producer_version=str(config.get("bpgpu_version", "")),
        doc_string="A multi-layer perceptron trained by backpropagation with bpgpu",
    )
    model.ir_version = IR_VERSION
    helper.set_model_props(model, {"bpgpu": json.dumps(config, sort_keys=True)})
    onnx.checker.check_model(model, full_check=True)
    return model
