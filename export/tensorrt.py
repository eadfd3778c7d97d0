"""Export for TensorRT: a TensorRT-ready ONNX, a `trtexec` build script and, where TensorRT and a GPU
are present, the engine (optimization profiles from --shapes, timing cache, optional refit).

Engines are tied to the GPU model and TensorRT version, so they are normally built on the target
(e.g. a Jetson) with the written `build_engine.sh`. Precision handling: runtimes.trt_precision.

Usage:
    python -m export.tensorrt --weights denoise-mobile --precision fp16 \
        --shapes 1x3x256x256:1x3x720x1280:1x3x1088x1920 -o out/
"""

from __future__ import annotations

import dataclasses
import shlex
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
from runtimes.errors import CliParser, UserError, doc_summary, run_cli
from runtimes.formats import get_format
from runtimes.trt_precision import PRECISIONS, PrecisionPlan, plan_for

DEFAULT_SHAPES = "1x3x256x256:1x3x720x1280:1x3x1088x1920"
Shape = tuple[int, int, int, int]


@dataclass(frozen=True)
class TensorRTConfig:
    """TensorRT export options.

    Attributes:
        common: the shared exporter options.
        shapes: (min, opt, max) image shapes in the artifact's layout.
        target_version: TensorRT version of the target when TensorRT is not installed here (default 10).
        refit: build a refittable engine (swap weights for another level without a rebuild).
        workspace_mib: builder workspace limit.
    """

    common: ExportConfig
    shapes: tuple[Shape, Shape, Shape] = ((1, 3, 256, 256), (1, 3, 720, 1280), (1, 3, 1088, 1920))
    target_version: str | None = None
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


def trtexec_command(onnx_name: str, engine_name: str, shapes, plan: PrecisionPlan, refit: bool = False,
                    workspace_mib: int = 2048, calib_cache: str | None = None) -> list[str]:
    """The exact trtexec command line (level has the static shape [1] in the ONNX)."""
    lo, opt, hi = shapes
    cmd = ["trtexec", f"--onnx={onnx_name}", f"--saveEngine={engine_name}",
           f"--minShapes=image:{_dims(lo)}", f"--optShapes=image:{_dims(opt)}", f"--maxShapes=image:{_dims(hi)}",
           *plan.trtexec_flags, f"--memPoolSize=workspace:{workspace_mib}M",
           f"--timingCacheFile={Path(engine_name).stem}.timing.cache"]
    if plan.calibrator and calib_cache:
        cmd.append(f"--calib={calib_cache}")
    if refit:
        cmd.append("--refit")
    return cmd


def build_script(cmd: list[str], plan: PrecisionPlan) -> str:
    """A shell script that builds the engine on the target with trtexec."""
    return "\n".join([
        "#!/bin/sh",
        "# Build the TensorRT engine ON THE TARGET (engines are tied to the GPU model and TensorRT version).",
        f"# Written for TensorRT {plan.major}.x; precision in the ONNX: {plan.onnx_precision}.",
        "# The level input has the static shape [1]; only the image needs an optimization profile.",
        "set -e",
        'cd "$(dirname "$0")"',
        " ".join(shlex.quote(c) for c in cmd),
        "",
    ])


def export_tensorrt(cfg: TensorRTConfig) -> ExportResult:
    """Write the TensorRT-ready ONNX and the build script; build the engine where TensorRT and a GPU exist."""
    from export.onnx import embed_metadata, save_proto, validate_onnx

    c = cfg.common
    if cfg.workspace_mib < 1:
        raise UserError(f"--workspace-mib must be a whole number of MiB >= 1, got {cfg.workspace_mib}")
    version = installed_version()
    can_build = version is not None and gpu_present()
    plan = plan_for(c.precision, version or cfg.target_version, engine_build=can_build and c.calibration is not None)
    stem = _stem(c)

    def build(model, tmp: Path, meta: dict) -> list[Path]:
        meta["toolchain"] = versions("torch", "onnx", "onnxscript", "onnxruntime", "tensorrt")
        proto = tensorrt_onnx(model, c, plan)
        save_proto(proto, tmp)
        cmd = trtexec_command(tmp.name, f"{stem}.engine", cfg.shapes, plan, cfg.refit, cfg.workspace_mib,
                              calib_cache=f"{stem}.calib.cache")
        script = tmp.with_name(f"{stem}.build_engine.sh")
        script.write_text(build_script(cmd, plan))
        script.chmod(0o755)
        meta.update(artifact_format="tensorrt-onnx", onnx_precision=plan.onnx_precision,
                    tensorrt={"target_major": plan.major, "installed": version, "shapes": [list(s) for s in cfg.shapes],
                              "trtexec": cmd, "refit": cfg.refit, "strongly_typed": plan.strongly_typed})
        return [script]

    def validate(model, tmp: Path, meta: dict) -> dict:
        vmeta = dict(meta, precision="int8" if plan.onnx_precision == "int8-qdq" else meta["precision"])
        if plan.onnx_precision == "fp32" and c.precision != "fp32":
            vmeta["precision"] = "fp32"  # TensorRT 10 lowers precision at build time; the ONNX itself is fp32
        result = validate_onnx(model, tmp, vmeta)
        result["runtime"] = "onnxruntime-cpu (the TensorRT-ready ONNX; the engine is validated where it is built)"
        return result

    fmt = dataclasses.replace(get_format("tensorrt"), suffix=".onnx")
    result = run_export(c, fmt, build, validate, embed_metadata, stem=stem)
    if can_build:
        from export.trt_engine import build_engine

        result.notes.append(build_engine(result.path, cfg, plan))
    else:
        why = "TensorRT is not installed here" if version is None else "no NVIDIA GPU is visible here"
        result.notes.append(f"engine not built ({why}): build it on the target with "
                            f"sh {result.path.parent / (stem + '.build_engine.sh')}")
    return result


def tensorrt_onnx(model, c: ExportConfig, plan: PrecisionPlan):
    """The ONNX for the plan: fp32/fp16 from export.onnx, INT8 as Q/DQ (calibrated on --calibration images)."""
    from export.onnx import onnx_model

    spec = graph_spec(c)
    if plan.onnx_precision != "int8-qdq":
        return onnx_model(model, spec, plan.onnx_precision)
    from export.qdq import quantize_qdq

    return quantize_qdq(onnx_model(model, spec, "fp32"), model, c)


def _stem(c: ExportConfig) -> str:
    from export.base import artifact_stem

    return artifact_stem(c) + "-trt"


def main(argv: list[str] | None = None) -> int:
    from runtimes.bench import positive_int

    parser = CliParser(prog="python -m export.tensorrt", description=doc_summary(__doc__))
    add_common_args(parser, PRECISIONS, default_precision="fp16")
    parser.add_argument("--shapes", default=DEFAULT_SHAPES, help=f"MIN:OPT:MAX image shapes (default {DEFAULT_SHAPES})")
    parser.add_argument("--target-version", default=None, help="TensorRT version on the target (default 10)")
    parser.add_argument("--refit", action="store_true", help="build a refittable engine")
    parser.add_argument("--workspace-mib", type=positive_int, default=2048,
                        help="builder workspace limit in MiB (default 2048)")
    args = parser.parse_args(argv)
    common = common_config(args)
    cfg = TensorRTConfig(common, shapes=parse_shapes(args.shapes, common.nhwc), target_version=args.target_version,
                         refit=args.refit, workspace_mib=args.workspace_mib)
    result = export_tensorrt(cfg)
    print(summary_line(result))
    for note in result.notes:
        print(note)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
