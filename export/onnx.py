"""Export to ONNX (opset 18, dynamo exporter) with dynamic N/H/W and the level as a graph input.

Usage:
    python -m export.onnx --weights denoise-mobile -o out/
    python -m export.onnx --weights run/best.safetensors --level-mode weights --precision fp16
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

from export.base import (
    ExportConfig,
    ExportResult,
    add_common_args,
    common_config,
    graph_spec,
    run_export,
    summary_line,
    versions,
)
from runtimes.core.errors import CliParser, UserError, require, run_cli
from runtimes.core.formats import get_format

OPSET = 18
PRECISIONS = ("fp32", "fp16")


@dataclass(frozen=True)
class OnnxConfig:
    """ONNX export options.

    Attributes:
        common: the shared exporter options.
        opset: ONNX opset.
        dynamic: dynamic N/H/W (False: static at `static_size`).
        static_size: (N, H, W) traced size for static graphs and for tracing.
    """

    common: ExportConfig
    opset: int = OPSET
    dynamic: bool = True
    static_size: tuple[int, int, int] = (1, 64, 64)


def supported_opsets() -> tuple[int, int]:
    """(lowest, highest) opset the project exports: the dynamo exporter builds opset 18 and converts it up to the
    newest the installed onnx knows. Below 18 it falls back to onnx's C converter, which converts to some opsets
    and silently keeps 18 for others, so those are refused (`export_onnx` also checks the opset written)."""
    onnx = require("onnx", "onnx")
    return OPSET, int(onnx.defs.onnx_opset_version())


def check_opset(opset: int) -> int:
    """`opset` when the exporter can write it; otherwise a one-line `UserError` naming the range."""
    lo, hi = supported_opsets()
    if not lo <= opset <= hi:
        raise UserError(f"--opset {opset} is not supported: choose {lo}..{hi} (default {OPSET}; the highest is "
                        "what the installed onnx knows)")
    return opset


def written_opset(proto) -> int | None:
    """The default-domain opset a model imports."""
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)


def torch_graph(model, spec, precision: str):
    """The torch module to export: the level graph, wrapped in fp16 with fp32 I/O when asked."""
    from export.graph import Fp16Graph, build_graph

    graph = build_graph(copy.deepcopy(model), spec)
    if precision == "fp16":
        return Fp16Graph(graph)
    if precision != "fp32":
        raise UserError(f"ONNX precision {precision!r} is not supported; choose {' or '.join(PRECISIONS)}")
    return graph


def onnx_model(model, spec, precision: str = "fp32", opset: int = OPSET, dynamic: bool = True,
               size: tuple[int, int, int] = (1, 64, 64)):
    """Export the level graph to an in-memory `onnx.ModelProto` (inputs image[, level]; output restored).

    Opsets below 18 (TensorRT 8.x targets) are exported at 18 and lowered by `export.trt_onnx.lower_opset`.
    """
    import torch

    from export.graph import sample_inputs

    require("onnx", "onnx")
    require("onnxscript", "onnx")
    graph = torch_graph(model, spec, precision)
    args = sample_inputs(spec, *size)
    names = ["image"] if spec.mode == "fixed" else ["image", "level"]
    dyn = None
    if dynamic:
        d = torch.export.Dim.DYNAMIC
        axes = {0: d, 1: d, 2: d} if spec.nhwc else {0: d, 2: d, 3: d}
        dyn = {"image": axes} if spec.mode == "fixed" else {"image": axes, "level": None}
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(graph, args, None, dynamo=True, opset_version=max(opset, OPSET),
                                    dynamic_shapes=dyn, input_names=names, output_names=["restored"], verbose=False)
    proto = program.model_proto
    if dynamic:
        name_dims(proto, spec.nhwc)
    if opset < OPSET:  # the dynamo exporter's own down-conversion keeps opset-18 attributes: export.trt_onnx
        from export.trt_onnx import lower_opset

        proto = lower_opset(proto, opset)
    return proto


def name_dims(proto, nhwc: bool) -> None:
    """Rename the exporter's symbolic dims of image/restored to N, H, W."""
    image = next(i for i in proto.graph.input if i.name == "image")
    axes = (0, 1, 2) if nhwc else (0, 2, 3)
    dims = image.type.tensor_type.shape.dim
    rename = {dims[a].dim_param: n for a, n in zip(axes, "NHW", strict=True) if dims[a].dim_param}
    for vi in [*proto.graph.input, *proto.graph.output, *proto.graph.value_info]:
        for d in vi.type.tensor_type.shape.dim:
            if d.dim_param in rename:
                d.dim_param = rename[d.dim_param]


def save_proto(proto, path: Path) -> None:
    """Save an ONNX model (weights inline; these models are small)."""
    import onnx

    onnx.save_model(proto, str(path))


def embed_metadata(path: Path, meta: dict) -> None:
    """Write the project's metadata into the model's metadata_props."""
    import onnx

    proto = onnx.load(str(path))
    props = {
        "levelres": json.dumps({k: v for k, v in meta.items() if k != "validation"}, default=str),
        "task": meta["task"], "level_unit": meta["level_unit"], "level_range": json.dumps(meta["level_range"]),
        "train_levels": json.dumps(meta["train_levels"]), "level_mode": meta["level_mode"],
        "layout": meta["layout"], "validation": json.dumps(_short_validation(meta.get("validation", {}))),
        "levelres_version": meta.get("levelres_version", ""), "license": meta.get("license", ""),
    }
    del proto.metadata_props[:]
    for key, value in props.items():
        proto.metadata_props.add(key=key, value=str(value))
    proto.doc_string = meta["description"]
    proto.producer_name = "levelres"
    onnx.save_model(proto, str(path))


def _short_validation(v: dict) -> dict:
    return {k: v[k] for k in ("status", "image", "levels", "max_abs_diff", "min_psnr_vs_reference",
                              "max_restoration_loss_db") if k in v}


def validate_onnx(model, path: Path, meta: dict) -> dict:
    """Run the artifact with onnxruntime (CPU) against the reference."""
    from export.validate import validate_with
    from runtimes.runners.onnxruntime import OnnxRunner

    return validate_with(OnnxRunner(path, provider="cpu"), model, meta)


def export_onnx(cfg: OnnxConfig) -> ExportResult:
    """Export, validate and write an ONNX artifact."""
    c = cfg.common
    if c.precision not in PRECISIONS:
        raise UserError(f"ONNX precision {c.precision!r} is not supported; choose {' or '.join(PRECISIONS)}")
    check_opset(cfg.opset)

    def build(model, tmp: Path, meta: dict) -> list[Path]:
        meta["toolchain"] = versions("torch", "onnx", "onnxscript", "onnxruntime")
        spec = graph_spec(c)
        proto = onnx_model(model, spec, c.precision, cfg.opset, cfg.dynamic, cfg.static_size)
        opset = written_opset(proto)
        if opset != cfg.opset:
            raise UserError(f"the exporter could not convert the model to opset {cfg.opset} (it wrote {opset}); "
                            f"use --opset {OPSET} (the default)")
        save_proto(proto, tmp)
        meta.update(opset=opset, dynamic_axes=["N", "H", "W"] if cfg.dynamic else [])
        if not cfg.dynamic:
            meta["static_size"] = list(cfg.static_size[1:])
        return []

    return run_export(c, get_format("onnx"), build, validate_onnx, embed_metadata, runner=onnx_runner)


def onnx_runner(path: Path):
    """The runner that computes the golden outputs: onnxruntime's CPU provider, as in validation."""
    from runtimes.runners.onnxruntime import OnnxRunner

    return OnnxRunner(path, provider="cpu")


def export_with(common: ExportConfig, sizes=None, **options) -> ExportResult:
    """The format table's entry (`runtimes.core.formats`): export with the shared options (ONNX is dynamic-size:
    `sizes` is unused)."""
    return export_onnx(OnnxConfig(common, **options))


def build_parser() -> argparse.ArgumentParser:
    parser = CliParser(prog="python -m export.onnx", description=__doc__.splitlines()[0])
    add_common_args(parser, PRECISIONS, calibration=False)  # no calibrated precision (int8: export.tensorrt)
    parser.add_argument("--opset", type=int, default=OPSET,
                        help=f"ONNX opset, {OPSET} up to the newest the installed onnx knows (default {OPSET})")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result = export_onnx(OnnxConfig(common_config(args), opset=args.opset))
    print(summary_line(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
