"""Calibrate a weight set's level -> strength map on validation images (never on the test sets).

A level-scaled network does not always restore a level best at that level's own strength: `denoise-fast`
restores σ 15 noise 1.4 dB better at σ 20's strength, and σ 75 noise 1.3 dB better at σ 65's
(docs/results.md). For every training level this command degrades the validation images at that level,
restores them at a grid of strengths around the map's own (`--factors`), and keeps the strength with the
best mean PSNR. The kept strengths become the knots of a monotone piecewise-linear map, stored in the
checkpoint's level map, so every exported graph and runtime uses it. The weights are unchanged; level 0
still returns the input, and levels past the largest training level run at its calibrated strength.

Usage:
    python -m train.calibrate --weights denoise-fast --set datasets/test/Set14 -o runs/denoise-fast-cal.safetensors
    python -m train.calibrate --weights runs/sr/best.safetensors --set datasets/test/CBSD68 -o runs/sr-cal.safetensors
    python -m train.calibrate --weights runs/dn/best.safetensors --set datasets/test/Set14 datasets/test/LIVE1_color \
        -o runs/dn-cal.safetensors      # several folders: their images pooled
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from runtimes.core.errors import CliParser, UserError, exit_unless_installed, run_cli

exit_unless_installed("torch", "train", __name__)

from runtimes.core.degrade import degrade, image_seed
from runtimes.core.images import check_output_file, ensure_writable_dir
from runtimes.core.levels import parse_level
from runtimes.core.metrics import psnr
from train.evaluate import Y_TASKS, EvalImage, load_eval_set

DEFAULT_FACTORS = tuple(round(f, 3) for f in np.arange(0.7, 1.601, 0.05))
DEFAULT_JUMP = 1.3


def scan(model, images: list[EvalImage], level: float, strengths, device="cpu") -> list[float]:
    """Mean PSNR of the images degraded at `level` and restored at each strength (the network's own input)."""
    import torch

    task = model.level_map.task
    y_only = task in Y_TASKS
    scores = np.zeros(len(strengths))
    for im in images:
        deg = degrade(im.clean, task, level, seed=image_seed(im.name))
        x = torch.from_numpy(np.ascontiguousarray(deg.transpose(2, 0, 1)))[None].to(device)
        for i, s in enumerate(strengths):
            with torch.inference_mode():
                y = model.forward_strength(x, torch.tensor([float(s)], device=device))
            scores[i] += psnr(y[0].float().cpu().numpy().transpose(1, 2, 0), im.clean, y_only)
    return (scores / len(images)).tolist()


def calibrate(model, images: list[EvalImage], factors=DEFAULT_FACTORS, device="cpu",
              levels=None, refine: int = 0, jump: float = DEFAULT_JUMP) -> tuple[object, list[dict]]:
    """(the calibrated level map, one row per knot level: level, own strength, best strength, PSNRs).

    levels: where to fit knots (default: the training levels); the largest training level is always one.
    A knot past it (e.g. σ 90 on a σ 15-75 model) moves the saturation there: the levels between run at
    their fitted strengths, and the levels past it at the top knot's.
    refine: rounds of bisection at the map's jumps. Between two neighbouring knots whose best strengths
    grow (or shrink) more than `jump` times faster than their own strengths, the levels in between are
    interpolated across two regimes of the network (the shift form's band), which none of them suits; each
    round fits one more knot halfway between every such pair, so the crossing narrows by half per round."""
    lmap = model.level_map.uncalibrated()
    levels = knot_levels(lmap, levels)
    rows = [_fit_knot(model, images, lmap, level, factors, device) for level in levels]
    for _ in range(refine):
        pairs = zip(rows[:-1], rows[1:], strict=True)
        mids = [_midpoint(lmap, a["level"], b["level"]) for a, b in pairs if _is_jump(a, b, jump)]
        mids = [m for m in mids if all(m != r["level"] for r in rows)]  # neighbours already adjacent: done
        if not mids:
            break
        rows += [_fit_knot(model, images, lmap, m, factors, device) for m in mids]
        rows.sort(key=lambda r: r["strength"])
    knots, prev = [], 0.0
    for r in rows:  # keep the map increasing: a knot below the previous one is lifted just above it
        s = max(r["best_strength"], prev + 1e-4)
        knots.append((r["strength"], s))
        prev = s
    return lmap.calibrated(tuple(knots)), rows  # a knot past the largest training level moves the saturation


def _fit_knot(model, images, lmap, level, factors, device) -> dict:
    u = lmap.linear(level)
    strengths = [u * f for f in factors]
    scores = scan(model, images, level, strengths, device)
    best = int(np.argmax(scores))
    own = factors.index(1.0)  # both the default and --factors include the map's own strength
    return {"level": level, "strength": u, "best_strength": strengths[best], "best_factor": factors[best],
            "psnr_own": scores[own], "psnr_best": scores[best]}


def _midpoint(lmap, a: float, b: float) -> float:
    """The level halfway between two knots; JPEG qualities are whole numbers (the encoder rounds them)."""
    m = (a + b) / 2
    return float(round(m)) if lmap.unit == "quality" else round(m, 4)


def _is_jump(a: dict, b: dict, jump: float) -> bool:
    """Whether the best strength changes between knots a and b more than `jump` times as fast as the own one."""
    ratio = b["best_factor"] / a["best_factor"]  # (best_b / best_a) / (own_b / own_a)
    return max(ratio, 1 / ratio) > jump


def knot_levels(lmap, levels=None) -> list[float]:
    """The levels to fit knots at, weakest to strongest: `levels` (default: the training levels) and the largest
    training level; a one-line error for a level outside the unit's range or at/below the neutral level."""
    top = max(lmap.train_levels, key=lmap.linear)
    levels = sorted({float(v) for v in (levels or lmap.train_levels)} | {float(top)}, key=lmap.linear)
    for v in levels:
        lmap.check(v)
    bad = [v for v in levels if not lmap.linear(v) > 0]
    if bad:
        raise UserError(f"--levels {' '.join(f'{v:g}' for v in bad)}: knots go on the degraded side of the neutral "
                        f"level ({lmap.neutral:g})")
    return levels


def parse_factors(text: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"--factors {text!r}: give comma-separated numbers, e.g. 0.8,0.9,1,1.1") from None
    if not vals or any(not 0 < v < 10 for v in vals) or 1.0 not in vals:
        raise UserError(f"--factors {text!r}: numbers in (0, 10) that include 1 (the map's own strength)")
    return tuple(sorted(set(vals)))


def build_parser() -> argparse.ArgumentParser:
    p = CliParser(prog="python -m train.calibrate", description=__doc__.splitlines()[0])
    p.add_argument("--weights", required=True, help="checkpoint or shipped weight-set name")
    p.add_argument("--set", required=True, dest="data", nargs="+", metavar="DATA",
                   help="folders of validation images, one or more (not a test set you report); the images of all "
                        "of them are pooled")
    p.add_argument("-o", "--out", required=True, help="the calibrated checkpoint (.safetensors)")
    p.add_argument("--factors", type=parse_factors, default=DEFAULT_FACTORS,
                   help="strengths tried, as factors of each level's own (default 0.7 to 1.6 in steps of 0.05)")
    p.add_argument("--levels", nargs="+", type=parse_level, default=None,
                   help="levels to fit knots at (default: the training levels; the largest is always one)")
    p.add_argument("--refine", type=int, default=0, metavar="N",
                   help="rounds of bisection where the best strength jumps between two knots: each round fits a "
                        "knot halfway between them (default 0)")
    p.add_argument("--jump", type=float, default=DEFAULT_JUMP,
                   help=f"what --refine calls a jump: the best strength changing this many times faster than the "
                        f"own strength between two knots (default {DEFAULT_JUMP:g})")
    p.add_argument("--crop", type=int, default=192, help="centre crop of each image in px (default 192; 0: whole)")
    p.add_argument("--max-images", type=int, default=None, help="use only the first N images")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    return p


def main(argv: list[str] | None = None) -> int:
    from train.checkpoint import load_checkpoint, resolve_weights, save_checkpoint
    from train.device import resolve_device
    from train.model import LevelNet

    a = build_parser().parse_args(argv)
    folders = [Path(folder).resolve() for folder in a.data]
    if len(set(folders)) < len(folders):
        twice = next(folder for folder in a.data if folders.count(Path(folder).resolve()) > 1)
        raise UserError(f"--set lists {twice} twice: its images would count double; give each folder once")
    if a.crop < 0 or (a.max_images is not None and a.max_images < 1):
        raise UserError("--crop must be >= 0 and --max-images >= 1")
    if a.refine < 0 or not a.jump > 1:
        raise UserError("--refine must be >= 0 and --jump > 1 (e.g. --refine 3 --jump 1.3)")
    out = Path(a.out)
    if out.suffix != ".safetensors":
        raise UserError(f"-o {out}: the calibrated checkpoint must end in .safetensors")
    check_output_file(out, "-o")
    check_output_file(out.with_suffix(".json"), "-o")
    ensure_writable_dir(out.parent)  # before the scan, not after it
    device = resolve_device(a.device)
    path = resolve_weights(a.weights)
    model, meta = load_checkpoint(path, device)
    if model.cfg.form == "plain":
        raise UserError(f"{path} is a dedicated single-level model: it has no level map to calibrate")
    knot_levels(model.level_map, a.levels)  # bad levels are refused before the images load
    images = [img for folder in a.data for img in load_eval_set(folder, crop=a.crop or None)][: a.max_images]
    set_name = "+".join(Path(folder).name for folder in a.data)
    lmap, rows = calibrate(model, images, a.factors, device, a.levels, a.refine, a.jump)
    unit = lmap.unit
    print(f"| {unit} | own strength | best strength | PSNR at own (dB) | at best (dB) | gain |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['level']:g} | {r['strength']:.4f} | {r['best_strength']:.4f} | {r['psnr_own']:.2f} | "
              f"{r['psnr_best']:.2f} | {r['psnr_best'] - r['psnr_own']:+.2f} |")
    calibrated = LevelNet(model.cfg, lmap).to(device)
    calibrated.load_state_dict(model.state_dict())
    meta = {k: v for k, v in meta.items() if k not in ("format", "format_version", "arch", "level_map", "task")}
    meta["calibration"] = {"from": str(a.weights), "set": set_name, "images": len(images),
                           "levels": [r["level"] for r in rows],
                           "crop": a.crop, "factors": list(a.factors), "refine": a.refine, "jump": a.jump,
                           "rows": rows}
    meta.pop("evaluation", None)  # measured with the old map
    meta.pop("evaluation_more", None)
    save_checkpoint(out, calibrated, meta)
    print(f"{out}: level map calibrated on {len(images)} images of {set_name} "
          f"({lmap.to_dict()['formula']})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))

