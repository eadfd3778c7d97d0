"""Train one level-scaled weight set (or a dedicated single-level baseline).

Usage:
    python -m train --task denoise --preset mobile --data CBSD432/ --levels 15 35 55 75 --minutes 60 --out runs/dn
    python -m train --task denoise --preset mobile --data CBSD432/ --baseline-level 25 --minutes 60 --out runs/dn25
    python -m train ... --resume                      # continue runs/dn exactly where it stopped
    torchrun --nproc_per_node 4 -m train ...          # several GPUs (DistributedDataParallel)
"""

from __future__ import annotations

import argparse
import sys

from runtimes.core.errors import CliParser, UserError, run_cli
from runtimes.core.levels import UNITS, parse_level
from train import COMPILE_MODES, LEVEL_WEIGHTINGS


def build_parser() -> argparse.ArgumentParser:
    from train.model import FORMS, PRESETS

    # a later option overrides an earlier one: the training scripts pass their defaults, then the caller's extras
    p = CliParser(prog="python -m train", description=__doc__.split("\n")[0], last_wins=True)
    p.add_argument("--task", required=True, help=f"one of {', '.join(UNITS)}")
    p.add_argument("--data", required=True, help="folder of clean training photos")
    p.add_argument("--out", required=True, help="run folder (checkpoints, history)")
    p.add_argument("--preset", default="mobile", help=f"one of {', '.join(PRESETS)}")
    p.add_argument("--form", choices=[f for f in FORMS if f != "plain"], help="level form (default: the preset's)")
    p.add_argument("--channels", type=int, help="feature channels (default: the preset's)")
    p.add_argument("--blocks", type=int, help="residual blocks (default: the preset's)")
    p.add_argument("--block-levels", type=int, choices=(1, 2),
                   help="level convs per residual block: 2 (both) or 1 (the second only; the block then scales "
                        "as the strength, not its square); default: the preset's")
    p.add_argument("--out-gate", choices=("strength", "unit"),
                   help="the output conv's factor: the strength (the seed) or unit: min(1, level / one unit), which "
                        "keeps level 0 exact without asking the body for a 1/strength gain at low levels")
    p.add_argument("--biases", choices=("constant", "level"),
                   help="constant (the seed) or level: with --form shift every bias of the network moves with the "
                        "level and none is constant, so with --out-gate unit the network scales with the image and "
                        "the level together (noise of any level is the same problem at another contrast); default: "
                        "constant")
    p.add_argument("--head", choices=("plain", "affine"),
                   help="the head conv: plain (the seed; the level does not reach it) or affine (W = s*A + B: the "
                        "features the body sees can change their gain with the level; --init from a plain head is "
                        "exact at every level); default: plain")
    p.add_argument("--levels", nargs="+", type=str, help="training levels in the task's unit")
    p.add_argument("--baseline-level", type=str, help="train a dedicated plain model at this single level")
    b = p.add_mutually_exclusive_group()
    b.add_argument("--steps", type=int, help="step budget")
    b.add_argument("--minutes", type=float, help="wall-clock budget (steps estimated after a warm-up)")
    p.add_argument("--batch", type=int, default=16, help="clean crops per step (each seen at every level)")
    p.add_argument("--patch", type=int, default=96, help="training crop side in px")
    p.add_argument("--lr", type=float, default=2e-4, help="peak learning rate")
    p.add_argument("--schedule", choices=("cosine", "step"), default="cosine",
                   help="learning-rate schedule: cosine decay, or step (halving at 50/75/90%% of the steps)")
    p.add_argument("--warmup", type=int, default=0,
                   help="steps of linear warm-up to the peak learning rate (default 0; fewer than --steps)")
    p.add_argument("--clip-grad", type=float, metavar="NORM",
                   help="clip the gradients' global L2 norm to NORM before each step (default: no clipping)")
    p.add_argument("--level-weighting", choices=LEVEL_WEIGHTINGS, default="strength",
                   help="strength: divide each level's L1 by its strength (default); none: average plainly; log: "
                        "average log L1 per sample (each sample pulls by its relative error, as the mean PSNR does)")
    p.add_argument("--level-jitter", type=float, default=0.0,
                   help="draw each sample's level uniformly up to this fraction of the way to the neighbouring "
                        "training levels (0 = the exact training levels, the seed's method)")
    p.add_argument("--level-exact", type=float, default=0.0,
                   help="with --level-jitter or strata: the fraction of each level's samples kept at the exact "
                        "training level (pins the end levels, which jitter draws from one side only; default 0)")
    p.add_argument("--level-sampling", choices=("points", "strata"), default="points",
                   help="points: the training levels (with --level-jitter around them); strata: continuous over the "
                        "whole range, each level's samples uniform between the next level towards the neutral one "
                        "(sigma 0 for the first) and it")
    p.add_argument("--weight-floor", type=str, metavar="LEVEL",
                   help="with --level-weighting strength: samples below this level are weighted as it (use with "
                        "--level-sampling strata, whose first stratum reaches the neutral level; e.g. 5 for sigma)")
    p.add_argument("--strength-offset", type=float, default=0.0,
                   help="strength = OFFSET + (1 - OFFSET) * level / top level from one unit up (level 0 stays exact; "
                        "default 0, the seed's map)")
    p.add_argument("--seed", type=int, default=0, help="initialisation and batch seed (default 0)")
    p.add_argument("--val", help="folder of validation images (centre crops)")
    p.add_argument("--val-levels", nargs="+", type=str, metavar="LEVEL",
                   help="validate at these levels (default: the training levels; the best checkpoint maximises their "
                        "mean), e.g. 5 15 35 55 75 to watch sigma 5 under strata sampling")
    p.add_argument("--val-every", type=int, default=1000, help="validate every N steps")
    p.add_argument("--save-every", type=int, default=500, help="save the resumable state every N steps")
    p.add_argument("--workers", type=int, help="data-loader processes")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ...")
    p.add_argument("--no-amp", action="store_true", help="disable bf16 autocast on CUDA")
    p.add_argument("--compile", choices=("on", "off"),
                   help="torch.compile (default: on for CUDA, and on a CPU for the unet presets)")
    p.add_argument("--compile-mode", choices=COMPILE_MODES,
                   help="torch.compile mode (default: reduce-overhead on one GPU, each step replayed as CUDA graphs; "
                        "default under torchrun and on a CPU)")
    p.add_argument("--exclude", nargs="*", default=[], help="file names of --data to leave out")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--init", metavar="WEIGHTS",
                   help="start from this checkpoint's weights (same task, architecture and training levels); "
                        "the optimizer and schedule start fresh")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def parse_args(argv: list[str] | None):
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.task not in UNITS:
        raise UserError(f"unknown task {a.task!r}; choose one of {', '.join(UNITS)}")
    if a.steps is None and a.minutes is None:
        raise UserError("give a budget: --steps N or --minutes M")
    from train.trainer import TrainConfig, train

    cfg = TrainConfig(
        task=a.task, data=a.data, out=a.out, preset=a.preset, form=a.form, channels=a.channels, blocks=a.blocks,
        block_levels=a.block_levels, out_gate=a.out_gate, biases=a.biases, head=a.head,
        levels=tuple(parse_level(x) for x in a.levels) if a.levels else None,
        baseline_level=parse_level(a.baseline_level) if a.baseline_level is not None else None,
        steps=a.steps, minutes=a.minutes, batch=a.batch, patch=a.patch, lr=a.lr, schedule=a.schedule,
        warmup=a.warmup, clip_grad=a.clip_grad, seed=a.seed,
        level_weighting=a.level_weighting, level_jitter=a.level_jitter, level_exact=a.level_exact,
        level_sampling=a.level_sampling, strength_offset=a.strength_offset,
        weight_floor=None if a.weight_floor is None else parse_level(a.weight_floor),
        val=a.val, val_levels=tuple(parse_level(x) for x in a.val_levels) if a.val_levels else None,
        val_every=a.val_every, save_every=a.save_every, workers=a.workers, device=a.device,
        amp=not a.no_amp, compile=None if a.compile is None else a.compile == "on", compile_mode=a.compile_mode,
        exclude=tuple(a.exclude), progress=not a.no_progress, init=a.init).check()
    best = train(cfg, resume=a.resume)
    print(f"best checkpoint: {best}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
