"""Build a TensorRT engine from the TensorRT-ready ONNX (only where TensorRT and a GPU are present).

Optimization profile from --shapes (level: static [1]), precision per runtimes.runners.trt_precision (builder
flags and the entropy calibrator on TensorRT 10, strongly typed on TensorRT 11), a timing cache
beside the engine, and the REFIT flag on request.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from runtimes.core.errors import require
from runtimes.core.formats import meta_path
from runtimes.core.images import atomic_write_bytes
from runtimes.runners.trt_precision import PrecisionPlan, build_serialized_engine


def _calibrator(trt, cfg, model_meta: dict, cache: Path):
    """An entropy calibrator over the calibration images at the profile's opt shape (one image per batch)."""
    from export.calibration import calibration_samples, to_layout
    from runtimes.core.levels import LevelMap

    cuda = require("cuda.bindings.runtime", "tensorrt")
    lm = LevelMap.from_dict(model_meta["level_map"])
    nhwc = cfg.common.nhwc
    h, w = (cfg.shapes[1][1:3] if nhwc else cfg.shapes[1][2:4])
    samples = list(calibration_samples(cfg.common.calibration, lm, (h, w)))

    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            super().__init__()
            self._i, self._buffers = 0, {}

        def get_batch_size(self):
            return 1

        def get_batch(self, names):
            if self._i >= len(samples):
                return None
            img, level = samples[self._i]
            self._i += 1
            host = {"image": to_layout(img, nhwc, cfg.common.io), "level": np.array([level], np.float32)}
            ptrs = []
            for name in names:
                arr = host[name]
                if name not in self._buffers:
                    self._buffers[name] = cuda.cudaMalloc(arr.nbytes)[1]
                cuda.cudaMemcpy(self._buffers[name], arr.ctypes.data, arr.nbytes,
                                cuda.cudaMemcpyKind.cudaMemcpyHostToDevice)
                ptrs.append(int(self._buffers[name]))
            return ptrs

        def read_calibration_cache(self):
            return cache.read_bytes() if cache.is_file() else None

        def write_calibration_cache(self, data):
            cache.write_bytes(bytes(data))

    return Calibrator()


def build_engine(onnx_path: Path, cfg, plan: PrecisionPlan) -> str:
    """Build `<stem>.engine` (+ meta) next to the ONNX; returns a one-line note."""
    trt = require("tensorrt", "tensorrt")
    stem = onnx_path.name.removesuffix(".onnx")
    meta = json.loads(meta_path(onnx_path).read_text())
    calibrator = _calibrator(trt, cfg, meta, onnx_path.with_name(stem + ".calib.cache")) if plan.calibrator else None
    cache = onnx_path.with_name(stem + ".timing.cache")
    serialized = build_serialized_engine(trt, onnx_path, plan, cfg.shapes, cfg.workspace_mib, refit=cfg.refit,
                                         calibrator=calibrator, timing_cache=cache)
    engine = onnx_path.with_name(stem + ".engine")
    atomic_write_bytes(engine, serialized)
    meta.update(artifact_format="tensorrt", tensorrt={**meta["tensorrt"], "built_with": trt.__version__},
                validation={})
    meta["validation"] = _validate_engine(engine, meta, cfg.common.weights)
    meta_path(engine).write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return f"engine {engine} built with TensorRT {trt.__version__}; {meta['validation']['status']}"


def _validate_engine(engine: Path, meta: dict, weights: str) -> dict:
    """Validate the engine with the project's TensorRT runner when it is available."""
    from export.validate import not_validated, validate_runner

    try:
        from runtimes.runners.tensorrt import TensorRTRunner
    except ImportError as exc:
        return not_validated(f"TensorRT runner unavailable ({exc})")
    from train.checkpoint import load_checkpoint

    model, _ = load_checkpoint(weights)
    vmeta = dict(meta, precision="int8" if meta["precision"] == "int8" else meta["precision"])
    meta_path(engine).write_text(json.dumps(meta, indent=2, default=str) + "\n")
    with TensorRTRunner(engine) as runner:
        return validate_runner(model, runner, vmeta)
