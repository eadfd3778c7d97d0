"""The shipped weights load, keep level 0 exact, and restore real images (CBSD68)."""

import pytest

pytest.importorskip("torch")

from tests.conftest import dataset  # noqa: E402
from train.checkpoint import load_checkpoint, read_meta, resolve_weights  # noqa: E402
from train.evaluate import evaluate_model, load_eval_set  # noqa: E402

SHIPPED = {"denoise-mobile": (200_000, 100), "denoise-fast": (250_000, 30)}  # name: (max params, max GMAC/1080p)


@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_denoiser_metadata(name):
    meta = read_meta(resolve_weights(name))
    assert meta["task"] == "denoise" and meta["level_map"]["train_levels"] == [15.0, 35.0, 55.0, 75.0]
    max_params, max_gmac = SHIPPED[name]
    assert meta["params"] <= max_params and meta["gmac_1080p"] <= max_gmac
    assert meta["evaluation"]["set"] == "CBSD68" and meta["evaluation"]["images"] == 68


@pytest.mark.realdata
@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_denoiser_on_cbsd68(name):
    folder = dataset("test/CBSD68")
    model, _ = load_checkpoint(name)
    images = load_eval_set(folder)[:3]
    res = evaluate_model(model, images, [0, 25, 75], with_ssim=False)
    rows = {r["level"]: r for r in res["rows"]}
    assert rows[0]["psnr"] == 100.0  # level 0 returns the input exactly
    for lv in (25, 75):
        assert rows[lv]["psnr"] > rows[lv]["input_psnr"] + 5
