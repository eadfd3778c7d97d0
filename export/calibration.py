"""Calibration samples for INT8: images from --calibration, degraded at the neutral and every training level.

Each image is degraded at several levels and every level from the neutral one to the strongest
training level appears, so the level input, the strength and the level-scaled activations are
calibrated over their whole range (noisy images also exceed [0, 1]: the extremes come from the
strongest level). The pairs rotate the levels over the images, at most `MAX_SAMPLES` in all.

Usage:
    for image_hwc, level in calibration_samples(folder, model.level_map, (256, 256)):
        ...
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

MAX_IMAGES = 16
MAX_SAMPLES = 32


def calibration_levels(level_map) -> list[float]:
    """The neutral level and every training level, weakest to strongest, then the calibrated map's top knot
    when it lies past the largest training level (its strength is then the largest the graph sees)."""
    levels = [level_map.neutral, *sorted(level_map.train_levels, key=level_map.strength)]
    if level_map.max_strength is not None and level_map.max_strength > 1.0 + 1e-9:
        levels.append(level_map.saturation_level)
    return list(dict.fromkeys(float(x) for x in levels))


def calibration_images(folder: Path, max_images: int = MAX_IMAGES) -> list[Path]:
    """The calibration image files that are used (the first `max_images`)."""
    from runtimes.core.images import list_images

    return list_images(folder)[:max_images]


def calibration_samples(folder: Path, level_map, size: tuple[int, int], max_images: int = MAX_IMAGES,
                        max_samples: int = MAX_SAMPLES) -> Iterator[tuple[np.ndarray, float]]:
    """(degraded image (H, W, 3) float32 fitted to `size`, level) pairs.

    Round r gives image i the level `levels[(i + r) % len(levels)]`, so the first round already
    covers every level (given as many images as levels) and later rounds show each image at
    other levels; with few images all (image, level) pairs are used.
    """
    from export.validate import fit
    from runtimes.core.degrade import degrade, image_seed
    from runtimes.core.images import read_image

    levels = calibration_levels(level_map)
    paths = calibration_images(folder, max_images)
    clean: dict[Path, np.ndarray] = {}
    count = 0
    for r in range(len(levels)):
        for i, path in enumerate(paths):
            if count >= max_samples:
                return
            if path not in clean:
                clean[path] = fit(read_image(path, quiet=True), *size)
            level = levels[(i + r) % len(levels)]
            img = degrade(clean[path], level_map.task, level, image_seed(path.name))
            count += 1
            yield np.ascontiguousarray(img, dtype=np.float32), level


def to_layout(img: np.ndarray, nhwc: bool, io: str = "float") -> np.ndarray:
    """(H, W, 3) float in [0, 1] -> (1, H, W, 3) or (1, 3, H, W), float32 or (io "uint8") rounded uint8."""
    x = img[None] if nhwc else img.transpose(2, 0, 1)[None]
    if io == "uint8":
        return np.ascontiguousarray(np.clip(np.rint(x * 255.0), 0, 255), dtype=np.uint8)
    return np.ascontiguousarray(x, dtype=np.float32)
