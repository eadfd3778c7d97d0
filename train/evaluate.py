"""Evaluate checkpoints on a benchmark folder at many levels (protocol of the datasets README).

PSNR/SSIM per level and their mean, with the degraded input's PSNR for reference; RGB for
denoising, luminance for de-JPEG and SR (grey images on their grey channel).

Usage:
    python -m train.evaluate --weights runs/dn/best.safetensors --set CBSD68/ --levels 0 5 15 25 --json eval.json
    python -m train.evaluate --compare runs/dn/best.safetensors runs/dn25/best.safetensors --set CBSD68/ --levels 25
    python -m train.evaluate --weights denoise-fast --set CBSD68/ --levels 75 --restore-at 65   # a mis-set level
"""

from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtimes.core.degrade import degrade, image_seed
from runtimes.core.errors import CliParser, UserError, run_cli
from runtimes.core.images import atomic_write_bytes, check_output_file, json_bytes, list_images, read_uint8
from runtimes.core.levels import parse_level
from runtimes.core.metrics import even_crop, psnr, ssim, unscorable

Y_TASKS = ("dejpeg", "sr")


@dataclass(frozen=True)
class EvalImage:
    name: str
    clean: np.ndarray  # uint8 (H, W, 3), even-cropped


def load_eval_set(folder: str | Path, crop: int | None = None) -> list[EvalImage]:
    """Images of a benchmark folder, even-cropped (or centre-cropped to `crop` px for quick validation)."""
    out = []
    for path in list_images(folder):
        img = even_crop(read_uint8(path))
        if unscorable(img) is not None:
            warnings.warn(f"{path.name}: skipped, {unscorable(img)}", stacklevel=2)
            continue
        if crop:
            h, w = img.shape[:2]
            if min(h, w) < crop:
                warnings.warn(f"{path.name}: smaller than the {crop}px validation crop, skipped", stacklevel=2)
                continue
            y, x = (h - crop) // 2, (w - crop) // 2
            img = img[y : y + crop, x : x + crop]
        out.append(EvalImage(path.name, img))
    if not out:
        raise UserError(f"no usable image in {folder}")
    return out


def restore(model, image: np.ndarray, level: float, device="cpu") -> np.ndarray:
    """Run the model on one float image (H, W, 3) at `level` (user's unit); returns (H, W, 3) float32."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].to(device)
    with torch.inference_mode():
        y = model(x, torch.tensor([float(level)], device=device))
    return y[0].float().cpu().numpy().transpose(1, 2, 0)


def evaluate_model(model, images: list[EvalImage], levels, device="cpu", with_ssim=True, progress=False,
                   restore_at: float | None = None) -> dict:
    """Score a model at each level: {"rows": [{level, psnr, ssim, input_psnr, below_input, worst_gain,
    worst_image}], "mean": {...}}.

    A mean over images can beat its input while an image loses to its own: `below_input` counts the images
    restored worse than their degraded input, `worst_gain` is the smallest restored − input PSNR over the set
    (its image: `worst_image`).

    restore_at: run the model at this level whatever the degradation level (a mis-set level knob);
    None restores each image at its own level.
    """
    task = model.level_map.task
    y_only = task in Y_TASKS
    rows = []
    it = [(lv, im) for lv in levels for im in images]
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="evaluate", unit="img", leave=False, file=sys.stderr)
    acc: dict[float, list[tuple[float, float, float]]] = {float(lv): [] for lv in levels}
    names: dict[float, list[str]] = {float(lv): [] for lv in levels}
    for lv, im in it:
        deg = degrade(im.clean, task, lv, seed=image_seed(im.name))
        out = restore(model, deg, lv if restore_at is None else restore_at, device)
        s = ssim(out, im.clean, y_only) if with_ssim else float("nan")
        acc[float(lv)].append((psnr(out, im.clean, y_only), s, psnr(deg, im.clean, y_only)))
        names[float(lv)].append(im.name)
    for lv, vals in acc.items():
        p, s, i = (float(np.mean(c)) for c in zip(*vals, strict=True))
        gains = [o - d for o, _, d in vals]
        worst = int(np.argmin(gains))
        rows.append({"level": lv, "psnr": p, "ssim": s, "input_psnr": i,
                     "below_input": int(sum(g < 0 for g in gains)), "worst_gain": float(gains[worst]),
                     "worst_image": names[lv][worst]})
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("psnr", "ssim", "input_psnr")}
    result = {"task": task, "metric": "Y" if y_only else "RGB", "images": len(images), "rows": rows, "mean": mean}
    return result if restore_at is None else {**result, "restored_at": float(restore_at)}


def markdown_table(result: dict, unit: str) -> str:
    """One checkpoint's result as a markdown table."""
    lines = [f"| {unit} | PSNR (dB) | SSIM | input PSNR (dB) |", "|---:|---:|---:|---:|"]
    for r in result["rows"]:
        lines.append(f"| {r['level']:g} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['input_psnr']:.2f} |")
    m = result["mean"]
    lines.append(f"| mean | {m['psnr']:.2f} | {m['ssim']:.4f} | {m['input_psnr']:.2f} |")
    return "\n".join(lines)


def below_input_lines(names: list[str], results: list[dict], unit: str) -> list[str]:
    """One line per checkpoint and level at which an image was restored worse than its input (none: no line)."""
    out = []
    for name, res in zip(names, results, strict=True):
        for r in res["rows"]:
            if r.get("below_input"):
                out.append(f"{name}: {r['below_input']} of {res['images']} images below their input at {unit} "
                           f"{r['level']:g} (worst: {r['worst_image']}, {r['worst_gain']:+.2f} dB)")
    return out


def compare_table(names: list[str], results: list[dict], unit: str) -> str:
    """Checkpoints side by side, with the gap of each to the first."""
    head = f"| {unit} | input | " + " | ".join(names) + " | " + " | ".join(f"{n} − {names[0]}" for n in names[1:])
    lines = [head.rstrip(" |") + " |", "|---:" * (2 + 2 * len(names) - 1) + "|"]
    for i, r0 in enumerate(results[0]["rows"]):
        vals = [res["rows"][i]["psnr"] for res in results]
        gaps = [v - vals[0] for v in vals[1:]]
        cells = [f"{r0['level']:g}", f"{r0['input_psnr']:.2f}", *(f"{v:.2f}" for v in vals),
                 *(f"{g:+.2f}" for g in gaps)]
        lines.append("| " + " | ".join(cells) + " |")
    means = [res["mean"]["psnr"] for res in results]
    cells = ["mean", f"{results[0]['mean']['input_psnr']:.2f}", *(f"{v:.2f}" for v in means),
             *(f"{v - means[0]:+.2f}" for v in means[1:])]
    lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _check_levels(meta_map, levels) -> None:
    for lv in levels:
        meta_map.check(lv)
        if meta_map.outside_trained(lv):
            top = meta_map.saturation_level
            how = ("extrapolating" if meta_map.max_strength is None
                   else f"run at the strength of {top:.4g}; --extrapolate scales the weights further")
            warnings.warn(f"{meta_map.unit} {lv:g} is outside the trained range ({how})", stacklevel=2)


def run(weights: list[str], data: str, levels: list[float], json_path: str | None, device: str,
        extrapolate: bool = False, restore_at: float | None = None) -> list[dict]:
    """Evaluate one or more checkpoints on a folder; prints markdown, optionally writes JSON.

    extrapolate: levels past the largest training level scale the weights further (the seed's
    behaviour) instead of running at its strength.
    restore_at: degrade at each of `levels` but restore at this one level (see `evaluate_model`).
    """
    from train.checkpoint import load_checkpoint

    models = [load_checkpoint(w, device)[0] for w in weights]
    if extrapolate:
        for m in models:
            m.level_map = m.level_map.extrapolating()
    tasks = {m.level_map.task for m in models}
    if len(tasks) > 1:
        raise UserError(f"checkpoints are for different tasks ({', '.join(sorted(tasks))}); compare one task")
    for m in models:
        _check_levels(m.level_map, levels if restore_at is None else [*levels, restore_at])
    images = load_eval_set(data)
    results = [evaluate_model(m, images, levels, device, progress=sys.stderr.isatty(), restore_at=restore_at)
               for m in models]
    unit = models[0].level_map.unit
    if restore_at is not None:
        print(f"every image restored at {unit} {restore_at:g}; rows give the degradation level")
    names = [Path(w).stem if len(set(map(lambda p: Path(p).stem, weights))) == len(weights) else str(w)
             for w in weights]
    if len(results) == 1:
        print(markdown_table(results[0], unit))
    else:
        print(compare_table(names, results, unit))
    for line in below_input_lines(names, results, unit):
        print(line)
    if json_path:
        payload = results[0] if len(results) == 1 else {"compare": [dict(r, weights=str(w))
                                                                    for r, w in zip(results, weights, strict=True)]}
        payload = {**payload, "set": Path(data).name, "extrapolate": extrapolate}  # the set's name, not a path
        atomic_write_bytes(json_path, json_bytes(payload, indent=2))
    return results


def build_parser() -> argparse.ArgumentParser:
    p = CliParser(prog="python -m train.evaluate", description=__doc__.split("\n")[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--weights", help="checkpoint (.safetensors) or shipped name, e.g. denoise-mobile")
    g.add_argument("--compare", nargs="+", metavar="WEIGHTS", help="checkpoints side by side (gap to the first)")
    p.add_argument("--set", required=True, dest="data", help="folder of clean benchmark images")
    p.add_argument("--levels", nargs="+", type=str, required=True, help="levels in the task's unit")
    p.add_argument("--json", help="write the results as JSON here")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--extrapolate", action="store_true",
                   help="levels past the largest training level scale the weights further (the seed's method) "
                        "instead of running at its strength")
    p.add_argument("--restore-at", type=str, default=None, metavar="LEVEL",
                   help="restore every degraded image at this level instead of its own (the effect of a mis-set level)")
    return p


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    levels = [parse_level(t) for t in a.levels]
    restore_at = None if a.restore_at is None else parse_level(a.restore_at)
    from train.device import resolve_device

    device = str(resolve_device(a.device))
    if a.json:
        check_output_file(a.json, "--json")
    run([a.weights] if a.weights else a.compare, a.data, levels, a.json, device, a.extrapolate, restore_at)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
