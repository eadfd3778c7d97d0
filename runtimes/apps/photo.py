"""A user's photo for restoration: pixels plus what must survive the round trip (numpy + Pillow/OpenCV).

`read_photo` honours the EXIF orientation, keeps 16-bit precision (grey via Pillow, colour via
OpenCV, which Pillow reads as 8-bit), notes whether the image is grey, splits off the alpha
channel, and keeps the EXIF block (orientation reset to 1: the pixels are already upright), the
ICC profile and the JPEG quantisation tables. `write_photo` writes the restored RGB back in the
same shape: grey stays grey, alpha is put back unchanged, 16-bit input gives 16-bit PNG/TIFF
output, EXIF/ICC are kept where the format stores them (JPEG, PNG, TIFF, WebP through Pillow; a
16-bit colour or alpha file is encoded by OpenCV, which drops them). Writes are atomic.

Usage:
    photo = read_photo("in.jpg")
    write_photo("out.png", photo, restored_rgb)     # restored_rgb: (H, W, 3) float in [0, 1]
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtimes.core.decoding import (
    ORIENTATION_TAG,
    convert,
    exif_orientation,
    has_alpha,
    icc_fits,
    open_image,
    quiet_decoders,
    read_exif,
)
from runtimes.core.errors import UserError, require
from runtimes.core.images import atomic_write_bytes, finite_or_error, to_uint8

METADATA_FORMATS = ("JPEG", "PNG", "TIFF", "WEBP")
JPEG_SAVE = {"quality": 95}


@dataclass(frozen=True)
class Photo:
    """A decoded photo.

    Attributes:
        rgb: (H, W, 3) float32 in [0, 1] (grey images repeated over the three channels).
        alpha: (H, W) alpha channel in its stored dtype, or None.
        grey: the file was single-channel.
        bits: 8 or 16 bits per sample in the file.
        exif: the EXIF block with orientation reset to 1, or None.
        icc: the ICC profile, or None.
        format: Pillow's format name ("JPEG", "PNG", ...).
        quantization: the JPEG quantisation tables, or None.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None
    grey: bool
    bits: int
    exif: bytes | None
    icc: bytes | None
    format: str
    quantization: dict | None = None


def orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to an (H, W, ...) array, as `PIL.ImageOps.exif_transpose` does."""
    ops = {
        2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a, 2).swapaxes(0, 1), 8: lambda a: np.rot90(a, 1),
    }
    fn = ops.get(int(orientation))
    return np.ascontiguousarray(fn(arr)) if fn else arr


def _sixteen_bit(im, path: Path) -> bool:
    """Whether a PNG or TIFF stores more than 8 bits per sample (Pillow reads such colour files as 8-bit RGB)."""
    if im.format == "PNG":
        with open(path, "rb") as fh:
            head = fh.read(25)
        return len(head) == 25 and head[12:16] == b"IHDR" and head[24] > 8
    if im.format == "TIFF":
        bits = getattr(im, "tag_v2", {}).get(258, 8)
        return max(bits if isinstance(bits, tuple) else (bits,)) > 8
    return False


def _colour16(path: Path) -> np.ndarray | None:
    """A 16-bit colour PNG/TIFF as RGB(A) uint16 via OpenCV (`levelres[opencv]`), else None."""
    cv2 = require("cv2", "opencv")

    with quiet_decoders():
        dec = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    if dec is None or dec.dtype != np.uint16 or dec.ndim != 3 or dec.shape[2] not in (3, 4):
        return None
    return cv2.cvtColor(dec, cv2.COLOR_BGRA2RGBA if dec.shape[2] == 4 else cv2.COLOR_BGR2RGB)


def _pixels(im, path: Path) -> tuple[np.ndarray, np.ndarray | None, bool, int]:
    """(rgb float32 in [0, 1], alpha or None, grey, bits) of a Pillow image (before orientation)."""
    mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        grey = np.clip(np.asarray(im, np.float64), 0, 65535) / 65535.0
        return np.repeat(grey[..., None], 3, 2).astype(np.float32), None, True, 16
    if mode == "F":
        grey = np.clip(finite_or_error(np.asarray(im, np.float32), str(path)), 0, 1)
        return np.repeat(grey[..., None], 3, 2), None, True, 16
    if mode in ("RGB", "RGBA") and _sixteen_bit(im, path):
        c16 = _colour16(path)
        if c16 is not None:
            alpha = c16[..., 3].copy() if c16.shape[2] == 4 else None
            return (c16[..., :3] / 65535.0).astype(np.float32), alpha, False, 16
    alpha = has_alpha(im)
    if mode in ("1", "L", "LA", "La", "PA") or (mode == "P" and _palette_is_grey(im)):
        arr = np.asarray(convert(im, "LA" if alpha else "L", path))
        grey = (arr[..., 0] if alpha else arr).astype(np.float32) / 255.0
        return np.repeat(grey[..., None], 3, 2), (arr[..., 1].copy() if alpha else None), True, 8
    arr = np.asarray(convert(im, "RGBA" if alpha else "RGB", path))
    return (arr[..., :3].astype(np.float32) / 255.0), (arr[..., 3].copy() if alpha else None), False, 8


def _palette_is_grey(im) -> bool:
    pal = np.asarray(im.convert("RGB"))
    return bool(np.array_equal(pal[..., 0], pal[..., 1]) and np.array_equal(pal[..., 1], pal[..., 2]))


def read_photo(path: str | Path, max_memory_mb: float | None = None) -> Photo:
    """Read an image file for restoration (see the module docstring); one-line errors for bad files.

    The header is checked against `max_memory_mb` (the readers' default ceiling when None) before decoding;
    a malformed EXIF orientation is ignored; an ICC profile is kept only where it fits the output (RGB or grey).
    """
    path = Path(path)
    im = open_image(path, max_memory_mb)
    exif = read_exif(im)
    orientation = exif_orientation(exif)
    if ORIENTATION_TAG in exif:
        exif[ORIENTATION_TAG] = 1
    rgb, alpha, grey, bits = _pixels(im, path)
    if rgb.size == 0:
        raise UserError(f"image {path} has no pixels")
    icc = im.info.get("icc_profile")
    quant = getattr(im, "quantization", None) if im.format == "JPEG" else None
    return Photo(orient(rgb, orientation), None if alpha is None else orient(alpha, orientation), grey, bits,
                 _exif_bytes(exif), icc if icc_fits(icc, grey) else None, im.format or "", quant)


def _exif_bytes(exif) -> bytes | None:
    """The EXIF block to write back, or None (also when Pillow cannot serialise a malformed one)."""
    if not len(exif):
        return None
    try:
        return exif.tobytes()
    except Exception:  # noqa: BLE001 - a malformed block Pillow reads but cannot write back is dropped
        return None


def output_format(path: str | Path) -> str:
    """Pillow's format name for an output path's suffix; a clear error for unknown suffixes."""
    from PIL import Image

    fmt = Image.registered_extensions().get(Path(path).suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise UserError(f"cannot write images with suffix {Path(path).suffix or '(none)'!r}: {path}; "
                        "use .png, .jpg, .tif or .webp")
    return fmt


def _alpha8(alpha: np.ndarray) -> np.ndarray:
    return alpha if alpha.dtype == np.uint8 else np.round(alpha.astype(np.float64) / 257.0).astype(np.uint8)


def encode_photo(fmt: str, photo: Photo, rgb: np.ndarray) -> bytes:
    """Encode restored RGB (H, W, 3) in [0, 1] in the photo's shape (grey / alpha / 16-bit) as `fmt`."""
    from PIL import Image

    pix = rgb.mean(axis=2) if photo.grey else rgb
    alpha = photo.alpha
    if alpha is not None and fmt == "JPEG":
        raise UserError("JPEG cannot store the input's alpha channel; write a .png, .tif or .webp instead")
    if photo.bits == 16 and fmt in ("PNG", "TIFF"):
        u16 = np.round(np.clip(pix, 0, 1) * 65535.0).astype(np.uint16)
        if photo.grey and alpha is None:
            return _pillow_bytes(Image.fromarray(u16), fmt, photo)
        return _opencv16_bytes(u16, alpha, fmt)
    u8 = to_uint8(pix)
    if alpha is not None:
        chans = [u8] if photo.grey else [u8[..., i] for i in range(3)]
        u8 = np.dstack([*chans, _alpha8(alpha)])
    return _pillow_bytes(Image.fromarray(u8), fmt, photo)


def _pillow_bytes(im, fmt: str, photo: Photo) -> bytes:
    kwargs = dict(JPEG_SAVE) if fmt == "JPEG" else {}
    if fmt in METADATA_FORMATS:
        kwargs.update({k: v for k, v in (("exif", photo.exif), ("icc_profile", photo.icc)) if v})
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _opencv16_bytes(u16: np.ndarray, alpha: np.ndarray | None, fmt: str) -> bytes:
    cv2 = require("cv2", "opencv")

    if u16.ndim == 2:
        u16 = np.repeat(u16[..., None], 3, 2)
    if alpha is not None:
        a16 = alpha.astype(np.uint16) * 257 if alpha.dtype == np.uint8 else alpha.astype(np.uint16)
        img = cv2.cvtColor(np.dstack([u16, a16]), cv2.COLOR_RGBA2BGRA)
    else:
        img = cv2.cvtColor(u16, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png" if fmt == "PNG" else ".tif", img)
    if not ok:  # pragma: no cover - OpenCV failure
        raise UserError(f"OpenCV could not encode a 16-bit {fmt}; write an 8-bit format (.jpg) instead")
    return buf.tobytes()


def write_photo(path: str | Path, photo: Photo, rgb: np.ndarray) -> None:
    """Write restored RGB (H, W, 3) in [0, 1] to `path` atomically, in the photo's shape; format from the suffix."""
    atomic_write_bytes(path, encode_photo(output_format(path), photo, rgb))
