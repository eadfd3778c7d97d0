"""Training throughput side by side: the trainer's step against a plain reference loop, in one run.

Both loops train the same preset on the same batches (k training levels x B crops of P x P, already
on the device, so data loading is not timed) for `steps` steps after `warmup` untimed steps. Each
loop is timed with a device synchronisation at both ends.
    reference  fp32, NCHW, eager; the same loss and Adam step (what a first training script does)
    trainer    `Trainer.train_step` as configured: bf16 autocast, channels_last, fused Adam and torch.compile
               (reduce-overhead: each step replayed as CUDA graphs) on CUDA
It prints steps/s for each and their ratio. The target for the paper preset on an H100 is >= 2x a
reference loop's 66 steps/s. This is a benchmark, not a test; on a CPU it only shows that it runs.

Usage:
    python -m train.throughput --preset paper --steps 200 --warmup 30 [--batch 16] [--patch 96]
    python -m train.throughput --compile-modes default reduce-overhead   # the trainer in each mode
    python -m train.throughput --preset fast --cpu-variants --steps 20 --warmup 5   # which speed-ups pay on a CPU
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtimes.core.errors import exit_unless_installed

exit_unless_installed("torch", "train", __name__)

import torch

from runtimes.core.errors import CliParser, UserError, run_cli
from train import COMPILE_MODES
from train.data import add_noise_torch
from train.model import PRESETS, build_model
from train.trainer import TrainConfig, Trainer


@dataclass(frozen=True)
class ThroughputConfig:
    """One side-by-side measurement.

    Attributes:
        preset: model preset.
        task: degradation task (its default training levels).
        steps: timed steps per loop.
        warmup: untimed steps per loop (compilation happens here).
        batch: clean crops per step (each seen at every level).
        patch: crop size.
        device: None picks CUDA when available.
        compile_modes: torch.compile modes the trainer's step is timed in (one trainer each; None: the
            trainer's default).
    """

    preset: str = "paper"
    task: str = "denoise"
    steps: int = 100
    warmup: int = 20
    batch: int = 16
    patch: int = 96
    device: str | None = None
    compile_modes: tuple[str | None, ...] = (None,)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(step, n: int, warmup: int, device: torch.device) -> float:
    """Steps per second of `step()` over `n` calls after `warmup` calls."""
    for _ in range(warmup):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    _sync(device)
    return n / (time.perf_counter() - t0)


def _synthetic_photos(folder: Path, size: int, count: int = 4) -> None:
    from runtimes.core.images import write_image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(count):
        base = np.stack([np.sin(6 * xx + i), np.cos(5 * yy - i), xx * yy], axis=2)
        img = np.clip(0.5 + 0.4 * base + 0.05 * rng.standard_normal(base.shape), 0, 1)
        write_image(folder / f"p{i}.png", img)


def measure_throughput(cfg: ThroughputConfig) -> dict:
    """Steps/s of the reference loop and of the trainer's step; returns a JSON-ready record."""
    if cfg.preset not in PRESETS:
        raise UserError(f"unknown preset {cfg.preset!r}; choose one of {', '.join(PRESETS)}")
    if not cfg.compile_modes or any(m is not None and m not in COMPILE_MODES for m in cfg.compile_modes):
        raise UserError(f"--compile-modes takes one or more of {', '.join(COMPILE_MODES)}")
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        _synthetic_photos(Path(tmp), cfg.patch + 8)
        for mode in cfg.compile_modes:
            tcfg = TrainConfig(task=cfg.task, data=tmp, out=str(Path(tmp) / "run"), preset=cfg.preset, steps=10**9,
                               batch=cfg.batch, patch=cfg.patch, workers=0, device=cfg.device, progress=False,
                               compile_mode=mode)
            trainer = Trainer(tcfg)
            batch = tuple(torch.as_tensor(x) for x in trainer.batches[0])
            device = trainer.device
            name = trainer.compile_mode or "eager"
            rates[name] = _timed(lambda t=trainer, b=batch: t.train_step(b), cfg.steps, cfg.warmup, device)
        ref_rate = _reference_rate(trainer, batch, cfg)
    fast = next(iter(rates.values()))
    return {"preset": cfg.preset, "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "batch": f"{len(trainer.levels)} levels x {cfg.batch} crops of {cfg.patch}x{cfg.patch}",
            "steps": cfg.steps, "warmup": cfg.warmup, "reference_steps_per_s": ref_rate,
            "trainer_steps_per_s": fast, "ratio": fast / ref_rate,
            "compile_mode": next(iter(rates)),
            "modes": {m: {"trainer_steps_per_s": r, "ratio": r / ref_rate} for m, r in rates.items()},
            "torch": torch.__version__}


def _reference_rate(trainer: Trainer, batch, cfg: ThroughputConfig, channels_last: bool = False, bf16: bool = False,
                    compiled: bool = False) -> float:
    """The plain loop: fp32, NCHW, eager, the trainer's loss, Adam; or with one of the CPU variants switched on."""
    device = trainer.device
    model = build_model(trainer.model.cfg, trainer.level_map).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if compiled else model
    opt = torch.optim.Adam(model.parameters(), lr=trainer.cfg.lr)
    clean, deg, levels = (t.to(device) for t in batch)
    target = clean.repeat(len(trainer.levels), 1, 1, 1)
    if channels_last:
        target, deg = (t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t for t in (target, deg))

    def step():
        x = add_noise_torch(target, levels, 0, 0, 0) if trainer.cfg.task == "denoise" else deg  # as the trainer
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = forward(x, levels)
        loss = trainer.loss(out.float(), target, levels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return _timed(step, cfg.steps, cfg.warmup, device)


CPU_VARIANTS = {"fp32": {}, "channels_last": {"channels_last": True}, "bf16 autocast": {"bf16": True},
                "torch.compile": {"compiled": True},
                "channels_last + compile": {"channels_last": True, "compiled": True}}


def measure_cpu_variants(cfg: ThroughputConfig) -> dict:
    """Steps/s of the plain loop and of each speed-up alone (`CPU_VARIANTS`), side by side in one run: which of
    the GPU trainer's speed-ups pay on a CPU."""
    if cfg.preset not in PRESETS:
        raise UserError(f"unknown preset {cfg.preset!r}; choose one of {', '.join(PRESETS)}")
    with tempfile.TemporaryDirectory() as tmp:
        _synthetic_photos(Path(tmp), cfg.patch + 8)
        tcfg = TrainConfig(task=cfg.task, data=tmp, out=str(Path(tmp) / "run"), preset=cfg.preset, steps=10**9,
                           batch=cfg.batch, patch=cfg.patch, workers=0, device="cpu", progress=False)
        trainer = Trainer(tcfg)
        batch = tuple(torch.as_tensor(x) for x in trainer.batches[0])
        rates = {name: _reference_rate(trainer, batch, cfg, **flags) for name, flags in CPU_VARIANTS.items()}
    return {"preset": cfg.preset, "device": "cpu", "threads": torch.get_num_threads(),
            "batch": f"{len(trainer.levels)} levels x {cfg.batch} crops of {cfg.patch}x{cfg.patch}",
            "steps": cfg.steps, "warmup": cfg.warmup, "torch": torch.__version__,
            "variants": {n: {"steps_per_s": r, "ratio": r / rates["fp32"]} for n, r in rates.items()}}


def _report_cpu_variants(rec: dict, json_path: Path | None) -> int:
    print(f"{rec['preset']} on the CPU, {rec['threads']} threads ({rec['batch']}):")
    for name, r in rec["variants"].items():
        print(f"  {name:24s} {r['steps_per_s']:6.2f} steps/s  {r['ratio']:.2f}x")
    if json_path:
        from runtimes.core.images import atomic_write_bytes, json_bytes

        atomic_write_bytes(json_path, json_bytes(rec))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = CliParser(prog="python -m train.throughput", description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="paper", help=f"one of {', '.join(PRESETS)} (default paper)")
    p.add_argument("--task", default="denoise", choices=("denoise", "dejpeg", "sr"), help="task (its levels and data)")
    p.add_argument("--steps", type=int, default=100, help="timed steps per loop (default 100)")
    p.add_argument("--warmup", type=int, default=20, help="untimed steps per loop (default 20)")
    p.add_argument("--batch", type=int, default=16, help="clean crops per step")
    p.add_argument("--patch", type=int, default=96, help="training crop side in px")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--compile-modes", nargs="+", default=[None], choices=COMPILE_MODES,
                   help="torch.compile modes to time the trainer's step in, one trainer each (default: the "
                        "trainer's, reduce-overhead on CUDA; on a CPU eager, but default for the unet presets)")
    p.add_argument("--cpu-variants", action="store_true",
                   help="on the CPU: the plain loop against channels_last, bf16 autocast and torch.compile, each "
                        "alone, and channels_last with torch.compile")
    p.add_argument("--json", type=Path, default=None, help="also write the record here")
    return p


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    for name in ("steps", "batch", "patch"):
        if getattr(a, name) < 1:
            raise UserError(f"--{name} must be >= 1, got {getattr(a, name)}")
    if a.warmup < 0:
        raise UserError(f"--warmup must be >= 0, got {a.warmup}")
    if a.patch > 1024 or a.batch > 4096:
        raise UserError("--patch must be at most 1024 and --batch at most 4096 (the benchmark's crops of one step)")
    if a.json:
        from runtimes.core.images import check_output_file

        check_output_file(a.json, "--json")
    if a.cpu_variants:
        return _report_cpu_variants(measure_cpu_variants(ThroughputConfig(a.preset, a.task, a.steps, a.warmup, a.batch,
                                                                          a.patch, "cpu")), a.json)
    rec = measure_throughput(ThroughputConfig(a.preset, a.task, a.steps, a.warmup, a.batch, a.patch, a.device,
                                            tuple(a.compile_modes)))
    print(f"{rec['preset']} on {rec['device']} ({rec['batch']}): reference {rec['reference_steps_per_s']:.1f} "
          f"steps/s, trainer ({rec['compile_mode']}) {rec['trainer_steps_per_s']:.1f} steps/s, "
          f"ratio {rec['ratio']:.2f}")
    for mode, r in list(rec["modes"].items())[1:]:
        print(f"  trainer with compile mode {mode}: {r['trainer_steps_per_s']:.1f} steps/s, ratio {r['ratio']:.2f}")
    if a.json:
        from runtimes.core.images import atomic_write_bytes

        atomic_write_bytes(a.json, (json.dumps(rec, indent=1) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
