"""Calibration samples for INT8: images from --calibration, degraded at the neutral and training levels.

Usage:
    for image_hwc, level in calibration_samples(folder, model.level_map, (256, 256)):
        ...
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

MAX_IMAGES = 16


def calibration_samples(folder: Path, level_map, size: tuple[int, int],
                        max_images: int = MAX_IMAGES) -> Iterator[tuple[np.ndarray, float]]:
    """(degraded image (H, W, 3) float32 fitted to `size`, level) pairs, cycling through the levels."""
    from export.validate import fit
    from runtimes.degrade import degrade, image_seed
    from runtimes.images import list_images, read_image

    levels = [level_map.neutral, *level_map.train_levels]
    for i, path in enumerate(list_images(folder)[:max_images]):
        level = levels[i % len(levels)]
        img = degrade(fit(read_image(path, quiet=True), *size), level_map.task, level, image_seed(path.name))
        yield np.ascontiguousarray(img, dtype=np.float32), float(level)


def to_layout(img: np.ndarray, nhwc: bool) -> np.ndarray:
    """(H, W, 3) -> (1, H, W, 3) or (1, 3, H, W) float32."""
    x = img[None] if nhwc else img.transpose(2, 0, 1)[None]
    return np.ascontiguousarray(x, dtype=np.float32)
