"""The int8 activation range rule shared by quantization-aware training (`train.qat`) and the TFLite
full-integer export (`export.tflite_quant`): per training level the least-error range, then their union.

It sits in train/ because both use it and export/ builds on train/, never the other way (numpy only).

Usage:
    lo, hi = level_union_range([values_at_sigma_15, values_at_sigma_75])
"""

from __future__ import annotations

import numpy as np

MSE_SCALES = np.linspace(0.2, 1.0, 41)  # candidate ranges: these fractions of each level's min/max


def level_union_range(per_level: list[np.ndarray]) -> tuple[float, float]:
    """The smallest range holding every level's least-error range (`mse_range`), and 0."""
    ranges = [mse_range(v) for v in per_level if v.size]
    return min([0.0, *(lo for lo, _ in ranges)]), max([0.0, *(hi for _, hi in ranges)])


def mse_range(v: np.ndarray) -> tuple[float, float]:
    """The (lo, hi) from `MSE_SCALES` x (min, max) of v with the least mean squared int8 error (0 inside)."""
    vmin, vmax = min(float(v.min()), 0.0), max(float(v.max()), 0.0)
    best, best_range = np.inf, (vmin, vmax)
    v = v.astype(np.float32)
    for a in MSE_SCALES:
        lo, hi = a * vmin, a * vmax
        step = (hi - lo) / 255.0
        if step <= 0:
            continue
        err = float(np.mean(np.square(np.clip(np.round((v - lo) / step), 0, 255) * step + lo - v)))
        if err < best:
            best, best_range = err, (lo, hi)
    return best_range
