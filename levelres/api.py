"""The public API: restore a numpy image, load a runner, export a weight set.

`restore` and `load` need only the base install (numpy, Pillow, onnxruntime) for ONNX artifacts; other formats
need their runtime's extra, and a checkpoint or a shipped weight-set name needs torch (`levelres[train]`).
`export` needs torch and the format's converter. Every user mistake raises `runtimes.core.errors.UserError`
(`MissingDependency` for a missing extra) with a one-line message.

Usage:
    import levelres
    clean = levelres.restore(noisy_u8, 25, model="out/artifacts/denoise-mobile.onnx")
    with levelres.load("out/artifacts/denoise-mobile.onnx") as runner:
        print(runner.name, runner.meta["level_map"])
    levelres.export("denoise-mobile", "onnx", out_dir="out", precision="fp32")
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import numbers
import warnings
from pathlib import Path

import numpy as np

from runtimes.core.errors import UserError, require

DEFAULT_MAX_MEMORY_MB = 1024.0


def load(model: str | Path, threads: int | None = None):
    """A runner for `model`, not yet started: use it as a context manager (`with levelres.load(m) as r:`).

    Args:
        model: an artifact (.onnx, .tflite, .mlpackage, .engine; the runner comes from the suffix), a `.safetensors`
            checkpoint or a shipped weight-set name (these two run in torch: `levelres[train]`).
        threads: runtime threads (None: the runtime's default).
    """
    from runtimes.apps.restore import make_runner, resolve_model

    kind, path, _ = resolve_model(str(model))
    return make_runner(kind, path, threads)


def restore(image: np.ndarray, level: float, model: str | Path, *, threads: int | None = None,
            input_upscaled: bool = False, max_memory_mb: float = DEFAULT_MAX_MEMORY_MB) -> np.ndarray:
    """Restore one image at `level` with `model`.

    Args:
        image: (H, W, 3) RGB, uint8 or float in [0, 1].
        level: the level in the model's unit (noise sigma on 0-255, JPEG quality 1-100, SR scale). A level past
            the largest training level warns (the model saturates there).
        model: an artifact path, a `.safetensors` checkpoint or a shipped weight-set name (see `load`).
        threads: runtime threads (None: the runtime's default).
        input_upscaled: SR only: `image` is already at the output size; otherwise it is first resized by the scale
            with bicubic interpolation, as in training (needs OpenCV: `levelres[opencv]`).
        max_memory_mb: memory bound for image buffers and activations; larger images are tiled.
    Returns:
        The restored image, same dtype as `image` (uint8 rounded; float clipped to [0, 1]); SR: upscaled.
    """
    from runtimes.apps.photo import Photo
    from runtimes.apps.restore import make_runner, plan_max_pixels, resolve_model, upscale_photo
    from runtimes.apps.tiling import restore as restore_tiled
    from runtimes.core.meta import ArtifactMeta
    from runtimes.runners.factory import enter_runner

    rgb = _as_float_rgb(image)
    kind, path, meta = resolve_model(str(model))
    info = ArtifactMeta.from_dict(meta)
    value = info.check_level(_level_value(level, info.level_map.unit), "level")
    if info.past_training(value):
        warnings.warn(info.past_training(value), stacklevel=2)
    if meta.get("task") == "sr" and not input_upscaled:
        rgb = upscale_photo(Photo(rgb, None, False, 8, None, None, ""), value, max_memory_mb).rgb
    h, w = rgb.shape[:2]
    max_pixels = plan_max_pixels(meta, h, w, max_memory_mb)
    runner = enter_runner(make_runner(kind, path, threads), path)
    try:
        x = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None])
        y = restore_tiled(runner, x, value, max_pixels=max_pixels)[0].transpose(1, 2, 0)
    finally:
        runner.__exit__(None, None, None)
    if not np.isfinite(y).all():
        raise UserError(f"{path} produced non-finite pixels at level {value:g}; re-export or re-train the model")
    y = np.clip(y, 0.0, 1.0)
    if image.dtype == np.uint8:
        return np.round(y * 255.0).astype(np.uint8)
    return y.astype(image.dtype)


def export(weights: str | Path, format: str, out_dir: str | Path = "out", *, sizes=None, **options):
    """Export a weight set to one format, validated against the torch reference by default.

    Args:
        weights: a `.safetensors` checkpoint or a shipped weight-set name.
        format: a format key of the format table (onnx, tflite, coreml, tensorrt).
        out_dir: the output folder.
        sizes: fixed (H, W) sizes for the formats that need them (TFLite; None: the exporter's default).
        **options: the shared export options (`export.base.ExportConfig`: precision, level_mode, level, nhwc,
            io, calibration, validate, name, ...) and the format's own (e.g. `opset` for ONNX).
    Returns:
        The exporter's result: `.path` (the artifact), `.meta` (its metadata, with the validation).
    """
    from runtimes.core.formats import FORMATS

    if format not in FORMATS:
        raise UserError(f"unknown format {format!r}; one of: {', '.join(FORMATS)}")
    require("torch", "train")
    base = importlib.import_module("export.base")
    shared = {f.name for f in dataclasses.fields(base.ExportConfig)} - {"weights", "out_dir"}
    common = base.ExportConfig(weights=str(weights), out_dir=Path(out_dir),
                               **{k: v for k, v in options.items() if k in shared})
    own = {k: v for k, v in options.items() if k not in shared}
    try:
        return base.export_format(FORMATS[format], common, sizes, **own)
    except TypeError as exc:
        raise UserError(f"bad option for the {format} exporter ({exc}); shared options: {', '.join(sorted(shared))}"
                        ) from None


def _as_float_rgb(image) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise UserError(f"image must be a numpy array (H, W, 3), got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
        raise UserError(f"image must be (H, W, 3) RGB, got shape {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float32) / np.float32(255.0)
    if image.dtype.kind != "f":
        raise UserError(f"image must be uint8 or float in [0, 1], got {image.dtype}")
    if not np.isfinite(image).all():
        raise UserError("image has non-finite pixels (NaN or inf)")
    return image.astype(np.float32)


def _level_value(level, unit: str) -> float:
    if isinstance(level, bool) or not isinstance(level, numbers.Real):
        raise UserError(f"level must be a number ({unit}), got {level!r}")
    value = float(level)
    if not math.isfinite(value):
        raise UserError(f"level must be a finite number ({unit}), got {level!r}")
    return value
