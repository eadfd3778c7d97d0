"""SSIM in numpy agrees with scikit-image's `structural_similarity` under the benchmark's settings."""

from __future__ import annotations

import numpy as np
import pytest

from runtimes.core.metrics import quantize, ssim


@pytest.mark.parametrize("shape, y_only", [((48, 37, 3), False), ((48, 37, 3), True), ((33, 64, 3), False),
                                           ((9, 20, 3), False), ((6, 5, 3), True), ((4, 7, 3), False)])
def test_ssim_matches_scikit_image(shape, y_only):
    metrics = pytest.importorskip("skimage.metrics", reason="scikit-image not installed (pip install 'levelres[dev]')")
    from runtimes.core.metrics import _prepare

    rng = np.random.default_rng(sum(shape))
    clean = rng.random(shape, dtype=np.float32)
    noisy = np.clip(clean + rng.normal(0, 0.1, shape).astype(np.float32), 0, 1)
    a, b = _prepare(noisy, clean, y_only)
    side = min(a.shape[:2])
    kw = dict(data_range=255.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    if side < 11:
        kw = dict(data_range=255.0, win_size=side - (1 - side % 2), use_sample_covariance=False)
    want = metrics.structural_similarity(a, b, channel_axis=2 if a.ndim == 3 else None, **kw)
    got = ssim(noisy, clean, y_only=y_only)
    assert abs(got - want) < 1e-6, (got, want)  # scikit-image works in float32 for float32 input; this in float64
    assert 0 < got < 1


def test_ssim_of_identical_images_is_one_and_tiny_images_have_none():
    img = np.random.default_rng(0).random((20, 24, 3), dtype=np.float32)
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-12)
    assert np.isnan(ssim(img[:2, :2], img[:2, :2]))
    assert quantize(img).max() <= 255
