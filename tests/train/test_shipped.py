"""The shipped weights load, keep level 0 exact, and restore real images (CBSD68)."""

import pytest

pytest.importorskip("torch")

from tests.conftest import dataset  # noqa: E402
from train.checkpoint import load_checkpoint, read_meta, resolve_weights  # noqa: E402
from train.evaluate import evaluate_model, load_eval_set  # noqa: E402


def test_shipped_denoiser_metadata():
    meta = read_meta(resolve_weights("denoise-mobile"))
    assert meta["task"] == "denoise" and meta["level_map"]["train_levels"] == [15.0, 35.0, 55.0, 75.0]
    assert meta["params"] <= 200_000 and meta["gmac_1080p"] <= 100


@pytest.mark.realdata
def test_shipped_denoiser_on_cbsd68():
    folder = dataset("test/CBSD68")
    model, _ = load_checkpoint("denoise-mobile")
    images = load_eval_set(folder)[:3]
    res = evaluate_model(model, images, [0, 25, 75], with_ssim=False)
    rows = {r["level"]: r for r in res["rows"]}
    assert rows[0]["psnr"] == 100.0  # level 0 returns the input exactly
    for lv in (25, 75):
        assert rows[lv]["psnr"] > rows[lv]["input_psnr"] + 5
