"""What TensorRT's ONNX parser takes, per targeted version: the operator rows that matter for the project's graphs.

Data only (no onnx, no torch): runtimes.runners.trt_check walks a graph against it. Each row holds the operator's
"Supported Types" and the "Restrictions" of the parser's published support matrix, as checkable fields.
An operator missing from a version's table is refused: the table lists what the project's graphs use
(level arithmetic, convs, pixel shuffle, uint8/NHWC I/O, INT8 Q/DQ) and a few neighbours, so a graph
outside it gets checked against the published matrix before it ships.

Sources (repository onnx/onnx-tensorrt, the parser bundled with TensorRT):
    8.5  docs/operators.md @ 6d0ab7be324d02c7feb3a306b6fdbeae84f71ddc (release/8.5-GA, "TensorRT 8.5 supports
         operators up to Opset 17"); UINT8 network I/O from docs/Changelog.md, "TensorRT 8.5 GA Release"
         ("Added support for importing ONNX networks with UINT8 I/O types").
    8.6  the 8.5 rows amended by docs/Changelog.md "TensorRT 8.6 EA/GA Release" (adds GroupNormalization,
         LayerNormalization, IsInf, N-D Trilu; no change to the other rows here): the release/8.6-GA
         operators.md itself was not at hand. Opset ceiling 17: "TensorRT 8.6 supports operators up to
         Opset 17" (NVIDIA/Deep-Learning-Accelerator-SW operators/README.md). INT64 is still cast down to
         INT32 (native INT64 arrived in 9.0 per the Changelog).
    10   docs/operators.md rows as of TensorRT 10.15 (main; "opset 9 to opset 24"), held to what 10.0 already
         parses: its header "TensorRT 10.0 supports operators in the inclusive range of opset 9 to opset 20",
         and Slice's `axes` must be constant until 10.3 (Changelog "TensorRT 10.3 GA Release": "Added support
         for tensor `axes` inputs for `Slice` nodes").
    11   the TensorRT 10.15 rows (NVIDIA's ONNX opset guide for TensorRT 11.x points to the same
         operators.md; maximum opset 25).
Engines are not built here: this is a static check of the published support, not a parse by TensorRT.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class OpSupport:
    """One operator row of a version's support matrix.

    Attributes:
        types: the row's "Supported Types" (FP32, FP16, BF16, INT8, INT32, INT64, UINT8, BOOL, ...).
        supported: False for rows marked N.
        typed_inputs: which inputs carry the row's types: "first", or "all" (elementwise ops, Concat).
        const_inputs: inputs that must be initializers or Constant outputs (e.g. Slice `axes`).
        zero_inputs: inputs that must be constant zeros (Q/DQ zero points).
        attrs: (attribute, allowed values) pairs.
        ranks: allowed ranks of the first input (empty: any rank up to the table's max_rank).
        restriction: the row's Restrictions text, quoted in refusals.
    """

    types: frozenset
    supported: bool = True
    typed_inputs: str = "first"
    const_inputs: tuple = ()
    zero_inputs: tuple = ()
    attrs: tuple = ()
    ranks: tuple = ()
    restriction: str = ""


@dataclass(frozen=True)
class SupportTable:
    """A version's table plus the matrix's general notes.

    Attributes:
        version: the target key (8.5, 8.6, 10, 11).
        source: where the rows come from (repository, path, branch or commit).
        rows: op type -> OpSupport (default ONNX domain only).
        downcast: types the parser casts down before checking (8.x: INT64 -> INT32, DOUBLE -> FP32).
        io_only: types allowed only as network inputs/outputs, feeding or fed by a Cast (UINT8).
        max_rank: the largest tensor rank TensorRT represents (nvinfer1::Dims::MAX_DIMS).
    """

    version: str
    source: str
    rows: dict = field(default_factory=dict)
    downcast: dict = field(default_factory=dict)
    io_only: frozenset = frozenset({"UINT8"})
    max_rank: int = 8


def _t(text: str) -> frozenset:
    return frozenset(t.strip() for t in text.split(",") if t.strip())


def op(types: str, **kw) -> OpSupport:
    """A row from its "Supported Types" text and restrictions."""
    return OpSupport(_t(types), **kw)


NOT_SUPPORTED = OpSupport(frozenset(), supported=False)
_SLICE_AXES = "`axes` must be an initializer"
_RESIZE = (("mode", ("nearest", "linear")),
           ("coordinate_transformation_mode", ("half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn",
                                               "asymmetric", "align_corners")))

_ROWS_85 = {
    "Add": op("FP32, FP16, INT32", typed_inputs="all"),
    "Sub": op("FP32, FP16, INT32", typed_inputs="all"),
    "Mul": op("FP32, FP16, INT32", typed_inputs="all"),
    "Div": op("FP32, FP16, INT32", typed_inputs="all"),
    "Min": op("FP32, FP16, INT32", typed_inputs="all"),
    "Max": op("FP32, FP16, INT32", typed_inputs="all"),
    "Conv": op("FP32, FP16, INT8"),
    "ConvTranspose": op("FP32, FP16, INT8"),
    "Relu": op("FP32, FP16, INT8"),
    "Clip": op("FP32, FP16, INT8"),
    "Round": op("FP32, FP16, INT8"),
    "DepthToSpace": op("FP32, FP16, INT32"),
    "SpaceToDepth": op("FP32, FP16, INT32"),
    "Reshape": op("FP32, FP16, INT32, INT8, BOOL"),
    "Shape": op("FP32, FP16, INT32, INT8, BOOL"),
    "Slice": op("FP32, FP16, INT32, INT8, BOOL", const_inputs=(3,), restriction=_SLICE_AXES),
    "Split": op("FP32, FP16, INT32, BOOL"),
    "Concat": op("FP32, FP16, INT32, INT8, BOOL", typed_inputs="all"),
    "Cast": op("FP32, FP16, INT32, INT8, BOOL"),
    "Transpose": op("FP32, FP16, INT32, INT8, BOOL"),
    "Identity": op("FP32, FP16, INT32, INT8, BOOL"),
    "Constant": op("FP32, FP16, INT32, INT8, BOOL"),
    "Gather": op("FP32, FP16, INT8, INT32, BOOL"),
    "Unsqueeze": op("FP32, FP16, INT32, INT8, BOOL", const_inputs=(1,), restriction="`axes` must be a constant"),
    "Squeeze": op("FP32, FP16, INT32, INT8, BOOL", const_inputs=(1,), restriction="`axes` must be an initializer"),
    "Pad": op("FP32, FP16, INT8, INT32"),
    "Resize": op("FP32, FP16", attrs=_RESIZE, restriction="modes nearest/linear and the listed transformations"),
    "AveragePool": op("FP32, FP16, INT8, INT32", ranks=(4, 5), restriction="2D or 3D Pooling only"),
    "MaxPool": op("FP32, FP16, INT8", ranks=(4, 5), restriction="2D or 3D pooling only"),
    "QuantizeLinear": op("FP32, FP16", zero_inputs=(2,), restriction="`y_zero_point` must be 0"),
    "DequantizeLinear": op("INT8", zero_inputs=(2,), restriction="`x_zero_point` must be zero"),
    "LayerNormalization": NOT_SUPPORTED,
    "GroupNormalization": NOT_SUPPORTED,
}
_ROWS_86 = {**_ROWS_85, "LayerNormalization": op("FP32, FP16"), "GroupNormalization": op("FP32, FP16")}

_F10 = "FP32, FP16, BF16"
_ALL10 = "FP32, FP16, BF16, INT32, INT64"
_ANY10 = "FP32, FP16, BF16, INT32, INT64, BOOL"
_ROWS_10 = {
    "Add": op(_ALL10, typed_inputs="all"),
    "Sub": op(_ALL10, typed_inputs="all"),
    "Mul": op(_ALL10, typed_inputs="all"),
    "Div": op(_ALL10, typed_inputs="all"),
    "Min": op(_ALL10, typed_inputs="all"),
    "Max": op(_ALL10, typed_inputs="all"),
    "Conv": op(_F10),
    "ConvTranspose": op(_F10),
    "Relu": op(_ALL10),
    "Clip": op(_F10),
    "Round": op(_F10),
    "DepthToSpace": op(_ALL10),
    "SpaceToDepth": op(_ALL10),
    "Reshape": op(_ANY10),
    "Shape": op(_ANY10),
    "Slice": op(_ANY10, const_inputs=(3,), restriction=_SLICE_AXES + " (before TensorRT 10.3)"),
    "Split": op(_ANY10),
    "Concat": op(_ANY10, typed_inputs="all"),
    "Cast": op("FP32, FP16, BF16, INT32, INT64, UINT8, BOOL"),
    "Transpose": op(_ANY10),
    "Identity": op(_ANY10),
    "Constant": op("FP32, FP16, BF16, FP8, FP4, INT4, INT32, INT64, BOOL"),
    "Gather": op(_ANY10),
    "Unsqueeze": op(_ANY10, const_inputs=(1,), restriction="`axes` must be resolvable to a constant"),
    "Squeeze": op(_ANY10, const_inputs=(1,), restriction="`axes` must be resolvable to a constant"),
    "Pad": op(_ALL10),
    "Resize": op(_F10, attrs=_RESIZE, restriction="modes nearest/linear and the listed transformations"),
    "AveragePool": op(_F10, ranks=(4, 5), attrs=(("dilations", (None, (1, 1), (1, 1, 1))),),
                      restriction="2D or 3D Pooling only; `dilations` must be empty or all ones"),
    "MaxPool": op(_F10, ranks=(4, 5), attrs=(("dilations", (None, (1, 1), (1, 1, 1))),),
                  restriction="2D or 3D pooling only; `dilations` must be empty or all ones"),
    "QuantizeLinear": op(_F10, zero_inputs=(2,), restriction="`y_zero_point` must be 0"),
    "DequantizeLinear": op("INT8, FP8, FP4, INT4", zero_inputs=(2,), restriction="`x_zero_point` must be zero"),
    "LayerNormalization": op(_F10),
    "GroupNormalization": op(_F10),
}
_ROWS_11 = {**_ROWS_10, "Slice": op(_ANY10)}

_REPO = "onnx/onnx-tensorrt docs/operators.md"
_DOWNCAST_8 = {"INT64": "INT32", "DOUBLE": "FP32"}
TABLES: dict = {
    "8.5": SupportTable("8.5", f"{_REPO} @ 6d0ab7be324d (release/8.5-GA)", _ROWS_85, _DOWNCAST_8),
    "8.6": SupportTable("8.6", f"{_REPO} @ 6d0ab7be324d (8.5 rows) + docs/Changelog.md 8.6", _ROWS_86, _DOWNCAST_8),
    "10": SupportTable("10", f"{_REPO} (TensorRT 10.15 rows, held to 10.0)", _ROWS_10, {"DOUBLE": "FP32"}),
    "11": SupportTable("11", f"{_REPO} (TensorRT 10.15 rows)", _ROWS_11, {"DOUBLE": "FP32"}),
}


def table_for(key: str) -> SupportTable:
    """The support table of a target key (runtimes.runners.trt_targets)."""
    return TABLES[key]


def with_rows(table: SupportTable, **rows: OpSupport) -> SupportTable:
    """A copy of a table with rows replaced or added (for tests and local experiments)."""
    return replace(table, rows={**table.rows, **rows})
