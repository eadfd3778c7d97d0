"""Image-quality metrics (numpy-only) following the evaluation protocol of the benchmark sets.

PSNR: both images cropped to even height/width, clamped to [0, 1], rounded to uint8,
20*log10(255/sqrt(MSE)), no border crop; identical images score `PSNR_CAP` dB.
"""

from __future__ import annotations

import numpy as np

PSNR_CAP = 100.0
MIN_SCORED_SIDE = 16  # after the even crop: SSIM's 11-px window, and an SR level's down-scaled copy stay defined


def unscorable(img: np.ndarray) -> str | None:
    """Why an image cannot be scored in a set (too small once cropped to even sides), or None when it can."""
    h, w = even_crop(img).shape[:2]
    if min(h, w) < MIN_SCORED_SIDE:
        return (f"{img.shape[1]}x{img.shape[0]} px is under the {MIN_SCORED_SIDE}x{MIN_SCORED_SIDE} px a score needs "
                "(after cropping to even sides)")
    return None


def scorable(named: list, name_of=lambda item: item[0], image_of=lambda item: item[1]) -> list:
    """The items of an image set that can be scored; each one skipped is named in a warning.

    Scores are per image, so leaving one out never changes the other images' numbers.
    """
    import warnings

    kept = []
    for item in named:
        reason = unscorable(image_of(item))
        if reason is None:
            kept.append(item)
        else:
            warnings.warn(f"{name_of(item)}: skipped, {reason}", stacklevel=2)
    return kept


def even_crop(img: np.ndarray) -> np.ndarray:
    """Crop (H, W, ...) to even height and width."""
    h, w = img.shape[:2]
    return img[: h - h % 2, : w - w % 2]


def quantize(img: np.ndarray) -> np.ndarray:
    """Float in [0, 1] (clamped) or uint8 -> float64 on the 0-255 grid."""
    if img.dtype == np.uint8:
        return img.astype(np.float64)
    return np.round(np.clip(img, 0.0, 1.0) * 255.0)


def rgb_to_y(img255: np.ndarray) -> np.ndarray:
    """BT.601 luma of RGB on the 0-255 scale (the 16-235 'Y' used by SR and JPEG benchmarks)."""
    r, g, b = img255[..., 0], img255[..., 1], img255[..., 2]
    return 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0


def grey_luma(img255: np.ndarray) -> np.ndarray:
    """Full-range BT.601 luma: equals the grey value for grey images (used for grey references)."""
    return img255[..., 0] * 0.299 + img255[..., 1] * 0.587 + img255[..., 2] * 0.114


def _prepare(a: np.ndarray, b: np.ndarray, y_only: bool) -> tuple[np.ndarray, np.ndarray]:
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")
    a, b = quantize(even_crop(a)), quantize(even_crop(b))
    if y_only:
        grey = bool(np.array_equal(b[..., 0], b[..., 1]) and np.array_equal(b[..., 1], b[..., 2]))
        luma = grey_luma if grey else rgb_to_y
        a, b = luma(a), luma(b)
    return a, b


def psnr(a: np.ndarray, b: np.ndarray, y_only: bool = False) -> float:
    """PSNR in dB of `a` against the reference `b` ((H, W, 3) float in [0, 1] or uint8), capped at `PSNR_CAP`.

    With `y_only`, colour references are scored on BT.601 Y (16-235) and grey references on their grey value.
    """
    a, b = _prepare(a, b, y_only)
    mse = float(np.mean((a - b) ** 2))
    if not np.isfinite(mse):  # non-finite pixels: no score (min(cap, nan) would report the cap)
        return float("nan")
    if mse == 0.0:
        return PSNR_CAP
    return min(PSNR_CAP, 20.0 * np.log10(255.0 / np.sqrt(mse)))


def ssim(a: np.ndarray, b: np.ndarray, y_only: bool = False) -> float:
    """SSIM (Gaussian window, sigma 1.5, 11 taps, as in Wang et al.) on the same quantised images as `psnr`.

    Computed in numpy with scikit-image's conventions (`structural_similarity(..., gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, data_range=255)`: mirrored borders, the border of half a window left
    out of the mean, colour as the mean over channels); tests/runtimes/test_metrics.py checks the two agree.
    """
    a, b = _prepare(a, b, y_only)
    side = min(a.shape[:2])
    if side < 3:
        return float("nan")  # SSIM is undefined below a 3x3 window
    if side < 11:  # the Gaussian window needs 11 px: fall back to the largest odd uniform window
        size = side - (1 - side % 2)
        kernel = np.full(size, 1.0 / size)
    else:
        x = np.arange(-5, 6, dtype=np.float64)  # radius int(3.5 * 1.5 + 0.5) = 5
        kernel = np.exp(-0.5 * x * x / 1.5**2)
        kernel /= kernel.sum()
    if a.ndim == 3:
        return float(np.mean([_ssim_plane(a[..., c], b[..., c], kernel) for c in range(a.shape[2])]))
    return _ssim_plane(a, b, kernel)


def _filter(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable correlation with mirrored borders (scipy.ndimage's "reflect": d c b a | a b c d | d c b a)."""
    r = len(kernel) // 2
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (r, r)
        padded = np.pad(img, pad, mode="symmetric")
        n = img.shape[axis]
        out = np.zeros_like(img)
        for i, w in enumerate(kernel):
            out += w * (padded[i:i + n] if axis == 0 else padded[:, i:i + n])
        img = out
    return img


def _ssim_plane(a: np.ndarray, b: np.ndarray, kernel: np.ndarray) -> float:
    c1, c2 = (0.01 * 255.0) ** 2, (0.03 * 255.0) ** 2
    ux, uy = _filter(a, kernel), _filter(b, kernel)
    vx = _filter(a * a, kernel) - ux * ux
    vy = _filter(b * b, kernel) - uy * uy
    vxy = _filter(a * b, kernel) - ux * uy
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    pad = (len(kernel) - 1) // 2
    return float(s[pad:s.shape[0] - pad, pad:s.shape[1] - pad].mean(dtype=np.float64))
