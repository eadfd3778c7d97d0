"""Check an ONNX graph against the operator support table of a TensorRT version, statically (no TensorRT needed).

Every node is checked for: its op being in the version's table (runtimes.runners.trt_ops) and marked supported;
the element types of its inputs (after ONNX shape inference) against the row's types, with the table's
down-casts and I/O-only types (UINT8 only as a network input/output through a Cast); inputs the row
wants constant (Slice `axes`) or zero (Q/DQ zero points); restricted attributes; input ranks; and the
shapes TensorRT needs at build time: only the image input may be dynamic (it gets the optimization
profile) and a convolution's channel count must be static. The graph's opset must be one the version's
parser takes. Tensors whose type or shape inference cannot tell are not refused.

Usage:
    check_graph(proto, resolve_target("8.5"))        # UserError in one line when the version cannot parse it
"""

from __future__ import annotations

from runtimes.core.errors import UserError, require
from runtimes.runners.trt_ops import SupportTable, table_for
from runtimes.runners.trt_targets import TrtTarget

TYPE_NAMES = {1: "FP32", 2: "UINT8", 3: "INT8", 5: "INT16", 6: "INT32", 7: "INT64", 9: "BOOL", 10: "FP16",
              11: "DOUBLE", 16: "BF16", 17: "FP8", 18: "FP8", 19: "FP8", 20: "FP8", 22: "INT4", 23: "FP4"}
PROFILED_INPUTS = ("image",)


def check_graph(proto, target: TrtTarget, table: SupportTable | None = None) -> None:
    """Raise a one-line `UserError` when `target`'s ONNX parser cannot take the graph (per its support table)."""
    table = table or table_for(target.key)
    problems = graph_problems(proto, target, table)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UserError(f"TensorRT {target.label} cannot parse this graph: {problems[0]}{more} "
                        f"[checked against {table.source}]")


def graph_problems(proto, target: TrtTarget, table: SupportTable) -> list[str]:
    """Every reason the version cannot parse the graph (empty when it can)."""
    onnx = require("onnx", "onnx")
    problems = _opset_problems(proto, target)
    graph = onnx.shape_inference.infer_shapes(proto).graph
    g = _GraphInfo(graph, onnx)
    problems += _input_problems(graph, g)
    for node in graph.node:
        problems += _node_problems(node, table, g)
    return problems


class _GraphInfo:
    """Types, shapes, constants and I/O names of an inferred graph."""

    def __init__(self, graph, onnx):
        self.onnx = onnx
        self.types, self.shapes = {}, {}
        for vi in [*graph.input, *graph.output, *graph.value_info]:
            tt = vi.type.tensor_type
            self.types[vi.name] = _type_name(tt.elem_type)
            if tt.HasField("shape"):
                self.shapes[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim)
        self.consts = {t.name: t for t in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                self.consts[node.output[0]] = node.attribute[0].t
        for name, t in self.consts.items():
            self.types.setdefault(name, _type_name(t.data_type))
            self.shapes.setdefault(name, tuple(t.dims))
        self.inputs = {i.name for i in graph.input} - set(self.consts)
        self.outputs = {o.name for o in graph.output}

    def is_zero(self, name: str) -> bool:
        return not self.onnx.numpy_helper.to_array(self.consts[name]).any()


def _type_name(code: int) -> str | None:
    return TYPE_NAMES.get(code) if code else None


def _opset_problems(proto, target: TrtTarget) -> list[str]:
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is not None and opset > target.max_opset:
        return [f"it imports ONNX opset {opset} and TensorRT {target.label} parses opsets up to {target.max_opset} "
                f"(export with --trt-version {target.key}, which writes opset {target.opset})"]
    return []


def _input_problems(graph, g: _GraphInfo) -> list[str]:
    """Only the profiled image input may have dynamic dimensions."""
    out = []
    for inp in graph.input:
        shape = g.shapes.get(inp.name)
        if inp.name in g.inputs and inp.name not in PROFILED_INPUTS and shape and None in shape:
            out.append(f"input {inp.name!r} has a dynamic shape {list(shape)}; only "
                       f"{', '.join(PROFILED_INPUTS)} gets an optimization profile")
    return out


def _node_problems(node, table: SupportTable, g: _GraphInfo) -> list[str]:
    where = f"{node.op_type} (node {node.name or node.output[0]})"
    if node.domain not in ("", "ai.onnx"):
        return [f"{where} is in the custom domain {node.domain!r}, which the parser does not import"]
    row = table.rows.get(node.op_type)
    if row is None:
        return [f"{where} is outside the operator table checked for TensorRT {table.version}"]
    if not row.supported:
        return [f"{where} is marked unsupported for TensorRT {table.version}"]
    return [f"{where} {p}" for p in (*_type_problems(node, row, table, g), *_input_rules(node, row, g),
                                     *_attr_problems(node, row), *_shape_problems(node, row, table, g))]


def _type_problems(node, row, table: SupportTable, g: _GraphInfo) -> list[str]:
    names = [n for n in (node.input[:1] if row.typed_inputs == "first" else node.input) if n]
    found = [(n, table.downcast.get(g.types.get(n), g.types.get(n)), n in g.inputs) for n in names]
    if node.op_type == "Cast":
        to = _type_name(next((a.i for a in node.attribute if a.name == "to"), 0))
        found.append((node.output[0], table.downcast.get(to, to), node.output[0] in g.outputs))
    out = []
    for name, t, is_io in found:
        if t is None or t in row.types:
            continue
        if t in table.io_only and node.op_type == "Cast" and is_io:
            continue
        if t in table.io_only:
            out.append(f"has {t} tensor {name!r}; {t} is only supported as a network input or output through a Cast")
        else:
            out.append(f"has {t} tensor {name!r}; supported types: {', '.join(sorted(row.types))}")
    return out


def _input_rules(node, row, g: _GraphInfo) -> list[str]:
    out = []
    for i in row.const_inputs:
        if i < len(node.input) and node.input[i] and node.input[i] not in g.consts:
            out.append(f"input {i} ({node.input[i]!r}) is computed at run time: {row.restriction}")
    for i in row.zero_inputs:
        name = node.input[i] if i < len(node.input) else ""
        if name and (name not in g.consts or not g.is_zero(name)):
            out.append(f"zero point {name!r} is not a constant zero: {row.restriction}")
    return out


def _attr_problems(node, row) -> list[str]:
    from onnx import helper

    out = []
    for name, allowed in row.attrs:
        attr = next((a for a in node.attribute if a.name == name), None)
        if attr is None:
            continue
        value = helper.get_attribute_value(attr)
        value = value.decode() if isinstance(value, bytes) else tuple(value) if isinstance(value, list) else value
        if value not in allowed:
            out.append(f"has {name}={value!r}: {row.restriction}")
    return out


def _shape_problems(node, row, table: SupportTable, g: _GraphInfo) -> list[str]:
    out = []
    first = g.shapes.get(node.input[0]) if node.input else None
    if first is not None and row.ranks and len(first) not in row.ranks:
        out.append(f"has a rank-{len(first)} input: {row.restriction}")
    if node.op_type in ("Conv", "ConvTranspose") and first is not None and len(first) > 1 and first[1] is None:
        out.append("has a dynamic channel count; TensorRT needs it at build time")
    for name in [*node.input, *node.output]:
        rank = len(g.shapes.get(name, ()))
        if rank > table.max_rank:
            out.append(f"has a rank-{rank} tensor {name!r}; TensorRT tensors have at most {table.max_rank} dims")
    return out
