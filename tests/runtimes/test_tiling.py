"""Tiled inference: tile geometry, exact blending, fixed-size artifacts, and parity with whole frames."""

from __future__ import annotations

import numpy as np
import pytest

from runtimes.apps.tiling import (
    TileConfig,
    default_overlap,
    pick_tile,
    plan_tiles,
    ramp_window,
    restore,
    tile_image,
    tile_starts,
)
from runtimes.core.errors import UserError


@pytest.mark.parametrize("length,tile,overlap", [(256, 256, 32), (482, 128, 32), (322, 96, 16), (1280, 256, 0),
                                                 (1000, 130, 40)])
def test_tile_starts_cover_with_overlap(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] == length - tile
    assert all(s % 2 == 0 for s in starts)
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:], strict=False))


def test_ramp_window():
    w = ramp_window(64, 16, left=True, right=False)
    assert w.min() > 0 and w[-1] == 1 and np.all(np.diff(w[:16]) > 0)
    np.testing.assert_allclose(ramp_window(64, 16, True, True)[-16:][::-1], w[:16])
    rise = ramp_window(64, 16, True, False)[:16]
    np.testing.assert_allclose(rise + rise[::-1], 1.0, atol=1e-6)  # complementary ramps sum to one


def test_tile_config_validation():
    with pytest.raises(UserError, match="multiple of 2"):
        TileConfig((255, 256))
    with pytest.raises(UserError, match="multiple of 2"):
        TileConfig((256, 256), overlap=7)
    with pytest.raises(UserError, match="multiple of 4"):
        TileConfig((258, 256), overlap=8, grid=4)
    with pytest.raises(UserError, match="half"):
        TileConfig((64, 64), overlap=32)


def test_blend_is_exact_for_a_pointwise_function():
    img = np.random.default_rng(0).random((3, 301, 517), dtype=np.float32)
    out = tile_image(lambda x: x * 2.0 + 1.0, img, TileConfig((64, 96), 16))
    np.testing.assert_allclose(out, img * 2.0 + 1.0, atol=1e-5)


class FixedSizeRunner:
    """A fake NHWC artifact that accepts only its fixed sizes and scales by the level."""

    name = "fake"

    def __init__(self, sizes, layout="NHWC", level_mode="folded"):
        self.meta = {"sizes": sizes, "layout": layout, "level_mode": level_mode}
        self.calls = []

    def run(self, inputs):
        x = inputs["image"]
        hw = list(x.shape[1:3]) if self.meta["layout"] == "NHWC" else list(x.shape[2:4])
        assert hw in self.meta["sizes"], hw
        self.calls.append(hw)
        scale = 1.0 if "level" not in inputs else 1.0 + float(inputs["level"][0])
        return {"restored": x * scale}


def test_restore_tiles_fixed_size_artifact():
    r = FixedSizeRunner([[64, 64], [128, 128]])
    img = np.random.default_rng(1).random((2, 3, 200, 150), dtype=np.float32)
    out = restore(r, img, 0.5)
    np.testing.assert_allclose(out, img * 1.5, atol=1e-5)
    assert r.calls and all(c == r.calls[0] for c in r.calls)


def test_restore_small_frame_pads_and_fixed_mode_sends_no_level():
    r = FixedSizeRunner([[64, 64]], layout="NCHW", level_mode="fixed")
    img = np.random.default_rng(2).random((1, 3, 31, 50), dtype=np.float32)
    np.testing.assert_allclose(restore(r, img, 25.0), img, atol=1e-6)


def test_plan_tiles():
    assert plan_tiles({"sizes": None}, 720, 1280) is None
    assert plan_tiles({"sizes": [[720, 1280]]}, 720, 1280) is None
    assert plan_tiles({"sizes": None}, 720, 1280, max_pixels=256 * 256).tile == (256, 256)
    assert plan_tiles({"signatures": {"s": {"size": [256, 256]}}}, 481, 321).tile == (256, 256)
    assert pick_tile([[64, 64], [256, 256], [720, 1280]], 481, 321) == (256, 256)
    assert default_overlap((256, 256)) == 32 and default_overlap((16, 16)) == 6
    with pytest.raises(UserError, match="fixed sizes"):
        plan_tiles({"sizes": [[64, 64]]}, 100, 100, tile=TileConfig((32, 32), 8))


def _scores(runner, cbsd68, n=3, tile=None):
    from runtimes.core.degrade import degrade, image_seed
    from runtimes.core.images import list_images, read_uint8
    from runtimes.core.metrics import psnr

    tile = tile or TileConfig((128, 128), 32)
    rows = []
    for path in list_images(cbsd68)[:n]:
        clean = read_uint8(path)
        x = degrade(clean, "denoise", 25, seed=image_seed(path.name)).transpose(2, 0, 1)[None]
        whole = restore(runner, x, 25.0)[0].transpose(1, 2, 0)
        tiled = restore(runner, x, 25.0, tile)[0].transpose(1, 2, 0)
        rows.append((psnr(whole, clean), psnr(tiled, clean), psnr(tiled, whole)))
    return rows


@pytest.mark.realdata
def test_tiled_matches_whole_frame_on_cbsd68(cbsd68, random_ckpt, tmp_path):
    from train.reference import TorchRunner

    ckpt = random_ckpt(tmp_path / "small.safetensors", "mobile", out_gain=1.0, channels=16, blocks=3)
    with TorchRunner(ckpt, threads=2) as r:
        rows = _scores(r, cbsd68)
    whole, tiled = np.mean([a for a, _, _ in rows]), np.mean([b for _, b, _ in rows])
    assert abs(whole - tiled) < 0.05, rows
    assert all(abs(a - b) < 0.05 and vs_whole > 50 for a, b, vs_whole in rows), rows


def test_grid_follows_the_network_stride():
    starts = tile_starts(1000, 128, 32, grid=4)
    assert starts[0] == 0 and starts[-1] == 1000 - 128 and all(s % 4 == 0 for s in starts)
    meta = {"sizes": None, "arch": {"channels": 8, "tail_channels": 0, "blocks": 1, "scale": 4}}
    cfg = plan_tiles(meta, 720, 1280, max_pixels=250 * 250)
    assert cfg.grid == 4 and cfg.tile[0] % 4 == 0 and cfg.overlap % 4 == 0
    assert plan_tiles(meta, 720, 1280, tile=TileConfig((128, 128), 32)).grid == 4
    assert pick_tile([[66, 66], [128, 128]], 300, 300, grid=4) == (128, 128)


def test_tiled_equals_whole_frame_for_the_stride4_preset(random_ckpt, tmp_path):
    """Tiles on the stride-4 grid match the whole frame up to the ramp's edge effects; a stride-2 grid does not."""
    from train.reference import TorchRunner

    ckpt = random_ckpt(tmp_path / "fast.safetensors", "fast", out_gain=1.0, channels=8, blocks=1)
    img = np.random.default_rng(3).random((1, 3, 204, 312), dtype=np.float32)
    with TorchRunner(ckpt, threads=2) as r:
        assert r.meta["arch"]["scale"] == 4
        whole = restore(r, img, 25.0)
        tiled = restore(r, img, 25.0, TileConfig((96, 128), 32))
        run = lambda x: r.run({"image": x, "level": np.array([25.0], np.float32)})["restored"]  # noqa: E731
        off_grid = tile_image(run, img[0], TileConfig((96, 128), 32, grid=2))
    err, err_off = np.abs(whole - tiled).mean(), np.abs(whole[0] - off_grid).mean()
    assert err < 1e-3 and np.abs(whole - tiled).max() < 0.05
    assert err_off > 10 * err


class DynamicRunner:
    """A fake dynamic-shape NCHW artifact on a stride-4 grid whose output depends on the frame's bottom/right
    border (the mean of its last row and column), like a network's zero padding does."""

    name = "dynamic"

    def __init__(self):
        self.meta = {"sizes": None, "layout": "NCHW", "level_mode": "folded", "arch": {"scale": 4}}
        self.shapes = []

    def run(self, inputs):
        x = inputs["image"]
        self.shapes.append(x.shape[-2:])
        return {"restored": x + x[..., -1:, :].mean() + x[..., :, -1:].mean()}


def test_whole_frame_off_the_grid_is_padded_by_reflection():
    """A dynamic artifact gets an off-grid frame reflected up to the grid (as a tile would be), then cropped;
    on-grid frames go through untouched."""
    r = DynamicRunner()
    img = np.random.default_rng(4).random((2, 3, 31, 50), dtype=np.float32)
    out = restore(r, img, 25.0)
    assert out.shape == img.shape and r.shapes == [(32, 52)]
    padded = np.pad(img, ((0, 0), (0, 0), (0, 1), (0, 2)), mode="symmetric")
    np.testing.assert_allclose(out, r.run({"image": padded})["restored"][..., :31, :50], rtol=1e-6)
    on_grid = img[..., :28, :48]
    np.testing.assert_allclose(restore(r, on_grid, 25.0), r.run({"image": on_grid})["restored"], rtol=1e-6)
    assert r.shapes[-2] == (28, 48)
