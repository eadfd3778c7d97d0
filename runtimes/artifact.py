"""Helpers the runners share for reading an artifact's metadata and checking inputs (numpy-only).

The metadata (`<artifact>.meta.json`) says the layout (NCHW/NHWC), the level mode, and, for
fixed-mode artifacts, the baked level; runners follow it and never guess.
"""

from __future__ import annotations

import numpy as np

from runtimes.base import TensorSpec
from runtimes.errors import UserError


def layout(meta: dict) -> str:
    """'NCHW' or 'NHWC' as recorded at export."""
    value = meta.get("layout", "NCHW")
    if value not in ("NCHW", "NHWC"):
        raise UserError(f"unknown layout {value!r} in the artifact metadata; re-export the model")
    return value


def has_level_input(meta: dict) -> bool:
    """False for fixed-mode artifacts (the level is baked into the weights)."""
    return meta.get("level_mode") != "fixed"


def check_image(meta: dict, image: np.ndarray) -> np.ndarray:
    """The image as contiguous float32, with a clear error for a wrong rank or channel count."""
    arr = np.ascontiguousarray(image, dtype=np.float32)
    axis = 3 if layout(meta) == "NHWC" else 1
    if arr.ndim != 4 or arr.shape[axis] != 3:
        want = "(N, H, W, 3)" if axis == 3 else "(N, 3, H, W)"
        raise UserError(f"image must be float32 {want} for this {layout(meta)} artifact, got shape {arr.shape}")
    return arr


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
    lo, hi = meta.get("level_range", (-np.inf, np.inf))
    if not lo <= float(arr[0]) <= hi:
        raise UserError(f"level {float(arr[0]):g} is outside [{lo:g}, {hi:g}] ({meta.get('level_unit', '')})")
    return arr


def input_specs(meta: dict, height=None, width=None) -> list[TensorSpec]:
    """The artifact's input specs from its metadata (None for dynamic axes)."""
    shape = (None, height, width, 3) if layout(meta) == "NHWC" else (None, 3, height, width)
    specs = [TensorSpec("image", shape, "float32")]
    if has_level_input(meta):
        specs.append(TensorSpec("level", (1,), "float32"))
    return specs
