"""Model cards for the shipped weight sets: `train/pretrained/<name>.md`, rendered from `<name>.json`.

Every number in a card comes from the weight set's own metadata (written by `train.ship`: the training
configuration, the hardware and budget line, and the evaluations on the test sets); the words a number
cannot carry (intended use, known limits) are in `NOTES` below, with the section of docs/results.md
that measured them. A card is regenerated, never edited by hand.

Usage:
    python -m train.cards            # write every card
    python -m train.cards --check    # exit 1 when a card is missing or out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from train.lineage import lineage_budget

PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
UNITS = {"sigma": "σ of Gaussian noise on the 0–255 scale", "quality": "JPEG quality (1–100)",
         "scale": "upscaling factor (the input is already bicubic-resized to the output size)"}
TASKS = {"denoise": "colour image denoising (additive white Gaussian noise)",
         "dejpeg": "JPEG artifact removal (colour)", "sr": "super-resolution of a bicubic-upscaled image"}
DATA = {
    "CBSD432": "CBSD432: the 432 BSDS500 train+val photographs that are not in CBSD68 (481×321 JPEG)",
}
DATA_TERMS = ("The images are the Berkeley Segmentation Dataset's (BSDS500), as redistributed by public research "
              "repositories; none of them states a licence for the images, and the upstream set has its own "
              "research-use terms. Check those terms before any commercial use of weights trained on them. The "
              "model weights themselves are released under the project's MIT licence.")
NOTES = {
    "denoise-fast": {
        "use": "CPU-bound pipelines that need the lowest latency: phones' CPUs, LiteRT/XNNPACK, onnxruntime. A "
               "multi-scale (U-Net) network of 21.6 GMAC per 1080p frame whose level moves only biases (shift "
               "form), so the level changes per frame at no cost in the folded graph.",
        "limits": ["The last four runs trained σ 5 and the floor levels themselves (σ 5, 15, 25, 35, 50, 75, a "
                   "quarter of each stratum pinned there). Against the set before them σ 5 gained 1.30 dB and σ 25 "
                   "0.52; σ 35–40 lost 0.43–0.55 dB, σ 55 0.33, σ 65–75 0.15–0.23 and σ 90 0.40 (docs/results.md).",
                   "The network's best strength jumps three times (between σ 8.75 and 9.06, σ 19.7 and 20, σ 55 "
                   "and 57.5); the calibrated map has knots every 2.5 σ and three rounds of bisection at the first two "
                   "(`train.calibrate --refine 3`). CBSD68 reads no dip in PSNR at them.",
                   "σ 90 (past the training range, run at σ 75's calibrated strength) reads 21.49 dB on CBSD68.",
                   "Trained at peak learning rates of 2e-3, 1e-3 and 1.5e-3 (the 1.5e-3 runs with "
                   "`--clip-grad 0.03`), where this recipe is near the edge of stability (the first run "
                   "collapsed after step 2000 and was continued from its best checkpoint); retraining it needs "
                   "`--clip-grad` or a watch on the first validations.",
                   "The calibrated strengths were fitted on Set14 and LIVE1_color pooled (43 images, 192² centre "
                   "crops). Training further (`--init`, `train.qat`) starts from the uncalibrated weights, "
                   "train/candidates/denoise-unet-fast-shift-r9 in the source tree, and calibrates again "
                   "afterwards; the packaged set is refused there.",
                   "Meets every quality floor set for this class, σ 50 by 0.03 dB; trained on a 2-core CPU."],
        "results": "Shipped fast denoiser: a third σ 5 schedule, every `fast` floor met",
    },
    "denoise-fast-cal": {
        "use": "The previous `denoise-fast` (0.2: the `fast` preset, linear form) with a calibrated level map: "
               "28.7 GMAC per 1080p frame; below the current `denoise-fast` at every level measured (by 0.5 to 1.0 dB "
               "from σ 5 to 35).",
        "limits": ["The calibrated strengths were fitted on Set14 (14 images): other noise or image statistics "
                   "may prefer other strengths."],
        "results": "Calibrated level maps (`train.calibrate`, shipped as `denoise-fast-cal`)",
    },
    "denoise-fast-affine": {
        "use": "`fast` quality in the affine form (W = s·A + B): best in a fixed-level graph "
               "(`--level-mode fixed`), which costs the same as `denoise-fast`.",
        "limits": ["A folded graph (level at run time) computes its level convs twice: 1.6× the time of "
                   "the linear `fast` network (`denoise-fast-cal`)."],
        "results": "One weight set vs dedicated models, `fast` preset, CPU (denoising)",
    },
    "denoise-mobile": {
        "use": "Phones and embedded GPUs/NPUs that can afford 64.8 GMAC per 1080p frame (tile it): the `denoise-fast` "
               "network (multi-scale, shift form) grown to 28 channels (28/56/112/224 at 1/2 … 1/16 of the input "
               "resolution); better than `denoise-fast` at every level measured from σ 5 to 90.",
        "limits": ["Grown from `denoise-fast`'s network before its last run "
                   "(train/candidates/denoise-unet-fast-shift-r8: the same function at every level, new channels "
                   "with zero outgoing weights) to 24 channels and trained three schedules of its σ 5 recipe (12 000 "
                   "steps), then grown to 28 channels and trained one more (3000 steps), on a 2-core CPU.",
                   "Meets the quality floors set for this class at σ 5 / 15 / 25 / 50 / 75 by +0.51 / +0.14 / +0.11 / "
                   "+0.20 / +0.09 dB; still 0.43–0.85 dB under FFDNet at those levels.",
                   "The network's best strength jumps three times (between σ 8.1 and 8.75, σ 41.9 and 42.5, and σ 58.1 "
                   "and 58.75); σ 60 reads 0.11 dB under σ 57.5 on CBSD68.",
                   "σ 90 (past the training range, run at σ 75's calibrated strength) reads 22.57 dB on CBSD68, "
                   "1.06 dB under the previous `denoise-mobile` (the `mobile` preset in the linear form), which it "
                   "beats at every level from σ 5 to 75.",
                   "The calibrated strengths were fitted on Set14 and LIVE1_color pooled (43 images, 192² centre "
                   "crops). Training further (`--init`) starts from the uncalibrated weights, "
                   "train/candidates/denoise-unet-fast-c28-shift-m4 in the source tree, and calibrates again "
                   "afterwards."],
        "results": "Shipped mobile denoiser: grown again, to 28 channels, every `mobile` floor met",
    },
    "denoise-paper": {
        "use": "The HyperRes-sized reference (788 GMAC per 1080p frame): quality comparisons and GPU servers, not "
               "phones.",
        "limits": ["Too heavy for real-time mobile use."],
        "results": "Shipped paper-preset denoiser (`denoise-paper`, one H100)",
    },
    "dejpeg-fast": {
        "use": "Removing JPEG blocking and ringing from photos whose quality is known or read from the file "
               "(`runtimes.apps.autolevel.quality_from_tables`).",
        "limits": ["Trained on OpenCV-encoded JPEGs with 4:2:0 chroma subsampling; other encoders and "
                   "re-compressed files are untested.",
                   "The gain over the compressed input is modest (table below)."],
        "results": "Shipped fast de-JPEG model (`dejpeg-fast`)",
    },
    "sr-mobile": {
        "use": "Sharpening an image that was upscaled ×2–×5 with bicubic interpolation (resize first, then "
               "restore at the scale).",
        "limits": ["The input must already be bicubic-resized to the output size; other resamplers are untested.",
                   "An affine checkpoint: a folded graph computes its level convs twice; a fixed-scale graph "
                   "(`--level-mode fixed --level 2`) costs the same as a linear one."],
        "results": "Super-resolution: one weight set vs dedicated models, linear vs affine (`mobile`, shipped as "
                   "`sr-mobile`)",
    },
}
COMMON_LIMITS = [
    "Trained on synthetic degradations of clean photographs (Gaussian noise, OpenCV JPEG, bicubic resampling), "
    "not on real sensor noise, RAW data or other codecs; the input is gamma-encoded 8-bit sRGB.",
    "Levels beyond the largest training level run at its strength (the graph clamps them; `--extrapolate` "
    "removes the clamp and measures far worse).",
]
FFDNET_SIGMA5_GAIN = 40.24 - 34.25  # CBSD68, published weights on this project's noise (docs/results.md)


def _evaluations(meta: dict) -> list[dict]:
    """Every evaluation the card shows, the main one first."""
    return [meta["evaluation"], *(meta.get("evaluation_more") or [])]


def _denoise_limits(meta: dict) -> list[str]:
    """The σ 5 limit, from the card's own CBSD68 row at σ 5 (nothing when the card has no such row)."""
    rows = [r for ev in _evaluations(meta) if ev["set"] == "CBSD68" for r in ev["rows"] if r["level"] == 5]
    if not rows:
        return []
    gain = rows[0]["psnr"] - rows[0]["input_psnr"]
    return [f"At σ 5, the noise of a phone photo in good light, it gains {gain:.2f} dB over its input on CBSD68, "
            f"where FFDNet (one network, σ as an input) gains {FFDNET_SIGMA5_GAIN:.2f}: the seed's level scaling is "
            f"weakest at the lowest levels (docs/results.md, *The low-strength collapse*)."]


def _level(x: float) -> str:
    return f"{x:g}"


def _table(ev: dict) -> list[str]:
    unit = ev.get("metric", "RGB")
    lines = [f"{ev['set']} ({ev['images']} images, PSNR on {unit}; SSIM; `python -m train.evaluate`):", "",
             "| level | PSNR (dB) | input PSNR (dB) | gain (dB) | SSIM |", "|---:|---:|---:|---:|---:|"]
    for row in ev["rows"]:
        if row["input_psnr"] >= 100:  # the neutral level: the output is the input
            lines.append(f"| {_level(row['level'])} | identical to the input | | | |")
            continue
        lines.append(f"| {_level(row['level'])} | {row['psnr']:.2f} | {row['input_psnr']:.2f} | "
                     f"{row['psnr'] - row['input_psnr']:+.2f} | {row['ssim']:.4f} |")
    return lines + [""]


def _data(cfg: dict) -> str:
    name = Path(cfg.get("data", "")).name
    text = DATA.get(name, name)
    if cfg.get("exclude"):
        text += f", without {', '.join(cfg['exclude'])}"
    return text


def _steps(meta: dict) -> str:
    """The step count; for weights trained on from earlier runs' weights (--init), the whole chain's."""
    chain = meta.get("lineage") or []
    if not chain:
        return f"{meta['steps']:,} steps"
    before, _, complete = lineage_budget(chain)
    total = f"{meta['steps'] + before:,} steps in all" if complete else f"at least {meta['steps'] + before:,} steps"
    return f"{total} ({meta['steps']:,} in the last run, started from the weights of {len(chain)} before it)"


def render(name: str, meta: dict) -> str:
    """The card of one weight set, from its metadata."""
    notes = NOTES.get(name, {"use": "", "limits": [], "results": ""})
    lm, cfg, arch = meta["level_map"], meta.get("train_config", {}), meta["arch"]
    lo, hi = lm["lo"], lm["hi"]
    trained = ", ".join(_level(x) for x in meta["train_levels"])
    out = [f"# Model card: `{name}`", "",
           f"- **Task:** {TASKS[meta['task']]}.",
           f"- **Level:** {UNITS.get(lm['unit'], lm['unit'])}; accepted {_level(lo)}–{_level(hi)}, trained at "
           f"{trained}; `{lm['formula']}` inside every exported graph.",
           f"- **Network:** `{meta.get('preset')}` preset, {arch['form']} level convs, {arch['channels']} channels, "
           f"{arch['blocks']} residual block{'s' if arch['blocks'] != 1 else ''}, stride {arch['scale']}; "
           f"{meta['params']:,} parameters, "
           f"{meta['gmac_1080p']:.1f} GMAC per 1920×1080 frame.",
           f"- **Training data:** {_data(cfg)}; validation on {Path(cfg.get('val', '')).name}. {DATA_TERMS}",
           f"- **Budget and hardware:** {_steps(meta)}, batch {cfg.get('batch')} crops of "
           f"{cfg.get('patch')}×{cfg.get('patch')} at every training level; {meta['hardware']}.",
           "- **Licence:** MIT (the weights and the code); see LICENSE.", ""]
    if notes["use"]:
        out += ["## Intended use", "", notes["use"], ""]
    out += ["## Measured", ""]
    for ev in _evaluations(meta):
        out += _table(ev)
    if notes["results"]:
        out += [f"How these were measured, and comparisons: docs/results.md, *{notes['results']}*.", ""]
    limits = notes["limits"] + (_denoise_limits(meta) if meta["task"] == "denoise" else []) + COMMON_LIMITS
    out += ["## Known limits", ""] + [f"- {x}" for x in limits] + [""]
    return "\n".join(out)


def shipped() -> list[str]:
    return sorted(p.stem for p in PRETRAINED_DIR.glob("*.safetensors"))


def card_path(name: str) -> Path:
    return PRETRAINED_DIR / f"{name}.md"


def stale_cards() -> list[str]:
    """Names whose card is missing or differs from its rendering."""
    out = []
    for name in shipped():
        want = render(name, json.loads((PRETRAINED_DIR / f"{name}.json").read_text()))
        path = card_path(name)
        if not path.is_file() or path.read_text() != want:
            out.append(name)
    return out


def build_parser() -> argparse.ArgumentParser:
    from runtimes.core.errors import CliParser, doc_summary

    p = CliParser(prog="python -m train.cards", description=doc_summary(__doc__))
    p.add_argument("--check", action="store_true", help="exit 1 when a card is missing or out of date")
    return p


def main(argv: list[str] | None = None) -> int:

    args = build_parser().parse_args(argv)
    stale = stale_cards()
    if args.check:
        if stale:
            print(f"out of date: {', '.join(stale)}; run python -m train.cards", file=sys.stderr)
        return 1 if stale else 0
    for name in stale:
        card_path(name).write_text(render(name, json.loads((PRETRAINED_DIR / f"{name}.json").read_text())))
        print(card_path(name))
    return 0


if __name__ == "__main__":
    from runtimes.core.errors import run_cli

    raise SystemExit(run_cli(main))
