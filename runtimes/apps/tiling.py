"""Tiled inference: frames larger than an artifact's fixed size (or a memory budget), any Runner.

The frame is cut into overlapping tiles; each tile's output is weighted by a raised-cosine ramp
over the overlap on its interior edges (1 on the frame's border) and the weighted outputs are
normalised by the summed weights, so the blend is a partition of unity with no seams. Tile sizes
and tile offsets are multiples of the network's stride (its `scale`: 2, or 4 for the "fast"
preset; the grid), which keeps every tile on the same pixel grid as the whole frame; other frame
sizes are padded by reflection up to the grid and cropped back, whole frames included.

Usage:
    out = restore(runner, image_nchw, 25.0)                       # tiles only where the artifact needs it
    out = restore(runner, image_nchw, 25.0, TileConfig((256, 256), overlap=32))
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from runtimes.core.artifact import decode_output, encode_image, has_level_input
from runtimes.core.errors import UserError


@dataclass(frozen=True)
class TileConfig:
    """Tile size (height, width) and overlap in pixels, all multiples of `grid` (the network's stride)."""

    tile: tuple[int, int]
    overlap: int = 32
    grid: int = 2

    def __post_init__(self):
        th, tw = self.tile
        g = self.grid
        if th < g or tw < g or th % g or tw % g:
            raise UserError(f"tile size must be a multiple of {g} (the network's stride), got {th}x{tw}")
        if self.overlap < 0 or self.overlap % g:
            raise UserError(f"tile overlap must be a multiple of {g} and >= 0, got {self.overlap}")
        if self.overlap >= min(th, tw) // 2 and self.overlap > 0:
            raise UserError(f"tile overlap {self.overlap} must be under half the tile size {th}x{tw}")


def tile_starts(length: int, tile: int, overlap: int, grid: int = 2) -> list[int]:
    """Start offsets on the grid covering [0, length) with tiles of `tile` overlapping by at least `overlap`.

    `length` and `tile` must be multiples of `grid` and `length >= tile`.
    """
    if length <= tile:
        return [0]
    step = tile - overlap - grid  # room for rounding the starts to the grid
    n = math.ceil((length - tile) / max(step, grid)) + 1
    return [grid * round(i * (length - tile) / grid / (n - 1)) for i in range(n)]


def grid_of(meta: dict) -> int:
    """The network's stride from an artifact's architecture metadata (2 when absent)."""
    try:
        arch = meta.get("arch") or {}
        return max(1, int(arch.get("grid", arch.get("scale", 2))))
    except (TypeError, ValueError):
        return 2


def receptive_field(arch: dict) -> int:
    """The network's receptive field in input pixels (one side), from its architecture metadata.

    The (2r-1)-tap stride-r head, then 2 * blocks + 2 3x3 convs at 1/r resolution (the blocks, the body conv,
    and the upsampling or last conv), then two 3x3 convs at full resolution where there is a tail. Newer
    metadata states it (`receptive_field`, written by the trainer for every topology).
    """
    if "receptive_field" in arch:
        return int(arch["receptive_field"])
    r, blocks, tail = int(arch.get("scale", 2)), int(arch.get("blocks", 0)), int(arch.get("tail_channels", 0))
    return (2 * r - 1) + 2 * (2 * blocks + 2) * r + (4 if tail else 0)


def check_fixed_sizes(sizes, arch: dict) -> None:
    """A `UserError` for an export size the runtimes cannot use: off the network's pixel grid (its stride), or
    smaller than its receptive field (every tile would be mostly border: a visible grid)."""
    grid, field_px = grid_of({"arch": arch}), receptive_field(arch)
    for h, w in sizes:
        if h % grid or w % grid:
            raise UserError(f"size {h}x{w} is not on the network's {grid}-pixel grid (its stride); use multiples "
                            f"of {grid}, e.g. {up_to_grid(h, grid)}x{up_to_grid(w, grid)}")
        if min(h, w) < field_px:
            side = up_to_grid(field_px, grid)
            raise UserError(f"size {h}x{w} is smaller than the network's receptive field ({field_px} px); use "
                            f"at least {side}x{side}")


def up_to_grid(n: int, grid: int) -> int:
    """`n` rounded up to a multiple of `grid`."""
    return n + (-n) % grid


def ramp_window(size: int, ramp: int, left: bool, right: bool) -> np.ndarray:
    """1-D weights: a raised-cosine rise over `ramp` pixels on the chosen sides, 1 elsewhere (never 0)."""
    w = np.ones(size, np.float32)
    if ramp > 0:
        rise = (0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp) + 0.5) / ramp)).astype(np.float32)
        if left:
            w[:ramp] = np.minimum(w[:ramp], rise)
        if right:
            w[size - ramp:] = np.minimum(w[size - ramp:], rise[::-1])
    return w


def pad_to(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pad (C, H, W) at the bottom/right by reflection up to (height, width)."""
    ph, pw = height - img.shape[1], width - img.shape[2]
    if ph == 0 and pw == 0:
        return img
    return np.pad(img, ((0, 0), (0, ph), (0, pw)), mode="symmetric")


def tile_image(fn: Callable[[np.ndarray], np.ndarray], image: np.ndarray, cfg: TileConfig) -> np.ndarray:
    """Apply `fn` (maps (1, C, th, tw) -> (1, C', th, tw)) tile by tile to one (C, H, W) image.

    Returns:
        (C', H, W) float32, the blended output.
    """
    (th, tw), ov, g = cfg.tile, cfg.overlap, cfg.grid
    _, h, w = image.shape
    hp, wp = max(th, up_to_grid(h, g)), max(tw, up_to_grid(w, g))
    padded = pad_to(image, hp, wp)
    ys, xs = tile_starts(hp, th, ov, g), tile_starts(wp, tw, ov, g)
    acc: np.ndarray | None = None
    wsum = np.zeros((hp, wp), np.float32)
    for y in ys:
        wy = ramp_window(th, ov, y > 0, y + th < hp)
        for x in xs:
            wx = ramp_window(tw, ov, x > 0, x + tw < wp)
            out = np.asarray(fn(padded[None, :, y:y + th, x:x + tw]), dtype=np.float32)[0]
            if acc is None:
                acc = np.zeros((out.shape[0], hp, wp), np.float32)
            weight = wy[:, None] * wx[None, :]
            acc[:, y:y + th, x:x + tw] += out * weight
            wsum[y:y + th, x:x + tw] += weight
    return (acc / wsum)[:, :h, :w]


def pick_tile(sizes: list, height: int, width: int, grid: int = 2) -> tuple[int, int]:
    """Of an artifact's fixed sizes, the one that covers (height, width) with the least computation."""
    best, best_cost = None, None
    for th, tw in (tuple(s) for s in sizes):
        if th % grid or tw % grid:
            continue
        ov = default_overlap((th, tw), grid)
        cost = len(tile_starts(max(th, up_to_grid(height, grid)), th, ov, grid)) * th
        cost *= len(tile_starts(max(tw, up_to_grid(width, grid)), tw, ov, grid)) * tw
        if best_cost is None or cost < best_cost:
            best, best_cost = (th, tw), cost
    if best is None:
        raise UserError(f"the artifact's fixed sizes {sizes} have no size that is a multiple of {grid} "
                        f"(the network's stride) to tile with; re-export at such a size")
    return best


def default_overlap(tile: tuple[int, int], grid: int = 2) -> int:
    """32 pixels, or less for small tiles (under half the tile, on the grid)."""
    limit = min(tile) // 2 - grid
    return max(0, min(32, limit - limit % grid))


def budget_tile(max_pixels: int, grid: int = 2) -> tuple[int, int]:
    """A square tile on the grid of at most `max_pixels` pixels (a memory budget expressed in pixels)."""
    side = max(grid, int(math.isqrt(max(grid * grid, max_pixels))))
    return side - side % grid, side - side % grid


def fixed_sizes(meta: dict) -> list[list[int]] | None:
    """An artifact's fixed [H, W] sizes ("sizes", else its TFLite signatures); None when H and W are dynamic."""
    if meta.get("sizes"):
        return [list(s) for s in meta["sizes"]]
    sigs = meta.get("signatures")
    if isinstance(sigs, dict) and sigs:
        return [list(v["size"]) for v in sigs.values()]
    return None


def plan_tiles(meta: dict, height: int, width: int, tile: TileConfig | None = None,
               max_pixels: int | None = None) -> TileConfig | None:
    """The tiling an artifact needs for an (height, width) frame; None when the whole frame runs at once."""
    sizes, g = fixed_sizes(meta), grid_of(meta)
    if tile is not None:
        if tile.grid != g:
            tile = TileConfig(tile.tile, tile.overlap, g)
        if sizes and list(tile.tile) not in [list(s) for s in sizes]:
            raise UserError(f"tile {tile.tile[0]}x{tile.tile[1]} is not one of the artifact's fixed sizes {sizes}")
        fits = height <= tile.tile[0] and width <= tile.tile[1]
        return None if fits and not sizes else tile
    if sizes:
        if [height, width] in [list(s) for s in sizes]:
            return None
        t = pick_tile(sizes, height, width, g)
        return TileConfig(t, default_overlap(t, g), g)
    if max_pixels is not None and height * width > max_pixels:
        t = budget_tile(max_pixels, g)
        return TileConfig(t, default_overlap(t, g), g)
    return None


def restore(runner, image: np.ndarray, level: float, tile: TileConfig | None = None,
            max_pixels: int | None = None) -> np.ndarray:
    """Restore NCHW float32 images with any Runner, tiling where needed (end-to-end).

    Args:
        runner: an entered Runner; its `meta` gives the layout and fixed sizes.
        image: (N, 3, H, W) float32 in [0, 1].
        level: the level in the artifact's unit.
        tile: force this tiling; None lets the artifact's fixed sizes (or `max_pixels`) decide.
        max_pixels: a memory budget: frames with more pixels are tiled.
    Returns:
        (N, 3, H, W) float32.
    """
    meta = runner.meta
    extra = {"level": np.asarray([level], np.float32)} if has_level_input(meta) else {}

    def call(x: np.ndarray) -> np.ndarray:
        return decode_output(meta, runner.run({"image": encode_image(meta, x), **extra})["restored"])

    h, w = image.shape[-2:]
    cfg = plan_tiles(runner.meta, h, w, tile, max_pixels)
    if cfg is None:
        g = grid_of(meta)
        if fixed_sizes(meta) is None and (h % g or w % g):
            # as tiles are: reflect up to the grid rather than leave the network's zero padding inside its
            # last stride cell (+0.01 to +0.07 dB on CBSD68's 481x321 frames, docs/results.md)
            image = np.stack([pad_to(img, up_to_grid(h, g), up_to_grid(w, g)) for img in image])
        return np.asarray(call(image), dtype=np.float32)[..., :h, :w]
    return np.stack([tile_image(call, img, cfg) for img in image])
