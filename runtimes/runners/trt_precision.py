"""TensorRT precision handling in one version-aware place.

TensorRT 8.5, 8.6 and 10 take weakly typed networks: FP16/INT8 are builder flags, INT8 via an entropy
calibrator over calibration images (or explicit Q/DQ in the ONNX); 8.x networks are created with the
EXPLICIT_BATCH flag (the ONNX parser needs it; 10 has no implicit batch). TensorRT 11 is strongly typed:
the precision lives in the ONNX (fp16 casts around an fp16 graph, INT8 as Q/DQ nodes) and the
builder only honours it. `plan_for` returns everything the exporter's engine builder, its `trtexec`
script and the on-device builder (devices/jetson) need. Torch-free, so it ships to devices.
"""

from __future__ import annotations

from dataclasses import dataclass

from runtimes.core.errors import UserError

PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_TARGET_MAJOR = 10


@dataclass(frozen=True)
class PrecisionPlan:
    """How one precision is realised for one TensorRT major version.

    Attributes:
        precision: fp32, fp16 or int8.
        major: TensorRT major version.
        onnx_precision: what the ONNX carries: fp32, fp16 (casts + fp16 weights) or int8-qdq.
        builder_flags: `trt.BuilderFlag` names to set.
        strongly_typed: create the network with the STRONGLY_TYPED flag.
        calibrator: use the entropy calibrator on the calibration images (TensorRT 10 implicit INT8).
        trtexec_flags: the matching trtexec flags.
    """

    precision: str
    major: int
    onnx_precision: str
    builder_flags: tuple[str, ...]
    strongly_typed: bool
    calibrator: bool
    trtexec_flags: tuple[str, ...]


def major_version(version: str | None) -> int:
    """Major version from a version string ('10.3.0' -> 10); the default target when None."""
    if not version:
        return DEFAULT_TARGET_MAJOR
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        raise UserError(f"cannot read a TensorRT version from {version!r}; give e.g. 8.5, 10 or 10.3") from None


def _check_supported(version: str | None, major: int) -> None:
    """8.5, 8.6 and 10+ only (the versions runtimes.runners.trt_targets knows)."""
    if major >= 10:
        return
    from runtimes.runners.trt_targets import target_key

    target_key(str(version))  # raises the one-line error for 8.4, 9.x, ...


def plan_for(precision: str, version: str | None = None, engine_build: bool = False) -> PrecisionPlan:
    """The precision plan for a TensorRT version.

    Args:
        precision: fp32, fp16 or int8.
        version: TensorRT version string (installed or the target's: 8.5, 8.6, 10, 11, or a full version);
            None assumes TensorRT 10.
        engine_build: True when building in Python with calibration images (TensorRT 10 INT8 then uses
            the entropy calibrator on an fp32 ONNX); the trtexec script always uses Q/DQ for INT8.
    """
    if precision not in PRECISIONS:
        raise UserError(f"TensorRT precision {precision!r} is not supported; choose one of {', '.join(PRECISIONS)}")
    major = major_version(version)
    _check_supported(version, major)
    if major >= 11:  # strongly typed: precision comes from the ONNX
        onnx_p = {"fp32": "fp32", "fp16": "fp16", "int8": "int8-qdq"}[precision]
        return PrecisionPlan(precision, major, onnx_p, (), True, False, ("--stronglyTyped",))
    if precision == "fp32":
        return PrecisionPlan(precision, major, "fp32", (), False, False, ())
    if precision == "fp16":
        return PrecisionPlan(precision, major, "fp32", ("FP16",), False, False, ("--fp16",))
    if engine_build:
        return PrecisionPlan(precision, major, "fp32", ("INT8", "FP16"), False, True, ("--int8", "--fp16"))
    return PrecisionPlan(precision, major, "int8-qdq", ("INT8", "FP16"), False, False, ("--int8", "--fp16"))


def build_serialized_engine(trt, onnx_path, plan: PrecisionPlan, shapes, workspace_mib: int = 2048,
                            refit: bool = False, calibrator=None, timing_cache=None) -> bytes:
    """Parse the ONNX and build a serialized engine with TensorRT's builder API (one optimisation profile).

    Shared by the exporter (`export/trt_engine.py`) and the on-device builder (`devices/jetson/engine.py`).

    Args:
        trt: the imported `tensorrt` module.
        onnx_path: the project's TensorRT-ready ONNX (`pathlib.Path`).
        plan: the precision plan (`plan_for`): builder flags, strongly typed or not.
        shapes: (min, opt, max) shapes of the `image` input.
        workspace_mib: builder workspace limit.
        refit: build a refittable engine (weights mode).
        calibrator: an INT8 calibrator for TensorRT 10's implicit INT8, or None.
        timing_cache: a `pathlib.Path` to read the timing cache from and write it back to, or None.
    Returns:
        The serialized engine.
    """
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if plan.strongly_typed else 0
    if plan.major < 10:  # TensorRT 8's ONNX parser needs an explicit-batch network
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise UserError(f"TensorRT could not parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
    for flag in plan.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    if refit:
        config.set_flag(trt.BuilderFlag.REFIT)
    profile = builder.create_optimization_profile()
    profile.set_shape("image", *shapes)
    config.add_optimization_profile(profile)
    if calibrator is not None:
        config.set_calibration_profile(profile)
        config.int8_calibrator = calibrator
    if timing_cache is not None:
        cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
        config.set_timing_cache(cache, ignore_mismatch=True)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise UserError(f"TensorRT failed to build an engine from {onnx_path.name} (see the TensorRT log above)")
    if timing_cache is not None:
        timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))
    return bytes(serialized)
