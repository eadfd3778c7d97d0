"""Shared fixtures: a tiny random-weight model and the location of the real benchmark sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
SAMPLES = ROOT / "samples"

# Prelude of a subprocess script in which `import torch` fails (what a Jetson or phone host without torch sees).
BLOCK_TORCH = """
import importlib, pkgutil, sys

class BlockTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked for this test")

sys.meta_path.insert(0, BlockTorch())
"""


def dataset(rel: str) -> Path:
    """A benchmark folder, or skip the test with the reason."""
    path = DATASETS / rel
    if not path.is_dir():
        pytest.skip(f"benchmark set {rel} not present (expected beside the project in shared/datasets)")
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def tiny_image_dir(tmp_path_factory):
    """A folder of a few synthetic photos (smooth gradients + edges), enough to train a few steps."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("imgs")
    r = np.random.default_rng(1)
    for i in range(4):
        yy, xx = np.mgrid[0:72, 0:80] / 80.0
        base = np.stack([np.sin(3 * xx + i), np.cos(4 * yy - i), xx * yy], axis=2)
        img = (np.clip(0.5 + 0.4 * base + 0.05 * r.standard_normal(base.shape), 0, 1) * 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"img{i}.png")
    return folder
