"""Restore one image with any exported artifact (or a torch checkpoint) at a given or estimated level.

The runner comes from the format table by the model's suffix; a `.safetensors` checkpoint or a
shipped weight-set name (e.g. `denoise-mobile`) runs in the torch reference runner (torch is
imported only then). Large frames are tiled with blended overlaps so that image buffers plus one
tile's activations stay under `--max-memory`: the activation bytes per pixel are estimated from
the architecture in the model's metadata (`tile_bytes_per_pixel`), or taken as the conservative
`FALLBACK_TILE_BYTES_PER_PIXEL` when the metadata has none. The bound covers the image buffers,
activations and weights, not the runtime library's own fixed footprint.
`--level auto` reads the JPEG quality from the file (dejpeg) or estimates sigma (denoise); see
runtimes/apps/autolevel.py. An SR model takes a low-resolution image and returns it upscaled by the level
(scale): the image is first resized by OpenCV bicubic, as in training, then restored; with
`--input-upscaled` the image is taken as already resized to the output size. EXIF orientation,
EXIF/ICC, grey, alpha and 16-bit input are handled by
runtimes/apps/photo.py; the output is written atomically.

Usage:
    python -m runtimes.restore noisy.png --model out/artifacts/denoise-mobile.onnx --level 25 -o clean.png
    python -m runtimes.restore photo.jpg --model dejpeg.tflite --level auto -o fixed.png --max-memory 512
    python -m runtimes.restore small.png --model sr-mobile --level 3 -o large.png     # 3x the width and height
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from runtimes.apps.autolevel import estimate_sigma, quality_from_tables
from runtimes.apps.photo import Photo, output_format, read_photo, write_photo
from runtimes.apps.tiling import restore
from runtimes.core.cli import MAX_THREADS
from runtimes.core.errors import CliParser, UserError, require, run_cli, strict_float
from runtimes.core.formats import format_for_path
from runtimes.core.meta import ArtifactMeta, checkpoint_meta, read_artifact_meta, shipped_names, shipped_weights_dir
from runtimes.runners.factory import enter_runner, load_runner, reference_runner

FRAME_BYTES_PER_PIXEL = 64  # ~16 float32 per frame pixel: input, planar and padded copies, blend sums, output
FALLBACK_TILE_BYTES_PER_PIXEL = 4096  # no architecture in the metadata: covers the largest preset ("paper")
ACTIVATION_SAFETY = 1.5  # runtimes keep extra workspace beyond the live activations
MIN_TILE = 64


@dataclass(frozen=True)
class RestoreConfig:
    """One restoration.

    Attributes:
        image: the input image file.
        model: an artifact (suffix from the format table), a `.safetensors` checkpoint or a shipped name.
        level: the level in the model's unit, as text, or "auto".
        out: the output file (format from the suffix).
        max_memory_mb: memory bound for image buffers, activations and weights, in MiB.
        threads: runtime threads (None: the runtime's default).
        input_upscaled: SR only: the image is already at the output size (no resize before the model).
        overwrite: allow `out` to be the input image itself (replaced atomically once restored).
    """

    image: Path
    model: str
    level: str
    out: Path
    max_memory_mb: float = 1024.0
    threads: int | None = None
    input_upscaled: bool = False
    overwrite: bool = False


def resolve_model(model: str) -> tuple[str, Path, dict]:
    """(kind, path, metadata): kind is "torch" or a format-table key."""
    path = Path(model)
    if path.suffix.lower() == ".safetensors" or (not path.suffix and not path.exists()):
        if not path.is_file():
            shipped = shipped_weights_dir()
            candidate = shipped / f"{model}.safetensors" if shipped and not path.suffix else None
            if candidate is None or not candidate.is_file():
                names = ", ".join(shipped_names()) or "none"
                raise UserError(f"model not found: {model} (shipped weight sets: {names})")
            path = candidate
        return "torch", path, checkpoint_meta(path)
    fmt = format_for_path(path)
    return fmt.key, path, read_artifact_meta(path)


def make_runner(kind: str, path: Path, threads: int | None):
    """Construct (not enter) the runner for a model."""
    if kind == "torch":
        return reference_runner(path, threads=threads)
    return load_runner(path, threads=threads)[0]


def auto_level(meta: dict, photo: Photo) -> tuple[float, str]:
    """(level, how it was found) estimated from the image for the model's task."""
    task = meta["task"]
    if task == "sr":
        raise UserError("--level auto cannot tell the upscaling factor from the image; give the scale (e.g. --level 2)")
    if task == "dejpeg":
        if photo.quantization is None:
            kind = f"a {photo.format} file" if photo.format else "not a JPEG file"
            raise UserError(f"--level auto for dejpeg reads the JPEG quality from the file, but the input is {kind}; "
                            "give --level (JPEG quality 1-100)")
        q = quality_from_tables(photo.quantization)
        return float(q.quality), f"JPEG quality {q.quality}" + ("" if q.exact else " (closest IJG tables)")
    if task == "denoise":
        pix = photo.rgb[..., :1] if photo.grey else photo.rgb
        sigma = estimate_sigma(pix.astype(np.float64) * 255.0)
        return sigma, f"estimated sigma {sigma:.1f}"
    raise UserError(f"--level auto is not available for task {task!r}; give --level")


def resolve_level(text: str, meta: dict, photo: Photo) -> tuple[float, str]:
    """The level to run at, checked against the model's level map range."""
    info = ArtifactMeta.from_dict(meta)
    lm, unit = info.level_map, info.level_map.unit
    if text.strip().lower() == "auto":
        value, how = auto_level(meta, photo)
        return min(lm.hi, max(lm.lo, value)), how
    try:
        value = strict_float(text.strip())
    except ValueError:
        raise UserError(f"--level must be a number ({unit}) or 'auto', got {text!r}") from None
    if not math.isfinite(value):
        raise UserError(f"--level must be a finite number ({unit}), got {text!r}")
    return info.check_level(value, "--level"), f"{unit} {value:.12g}"


def tile_bytes_per_pixel(meta: dict) -> float:
    """Estimated activation bytes per pixel of a tile, from the architecture in the metadata.

    Body at 1/r resolution (r = scale): about four live C-channel maps (6C for the affine form), the
    upsampling conv's r*r*T outputs (r*r*3 without a tail) and the (2r-1)^2-tap head's patch
    workspace; full resolution: input, output and residual (9 floats) and about four live T-channel
    maps. Times `ACTIVATION_SAFETY`. Measured peak growth of one whole-frame run (512x512 and
    1088x1920, ORT 1.32 / torch 2.13 on CPU): mobile 200 / 288-346 B/px against 767 estimated;
    fast 80 / 144 B/px against 223 estimated.
    """
    try:
        c, t, _, r = _arch(meta)
    except (KeyError, TypeError, ValueError):
        return float(FALLBACK_TILE_BYTES_PER_PIXEL)
    body = 6 * c if (meta.get("arch") or {}).get("form") == "affine" else 4 * c
    floats = (body + r * r * (t or 3) + 3 * (2 * r - 1) ** 2) / (r * r) + 9 + 4 * t
    return 4.0 * floats * ACTIVATION_SAFETY


def _arch(meta: dict) -> tuple[int, int, int, int]:
    """(channels, tail channels, blocks, scale) from the metadata's architecture; KeyError when absent."""
    arch = meta.get("arch") or {}
    return int(arch["channels"]), int(arch["tail_channels"]), int(arch["blocks"]), int(arch.get("scale", 2))


def weight_bytes(meta: dict) -> int:
    """Approximate float32 weight bytes (0 when the metadata has no architecture)."""
    try:
        c, t, b, r = _arch(meta)
    except (KeyError, TypeError, ValueError):
        return 0
    tail = r * r * c * t + t * t + 3 * t if t else r * r * 3 * c
    params = 9 * (3 * c * r * r + (2 * b + 1) * c * c + tail)  # the head's (2r-1)^2 kernel taken as 3r x 3r
    return 4 * params * (2 if (meta.get("arch") or {}).get("form") == "affine" else 1)


def plan_max_pixels(meta: dict, height: int, width: int, max_memory_mb: float) -> int:
    """The most tile pixels keeping frame buffers + one tile under the bound; an error when a small tile won't fit."""
    budget = max_memory_mb * 2**20 - height * width * FRAME_BYTES_PER_PIXEL - weight_bytes(meta)
    per_pixel = tile_bytes_per_pixel(meta)
    if budget < MIN_TILE * MIN_TILE * per_pixel:
        need = (height * width * FRAME_BYTES_PER_PIXEL + weight_bytes(meta) + MIN_TILE**2 * per_pixel) / 2**20
        raise UserError(f"--max-memory {max_memory_mb:g} MB is too small for a {width}x{height} image "
                        f"(frame buffers and one {MIN_TILE}x{MIN_TILE} tile need about {math.ceil(need)} MB); raise it")
    return int(budget // per_pixel)


def upscale_photo(photo: Photo, scale: float, max_memory_mb: float) -> Photo:
    """The photo resized by `scale` with OpenCV bicubic (the SR model's input, as in training), alpha too."""
    cv2 = require("cv2", "opencv")

    h, w = photo.rgb.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if size[0] * size[1] * FRAME_BYTES_PER_PIXEL > max_memory_mb * 2**20:
        raise UserError(f"upscaling {w}x{h} by {scale:g} gives {size[0]}x{size[1]}, whose buffers exceed "
                        f"--max-memory {max_memory_mb:g} MB; raise it or give a smaller scale")
    rgb = np.clip(cv2.resize(photo.rgb, size, interpolation=cv2.INTER_CUBIC), 0.0, 1.0).astype(np.float32)
    alpha = None if photo.alpha is None else cv2.resize(photo.alpha, size, interpolation=cv2.INTER_LINEAR)
    return replace(photo, rgb=rgb, alpha=alpha)


def check_output(out: Path) -> None:
    """Fail before any work when the output can't be written (unknown suffix, a folder, no writable parent)."""
    import os

    output_format(out)
    if out.is_dir():
        raise UserError(f"output path {out} is a folder; give a file name such as {out / 'restored.png'}")
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UserError(f"cannot write {out}: {parent} is not a writable folder; choose a writable path")


def _same_file(a: Path, b: Path) -> bool:
    import os

    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_not_an_input(out: Path, image: Path, model: Path, overwrite: bool) -> None:
    """Refuse an output that is the model, or the input image (through any path or link) unless `overwrite`."""
    if _same_file(out, model):
        raise UserError(f"-o {out} is the model file itself; give another output path")
    if _same_file(out, image) and not overwrite:
        raise UserError(f"-o {out} is the input image itself and would replace it; give another -o, or "
                        "--overwrite to replace the input")


def restore_file(cfg: RestoreConfig) -> dict:
    """Restore `cfg.image` into `cfg.out`; returns a summary (level, how it was chosen, tiles, runner, and a warning
    when the level is past the model's strongest training level, else None)."""
    if cfg.threads is not None and not 1 <= cfg.threads <= MAX_THREADS:
        raise UserError(f"--threads must be 1..{MAX_THREADS}, got {cfg.threads}")
    if not (math.isfinite(cfg.max_memory_mb) and 0 < cfg.max_memory_mb <= 2**24):
        raise UserError(f"--max-memory must be a number of MB in (0, {2**24}], got {cfg.max_memory_mb}")
    check_output(Path(cfg.out))
    check_not_an_input(Path(cfg.out), Path(cfg.image), Path(cfg.model), cfg.overwrite)
    kind, path, meta = resolve_model(cfg.model)
    task = meta.get("task")
    if cfg.input_upscaled and task != "sr":
        raise UserError(f"--input-upscaled applies to SR models; {path} is a {task} model")
    photo = read_photo(cfg.image, cfg.max_memory_mb)  # checked against the bound from its header, then decoded
    level, how = resolve_level(cfg.level, meta, photo)
    if task == "sr" and not cfg.input_upscaled:
        photo = upscale_photo(photo, level, cfg.max_memory_mb)
        how += f", upscaled from {cfg.image.name}'s size by bicubic"
    h, w = photo.rgb.shape[:2]
    max_pixels = plan_max_pixels(meta, h, w, cfg.max_memory_mb)
    runner = enter_runner(make_runner(kind, path, cfg.threads), path)
    try:
        x = np.ascontiguousarray(photo.rgb.transpose(2, 0, 1)[None])
        y = restore(runner, x, level, max_pixels=max_pixels)[0].transpose(1, 2, 0)
    finally:
        runner.__exit__(None, None, None)
    if not np.isfinite(y).all():
        raise UserError(f"{path} produced non-finite pixels at level {level:g}; re-export or re-train the model")
    write_photo(cfg.out, photo, np.clip(y, 0.0, 1.0))
    return {"level": level, "how": how, "runner": runner.name, "tiled": h * w > max_pixels, "size": (h, w),
            "warning": ArtifactMeta.from_dict(meta).past_training(level)}


def build_parser() -> argparse.ArgumentParser:
    p = CliParser(prog="python -m runtimes.restore", description=__doc__.split("\n")[0])
    p.add_argument("image", type=Path, help="input image (PNG, JPEG, TIFF, WebP, ...)")
    p.add_argument("--model", "-m", required=True, help="artifact (.onnx, .tflite, ...), .safetensors or shipped name")
    p.add_argument("--level", "-l", required=True, help="level in the model's unit (sigma, quality, scale) or 'auto'")
    p.add_argument("-o", "--out", type=Path, required=True, help="output image; the format follows the suffix")
    p.add_argument("--max-memory", type=float, default=RestoreConfig.max_memory_mb, metavar="MB",
                   help="memory bound for image buffers and activations; larger frames are tiled (default %(default)g)")
    p.add_argument("--threads", type=int, help="runtime threads (default: the runtime's own)")
    p.add_argument("--input-upscaled", action="store_true",
                   help="SR: the image is already resized to the output size (default: resize it by the scale)")
    p.add_argument("--overwrite", action="store_true", help="allow -o to be the input image itself (replaced)")
    return p


def parse_args(argv: list[str] | None) -> RestoreConfig:
    a = build_parser().parse_args(argv)
    return RestoreConfig(a.image, a.model, a.level, a.out, a.max_memory, a.threads, a.input_upscaled, a.overwrite)


def main(argv: list[str] | None = None) -> int:
    def body(args):
        cfg = parse_args(args)
        s = restore_file(cfg)
        if s["warning"]:
            print(f"warning: {s['warning']}", file=sys.stderr)
        tiled = " (tiled)" if s["tiled"] else ""
        print(f"{cfg.out}: {s['size'][1]}x{s['size'][0]} restored at {s['how']} with {s['runner']}{tiled}",
              file=sys.stderr)
        return 0

    return run_cli(body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
