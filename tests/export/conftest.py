"""Fixtures for the exporter tests: tiny random-weight checkpoints, calibration images, a reference."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the project root (not a package folder), for runs without an install
    sys.path.insert(0, str(REPO))

def _save(path: Path, form: str = "linear", seed: int = 0, block_levels: int = 2, offset: float = 0.0,
          out_gate: str = "strength", name: str = "tiny", biases: str = "constant", head: str = "plain") -> Path:
    torch = pytest.importorskip("torch")
    from runtimes.core.levels import make_level_map
    from train.checkpoint import save_checkpoint
    from train.model import build_model, preset

    torch.manual_seed(seed)
    lmap = make_level_map("denoise")
    lmap = lmap.with_offset(offset) if offset else lmap
    model = build_model(preset(name, form=form, block_levels=block_levels, out_gate=out_gate, biases=biases,
                               head=head), lmap)
    if form == "shift":  # the level-moved biases (and an affine head's B) start at zero: make them count
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith(("bias_level", "weight_b", "bias_b")):
                    p.normal_(0.0, 0.5)
    return save_checkpoint(path, model, {"note": "random weights for tests"})


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory) -> Path:
    """A tiny random-weight denoise checkpoint (linear form)."""
    return _save(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")


@pytest.fixture(scope="session")
def affine_ckpt(tmp_path_factory) -> Path:
    """A tiny random-weight denoise checkpoint in the affine form."""
    return _save(tmp_path_factory.mktemp("ckpt") / "tinyaff.safetensors", form="affine", seed=1)


@pytest.fixture(scope="session")
def shift_ckpt(tmp_path_factory) -> Path:
    """A tiny random-weight denoise checkpoint in the shift form, one level conv per block, an offset level map and
    the unit output gate."""
    return _save(tmp_path_factory.mktemp("ckpt") / "tinyshift.safetensors", form="shift", seed=2, block_levels=1,
                 offset=0.4, out_gate="unit")


@pytest.fixture(scope="session")
def unet_ckpt(tmp_path_factory) -> Path:
    """A tiny random-weight multi-scale (unet topology) denoise checkpoint in the shift form."""
    return _save(tmp_path_factory.mktemp("ckpt") / "tinyunet.safetensors", form="shift", seed=3, name="unet-tiny")


@pytest.fixture(scope="session")
def unet_level_bias_ckpt(tmp_path_factory) -> Path:
    """A tiny random-weight unet denoise checkpoint whose every bias moves with the level (unit output gate)."""
    return _save(tmp_path_factory.mktemp("ckpt") / "tinyunetlb.safetensors", form="shift", seed=4, name="unet-tiny",
                 out_gate="unit", biases="level")


@pytest.fixture(scope="session")
def unet_affine_head_ckpt(tmp_path_factory) -> Path:
    """A tiny random-weight unet denoise checkpoint in the shift form with an affine head."""
    return _save(tmp_path_factory.mktemp("ckpt") / "tinyunetah.safetensors", form="shift", seed=5, name="unet-tiny",
                 head="affine")


@pytest.fixture(scope="session")
def calib_dir(tmp_path_factory) -> Path:
    """Six small synthetic calibration images."""
    from export.validate import synthetic_image
    from runtimes.core.images import write_image

    folder = tmp_path_factory.mktemp("calib")
    base = synthetic_image(96, 128)
    for i in range(6):
        write_image(folder / f"c{i}.png", np.roll(base, 11 * i, axis=1))
    return folder


@pytest.fixture(scope="session")
def reference(tiny_ckpt, affine_ckpt):
    """`reference(ckpt, image_nchw, level) -> restored` with the PyTorch model."""
    import torch

    from train.checkpoint import load_checkpoint

    models = {}

    def run(ckpt, image: np.ndarray, level: float) -> np.ndarray:
        if ckpt not in models:
            models[ckpt] = load_checkpoint(ckpt)[0]
        with torch.no_grad():
            return models[ckpt](torch.from_numpy(image), torch.tensor([level])).numpy()

    return run
