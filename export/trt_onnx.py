"""The ONNX a TensorRT version parses: the target's opset, uint8 kept at the network boundary, the static check.

Opset. torch 2.13's dynamo exporter builds opset 18 and, asked for 17 (`opset_version=17`), hands the
model to onnx's C version converter, which bumps the opset import but keeps Split's opset-18
`num_outputs` attribute: measured on denoise-fast-affine and sr-mobile (their folded graphs split a conv's
output), the result fails onnx's checker and onnxruntime refuses to load it ("Unrecognized attribute:
num_outputs for operator Split"). The legacy
exporter (`dynamo=False`) writes opset 17 but a different graph (Constant, Gather, Unsqueeze, Cast, Div
nodes for the same shapes) from a deprecated code path. So the graph is exported at 18 as for every
other format and lowered here: every node whose operator changed in opset 18 is rewritten to its
opset-17 form (Split: `num_outputs` -> a constant `split` input), any other such operator is refused,
the IR version is set to the one onnx wrote for opset 17 (8), and onnx's full checker must pass. The
validation against the torch reference then runs on the lowered file, as for every export.

uint8 I/O. TensorRT takes UINT8 only as a network input/output converted by a Cast (runtimes.runners.trt_ops);
the exported graph transposes NHWC uint8 before casting and reads the uint8 input's shape. Both
commute with the Cast, so the Cast is moved to the boundary and the shape read from its output.

Usage:
    proto = lower_opset(proto, 17)
    proto = cast_at_io(proto)
"""

from __future__ import annotations

from runtimes.core.errors import UserError, require

EXPORTED_OPSET = 18
IR_FOR_OPSET = {17: 8}  # the IR version onnx 1.12 (the last release at opset 17) writes
UINT8 = 2


def lower_opset(proto, opset: int):
    """The model at `opset` (<= 18): opset-18 operators rewritten to their older form, checked by onnx."""
    onnx = require("onnx", "onnx")
    if opset >= EXPORTED_OPSET:
        return proto
    shapes = _static_dims(onnx.shape_inference.infer_shapes(proto).graph)
    for node in proto.graph.node:
        if node.domain in ("", "ai.onnx"):
            since = onnx.defs.get_schema(node.op_type, EXPORTED_OPSET).since_version
            if since > opset:
                _lower_node(proto.graph, node, since, opset, shapes)
    for imp in proto.opset_import:
        if imp.domain in ("", "ai.onnx"):
            imp.version = opset
    proto.ir_version = min(proto.ir_version, IR_FOR_OPSET.get(opset, proto.ir_version))
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0]
        raise UserError(f"the graph cannot be written at opset {opset}: {first}") from None
    return proto


def _lower_node(graph, node, since: int, opset: int, shapes: dict) -> None:
    if node.op_type != "Split":
        raise UserError(f"the graph cannot be written at opset {opset}: {node.op_type} changed in opset {since} "
                        "and has no rewrite here; target a TensorRT version that parses opset 18")
    from onnx import numpy_helper

    n = next((a.i for a in node.attribute if a.name == "num_outputs"), None)
    if n is None:
        return
    axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
    dims = shapes.get(node.input[0])
    size = dims[axis] if dims else None
    if not size:
        raise UserError(f"the graph cannot be written at opset {opset}: Split {node.name} splits a dynamic axis")
    chunk = -(-size // n)
    name = f"{node.name or node.output[0]}_sizes"
    graph.initializer.append(numpy_helper.from_array(_sizes(chunk, size, n), name))
    kept = [a for a in node.attribute if a.name != "num_outputs"]
    del node.attribute[:]
    node.attribute.extend(kept)
    node.input.append(name)


def _sizes(chunk: int, size: int, n: int):
    import numpy as np

    return np.array([chunk] * (n - 1) + [size - chunk * (n - 1)], dtype=np.int64)


def _static_dims(graph) -> dict:
    out = {}
    for vi in [*graph.input, *graph.output, *graph.value_info]:
        out[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
    return out


def cast_at_io(proto):
    """Move the Casts of uint8 graph inputs/outputs to the boundary (exact: Transpose and Shape commute with Cast)."""
    graph = proto.graph
    inputs = {i.name for i in graph.input if i.type.tensor_type.elem_type == UINT8}
    outputs = {o.name for o in graph.output if o.type.tensor_type.elem_type == UINT8}
    touched = set()
    for name in inputs:
        touched |= _input_cast_first(graph, name)
    for name in outputs:
        touched |= _output_cast_last(graph, name)
    if touched:
        kept = [vi for vi in graph.value_info if vi.name not in touched]
        del graph.value_info[:]
        graph.value_info.extend(kept)
        _toposort(graph)
    return proto


def _consumers(graph, name: str) -> list:
    return [n for n in graph.node if name in n.input]


def _input_cast_first(graph, name: str) -> set:
    """uint8 input -> Transpose -> Cast becomes input -> Cast -> Transpose; Shape(input) reads the Cast's output."""
    users = _consumers(graph, name)
    cast = next((n for n in users if n.op_type == "Cast"), None)
    touched = set()
    if cast is None:
        tr = next((n for n in users if n.op_type == "Transpose"), None)
        after = _consumers(graph, tr.output[0]) if tr is not None else []
        if len(after) != 1 or after[0].op_type != "Cast":
            return touched
        cast, old = after[0], tr.output[0]
        mid = old + "_cast"
        cast.input[0], tr.input[0] = name, mid
        tr.output[0], cast.output[0] = cast.output[0], mid
        touched |= {mid, old, tr.output[0]}
    for node in users:
        if node.op_type == "Shape":
            node.input[0] = cast.output[0]
    return touched | {cast.output[0]}


def _output_cast_last(graph, name: str) -> set:
    """Cast -> Transpose -> uint8 output becomes Transpose -> Cast -> output."""
    tr = next((n for n in graph.node if name in n.output), None)
    if tr is None or tr.op_type != "Transpose":
        return set()
    cast = next((n for n in graph.node if tr.input[0] in n.output), None)
    if cast is None or cast.op_type != "Cast" or len(_consumers(graph, cast.output[0])) != 1:
        return set()
    mid = cast.output[0]
    tr.input[0], cast.input[0] = cast.input[0], mid
    tr.output[0], cast.output[0] = mid, name
    return {mid}


def _toposort(graph) -> None:
    """Reorder the nodes so each comes after the producers of its inputs (stable)."""
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        node = next((n for n in pending if all(i in ready for i in n.input)), None)
        if node is None:
            raise UserError("internal: the TensorRT graph rewrite left a cycle; report this with the export command")
        pending.remove(node)
        ordered.append(node)
        ready.update(node.output)
    del graph.node[:]
    graph.node.extend(ordered)
