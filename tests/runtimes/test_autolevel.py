"""--level auto estimators: JPEG quality from quantisation tables, noise sigma (synthetic and real images)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from runtimes.apps.autolevel import (
    STD_LUMA,
    censored_moments,
    estimate_sigma,
    ijg_table,
    jpeg_quality,
    quality_from_tables,
)
from runtimes.core.degrade import image_seed
from runtimes.core.errors import UserError
from tests.conftest import dataset


def textured(h: int = 192, w: int = 256, seed: int = 0) -> np.ndarray:
    """A synthetic photo-like RGB image on 0-255: gradients, stripes, edges and a little fine texture."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([np.sin(6 * xx + 1), np.cos(5 * yy - 2), np.sin(9 * xx * yy)], axis=2)
    img = 128 + 70 * base + 25 * np.sign(np.sin(14 * xx))[..., None]
    img += 2.0 * np.random.default_rng(seed).standard_normal((h, w, 1))  # fine texture, not noise per channel
    return np.clip(img, 20, 235)


def jpeg_bytes_pillow(img_u8: np.ndarray, q: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img_u8).save(buf, format="JPEG", quality=q)
    return buf.getvalue()


def test_ijg_table_anchors():
    np.testing.assert_array_equal(ijg_table(STD_LUMA, 50), STD_LUMA)
    assert (ijg_table(STD_LUMA, 100) == 1).all()
    assert (ijg_table(STD_LUMA, 1) == 255).all()


@pytest.mark.parametrize("q", [5, 23, 50, 75, 91, 100])
def test_quality_recovered_from_pillow_and_opencv(q):
    import cv2
    from PIL import Image

    img = textured(64, 80).astype(np.uint8)
    with Image.open(io.BytesIO(jpeg_bytes_pillow(img, q))) as im:
        got = jpeg_quality(im)
    assert got.quality == q and got.exact
    ok, buf = cv2.imencode(".jpg", img, [int(cv2.IMWRITE_JPEG_QUALITY), q])
    with Image.open(io.BytesIO(buf.tobytes())) as im:
        assert jpeg_quality(im).quality == q


def test_quality_grey_jpeg_and_foreign_tables():
    from PIL import Image

    grey = textured(48, 48)[..., 0].astype(np.uint8)
    with Image.open(io.BytesIO(jpeg_bytes_pillow(grey, 37))) as im:
        assert len(im.quantization) == 1 and jpeg_quality(im).quality == 37
    foreign = {0: list(ijg_table(STD_LUMA, 60) + 1)}  # not an IJG table: the nearest quality, not exact
    got = quality_from_tables(foreign)
    assert not got.exact and abs(got.quality - 60) <= 3


def test_quality_of_non_jpeg_is_an_error(tmp_path):
    from PIL import Image

    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    with pytest.raises(UserError, match="JPEG"):
        jpeg_quality(path)


@pytest.mark.parametrize("sigma", [5, 15, 30, 60])
@pytest.mark.parametrize("storage", ["float", "uint8"])
def test_sigma_estimate_on_textured_image(sigma, storage):
    clean = textured()
    noisy = clean + sigma * np.random.default_rng(sigma).standard_normal(clean.shape)
    if storage == "uint8":
        noisy = np.round(np.clip(noisy, 0, 255))
    est = estimate_sigma(noisy)
    assert abs(est - sigma) <= max(1.5, 0.06 * sigma), est


def test_sigma_clipping_correction_on_a_bright_image():
    clean = np.full((128, 128, 3), 230.0)
    noisy = np.round(np.clip(clean + 40 * np.random.default_rng(1).standard_normal(clean.shape), 0, 255))
    assert abs(estimate_sigma(noisy) - 40) < 3
    assert abs(estimate_sigma(noisy, "immerkaer") - 40) < abs(float(np.std(noisy - clean)) - 40)


def test_sigma_clean_and_grey():
    clean = textured()
    assert estimate_sigma(clean) < 3
    grey = np.repeat(clean[..., :1], 3, axis=2) + 10 * np.random.default_rng(7).standard_normal((192, 256, 1))
    assert abs(estimate_sigma(grey) - 10) < 1.5
    assert estimate_sigma(np.zeros((2, 2))) == 0.0


def test_censored_moments_match_sampling():
    x = np.clip(200 + 50 * np.random.default_rng(0).standard_normal(400_000), 0, 255)
    mean, std = censored_moments(np.array([200.0]), 50.0)
    assert abs(mean[0] - x.mean()) < 0.3 and abs(std[0] - x.std()) < 0.3


@pytest.mark.realdata
def test_real_jpeg_quality_exact_on_live1():
    from runtimes.apps.autolevel_eval import eval_jpeg
    from runtimes.core.images import list_images

    rows = eval_jpeg(list_images(dataset("test/LIVE1_color"))[:4], (10, 50, 90))
    assert all(r["exact"] == 1.0 for r in rows)


@pytest.mark.realdata
def test_real_sigma_on_cbsd68():
    from runtimes.apps.autolevel_eval import noisy_versions
    from runtimes.core.images import list_images, read_uint8

    errs = []
    for f in list_images(dataset("test/CBSD68"))[:4]:
        img = noisy_versions(read_uint8(f), 50, image_seed(f.name))["uint8"]
        errs.append(abs(estimate_sigma(img) - 50))
    assert np.mean(errs) < 1.5
