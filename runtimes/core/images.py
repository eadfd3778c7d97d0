"""Image I/O (numpy-only): read any image Pillow reads as float32 RGB in [0, 1], write atomically.

Usage:
    img = read_image("photo.jpg")          # (H, W, 3) float32 in [0, 1]
    write_image("out.png", img)
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from runtimes.core.decoding import convert, exif_orientation, open_image, read_exif
from runtimes.core.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
# the sample photographs shipped in the package (package data), found the same way in a checkout and an install
SAMPLES_DIR = Path(__file__).resolve().parents[1] / "samples"


TRANSPOSE = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE", 6: "ROTATE_270",
             7: "TRANSVERSE", 8: "ROTATE_90"}  # EXIF orientation -> Pillow transpose, as ImageOps.exif_transpose


def _open(path: Path, max_memory_mb: float | None = None):
    from PIL import Image

    im = open_image(path, max_memory_mb)
    orientation = exif_orientation(read_exif(im))
    return im.transpose(getattr(Image.Transpose, TRANSPOSE[orientation])) if orientation != 1 else im


def finite_or_error(arr: np.ndarray, name: str) -> np.ndarray:
    """`arr` unchanged when every value is finite; else a `UserError` naming the input (a float TIFF with NaN)."""
    if not np.isfinite(arr).all():
        raise UserError(f"input image {name} holds NaN or infinite pixel values (a float image); fix or re-save "
                        "the input")
    return arr


def to_rgb_array(im, name: str = "image", quiet: bool = False) -> np.ndarray:
    """Convert a Pillow image to float32 RGB (H, W, 3) in [0, 1], saying when it converts.

    16-bit images keep their precision; grey, RGBA, palette, CMYK, LAB and YCbCr images are converted to RGB
    (alpha dropped); a float image with NaN or infinite values is refused.
    """
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64)
        peak = 65535.0 if arr.max(initial=0) > 255 or mode.startswith("I;16") else 255.0
        arr = np.clip(arr / peak, 0, 1).astype(np.float32)
        return np.repeat(arr[..., None], 3, axis=2)
    if mode == "F":
        arr = np.clip(finite_or_error(np.asarray(im, dtype=np.float32), name), 0, 1)
        return np.repeat(arr[..., None], 3, axis=2)
    if mode != "RGB":
        if not quiet:
            warnings.warn(f"{name}: converted {mode} to RGB", stacklevel=2)
        im = convert(im, "RGB", name)
    return np.asarray(im, dtype=np.float32) / 255.0


def read_image(path: str | os.PathLike, quiet: bool = False, max_memory_mb: float | None = None) -> np.ndarray:
    """Read an image file as float32 RGB (H, W, 3) in [0, 1]; EXIF orientation honoured.

    The header is checked against `max_memory_mb` (the readers' default ceiling when None) before decoding.
    """
    path = Path(path)
    return to_rgb_array(_open(path, max_memory_mb), name=str(path), quiet=quiet)


def read_uint8(path: str | os.PathLike, quiet: bool = True) -> np.ndarray:
    """Read an image as uint8 RGB (H, W, 3), the form the degradation protocol starts from."""
    return to_uint8(read_image(path, quiet=quiet))


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Clamp to [0, 1] and round to uint8 (the evaluation protocol's quantisation)."""
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Sorted image files of a folder (non-recursive); a clear error when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"not a folder: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise UserError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return files


def json_bytes(obj, indent: int | None = 1) -> bytes:
    """Strict JSON (RFC 8259) of a report: NaN and ±inf (a metric that is undefined, e.g. SSIM below a 3x3 image)
    are written as null, not as the non-standard NaN that other JSON readers reject."""
    import json
    import math

    def clean(x):
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return x

    return (json.dumps(clean(obj), indent=indent, allow_nan=False) + "\n").encode()


def check_output_file(path: str | os.PathLike, option: str = "output") -> Path:
    """A `UserError` when an output file's path is an existing folder (checked before the work starts)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{option} {path} is a folder; give a file name")
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes to a temporary name beside `path`, then rename over it."""
    path = check_output_file(path)
    ensure_writable_dir(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise write_error(path, exc) from None
    try:
        _write_fd(fd, data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the permissions open() would
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise write_error(path, exc) from None
        raise


def _write_fd(fd: int, data: bytes) -> None:
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def write_error(path: str | os.PathLike, exc: OSError) -> UserError:
    """The one-line error for a failed write (disk full, quota, read-only file system, permissions)."""
    import errno

    fix = ("free some space or choose another output path" if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
           else "choose a writable output path")
    return UserError(f"cannot write {path}: {exc.strerror or exc}; {fix} (nothing was replaced)")


@contextlib.contextmanager
def removed_if_left_empty(folder: str | os.PathLike):
    """On an error inside the block, remove `folder` and the parents it created when they were left empty."""
    created, p = [], Path(folder).absolute()
    while not p.exists() and p != p.parent:
        created.append(p)
        p = p.parent
    try:
        yield
    except BaseException:
        for d in created:  # deepest first; stops at the first folder that holds something
            try:
                d.rmdir()
            except OSError:
                break
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def ensure_writable_dir(folder: Path) -> None:
    """Create `folder` if needed; a `UserError` when it cannot be created or written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output folder {folder}: {exc.strerror}; choose a writable path") from None
    if not os.access(folder, os.W_OK):
        raise UserError(f"output folder {folder} is not writable; choose a writable path")


def write_image(path: str | os.PathLike, img: np.ndarray, **save_kwargs) -> None:
    """Write float RGB in [0, 1] (or uint8) to `path` atomically; the format follows the suffix."""
    import io

    from PIL import Image

    path = Path(path)
    arr = img if img.dtype == np.uint8 else to_uint8(img)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"unknown image suffix {path.suffix!r} for {path}; use .png, .jpg or .tif")
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **save_kwargs)
    atomic_write_bytes(path, buf.getvalue())
