"""Helpers the runners share for reading an artifact's metadata and checking inputs (numpy-only).

The metadata (`<artifact>.meta.json`) says the layout (NCHW/NHWC), the level mode, and, for
fixed-mode artifacts, the baked level; runners follow it and never guess.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runtimes.core.errors import UserError


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple  # ints, or None / str for dynamic axes
    dtype: str


def layout(meta: dict) -> str:
    """'NCHW' or 'NHWC' as recorded at export."""
    value = meta.get("layout", "NCHW")
    if value not in ("NCHW", "NHWC"):
        raise UserError(f"unknown layout {value!r} in the artifact metadata; re-export the model")
    return value


def has_level_input(meta: dict) -> bool:
    """False for fixed-mode artifacts (the level is baked into the weights)."""
    return meta.get("level_mode") != "fixed"


def image_dtype(meta: dict) -> str:
    """'uint8' for artifacts exported with `--io uint8` (0-255 in and out), else 'float32' ([0, 1])."""
    return "uint8" if meta.get("io") == "uint8" else "float32"


def check_image(meta: dict, image: np.ndarray) -> np.ndarray:
    """The image as a contiguous array of the artifact's type; a clear error for a wrong rank, channels or type."""
    dtype = image_dtype(meta)
    image = np.asarray(image)
    if dtype == "uint8" and image.dtype != np.uint8:
        raise UserError(f"this artifact takes uint8 images (0-255), got {image.dtype}; convert with "
                        "runtimes.core.artifact.encode_image or export with --io float")
    arr = np.ascontiguousarray(image, dtype=dtype)
    axis = 3 if layout(meta) == "NHWC" else 1
    if arr.ndim != 4 or arr.shape[axis] != 3:
        want = "(N, H, W, 3)" if axis == 3 else "(N, 3, H, W)"
        raise UserError(f"image must be {dtype} {want} for this {layout(meta)} artifact, got shape {arr.shape}")
    return arr


def encode_image(meta: dict, image: np.ndarray) -> np.ndarray:
    """A float32 image in [0, 1] (NCHW) as the artifact takes it: its layout and type (uint8: rounded 0-255)."""
    x = image.transpose(0, 2, 3, 1) if layout(meta) == "NHWC" else image
    if image_dtype(meta) == "uint8":
        return np.ascontiguousarray(np.clip(np.rint(x * 255.0), 0, 255), dtype=np.uint8)
    return np.ascontiguousarray(x, dtype=np.float32)


def decode_output(meta: dict, restored: np.ndarray) -> np.ndarray:
    """The artifact's output as float32 NCHW in [0, 1] (the inverse of `encode_image`)."""
    y = np.asarray(restored)
    y = y.astype(np.float32) / 255.0 if y.dtype == np.uint8 else y.astype(np.float32, copy=False)
    return y.transpose(0, 3, 1, 2) if layout(meta) == "NHWC" else y


def check_level(meta: dict, level) -> np.ndarray | None:
    """The level as float32 (1,) for graphs with a level input; None for fixed-mode graphs.

    A fixed-mode artifact accepts no level or its own baked level; any other level is an error
    rather than being silently ignored.
    """
    if not has_level_input(meta):
        if level is not None:
            value = float(np.asarray(level, dtype=np.float64).reshape(-1)[0])
            fixed = float(meta["fixed_level"])
            if abs(value - fixed) > 1e-6 * max(1.0, abs(fixed)):
                raise UserError(f"this artifact is fixed at {meta.get('level_unit', 'level')} {fixed:g}; "
                                f"got level {value:g} (export with --level-mode folded for a runtime level)")
        return None
    if level is None:
        raise UserError(f"input 'level' (float32 [1], {meta.get('level_unit', 'the task unit')}) is required")
    arr = np.asarray(level, dtype=np.float32).reshape(-1)
    if arr.shape != (1,) or not np.isfinite(arr).all():
        raise UserError(f"level must be one finite number, float32 shape [1]; got {np.asarray(level)!r}")
    lm = meta.get("level_map") or {}  # the one source of the range, for artifacts and checkpoints alike
    lo, hi = float(lm.get("lo", -np.inf)), float(lm.get("hi", np.inf))
    if not lo <= float(arr[0]) <= hi:
        raise UserError(f"level {float(arr[0]):g} is outside [{lo:g}, {hi:g}] ({lm.get('unit', '')})")
    return arr


def input_specs(meta: dict, height=None, width=None) -> list[TensorSpec]:
    """The artifact's input specs from its metadata (None for dynamic axes)."""
    shape = (None, height, width, 3) if layout(meta) == "NHWC" else (None, 3, height, width)
    specs = [TensorSpec("image", shape, image_dtype(meta))]
    if has_level_input(meta):
        specs.append(TensorSpec("level", (1,), "float32"))
    return specs
