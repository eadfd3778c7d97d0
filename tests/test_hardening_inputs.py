"""Hostile and odd input images: bounded before decoding, one-line errors, and sets that one image cannot poison.

Covers: a small file that decodes to a huge frame (refused from its header, peak memory measured), Pillow's
decompression-bomb error inside a folder, a malformed EXIF orientation, NaN in a float TIFF, colour modes
other than RGB (LAB, CMYK, YCbCr, 16-bit, grey + alpha, palette + transparency), an output that is the
input, devices and FIFOs given as images, and an image too small to score inside a benchmark set.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from tests.test_hardening import _check, _run, files  # noqa: F401 - `files` is a fixture

pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parents[1]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(path: Path, width: int, height: int, rows: int | None = None, bitdepth: int = 8) -> Path:
    """An RGB PNG of `width` x `height` whose first `rows` rows (all when None) are zeros, compressed as a stream:
    a file of a few hundred KB that decodes to a huge frame (a header-only file when rows is 0)."""
    comp, parts = zlib.compressobj(9), []
    row = b"\0" * (1 + width * 3 * bitdepth // 8)
    for _ in range(height if rows is None else rows):
        parts.append(comp.compress(row))
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, bitdepth, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts))
                     + _chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    """The reported case: a ~490 KB PNG that decodes to 13000x13000 RGB (about 500 MB, 2 GB as float32)."""
    return png_bomb(tmp_path_factory.mktemp("bomb") / "bomb.png", 13000, 13000)


# VmHWM: this process's own peak RSS (ru_maxrss would keep the forking parent's across exec)
RSS_PROBE = ("import re, sys; from runtimes.apps.restore import main; code = main(sys.argv[1:]); "
             "print('maxrss_kb', re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1]); sys.exit(code)")


@pytest.mark.parametrize("extra", [[], ["--max-memory", "256"]])
def test_decompression_bomb_refused_from_the_header(files, bomb, extra, tmp_path):  # noqa: F811
    """Refused before decoding: one line, and the whole process stays under 300 MB (it reached 5.2 GB)."""
    out = tmp_path / "r.png"
    proc = subprocess.run([sys.executable, "-c", RSS_PROBE, str(bomb), "--model", files["ckpt"], "--level", "25",
                           "-o", str(out), *extra], cwd=ROOT, capture_output=True, text=True, timeout=120)
    err = proc.stderr.strip()
    assert proc.returncode == 2 and err.startswith("error: ") and "\n" not in err, err
    assert "13000x13000" in err and "bomb.png" in err, err
    peak_mb = int(proc.stdout.split("maxrss_kb")[1]) / 1024
    assert bomb.stat().st_size < 600_000 and peak_mb < 300, peak_mb
    assert not out.exists()


def test_every_reader_bounds_memory_before_decoding(tmp_path, monkeypatch):
    """The folder readers (evaluate, bench, calibration, training) refuse past the ceiling, before decoding."""
    from runtimes.apps.photo import read_photo
    from runtimes.core import decoding
    from runtimes.core.errors import UserError
    from runtimes.core.images import read_image, read_uint8

    header_only = png_bomb(tmp_path / "big.png", 12000, 9000, rows=0)  # decoding it would fail: it is never tried
    for reader in (read_image, read_uint8, read_photo):
        with pytest.raises(UserError, match=r"12000x9000.*over the readers' ceiling"):
            reader(header_only)
    small = png_bomb(tmp_path / "small.png", 1200, 1000, rows=0)
    with pytest.raises(UserError, match=r"1200x1000.*--max-memory of 16 MB"):
        read_photo(small, max_memory_mb=16)
    sixteen = png_bomb(tmp_path / "big16.png", 600, 500, rows=0, bitdepth=16)
    monkeypatch.setattr(decoding, "DEFAULT_MAX_MEMORY_MB", 14.0)  # 600x500 at 6 + 48 B/px is 15.4 MB
    with pytest.raises(UserError, match="600x500"):
        read_image(sixteen)


@pytest.mark.parametrize("module,template", [
    ("train.evaluate", ["--weights", "{ckpt}", "--set", "{S}", "--levels", "25", "--json", "{O}/e.json"]),
    ("runtimes.bench", ["{onnx}", "--set", "{S}", "--levels", "25", "--sizes", "32x32", "--json", "{O}/b.json",
                        "--no-plots", "--no-progress"]),
    ("train", ["--task", "denoise", "--data", "{S}", "--out", "{O}/run", "--steps", "2", "--no-progress",
               "--patch", "16", "--batch", "2"]),
])
@pytest.mark.parametrize("size", [(14000, 14000), (13000, 13000)])
def test_bombs_in_a_folder(files, module, template, size, capsys, tmp_path):  # noqa: F811
    """Pillow's DecompressionBombError (over 179 Mpx) and a frame over the ceiling: one line naming the file."""
    pytest.importorskip("onnxruntime")
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "ok.png").write_bytes(Path(files["img"]).read_bytes())
    png_bomb(folder / "zz_bomb.png", *size, rows=0)
    err = _check(module, template, {**files, "S": str(folder)}, capsys, tmp_path)
    assert "zz_bomb.png" in err and (size[0] == 14000 or "13000x13000" in err), err


def _exif_block(orientation) -> bytes:
    """A little-endian EXIF block whose one tag, Orientation, holds `orientation` as text, SHORTs or a LONG."""
    if isinstance(orientation, str):
        kind, count, payload = 2, len(orientation) + 1, orientation.encode() + b"\0"
    elif isinstance(orientation, tuple):
        kind, count, payload = 3, len(orientation), struct.pack(f"<{len(orientation)}H", *orientation)
    else:
        kind, count, payload = (3, 1, struct.pack("<H", orientation)) if orientation < 65536 else \
            (4, 1, struct.pack("<I", orientation))
    inline = len(payload) <= 4
    value = payload.ljust(4, b"\0") if inline else struct.pack("<I", 26)
    ifd = struct.pack("<H", 1) + struct.pack("<HHI", 0x0112, kind, count) + value + struct.pack("<I", 0)
    return b"Exif\0\0II*\0" + struct.pack("<I", 8) + ifd + (b"" if inline else payload)


def _exif_image(path: Path, orientation) -> np.ndarray:
    from PIL import Image

    arr = (np.random.default_rng(2).random((6, 10, 3)) * 255).astype(np.uint8)
    Image.fromarray(arr).save(path, exif=_exif_block(orientation), quality=95)
    return arr


@pytest.mark.parametrize("orientation", ["Rotate 90 CW", "6x", 0, 9, 70000, (3, 4)])
def test_malformed_exif_orientation_is_ignored(orientation, tmp_path):
    from PIL import Image

    from runtimes.apps.photo import read_photo
    from runtimes.core.images import read_uint8

    arr = _exif_image(tmp_path / "in.jpg", orientation)
    with Image.open(tmp_path / "in.jpg") as im:
        assert im.getexif().get(0x0112) is not None  # the malformed tag is in the file
    photo = read_photo(tmp_path / "in.jpg")
    assert photo.rgb.shape == arr.shape and read_uint8(tmp_path / "in.jpg").shape == arr.shape


def test_nan_in_a_float_tiff_is_the_inputs_fault(files, capsys, tmp_path):  # noqa: F811
    from PIL import Image

    arr = np.full((12, 16), 0.5, np.float32)
    arr[3, 4] = np.nan
    Image.fromarray(arr, mode="F").save(tmp_path / "nan.tif")
    template = ["{img}", "--model", "{ckpt}", "--level", "25", "-o", "{O}/r.png"]
    err = _check("runtimes.restore", template, {**files, "img": str(tmp_path / "nan.tif")}, capsys, tmp_path)
    assert "nan.tif" in err and "NaN" in err and "re-export" not in err, err
    from runtimes.core.errors import UserError
    from runtimes.core.images import read_image

    with pytest.raises(UserError, match="nan.tif"):
        read_image(tmp_path / "nan.tif")


def _lab_profile() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()


def _mode_image(mode: str, path: Path):
    """An image of `mode` saved at `path`, and the RGB(A) pixels a correct reader returns."""
    from PIL import Image

    rng = np.random.default_rng(4)
    if mode == "I;16":
        im = Image.fromarray((rng.random((12, 16)) * 65535).astype(np.uint16))
    elif mode == "P":
        im = Image.fromarray((rng.random((12, 16, 3)) * 255).astype(np.uint8)).quantize(16)
        im.info["transparency"] = 0
    else:
        bands = len(Image.new(mode, (1, 1)).getbands())
        im = Image.frombytes(mode, (16, 12), (rng.random((12, 16, bands)) * 255).astype(np.uint8).tobytes())
    kwargs = {"icc_profile": _lab_profile()} if mode == "LAB" else {}
    if mode == "P":
        kwargs["transparency"] = 0
    im.save(path, **kwargs)
    with Image.open(path) as back:
        want = back.convert("RGBA" if mode in ("LA", "P") else "RGB")
        return np.asarray(want)


@pytest.mark.parametrize("mode,suffix", [("LAB", ".tif"), ("CMYK", ".tif"), ("YCbCr", ".tif"), ("I;16", ".png"),
                                         ("LA", ".png"), ("P", ".png")])
def test_colour_modes_convert_correctly(files, mode, suffix, capsys, tmp_path):  # noqa: F811
    """Level 0 returns the input: the output holds the correctly converted pixels, alpha only where the file has
    one, and no profile of another colour space (a Lab profile on an RGB PNG)."""
    from PIL import Image

    src = tmp_path / f"in{suffix}"
    want = _mode_image(mode, src)
    template = ["{img}", "--model", "{ckpt}", "--level", "0", "-o", "{O}"]
    code, err = _run("runtimes.restore", template, {**files, "img": str(src), "O": str(tmp_path / "o.png")}, capsys)
    assert code == 0, err
    with Image.open(tmp_path / "o.png") as out:
        assert "icc_profile" not in out.info or mode != "LAB"
        if mode == "I;16":
            assert out.mode.startswith("I")
            return
        got = np.asarray(out.convert("RGBA" if mode in ("LA", "P") else "RGB"))
        assert out.mode in (("LA", "RGBA") if mode in ("LA", "P") else ("RGB", "L")), out.mode
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1


def test_output_equal_to_the_input_needs_overwrite(files, capsys, tmp_path):  # noqa: F811
    from PIL import Image

    src = tmp_path / "in.jpg"
    Image.open(files["img"]).convert("RGB").save(src, quality=80)
    before = src.read_bytes()
    template = ["{img}", "--model", "{ckpt}", "--level", "25", "-o", "{OUT}"]
    for out in (str(src), str(tmp_path / "." / "in.jpg")):
        code, err = _run("runtimes.restore", template, {**files, "img": str(src), "OUT": out}, capsys)
        assert code == 2 and "--overwrite" in err and "\n" not in err, err
    (tmp_path / "link.jpg").symlink_to(src)
    code, err = _run("runtimes.restore", template, {**files, "img": str(tmp_path / "link.jpg"), "OUT": str(src)},
                     capsys)
    assert code == 2 and src.read_bytes() == before, err
    code, err = _run("runtimes.restore", [*template, "--overwrite"], {**files, "img": str(src), "OUT": str(src)},
                     capsys)
    assert code == 0 and src.read_bytes() != before, err


def test_devices_and_fifos_are_not_images(files, capsys, tmp_path):  # noqa: F811
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    for i, image in enumerate(("/dev/zero", str(fifo))):
        (tmp_path / f"case{i}").mkdir()
        err = _check("runtimes.restore", ["{img}", "--model", "{ckpt}", "--level", "25", "-o", "{O}/r.png"],
                     {**files, "img": image}, capsys, tmp_path / f"case{i}")
        assert "not a regular file" in err, err


def _odd_set(files, tmp_path: Path) -> tuple[Path, Path]:  # noqa: F811
    from PIL import Image

    clean, odd = tmp_path / "clean", tmp_path / "odd"
    clean.mkdir()
    for name in sorted(os.listdir(files["imgs"])):
        (clean / name).write_bytes((Path(files["imgs"]) / name).read_bytes())
    odd.mkdir()
    for p in clean.iterdir():
        (odd / p.name).write_bytes(p.read_bytes())
    Image.fromarray(np.full((500, 1, 3), 128, np.uint8)).save(odd / "a_thin.png")
    Image.fromarray(np.full((2, 2, 3), 90, np.uint8)).save(odd / "b_tiny.png")
    return clean, odd


@pytest.mark.parametrize("module,template,key", [
    ("train.evaluate", ["--weights", "{ckpt}", "--set", "{S}", "--levels", "25", "--json", "{J}"], "rows"),
    ("runtimes.bench", ["{onnx}", "--set", "{S}", "--levels", "25", "--sizes", "32x32", "--json", "{J}",
                        "--no-plots", "--no-progress", "--runs", "1"], "results"),
])
def test_one_odd_image_never_poisons_a_set(files, module, template, key, capsys, tmp_path):  # noqa: F811
    """A 1x500 and a 2x2 image are skipped by name; the other images' PSNR and SSIM stay exactly as without them."""
    pytest.importorskip("onnxruntime")
    clean, odd = _odd_set(files, tmp_path)
    results = []
    for folder in (clean, odd):
        with pytest.warns(UserWarning) if folder == odd else contextlib.nullcontext() as rec:
            code, err = _run(module, template, {**files, "S": str(folder), "J": str(folder / "r.json")}, capsys)
        assert code == 0, err
        results.append(json.loads((folder / "r.json").read_text()))
    a, b = results
    skipped = " ".join(str(w.message) for w in rec if "skipped" in str(w.message))
    assert "a_thin.png" in skipped and "b_tiny.png" in skipped, skipped
    rows = (lambda r: r["rows"]) if key == "rows" else (lambda r: r["results"][0]["accuracy"])
    for ra, rb in zip(rows(a), rows(b), strict=True):
        assert ra["psnr"] == rb["psnr"] and ra["ssim"] == rb["ssim"] and np.isfinite(rb["ssim"]), (ra, rb)
