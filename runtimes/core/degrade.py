"""Deterministic degradations (numpy; JPEG and SR with OpenCV, `levelres[opencv]`), shared by training,
evaluation and the runtimes.

The same (image, task, level, seed) always gives the same pixels, whichever tool asks.

Usage:
    noisy = degrade(clean_u8, "denoise", 25, seed=image_seed("0001.png"))
"""

from __future__ import annotations

import zlib

import numpy as np

from runtimes.core.errors import UserError, require

TASKS = ("denoise", "dejpeg", "sr")
# how the degraded input is stored: "float" keeps the datasets' unclipped float noise (the published benchmarks'
# protocol); "clipped" is camera-realistic: noise added, clipped to 0-255 and rounded to 8 bits, as a sensor or an
# 8-bit file would hold it (JPEG and SR inputs are 8-bit already, so both protocols give them the same pixels)
PROTOCOLS = ("float", "clipped")


def image_seed(name: str, base: int = 0) -> int:
    """A stable per-image seed (CRC32 of the file name mixed with a base seed)."""
    return (zlib.crc32(name.encode()) ^ (base * 0x9E3779B1)) & 0xFFFFFFFF


def add_noise(clean: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Additive white Gaussian noise of std sigma/255 per RGB channel; not clipped (the benchmark protocol)."""
    img = _as_float(clean)
    if sigma == 0:
        return img.copy()
    return (img + rng.standard_normal(img.shape, dtype=np.float32) * np.float32(sigma / 255.0)).astype(np.float32)


def jpeg(clean: np.ndarray, quality: float) -> np.ndarray:
    """Encode/decode with OpenCV at `quality` (colour 4:2:0; grey images as one channel)."""
    cv2 = require("cv2", "opencv")

    u8 = _as_uint8(clean)
    q = int(round(quality))
    if q >= 100 and quality >= 100:
        return u8.astype(np.float32) / 255.0
    grey = bool(np.array_equal(u8[..., 0], u8[..., 1]) and np.array_equal(u8[..., 1], u8[..., 2]))
    src = u8[..., 0] if grey else cv2.cvtColor(u8, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", src, [int(cv2.IMWRITE_JPEG_QUALITY), max(1, min(100, q))])
    if not ok:  # pragma: no cover - OpenCV failure
        raise RuntimeError("OpenCV failed to encode JPEG")
    dec = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    out = np.repeat(dec[..., None], 3, axis=2) if grey else cv2.cvtColor(dec, cv2.COLOR_BGR2RGB)
    return out.astype(np.float32) / 255.0


def bicubic_sr(clean: np.ndarray, scale: float) -> np.ndarray:
    """OpenCV bicubic down by `scale`, then bicubic up to the original size (uint8 between steps)."""
    cv2 = require("cv2", "opencv")

    u8 = _as_uint8(clean)
    if scale <= 1.0:
        return u8.astype(np.float32) / 255.0
    h, w = u8.shape[:2]
    small = cv2.resize(u8, (max(1, round(w / scale)), max(1, round(h / scale))), interpolation=cv2.INTER_CUBIC)
    up = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return up.astype(np.float32) / 255.0


def degrade(clean: np.ndarray, task: str, level: float, seed: int = 0, protocol: str = "float") -> np.ndarray:
    """Degrade a clean image (H, W, 3; uint8 or float in [0, 1]) at `level` in the task's unit.

    Args:
        clean: the clean image.
        task: "denoise" (level = sigma on 0-255), "dejpeg" (JPEG quality 1-100) or "sr" (scale >= 1).
        level: the degradation level in the task's unit.
        seed: seeds the noise; JPEG and SR are deterministic without it.
        protocol: "float" (noisy images are not clipped) or "clipped" (clipped to [0, 1] and rounded to 8 bits).
    Returns:
        float32 (H, W, 3).
    """
    if protocol not in PROTOCOLS:
        raise UserError(f"unknown degradation protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if task == "denoise":
        out = add_noise(clean, level, np.random.default_rng([seed, int(round(level * 1000))]))
    elif task == "dejpeg":
        out = jpeg(clean, level)
    elif task == "sr":
        out = bicubic_sr(clean, level)
    else:
        raise UserError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    return to_8bit(out) if protocol == "clipped" else out


def to_8bit(img: np.ndarray) -> np.ndarray:
    """Float in [0, 1] as an 8-bit camera or file stores it: clipped to [0, 1], rounded to n/255, float32."""
    return (np.round(np.clip(img, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)


def _as_float(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)


def _as_uint8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
