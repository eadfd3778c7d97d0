"""Build a TensorRT engine ON the Jetson from the project's ONNX, with TensorRT's Python API or trtexec.

The precision rules are runtimes/runners/trt_precision.py's (shared with the exporter): TensorRT 8.5, 8.6 and 10
lower an fp32 ONNX with the FP16 (and INT8) builder flags, INT8 needs the Q/DQ ONNX from
`python -m export.tensorrt --precision int8`; TensorRT 11+ is strongly typed and takes the precision
from the ONNX. The engine gets a `.meta.json` so the project's TensorRT runner reads it.

Usage:
    plan = precision_plan("fp16", "10.3.0", onnx_meta)
    build_with_python(Path("dn.onnx"), Path("dn.engine"), plan, profile_shapes(meta, sizes, images))
"""

from __future__ import annotations

import json
from pathlib import Path

from runtimes.core.errors import UserError
from runtimes.core.formats import meta_path
from runtimes.core.images import atomic_write_bytes
from runtimes.runners.trt_precision import PrecisionPlan, build_serialized_engine, plan_for


def onnx_precision(meta: dict) -> str:
    """What the ONNX itself carries: fp32, fp16 or int8-qdq."""
    return meta.get("onnx_precision") or meta.get("precision", "fp32")


def precision_plan(precision: str, version: str | None, meta: dict) -> PrecisionPlan:
    """The build plan (`runtimes.runners.trt_precision.plan_for`), checked against what the ONNX carries.

    The device has no calibration path: INT8 needs the Q/DQ ONNX, and TensorRT 11+ (strongly typed)
    needs an ONNX exported at the asked precision.
    """
    plan = plan_for(precision, version)
    carried = onnx_precision(meta)
    if precision == "int8" and carried != "int8-qdq":
        raise UserError("INT8 on the device needs the Q/DQ ONNX: export it with python -m export.tensorrt "
                        "--precision int8 --calibration IMAGES")
    if plan.strongly_typed and carried != plan.onnx_precision:
        raise UserError(f"TensorRT {plan.major} is strongly typed: the ONNX carries {carried}, not "
                        f"{plan.onnx_precision}; export it with python -m export.tensorrt --precision {precision} "
                        f"--trt-version {plan.major}")
    return plan


def profile_shapes(meta: dict, sizes, image_shapes) -> tuple[tuple[int, ...], ...]:
    """(min, opt, max) image shapes covering the latency sizes and the accuracy images (opt = first size)."""
    hw = [tuple(s) for s in sizes] + [tuple(s[:2]) for s in image_shapes]
    lo = (min(h for h, _ in hw), min(w for _, w in hw))
    hi = (max(h for h, _ in hw), max(w for _, w in hw))
    shape = (lambda h, w: (1, h, w, 3)) if meta.get("layout") == "NHWC" else (lambda h, w: (1, 3, h, w))
    return shape(*lo), shape(*tuple(sizes[0])), shape(*hi)


def python_tensorrt():
    """TensorRT's Python module, or None when it is not importable."""
    try:
        import tensorrt
    except ImportError:
        return None
    return tensorrt


def build_with_python(onnx: Path, engine: Path, plan: PrecisionPlan, shapes, workspace_mib: int = 2048) -> float:
    """Build and save the engine with TensorRT's builder API; returns the build time in seconds."""
    import time

    trt = python_tensorrt()
    if trt is None:
        raise UserError("TensorRT's Python API is not importable: sudo apt install python3-libnvinfer (JetPack), "
                        "or build with trtexec (--trtexec)")
    t0 = time.perf_counter()
    atomic_write_bytes(engine, build_serialized_engine(trt, onnx, plan, shapes, workspace_mib))
    return time.perf_counter() - t0


def write_engine_meta(onnx_meta: dict, engine: Path, plan: PrecisionPlan, shapes, built_with: str, how: str) -> dict:
    """The engine's `.meta.json`: the ONNX's metadata with the build recorded."""
    meta = dict(onnx_meta, artifact_format="tensorrt", precision=plan.precision, validation={})
    meta["tensorrt"] = {**onnx_meta.get("tensorrt", {}), "built_with": built_with, "built_on": "device", "how": how,
                        "shapes": [list(s) for s in shapes], "flags": list(plan.trtexec_flags)}
    atomic_write_bytes(meta_path(engine), (json.dumps(meta, indent=2, default=str) + "\n").encode())
    return meta
