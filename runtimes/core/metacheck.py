"""Checks of the model metadata that every checkpoint and artifact carries (numpy-free, torch-free).

A level map (`runtimes.core.levels.LevelMap.to_dict`) must describe a usable strength curve: finite numbers, strength 0
at the task's neutral level and rising with the degradation, strength 1 (the largest training level) inside
the unit's range, a positive saturation no higher than the range allows, increasing calibration knots. An
architecture's sizes (channels, blocks, tail channels, scale) must be whole numbers in sane bounds, so that
a hostile header cannot ask the allocator for terabytes. `LevelMap.from_dict`, the checkpoint loader and
the runners' metadata reader call these, so every load is checked in one place.

Usage:
    check_level_map(meta["level_map"], "model.onnx.meta.json")
    check_arch(meta["arch"], "best.safetensors")
"""

from __future__ import annotations

import math

NEUTRAL = {"denoise": 0.0, "dejpeg": 100.0, "sr": 1.0}  # the level of strength 0 (runtimes.core.levels.NEUTRAL)
SIGN = {"denoise": 1.0, "dejpeg": -1.0, "sr": 1.0}  # strength rises with sigma and scale, falls with quality
MAX_SLOPE_SPAN = 1e3  # strength may not reach 1 within less than 1/1000 of the unit's range
ARCH_BOUNDS = {"channels": (1, 512), "blocks": (0, 64), "tail_channels": (0, 512), "scale": (1, 8),
               "in_channels": (1, 16), "depth": (0, 4), "grid": (1, 128), "receptive_field": (1, 100_000)}


def _fail(source: str, what: str, fix: str = "re-train or re-export it"):
    from runtimes.core.errors import UserError

    raise UserError(f"{source}: {what}; {fix}")


def _number(d: dict, key: str, source: str, optional: bool = False) -> float | None:
    value = d.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(source, f"level map field {key!r} must be a finite number, got {value!r}")
    return float(value)


def check_level_map(d, source: str = "model") -> None:
    """A `UserError` naming `source` when a level-map dict is not a usable strength curve (see the module doc)."""
    if not isinstance(d, dict) or d.get("task") not in NEUTRAL:
        _fail(source, f"the level map has no known task ({d.get('task') if isinstance(d, dict) else d!r})")
    task = d["task"]
    a, b, lo, hi = (_number(d, k, source) for k in ("a", "b", "lo", "hi"))
    if not lo < hi:
        _fail(source, f"level map range [{lo:g}, {hi:g}] is empty")
    if a * SIGN[task] <= 0:
        _fail(source, f"level map slope a = {a:g} does not make the strength rise with the {task} degradation")
    if abs(a) * (hi - lo) > MAX_SLOPE_SPAN:
        _fail(source, f"level map slope a = {a:g} is absurdly steep for the range [{lo:g}, {hi:g}]")
    if abs(a * NEUTRAL[task] + b) > 1e-6 * max(1.0, abs(b)):
        _fail(source, f"level map gives strength {a * NEUTRAL[task] + b:g}, not 0, at the neutral level "
                      f"{NEUTRAL[task]:g}")
    top = max(a * lo + b, a * hi + b)  # the largest linear value inside the range
    if top < 1.0 - 1e-6:
        _fail(source, f"level map slope a = {a:g} never reaches strength 1 inside [{lo:g}, {hi:g}]")
    cap = _number(d, "max_strength", source, optional=True)
    if cap is not None and not 0.0 < cap <= top + 1e-6:
        _fail(source, f"level map max_strength {cap:g} must be in (0, {top:g}]")
    for lv in d.get("train_levels") or ():
        if isinstance(lv, bool) or not isinstance(lv, (int, float)) or not lo <= lv <= hi:
            _fail(source, f"training level {lv!r} is outside the level map range [{lo:g}, {hi:g}]")
    _check_knots(d.get("knots") or (), top, source)


def _check_knots(knots, top: float, source: str) -> None:
    prev = (0.0, 0.0)
    for knot in knots:
        ok = isinstance(knot, (list, tuple)) and len(knot) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in knot)
        if not ok or not (knot[0] > prev[0] and knot[1] > prev[1]) or knot[0] > top + 1e-6 or knot[1] > 1e3:
            _fail(source, f"level map calibration knot {knot!r} is not finite, increasing and inside the range")
        prev = (float(knot[0]), float(knot[1]))


def check_arch(arch, source: str = "model") -> None:
    """A `UserError` naming `source` when an architecture's sizes are not whole numbers within `ARCH_BOUNDS`."""
    if arch is None:
        return
    if not isinstance(arch, dict):
        _fail(source, f"the architecture metadata is not a mapping ({type(arch).__name__})")
    for key, (lo, hi) in ARCH_BOUNDS.items():
        if key not in arch:
            continue
        value = arch[key]
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            _fail(source, f"architecture {key} = {value!r} is outside {lo}..{hi}")
