"""Export for TensorRT: an ONNX the targeted TensorRT parses, a `trtexec` build script and, where TensorRT and a
GPU are present, the engine (optimization profiles from --shapes, timing cache, optional refit).

The target (--trt-version 8.5|8.6|10|11 or --jetpack 5|6.0|6.1|6.2; default: the installed TensorRT, else 10)
picks the ONNX opset (17 for 8.x, 18 otherwise; runtimes.runners.trt_targets) and the precision path (builder
flags + calibrator up to 10, strongly typed Q/DQ on 11; runtimes.runners.trt_precision). Every export is checked
statically against that version's ONNX-parser support table (runtimes.runners.trt_check) and validated against
the torch reference with onnxruntime. Engines are tied to the GPU model and TensorRT version, so they are
normally built on the target (e.g. a Jetson) with the written `build_engine.sh`.

Usage:
    python -m export.tensorrt --weights denoise-mobile --precision fp16 --trt-version 8.5 \
        --shapes 1x3x256x256:1x3x720x1280:1x3x1088x1920 -o out/
"""

from __future__ import annotations

import argparse
import dataclasses
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
from export.trt_script import build_script, trtexec_command
from runtimes.core.errors import CliParser, UserError, doc_summary, run_cli
from runtimes.core.formats import get_format
from runtimes.runners.trt_precision import PRECISIONS, PrecisionPlan, plan_for
from runtimes.runners.trt_targets import JETPACK, TrtTarget, resolve_target, target_key

Shape = tuple[int, int, int, int]
DEFAULT_SIZES = ((256, 256), (720, 1280), (1088, 1920))  # the profile's min, opt and max H x W


def default_shapes(nhwc: bool = False) -> tuple[Shape, Shape, Shape]:
    """The default profile in the artifact's layout: (1, 3, H, W), or (1, H, W, 3) with --nhwc."""
    return tuple((1, h, w, 3) if nhwc else (1, 3, h, w) for h, w in DEFAULT_SIZES)


def shapes_text(shapes) -> str:
    return ":".join("x".join(str(d) for d in s) for s in shapes)


DEFAULT_SHAPES = shapes_text(default_shapes(False))


@dataclass(frozen=True)
class TensorRTConfig:
    """TensorRT export options.

    Attributes:
        common: the shared exporter options.
        shapes: (min, opt, max) image shapes in the artifact's layout; None: `default_shapes` in that layout.
        target_version: TensorRT version of the target (8.5, 8.6, 10, 11 or a full version); None: the
            installed TensorRT, else the JetPack's, else 10.
        jetpack: JetPack release of the target (5, 6.0, 6.1, 6.2), an alternative to target_version.
        refit: build a refittable engine (swap weights for another level without a rebuild).
        workspace_mib: builder workspace limit.
    """

    common: ExportConfig
    shapes: tuple[Shape, Shape, Shape] | None = None
    target_version: str | None = None
    jetpack: str | None = None
    refit: bool = False
    workspace_mib: int = 2048


def parse_shapes(text: str, nhwc: bool = False) -> tuple[Shape, Shape, Shape]:
    """'1x3x256x256:1x3x720x1280:1x3x1088x1920' -> (min, opt, max); one shape means min = opt = max."""
    parts = text.split(":")
    if len(parts) not in (1, 3):
        raise UserError(f"malformed --shapes {text!r}; use MIN:OPT:MAX, each NxCxHxW (e.g. {DEFAULT_SHAPES})")
    shapes = []
    for part in parts:
        try:
            dims = tuple(int(v) for v in part.lower().split("x"))
        except ValueError:
            raise UserError(f"malformed shape {part!r} in --shapes; use NxCxHxW, e.g. 1x3x720x1280") from None
        channels = dims[3] if nhwc and len(dims) == 4 else (dims[1] if len(dims) == 4 else None)
        if len(dims) != 4 or channels != 3 or min(dims) < 1:
            layout = "Nx H x W x3 (NHWC)" if nhwc else "Nx3xHxW"
            raise UserError(f"malformed shape {part!r} in --shapes; each must be {layout.replace(' ', '')}")
        shapes.append(dims)
    if len(shapes) == 1:
        shapes *= 3
    lo, opt, hi = shapes
    if not all(a <= b <= c for a, b, c in zip(lo, opt, hi, strict=True)):
        raise UserError(f"--shapes must satisfy min <= opt <= max in every dimension, got {text}")
    return lo, opt, hi


def check_layout(shapes, nhwc: bool) -> tuple[Shape, Shape, Shape]:
    """The profile shapes when each has its 3 channels on the layout's axis; otherwise a one-line `UserError`."""
    axis = 3 if nhwc else 1
    for shape in shapes:
        if len(shape) != 4 or shape[axis] != 3:
            want = "1xHxWx3 (NHWC, as --nhwc asks)" if nhwc else "1x3xHxW (NCHW)"
            raise UserError(f"TensorRT profile shape {'x'.join(map(str, shape))} is not {want}; give --shapes in the "
                            "artifact's layout")
    return tuple(tuple(s) for s in shapes)


def installed_version() -> str | None:
    """The installed TensorRT version, or None."""
    try:
        import tensorrt
    except ImportError:
        return None
    return getattr(tensorrt, "__version__", None)


def gpu_present() -> bool:
    """True when an NVIDIA GPU is visible (via the CUDA driver library)."""
    import ctypes

    try:
        cuda = ctypes.CDLL("libcuda.so.1")
        count = ctypes.c_int(0)
        return cuda.cuInit(0) == 0 and cuda.cuDeviceGetCount(ctypes.byref(count)) == 0 and count.value > 0
    except OSError:
        return False


def _dims(shape: Shape) -> str:
    return "x".join(str(d) for d in shape)


def export_target(cfg: TensorRTConfig, installed: str | None) -> TrtTarget:
    """The TensorRT the export is for: --trt-version, else --jetpack, else the installed one, else 10."""
    version = cfg.target_version or (installed if cfg.jetpack is None else None)
    return resolve_target(version, cfg.jetpack)


def export_tensorrt(cfg: TensorRTConfig) -> ExportResult:
    """Write the ONNX for the target TensorRT and its build script; build the engine where that TensorRT and a GPU
    exist."""
    c = cfg.common
    cfg = dataclasses.replace(cfg, shapes=check_layout(cfg.shapes, c.nhwc) if cfg.shapes else default_shapes(c.nhwc))
    if cfg.workspace_mib < 1:
        raise UserError(f"--workspace-mib must be a whole number of MiB >= 1, got {cfg.workspace_mib}")
    installed = installed_version()
    target = export_target(cfg, installed)
    same = installed is not None and target_key(installed) == target.key
    can_build = same and gpu_present()
    plan = plan_for(c.precision, installed if same else target.key,
                    engine_build=can_build and c.calibration is not None)
    stem = _stem(c)
    fmt = dataclasses.replace(get_format("tensorrt"), suffix=".onnx")
    from export.onnx import onnx_runner

    result = run_export(c, fmt, _builder(cfg, plan, target, installed, stem), _validator(c, plan),
                        _embed_metadata, stem=stem, runner=onnx_runner)
    result.notes.append(_engine_note(result, cfg, plan, target, installed, can_build, stem))
    return result


def _builder(cfg: TensorRTConfig, plan: PrecisionPlan, target: TrtTarget, installed: str | None, stem: str):
    """The `build` step of run_export: the checked ONNX, the trtexec script and the metadata."""
    from export.onnx import save_proto, written_opset

    def build(model, tmp: Path, meta: dict) -> list[Path]:
        meta["toolchain"] = versions("torch", "onnx", "onnxscript", "onnxruntime", "tensorrt")
        proto = tensorrt_onnx(model, cfg.common, plan, target)
        save_proto(proto, tmp)
        cmd = trtexec_command(tmp.name, f"{stem}.engine", cfg.shapes, plan, cfg.refit, cfg.workspace_mib,
                              calib_cache=f"{stem}.calib.cache")
        script = tmp.with_name(f"{stem}.build_engine.sh")
        script.write_text(build_script(cmd, plan, target))
        script.chmod(0o755)
        from runtimes.runners.trt_ops import table_for

        meta.update(artifact_format="tensorrt-onnx", onnx_precision=plan.onnx_precision, opset=written_opset(proto),
                    tensorrt={"target": target.label, "target_major": plan.major, "jetpack": target.jetpack or None,
                              "installed": installed, "shapes": [list(s) for s in cfg.shapes], "trtexec": cmd,
                              "refit": cfg.refit, "strongly_typed": plan.strongly_typed,
                              "support_check": {"status": "passed", "table": table_for(target.key).source}})
        return [script]

    return build


def _validator(c: ExportConfig, plan: PrecisionPlan):
    """The `validate` step: the ONNX on onnxruntime's CPU provider against the torch reference."""
    from export.onnx import validate_onnx

    def validate(model, tmp: Path, meta: dict) -> dict:
        vmeta = dict(meta, precision="int8" if plan.onnx_precision == "int8-qdq" else meta["precision"])
        if plan.onnx_precision == "fp32" and c.precision != "fp32":
            vmeta["precision"] = "fp32"  # weakly typed TensorRT lowers precision at build time; the ONNX is fp32
        result = validate_onnx(model, tmp, vmeta)
        result["runtime"] = "onnxruntime-cpu (the TensorRT-ready ONNX; the engine is validated where it is built)"
        return result

    return validate


def _embed_metadata(path: Path, meta: dict) -> None:
    from export.onnx import embed_metadata

    embed_metadata(path, meta)


def _engine_note(result: ExportResult, cfg: TensorRTConfig, plan: PrecisionPlan, target: TrtTarget,
                 installed: str | None, can_build: bool, stem: str) -> str:
    """Build the engine here when possible; otherwise say how to build it on the target."""
    if can_build:
        from export.trt_engine import build_engine

        return build_engine(result.path, cfg, plan)
    if installed is None:
        why = "TensorRT is not installed here"
    elif target_key(installed) != target.key:
        why = f"TensorRT {installed} is installed here, the target is TensorRT {target.label}"
    else:
        why = "no NVIDIA GPU is visible here"
    return (f"engine not built ({why}): build it on the target (TensorRT {target.label}) with "
            f"sh {result.path.parent / (stem + '.build_engine.sh')}")


def tensorrt_onnx(model, c: ExportConfig, plan: PrecisionPlan, target: TrtTarget):
    """The ONNX for the target and plan (fp32/fp16 from export.onnx, INT8 as Q/DQ calibrated on --calibration
    images), at the target's opset, uint8 cast at the boundary, checked against the target's support table."""
    from export.onnx import onnx_model
    from export.trt_onnx import cast_at_io
    from runtimes.runners.trt_check import check_graph

    spec = graph_spec(c)
    if plan.onnx_precision != "int8-qdq":
        proto = onnx_model(model, spec, plan.onnx_precision, opset=target.opset)
    else:
        from export.qdq import quantize_qdq

        proto = quantize_qdq(onnx_model(model, spec, "fp32", opset=target.opset), model, c)
    proto = cast_at_io(proto)
    check_graph(proto, target)
    return proto


def _stem(c: ExportConfig) -> str:
    from export.base import artifact_stem

    return artifact_stem(c) + "-trt"


def export_with(common: ExportConfig, sizes=None, **options) -> ExportResult:
    """The format table's entry (`runtimes.core.formats`): the TensorRT-ready ONNX (`sizes` is unused; the
    optimisation profile is `shapes`, an option)."""
    return export_tensorrt(TensorRTConfig(common, **options))


def build_parser() -> argparse.ArgumentParser:
    from runtimes.core.cli import positive_int

    parser = CliParser(prog="python -m export.tensorrt", description=doc_summary(__doc__))
    add_common_args(parser, PRECISIONS, default_precision="fp16")
    parser.add_argument("--shapes", default=None,
                        help=f"MIN:OPT:MAX image shapes in the artifact's layout (default {DEFAULT_SHAPES}; with "
                             f"--nhwc {shapes_text(default_shapes(True))})")
    parser.add_argument("--trt-version", "--target-version", dest="trt_version", default=None,
                        help="TensorRT version on the target: 8.5, 8.6, 10 or 11 (a full version such as 8.5.2 also "
                             "works; default: the installed TensorRT, else 10); picks the opset and precision path")
    parser.add_argument("--jetpack", default=None, choices=tuple(JETPACK),
                        help="JetPack release on the target instead of --trt-version: 5/5.1 (TensorRT 8.5), 6/6.0 "
                             "(8.6), 6.1 or 6.2 (10.3)")
    parser.add_argument("--refit", action="store_true", help="build a refittable engine")
    parser.add_argument("--workspace-mib", type=positive_int, default=2048,
                        help="builder workspace limit in MiB (default 2048)")
    return parser


def main(argv: list[str] | None = None) -> int:

    args = build_parser().parse_args(argv)
    common = common_config(args)
    shapes = parse_shapes(args.shapes, common.nhwc) if args.shapes else None
    cfg = TensorRTConfig(common, shapes=shapes, target_version=args.trt_version,
                         jetpack=args.jetpack, refit=args.refit, workspace_mib=args.workspace_mib)
    result = export_tensorrt(cfg)
    print(summary_line(result))
    for note in result.notes:
        print(note)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
