"""Opening image files safely (numpy + Pillow): checks that come before any pixel is decoded.

Every reader of the project (restore, evaluate, bench, calibration, training) opens files here: the
path must be a regular file; the size in the header (width x height, the mode's channels and bytes)
is checked against a memory bound before decoding, so a small file that decodes to a huge frame is
refused at the cost of reading its header; Pillow's decompression-bomb error, its warnings and the
codecs' messages on stderr become one-line errors or nothing; a malformed EXIF orientation is ignored;
colour modes other than RGB are converted (LAB, CMYK, YCbCr, HSV, 16-bit, palette) or refused.

Usage:
    im = open_image(path, max_memory_mb=512)      # header checked, then decoded
    w, h = header_size(path)                      # header only
"""

from __future__ import annotations

import contextlib
import os
import stat
import warnings
from pathlib import Path

from runtimes.core.errors import UserError

DEFAULT_MAX_MEMORY_MB = 4096.0  # readers without --max-memory: about 80 Mpx of 8-bit RGB
DECODE_BYTES_PER_PIXEL = 48  # float copies beside the decoded file (16-bit colour: uint16, float64, float32)
ORIENTATION_TAG = 0x0112
ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


def check_regular_file(path: Path) -> None:
    """A `UserError` unless `path` is an existing, non-empty regular file (not a folder, device or FIFO)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise UserError(f"image not found: {path}") from None
    except OSError as exc:
        raise UserError(f"cannot read image {path}: {exc.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise UserError(f"{path} is a folder, not an image file; give an image file")
    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"{path} is not a regular file (a device, FIFO or socket); give an image file")
    if st.st_size == 0:
        raise UserError(f"image file is empty: {path}")


@contextlib.contextmanager
def quiet_decoders():
    """Silence Pillow's warnings and the C codecs' messages on stderr (libpng, libtiff via OpenCV) meanwhile."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            saved = os.dup(2)
        except OSError:  # no stderr descriptor: nothing to silence
            yield
            return
        try:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _reason(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _lazy_open(path: Path):
    """Pillow's lazy open (header only); one-line errors for unreadable files and decompression bombs."""
    from PIL import Image, UnidentifiedImageError

    check_regular_file(path)
    try:
        with quiet_decoders():
            return Image.open(path)
    except Image.DecompressionBombError as exc:
        raise UserError(f"image {path} is too large to decode safely ({_reason(exc)}); downscale it") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UserError(f"cannot read image {path}: {_reason(exc)}; give a PNG/JPEG/TIFF file Pillow can open"
                        ) from None


def bytes_per_pixel(im) -> int:
    """Bytes per pixel of a Pillow image's file as decoded: channels x bytes per sample (16-bit samples that
    Pillow shows as 8-bit RGB, which OpenCV then decodes at 16 bits, counted as 2)."""
    from PIL import ImageMode

    try:
        mode = ImageMode.getmode(im.mode)
        size = len(mode.bands) * max(1, int(mode.typestr[-1]))
    except (KeyError, ValueError):
        size = 4
    for tile in getattr(im, "tile", None) or []:
        raw = tile.args[0] if isinstance(tile.args, tuple) and tile.args else tile.args
        if isinstance(raw, str) and ";16" in raw and size == len(im.getbands()):
            size *= 2
            break
    return max(size, 1)


def decoded_bytes(im) -> int:
    """The reader's peak footprint for an opened (not decoded) image: the file's pixels plus the float copies."""
    w, h = im.size
    return w * h * (bytes_per_pixel(im) + DECODE_BYTES_PER_PIXEL)


def check_decode_size(im, path: Path, max_memory_mb: float | None = None) -> None:
    """Refuse (before decoding) a frame whose decoding would pass the memory bound (`DEFAULT_MAX_MEMORY_MB` when
    None)."""
    w, h = im.size
    if w < 1 or h < 1:
        raise UserError(f"image {path} has no pixels ({w}x{h})")
    limit = DEFAULT_MAX_MEMORY_MB if max_memory_mb is None else float(max_memory_mb)
    need = decoded_bytes(im)
    if need > limit * 2**20:
        option = "the readers' ceiling" if max_memory_mb is None else "--max-memory"
        raise UserError(f"image {path} is {w}x{h}: decoding it needs about {need / 2**20:.0f} MB, over {option} of "
                        f"{limit:g} MB; downscale or crop it" + ("" if max_memory_mb is None else ", or raise it"))


def header_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) from the file's header, without decoding the pixels."""
    with _lazy_open(Path(path)) as im:
        return im.size


def open_image(path: str | os.PathLike, max_memory_mb: float | None = None):
    """Open and decode an image after the header checks (see the module docstring); one-line errors."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    im = _lazy_open(path)
    try:
        check_decode_size(im, path, max_memory_mb)
    except BaseException:
        im.close()
        raise
    try:
        with quiet_decoders():
            im.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError,
            MemoryError) as exc:
        raise UserError(f"cannot read image {path}: {_reason(exc)}; give a PNG/JPEG/TIFF file Pillow can open"
                        ) from None
    return im


def exif_orientation(exif) -> int:
    """The EXIF orientation (1-8) of a Pillow `Exif`; 1 for a missing or malformed tag (text, out of range)."""
    value = exif.get(ORIENTATION_TAG, 1) if exif is not None else 1
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 8:
        return 1
    return value


def read_exif(im):
    """The image's EXIF (a Pillow `Exif`), empty when the block is malformed."""
    from PIL import Image

    try:
        with quiet_decoders():
            return im.getexif()
    except Exception:  # noqa: BLE001 - Pillow raises many types for a corrupt EXIF block; it is then ignored
        return Image.Exif()


def has_alpha(im) -> bool:
    """True for modes with an alpha channel and images with a transparency key (not the "A" of "LAB")."""
    return im.mode in ALPHA_MODES or "transparency" in im.info


def convert(im, mode: str, path: Path | str):
    """`im.convert(mode)`, with a one-line error for a colour mode Pillow cannot convert."""
    if im.mode == "La":
        im = im.convert("RGBa").convert("RGBA") if mode in ("RGB", "RGBA") else im
    try:
        with quiet_decoders():
            return im.convert(mode)
    except (ValueError, OSError) as exc:
        raise UserError(f"cannot convert image {path} from colour mode {im.mode} to {mode} ({_reason(exc)}); "
                        "save it as RGB or greyscale") from None


def icc_fits(icc: bytes | None, grey: bool) -> bool:
    """False for a missing profile, or one whose header declares a colour space (bytes 16-20: 'Lab ', 'CMYK',
    'YCbr', ...) other than the output's ('GRAY' or 'RGB '); a header that declares none is kept as it was."""
    if not icc:
        return False
    space = icc[16:20] if len(icc) >= 128 else b""
    known = space.isalnum() or space.rstrip(b" ").isalnum()
    return not known or space == (b"GRAY" if grey else b"RGB ")
