import math

import numpy as np
import pytest

from runtimes.core.degrade import degrade, image_seed
from runtimes.core.errors import UserError
from runtimes.core.levels import LevelMap, make_level_map, parse_level
from runtimes.core.metrics import PSNR_CAP, psnr, ssim


@pytest.mark.parametrize(("task", "neutral", "top"), [("denoise", 0, 75), ("dejpeg", 100, 10), ("sr", 1, 5)])
def test_level_map_normalisation(task, neutral, top):
    m = make_level_map(task)
    assert m.strength(neutral) == pytest.approx(0.0)
    assert m.strength(top) == pytest.approx(1.0)
    mid = (neutral + top) / 2
    assert m.level(m.strength(mid)) == pytest.approx(mid)
    assert LevelMap.from_dict(m.to_dict()) == m


def test_levels_past_training_saturate():
    m = make_level_map("denoise")  # trained up to sigma 75
    assert m.strength(90) == 1.0 and m.strength(75) == pytest.approx(1.0)
    assert m.extrapolating().strength(90) == pytest.approx(1.2) and m.outside_trained(90)
    assert LevelMap.from_dict(m.extrapolating().to_dict()).max_strength is None
    old = m.to_dict()
    del old["max_strength"]  # checkpoints written before the field saturate too
    assert LevelMap.from_dict(old) == m


def test_level_checks():
    m = make_level_map("dejpeg")
    with pytest.raises(UserError):
        m.check(0.0)
    with pytest.raises(UserError):
        m.check(math.nan)
    assert m.outside_trained(5) and not m.outside_trained(50)
    for bad in ("abc", "nan", "-3", "inf"):
        with pytest.raises(UserError):
            parse_level(bad)
    with pytest.raises(UserError):
        make_level_map("deblur")


@pytest.mark.parametrize(("task", "level"), [("denoise", 25), ("dejpeg", 30), ("sr", 3)])
def test_degradations_deterministic(task, level, rng):
    clean = (rng.random((40, 52, 3)) * 255).astype(np.uint8)
    a = degrade(clean, task, level, seed=image_seed("x.png"))
    b = degrade(clean, task, level, seed=image_seed("x.png"))
    assert a.dtype == np.float32 and a.shape == clean.shape
    assert np.array_equal(a, b)
    assert psnr(a, clean) < 40


def test_noise_seeded_per_image_and_strength(rng):
    clean = np.full((32, 32, 3), 128, np.uint8)
    a = degrade(clean, "denoise", 25, seed=image_seed("a.png"))
    b = degrade(clean, "denoise", 25, seed=image_seed("b.png"))
    assert not np.array_equal(a, b)
    assert np.std(a - clean / 255.0) * 255 == pytest.approx(25, rel=0.05)
    assert np.array_equal(degrade(clean, "denoise", 0, seed=1), clean / np.float32(255))


def test_psnr_protocol():
    a = np.zeros((5, 7, 3), np.float32)
    assert psnr(a, a) == PSNR_CAP
    b = a.copy()
    b[0, 0, 0] = 1.0  # row 4 / col 6 are cropped (even crop); one pixel of 4*6*3 differs by 255
    assert psnr(b, a) == pytest.approx(10 * math.log10(72), abs=1e-9)
    assert ssim(a, a) == pytest.approx(1.0)


def test_grey_reference_scored_on_grey_value():
    g = np.random.default_rng(0).integers(0, 240, (16, 16, 1)).astype(np.uint8).repeat(3, axis=2)
    noisy = np.clip(g.astype(np.float32) / 255 + 0.02, 0, 1)
    # a uniform +0.02 offset (5.1 levels, rounded to 5) gives 20*log10(255/5) on the grey value
    assert psnr(noisy, g, y_only=True) == pytest.approx(20 * math.log10(255 / 5), abs=0.3)
