"""Estimate the restoration level from the degraded image itself (numpy + Pillow only).

dejpeg: the JPEG quality is recovered from the file's own quantisation tables. Encoders built on
libjpeg (libjpeg-turbo, OpenCV, Pillow, most cameras' "quality" settings) scale the standard IJG
tables (ITU-T T.81 Annex K) by
    scale = 5000 / q  (q < 50),  200 - 2 q  (q >= 50);   table = clamp((base * scale + 50) // 100, 1, 255)
so trying every integer q in 1..100 and keeping the one whose tables match best gives the exact
quality for those files, and the closest IJG quality for other encoders.

denoise: sigma (0-255 scale) of additive white Gaussian noise, estimated per channel and averaged.
Two classical estimators are implemented (see docs/autolevel.md for their measured accuracy):
- "immerkaer": J. Immerkaer, "Fast Noise Variance Estimation", CVIU 64(2), 1996: the image is
  filtered with the Laplacian-difference mask [[1,-2,1],[-2,4,-2],[1,-2,1]] (which cancels
  locally planar structure) and sigma = sqrt(pi/2) / (6 (W-2)(H-2)) * sum |I * N|. Edge pixels
  (the top 30% of the Sobel magnitude) are left out, which removes most of the texture bias.
- "mad": Donoho's wavelet MAD, median(|HH|) / 0.6745 of the finest diagonal Haar subband.

Usage:
    q = jpeg_quality("photo.jpg").quality
    sigma = estimate_sigma(image255)          # (H, W) or (H, W, C) on the 0-255 scale
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtimes.core.errors import UserError

# ITU-T T.81 Annex K.1 / K.2, natural (row-major) order, as Pillow's `quantization` reports them.
STD_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], np.int64)
STD_CHROMA = np.array([
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32, np.int64)
SIGMA_METHODS = ("immerkaer", "mad")
DEFAULT_SIGMA_METHOD = "immerkaer"


@dataclass(frozen=True)
class JpegQuality:
    """A recovered JPEG quality.

    Attributes:
        quality: the best-matching IJG quality (1-100).
        exact: True when the file's tables equal the IJG tables at that quality.
        mean_abs_diff: mean absolute difference between the file's tables and the IJG ones.
    """

    quality: int
    exact: bool
    mean_abs_diff: float


def ijg_table(base: np.ndarray, quality: int) -> np.ndarray:
    """The IJG quantisation table for `quality` (1-100), baseline-clamped to 1..255."""
    q = min(100, max(1, int(quality)))
    scale = 5000 // q if q < 50 else 200 - 2 * q
    return np.clip((base * scale + 50) // 100, 1, 255)


def quality_from_tables(tables: dict) -> JpegQuality:
    """The IJG quality whose tables best match `tables` ({0: luma[64], 1: chroma[64], ...})."""
    if not tables or 0 not in tables:
        raise UserError("the JPEG file has no quantisation tables; give --level explicitly")
    file_tables = [np.asarray(tables[0], np.int64)]
    bases = [STD_LUMA]
    if 1 in tables:
        file_tables.append(np.asarray(tables[1], np.int64))
        bases.append(STD_CHROMA)
    if any(t.size != 64 for t in file_tables):
        raise UserError("the JPEG file's quantisation tables are not 8x8; give --level explicitly")
    best = None
    for q in range(1, 101):
        diff = sum(int(np.abs(t - ijg_table(b, q)).sum()) for t, b in zip(file_tables, bases))  # same length
        if best is None or diff < best[1]:
            best = (q, diff)
    q, diff = best
    return JpegQuality(q, diff == 0, diff / (64.0 * len(file_tables)))


def jpeg_quality(source) -> JpegQuality:
    """Recover the quality of a JPEG file (a path or an opened Pillow image).

    Raises:
        UserError: the file is not a JPEG (no quantisation tables to read).
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(source, (str, Path)):
        try:
            with Image.open(source) as im:
                return jpeg_quality(im)
        except (UnidentifiedImageError, OSError) as exc:
            raise UserError(f"cannot read {source}: {exc}") from None
    if getattr(source, "format", None) != "JPEG" or not getattr(source, "quantization", None):
        raise UserError(f"--level auto for dejpeg reads the JPEG quality from the file's quantisation tables, but "
                        f"the input is {getattr(source, 'format', None) or 'not a JPEG'}; give --level (quality 1-100)")
    return quality_from_tables(source.quantization)


def _channels(image: np.ndarray) -> list[np.ndarray]:
    img = np.asarray(image, np.float64)
    if img.ndim == 2:
        return [img]
    if img.ndim != 3:
        raise UserError(f"noise estimation needs an (H, W) or (H, W, C) image, got shape {img.shape}")
    chans = [img[..., c] for c in range(img.shape[2])]
    # identical channels (a grey image stored as RGB) are one measurement, not three
    return chans[:1] if all(np.array_equal(chans[0], c) for c in chans[1:]) else chans


def _conv3(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """'valid' 3x3 correlation, numpy only."""
    h, w = img.shape
    out = np.zeros((h - 2, w - 2))
    for dy in range(3):
        for dx in range(3):
            if kernel[dy, dx]:
                out += kernel[dy, dx] * img[dy:dy + h - 2, dx:dx + w - 2]
    return out


IMMERKAER_MASK = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64)
SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float64)
EDGE_FRACTION = 0.3
MEAN_RADIUS = 3  # local means for the clipping correction: 7x7 boxes


def _box_mean(img: np.ndarray, radius: int) -> np.ndarray:
    """Mean over (2r+1)^2 boxes, edge-replicated, same shape (numpy cumulative sums)."""
    k = 2 * radius + 1
    padded = np.pad(img, radius, mode="edge")
    c = np.cumsum(np.cumsum(np.pad(padded, ((1, 0), (1, 0))), axis=0), axis=1)
    return (c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]) / (k * k)


def sigma_immerkaer(channel: np.ndarray, edge_fraction: float = EDGE_FRACTION) -> float:
    """Immerkaer's estimator on one channel, leaving out the `edge_fraction` strongest-gradient pixels.

    When the channel looks clipped to 0..255 (a noisy image stored as uint8), the estimate is
    corrected for the censoring; see `unclip_sigma`.
    """
    if min(channel.shape) < 3:
        return 0.0
    resp = np.abs(_conv3(channel, IMMERKAER_MASK))
    means = _box_mean(channel, MEAN_RADIUS)[1:-1, 1:-1]
    if edge_fraction > 0 and resp.size > 100:
        grad = np.abs(_conv3(channel, SOBEL_X)) + np.abs(_conv3(channel, SOBEL_X.T))
        keep = grad <= np.quantile(grad, 1.0 - edge_fraction)
        resp, means = resp[keep], means[keep]
    if not resp.size:
        return 0.0
    sigma = float(math.sqrt(math.pi / 2.0) * resp.mean() / 6.0)
    return unclip_sigma(sigma, means.ravel()) if looks_clipped(channel) else sigma


def looks_clipped(channel: np.ndarray, fraction: float = 1e-3) -> bool:
    """True when values lie within 0..255 and more than `fraction` of them sit on a bound."""
    if channel.min() < -0.5 or channel.max() > 255.5:
        return False
    return float(np.mean((channel <= 0.5) | (channel >= 254.5))) > fraction


def _norm_cdf(x: np.ndarray) -> np.ndarray:
    # Abramowitz & Stegun 7.1.26 erf approximation (|error| < 1.5e-7), numpy only
    z = np.abs(x) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = 1.0 - poly * np.exp(-z * z)
    return 0.5 * (1.0 + np.sign(x) * erf)


def censored_moments(mu: np.ndarray, sigma: float, lo: float = 0.0, hi: float = 255.0):
    """Mean and std of clip(N(mu, sigma^2), lo, hi)."""
    a, b = (lo - mu) / sigma, (hi - mu) / sigma
    pa, pb = _norm_cdf(a), _norm_cdf(b)
    da, db = np.exp(-a * a / 2) / math.sqrt(2 * math.pi), np.exp(-b * b / 2) / math.sqrt(2 * math.pi)
    inside = pb - pa
    ez, ez2 = da - db, inside + a * da - b * db  # E[Z 1{a<Z<b}], E[Z^2 1{a<Z<b}]
    m1 = lo * pa + hi * (1 - pb) + mu * inside + sigma * ez
    m2 = lo * lo * pa + hi * hi * (1 - pb) + mu * mu * inside + 2 * mu * sigma * ez + sigma * sigma * ez2
    return m1, np.sqrt(np.maximum(m2 - m1 * m1, 0.0))


def unclip_sigma(observed: float, local_means: np.ndarray, iters: int = 40) -> float:
    """The sigma whose clipped noise would measure `observed`, given the pixels' local means.

    Clipping to 0..255 shrinks the noise near the bounds, so a plain estimate on a stored uint8
    image falls short at large sigma. For a trial sigma, every local mean is mapped back to the
    clean value whose censored mean it is, the censored std is averaged over the pixels, and sigma
    is found by bisection so that this average equals the observed estimate.
    """
    if observed <= 0 or local_means.size == 0:
        return observed
    hist, edges = np.histogram(np.clip(local_means, 0, 255), bins=64, range=(0, 255))
    centres, weights = (edges[:-1] + edges[1:]) / 2, hist / hist.sum()

    def measured(sigma: float) -> float:
        grid = np.linspace(-4 * sigma, 255 + 4 * sigma, 1024)
        mean_of = censored_moments(grid, sigma)[0]  # increasing in the clean value
        mu = np.interp(centres, mean_of, grid)
        return float(np.sum(weights * censored_moments(mu, sigma)[1]))

    lo, hi = observed, observed
    while measured(hi) < observed:
        if hi >= 255.0:
            return 255.0
        lo, hi = hi, min(255.0, hi * 1.5)
    for _ in range(iters):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if measured(mid) < observed else (lo, mid)
    return (lo + hi) / 2


def sigma_mad(channel: np.ndarray) -> float:
    """Donoho's MAD estimator on the finest diagonal (HH) Haar subband of one channel."""
    h, w = channel.shape
    c = channel[: h - h % 2, : w - w % 2]
    if c.size == 0:
        return 0.0
    hh = (c[0::2, 0::2] - c[0::2, 1::2] - c[1::2, 0::2] + c[1::2, 1::2]) / 2.0
    return float(np.median(np.abs(hh)) / 0.6745)


def estimate_sigma(image: np.ndarray, method: str = DEFAULT_SIGMA_METHOD) -> float:
    """Sigma of additive white Gaussian noise on the 0-255 scale, averaged over channels.

    Args:
        image: (H, W) or (H, W, C) on the 0-255 scale (float or uint8).
        method: "immerkaer" (default) or "mad".
    """
    if method not in SIGMA_METHODS:
        raise UserError(f"unknown noise estimator {method!r}; choose one of {', '.join(SIGMA_METHODS)}")
    fn = sigma_immerkaer if method == "immerkaer" else sigma_mad
    return float(np.mean([fn(c) for c in _channels(image)]))
