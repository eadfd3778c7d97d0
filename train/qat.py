"""Quantization-aware fine-tuning for the full-integer (int8) exports.

`python -m export.tflite --precision int8` rounds every conv's weights to a symmetric per-channel int8
grid and every activation between the image input and the last conv to a per-tensor int8 grid, while
the strength path and the ops after the last conv stay float (export.tflite_quant). Post-training, the
`fast` denoiser's int8 output is 33 dB from its float output at its top level (σ 75), and `mobile` loses
0.45-0.68 dB of restoration PSNR.

`QuantSim` runs a `LevelNet` with the same roundings at the same points as that graph (the per-conv
folded form: conv, fused ReLU, x strength, residual add), with straight-through gradients. Its
activation ranges are calibrated once on training batches, at each training level, by the exporter's
own rule (`train.int8_range.level_union_range`) and then held fixed; weight grids follow the
weights. Fine-tuning through it at a low learning rate teaches the float weights to tolerate the
rounding. The result is an ordinary checkpoint: the exporter quantizes it post-training as usual, and
its float form remains a valid model.

Usage:
    python -m train.qat --weights denoise-fast --data CBSD432/ --steps 1000 --out runs/dn-fast-qat
    python -m export.tflite --weights runs/dn-fast-qat/best.safetensors --precision int8 --calibration CBSD432/
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

import numpy as np

from runtimes.core.errors import exit_unless_installed

exit_unless_installed("torch", "train", __name__)

import torch
import torch.nn.functional as F
from torch import nn

from runtimes.core.errors import CliParser, UserError, run_cli
from train.model import LevelConv2d, LevelNet, Ops

CALIBRATION_BATCHES = 4  # training batches (each at every training level) that set the activation ranges
SAMPLE = 1 << 16  # values kept per quantization point, level and batch


def fake_quant_weight(w: torch.Tensor) -> torch.Tensor:
    """w rounded to the exporter's grid: symmetric per output channel, scale max|w| / 127 (straight-through)."""
    scale = w.detach().abs().reshape(len(w), -1).amax(dim=1) / 127.0
    scale = torch.where(scale > 0, scale, torch.ones_like(scale)).float()
    zero = torch.zeros(len(w), dtype=torch.int32, device=w.device)
    return torch.fake_quantize_per_channel_affine(w.float(), scale, zero, 0, -127, 127).to(w.dtype)


def fake_quant(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """x on the per-tensor int8 grid of [lo, hi] (0 inside, as the quantizer keeps it; zero gradient outside)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo <= 0:
        return x
    scale = (hi - lo) / 255.0
    zero = int(np.clip(round(-128 - lo / scale), -128, 127))
    return torch.fake_quantize_per_tensor_affine(x.float(), scale, zero, -128, 127).to(x.dtype)


class QuantSim(nn.Module, Ops):
    """`forward(image, level)` of a `LevelNet` as its full-integer export computes it (float arithmetic): the
    network's own forward pass (`LevelNet.forward_strength`) with this class's steps (`train.model.Ops`).

    Before `calibrate` (or `ranges` given) it runs unquantized activations; with `observing` set it records
    samples of each quantization point for calibration.
    """

    def __init__(self, net: LevelNet, ranges: dict[str, tuple[float, float]] | None = None):
        super().__init__()
        self.net, self.level_map = net, net.level_map
        self.ranges = dict(ranges or {})
        self.observing: dict[str, list[np.ndarray]] | None = None
        self._rng = np.random.default_rng(0)
        # the int8 graph quantizes the strength over its calibrated range: neutral .. strongest training level
        lm = net.level_map
        self.max_strength = max(lm.strength(lv) for lv in (*lm.train_levels, lm.saturation_level))

    def point(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """x rounded to the int8 grid of point `name` (recorded instead while observing)."""
        if self.observing is not None:
            flat = x.detach().float().reshape(-1).cpu().numpy()
            pick = flat if flat.size <= SAMPLE else flat[self._rng.integers(0, flat.size, SAMPLE)]
            self.observing.setdefault(name, []).append(pick)
            return x
        r = self.ranges.get(name)
        return x if r is None else fake_quant(x, *r)

    q = point

    def _conv(self, m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, fake_quant_weight(m.weight), m.bias, m.stride, m.padding)

    def conv(self, name: str, m: nn.Conv2d, x: torch.Tensor, relu: bool = False) -> torch.Tensor:
        y = self._conv(m, x)
        return self.q(name, F.relu(y) if relu else y)

    def add(self, name: str, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.q(name, a + b)

    def level(self, name: str, conv: LevelConv2d, x: torch.Tensor, s4: torch.Tensor, relu: bool = False,
              last: bool = False) -> torch.Tensor:
        """A level conv as the int8 graph runs it; `last`: its scaled output is already in the float tail."""
        if conv.form == "plain":
            y = self._conv(conv, x)
            return self.q(name, F.relu(y) if relu else y)
        if conv.form == "linear":  # relu(s * conv) == s * relu(conv) for s >= 0: the ReLU fuses into the conv
            y = self.q(name, F.relu(self._conv(conv, x)) if relu else self._conv(conv, x))
            return y * s4 if last else self.q(name + ".scaled", y * s4)
        if conv.form == "shift":  # conv(x, W, b) + s*c: the level-moved bias added after the int8 conv
            y = self._conv(conv, x) + s4 * conv.bias_level.reshape(1, -1, 1, 1)
            y = y if last else self.q(name, y)
            return F.relu(y) if relu else y
        w = torch.cat([conv.weight, conv.weight_b])
        b = torch.cat([conv.bias, conv.bias_b])
        ya, yb = self.q(name, F.conv2d(x, fake_quant_weight(w), b, conv.stride, conv.padding)).chunk(2, dim=1)
        if last:
            return ya * s4 + yb
        y = self.q(name + ".mixed", self.q(name + ".scaled", ya * s4) + yb)
        return F.relu(y) if relu else y

    def forward(self, image: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        s = torch.clamp(self.net.strength(level), min=0.0)
        s4 = fake_quant(s, 0.0, self.max_strength).reshape(-1, 1, 1, 1).to(image.dtype)
        return self.net.forward_strength(image, s4, ops=self)

    @torch.no_grad()
    def calibrate(self, batches) -> dict[str, tuple[float, float]]:
        """Set every activation range from (degraded (k*B,3,P,P), levels (k*B,)) batches, per training level:
        each level's least-error int8 range, and the union over the levels (the exporter's rule)."""
        from train.int8_range import level_union_range

        per_level: dict[float, dict[str, list[np.ndarray]]] = {}
        was_training = self.training
        self.eval()
        for deg, levels in batches:
            for lv in torch.unique(levels).tolist():
                self.observing = per_level.setdefault(float(lv), {})
                pick = levels == lv
                self(deg[pick], levels[pick])
        self.observing = None
        self.train(was_training)
        names = {n for values in per_level.values() for n in values}
        self.ranges = {n: tuple(float(v) for v in level_union_range(
            [np.concatenate(values[n]) for values in per_level.values() if n in values])) for n in sorted(names)}
        return self.ranges


def qat_config(weights: str, **overrides):
    """A `TrainConfig` that fine-tunes `weights` through `QuantSim`, with the checkpoint's task, architecture,
    levels and level sampling."""
    from train.checkpoint import read_meta, resolve_weights
    from train.trainer import TrainConfig

    path = resolve_weights(weights)
    meta = read_meta(path)
    arch, tc = meta.get("arch") or {}, meta.get("train_config") or {}
    baseline = meta.get("baseline_level")
    levels = None if baseline is not None else tuple(meta.get("train_levels") or ())
    from train.model import OVERRIDABLE, preset_for_arch

    name = meta.get("preset") or tc.get("preset") or preset_for_arch(arch)
    if name is None:
        raise UserError(f"{path}: its architecture {arch} matches no preset, so it cannot be fine-tuned here")
    shape = {k: arch.get(k) for k in OVERRIDABLE} | {"form": None if arch.get("form") == "plain" else arch.get("form")}
    cfg = dict(task=meta.get("task"), preset=name, **shape, levels=levels,
               baseline_level=baseline, level_jitter=float(tc.get("level_jitter", 0.0)),
               level_exact=float(tc.get("level_exact", 0.0)), level_sampling=tc.get("level_sampling", "points"),
               strength_offset=float(tc.get("strength_offset", 0.0)),
               # a floor stored beside another weighting never acted (older runs accepted it): not carried over
               weight_floor=tc.get("weight_floor") if tc.get("level_weighting", "strength") == "strength" else None,
               level_weighting=tc.get("level_weighting", "strength"), init=str(path), qat=True)
    return TrainConfig(**{**cfg, **overrides})


def build_parser() -> argparse.ArgumentParser:
    p = CliParser(prog="python -m train.qat", description=__doc__.split("\n")[0])
    p.add_argument("--weights", required=True, help="checkpoint (.safetensors) or shipped weight-set name to fine-tune")
    p.add_argument("--data", required=True, help="folder of clean training photos")
    p.add_argument("--out", required=True, help="run folder (checkpoints, history)")
    b = p.add_mutually_exclusive_group()
    b.add_argument("--steps", type=int, help="step budget (default 1000)")
    b.add_argument("--minutes", type=float, help="wall-clock budget")
    p.add_argument("--lr", type=float, default=2e-5, help="peak learning rate (default 2e-5, cosine to 1%%)")
    p.add_argument("--batch", type=int, default=16, help="clean crops per step (each seen at every level)")
    p.add_argument("--patch", type=int, default=96, help="training crop side in px")
    p.add_argument("--val", help="folder of validation images (centre crops), scored through the int8 simulation")
    p.add_argument("--val-every", type=int, default=250, help="validate every N steps")
    p.add_argument("--save-every", type=int, default=250, help="save the resumable state every N steps")
    p.add_argument("--workers", type=int, help="data-loader processes")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ...")
    p.add_argument("--exclude", nargs="*", default=[], help="file names of --data to leave out")
    p.add_argument("--seed", type=int, default=1, help="batch seed (default 1: other crops than a seed-0 run)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def parse_args(argv: list[str] | None):
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    from train.trainer import train

    cfg = qat_config(a.weights, data=a.data, out=a.out, steps=a.steps if a.minutes is None else None,
                     minutes=a.minutes, lr=a.lr, batch=a.batch, patch=a.patch, val=a.val, val_every=a.val_every,
                     save_every=a.save_every, workers=a.workers, device=a.device, exclude=tuple(a.exclude),
                     seed=a.seed, compile=False, progress=not a.no_progress).check()
    if cfg.steps is None and cfg.minutes is None:
        cfg = replace(cfg, steps=1000)
    best = train(cfg, resume=a.resume)
    print(f"best checkpoint: {best}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
