"""The multi-level trainer: one weight set optimised at k levels at once.

Every step takes the same clean crops at all k training levels in one batch and one forward pass
(each sample carries its own level), and averages the L1 loss over levels. Batches are a pure
function of (seed, rank, step), and the learning rate a pure function of the step, so `--resume`
continues exactly. Checkpoints: `last.safetensors` (+ `last.state.safetensors` with the optimizer)
every `save_every` steps, `best.safetensors` at the best validation mean PSNR.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from runtimes.core.errors import UserError
from runtimes.core.images import atomic_write_bytes, ensure_writable_dir, removed_if_left_empty
from runtimes.core.latency import cpu_model
from runtimes.core.levels import make_level_map
from train import COMPILE_MODES, LEVEL_WEIGHTINGS, interrupt
from train.checkpoint import code_version, lineage, load_train_state, read_meta, save_checkpoint, save_train_state
from train.data import LevelBatches, add_noise_torch, load_images
from train.device import resolve_device
from train.evaluate import evaluate_model, load_eval_set
from train.model import ModelConfig, build_model, count_macs, count_params, preset

LOG_EPS = 1e-3  # "log" weighting: log(L1 + this); L1 of a well-restored sigma 5 crop is about 1e-2


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (stored in the checkpoint)."""

    task: str
    data: str
    out: str
    preset: str = "mobile"
    form: str | None = None  # override the preset's form (linear / affine)
    channels: int | None = None
    blocks: int | None = None
    block_levels: int | None = None  # override the preset's level convs per residual block (1 or 2)
    out_gate: str | None = None  # override the preset's output factor ("strength" or "unit")
    biases: str | None = None  # override the preset's biases ("constant" or "level": shift form only)
    head: str | None = None  # override the preset's head form ("plain" or "affine")
    levels: tuple[float, ...] | None = None
    baseline_level: float | None = None
    steps: int | None = None
    minutes: float | None = None
    batch: int = 16
    patch: int = 96
    lr: float = 2e-4
    lr_min_ratio: float = 0.01
    schedule: str = "cosine"
    warmup: int = 0  # steps of linear warm-up to the peak learning rate (the schedule itself is unchanged)
    clip_grad: float | None = None  # clip the gradients' global L2 norm to this before each step (None: off)
    level_jitter: float = 0.0  # draw each sample's level around its training level (0: exact levels)
    level_exact: float = 0.0  # with jitter: the fraction of each level's samples kept at the exact level
    # "strength": each level's L1 divided by its strength; "none": plain mean; "log": the mean of log L1 per sample
    # (its gradient is each sample's gradient over its own error: every level pulls as its PSNR moves)
    level_weighting: str = "strength"
    # "points": the training levels (with jitter around them); "strata": continuous, each level's samples uniform
    # between the next level towards the neutral one (the neutral level for the first) and it
    level_sampling: str = "points"
    # with "strength" weighting: levels below this one (user's unit) are weighted as it; None: no floor. Strata
    # sampling down to the neutral level needs one: 1/strength is unbounded there (sigma 0.1 would weigh 750x sigma 75)
    weight_floor: float | None = None
    strength_offset: float = 0.0  # strength = offset + (1 - offset) * linear for levels >= 1 unit (0: the seed's map)
    seed: int = 0
    val: str | None = None
    # levels to validate at (the best checkpoint maximises their mean PSNR); None: the training levels. With strata
    # the training levels leave the low end unwatched (sigma 5 of 15 35 55 75): name it here
    val_levels: tuple[float, ...] | None = None
    val_crop: int = 192
    val_every: int = 1000
    save_every: int = 500
    workers: int | None = None
    device: str | None = None
    amp: bool = True
    compile: bool | None = None
    # torch.compile mode; None: "reduce-overhead" (each step replayed as CUDA graphs: the paper preset's step is
    # launch-bound otherwise) on one device, "default" under DistributedDataParallel
    compile_mode: str | None = None
    exclude: tuple[str, ...] = ()
    progress: bool = True
    stop_at: int | None = field(default=None, compare=False)  # stop early (simulates an interruption)
    init: str | None = None  # start from this checkpoint's weights (same task, architecture and levels)
    qat: bool = False  # train through the int8 export's rounding (train.qat.QuantSim)

    def check(self) -> TrainConfig:
        """Refuse a non-positive (or nan) budget, batch, crop size, learning rate or period, and level-sampling
        fractions out of range (one-line errors)."""
        for name in ("steps", "minutes", "batch", "patch", "lr", "val_every", "save_every"):
            val = getattr(self, name)
            if val is not None and not 0 < val < math.inf:
                raise UserError(f"--{name.replace('_', '-')} must be positive and finite, got {val}")
        if self.lr > 1:
            raise UserError(f"--lr {self.lr:g} is far too large for Adam; use a value in (0, 1], e.g. 2e-4")
        if self.workers is not None and self.workers < 0:
            raise UserError(f"--workers must be >= 0 (0 loads data in the training process), got {self.workers}")
        if self.seed < 0:
            raise UserError(f"--seed must be >= 0, got {self.seed}")
        if self.clip_grad is not None and not 0 < self.clip_grad < math.inf:
            raise UserError(f"--clip-grad must be a positive, finite gradient norm (e.g. 1.0), got {self.clip_grad}")
        if self.warmup < 0:
            raise UserError(f"--warmup must be >= 0 steps (0: no warm-up), got {self.warmup}")
        if self.steps is not None and self.warmup >= self.steps:
            raise UserError(f"--warmup {self.warmup} must be fewer steps than --steps {self.steps}")
        if not 0.0 <= self.level_jitter <= 0.5:
            raise UserError("--level-jitter must be in [0, 0.5] (0.5 reaches halfway to the neighbouring level)")
        if not 0.0 <= self.level_exact <= 1.0:
            raise UserError("--level-exact must be a fraction in [0, 1]")
        if self.compile_mode is not None and self.compile_mode not in COMPILE_MODES:
            raise UserError(f"--compile-mode must be one of {', '.join(COMPILE_MODES)}, got {self.compile_mode!r}")
        if self.level_weighting not in LEVEL_WEIGHTINGS:
            raise UserError(f"--level-weighting must be one of {', '.join(LEVEL_WEIGHTINGS)}, "
                            f"got {self.level_weighting!r}")
        if self.level_sampling not in ("points", "strata"):
            raise UserError(f"--level-sampling must be points or strata, got {self.level_sampling!r}")
        if self.level_sampling == "strata" and self.level_jitter > 0:
            raise UserError("--level-jitter applies to --level-sampling points; strata already cover the whole range")
        if self.weight_floor is not None and not 0.0 <= self.weight_floor < math.inf:
            raise UserError(f"--weight-floor must be a finite level >= 0, got {self.weight_floor:g}")
        if self.weight_floor is not None and (self.level_weighting != "strength" or self.baseline_level is not None):
            what = ("a dedicated model (--baseline-level) is not weighted by level" if self.baseline_level is not None
                    else f"--level-weighting {self.level_weighting} does not divide by the strength")
            raise UserError(f"--weight-floor applies to --level-weighting strength only ({what}); drop it")
        if not 0.0 <= self.strength_offset < 1.0:
            raise UserError(f"--strength-offset must be in [0, 1), got {self.strength_offset:g}")
        if self.level_exact > 0 and self.level_jitter == 0 and self.level_sampling != "strata":
            raise UserError("--level-exact only applies with --level-jitter > 0 or --level-sampling strata "
                            "(otherwise every level is exact)")
        if self.val_levels and not self.val:
            raise UserError("--val-levels needs --val (the folder of validation images to score them on)")
        for name in ("levels", "val_levels"):
            levels = [float(x) for x in getattr(self, name) or ()]
            if len(set(levels)) != len(levels):
                raise UserError(f"--{name.replace('_', '-')} lists a level twice: {' '.join(f'{x:g}' for x in levels)}")
        return self

    def model_config(self) -> ModelConfig:
        form = "plain" if self.baseline_level is not None else self.form
        return preset(self.preset, form=form, channels=self.channels, blocks=self.blocks,
                      block_levels=self.block_levels, out_gate=self.out_gate, biases=self.biases,
                      head=self.head)

    def train_levels(self) -> tuple[float, ...]:
        if self.baseline_level is not None:
            return (float(self.baseline_level),)
        return tuple(float(x) for x in self.levels) if self.levels else ()


def lr_at(cfg: TrainConfig, step: int, total: int) -> float:
    """Learning rate at `step`: cosine from lr to lr*lr_min_ratio, or halving at 50/75/90 % (step); during the
    first `cfg.warmup` steps that value times (step + 1) / warmup."""
    t = min(1.0, step / max(1, total))
    ramp = min(1.0, (step + 1) / cfg.warmup) if cfg.warmup > 0 else 1.0
    if cfg.schedule == "step":
        return ramp * cfg.lr * 0.5 ** sum(t >= m for m in (0.5, 0.75, 0.9))
    lo = cfg.lr * cfg.lr_min_ratio
    return ramp * (lo + 0.5 * (cfg.lr - lo) * (1.0 + math.cos(math.pi * t)))


def _compile_mode(cfg: TrainConfig, device: str, world: int) -> str | None:
    """The torch.compile mode of a run, None to train eagerly.

    Default: on CUDA (reduce-overhead: each step replayed as CUDA graphs; "default" under DDP), and on a CPU for
    the multi-scale topology, whose many small convs it fuses (`python -m train.throughput --device cpu
    --cpu-variants`: 1.21x for unet-fast, 1.13x for unet-mobile on 2 cores, against 1.02x for fast, which
    stays eager and skips the compile time). On a CPU CUDA graphs do not exist: the mode is "default".
    """
    on = cfg.compile if cfg.compile is not None else (
        device == "cuda" or (device == "cpu" and cfg.model_config().topology == "unet"))
    if not on:
        return None
    if cfg.compile_mode:
        return cfg.compile_mode
    return "default" if world > 1 or device != "cuda" else "reduce-overhead"


class Trainer:
    """Holds the model, optimizer, data and bookkeeping of one run."""

    def __init__(self, cfg: TrainConfig, resume: bool = False):
        self.cfg, self.out = cfg.check(), Path(cfg.out)
        cfg.model_config()  # an unknown preset or a bad size: refused before the run folder exists
        self.rank, self.world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
        self.device = resolve_device(cfg.device)
        self.compile_mode = _compile_mode(cfg, self.device.type, self.world)
        self.levels = cfg.train_levels() or make_level_map(cfg.task).train_levels
        lmap_levels = self.levels if cfg.baseline_level is None else None
        self.level_map = make_level_map(cfg.task, lmap_levels)
        if cfg.strength_offset:
            self.level_map = self.level_map.with_offset(cfg.strength_offset)
        for lv in self.levels:
            self.level_map.check(lv)
        self.val_levels = tuple(float(v) for v in cfg.val_levels) if cfg.val_levels else self.levels
        for lv in self.val_levels:
            self.level_map.check(lv)
            if not self.level_map.linear(lv) > 0:
                raise UserError(f"--val-levels {lv:g}: the neutral level returns its input exactly; validate at "
                                f"degraded levels only")
        self.lineage: list[dict] = []  # the runs whose weights this one started from (--init), oldest first
        init = self._read_init(cfg.init) if cfg.init and not resume else None
        images = load_images(cfg.data, min_size=cfg.patch, exclude=cfg.exclude)
        self.val_images = load_eval_set(cfg.val, crop=cfg.val_crop) if cfg.val else None
        if self.rank == 0:  # inputs checked first: a bad one leaves no run folder behind
            ensure_writable_dir(self.out)
        if self.world > 1:
            torch.distributed.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        self.model = build_model(cfg.model_config(), self.level_map).to(self.device)
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        # one fused kernel for the whole Adam update on CUDA (the foreach path launches several per step)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, betas=(0.9, 0.999),
                                    fused=self.device.type == "cuda")
        self.step, self.total, self.best, self.history = 0, cfg.steps, -1.0, []
        self.elapsed, self.qat_ranges = 0.0, None
        if init is not None:
            self.model.load_state_dict(init)
        if resume:
            self._resume()
        self.batches = LevelBatches(images, cfg.task, self.levels, cfg.batch, cfg.patch, cfg.seed, self.rank,
                                    jitter=cfg.level_jitter, exact=cfg.level_exact,
                                    strata=cfg.level_sampling == "strata", neutral=self.level_map.neutral)
        self.sim = self._quant_sim(images) if cfg.qat else None
        self.net = self._wrap(self.sim or self.model)

    def _read_init(self, path: str) -> dict:
        """The start checkpoint's weights for this run's network: the same task and level map, and the same
        architecture up to the form, the level convs per block, and more channels or blocks
        (`train.model.convert_weights`)."""
        from train.checkpoint import load_checkpoint, run_summary
        from train.model import convert_weights

        init, meta = load_checkpoint(path)
        self.lineage = [*lineage(meta), run_summary(meta)]
        target = self.cfg.model_config()
        if meta.get("task") != self.cfg.task:
            raise UserError(f"{path} is a {meta.get('task')} model; start from a checkpoint of task {self.cfg.task}")
        if init.level_map.knots and not self.level_map.knots:
            raise UserError(f"{path} has a calibrated level map (train.calibrate); start from the weights it was "
                            "calibrated from, and calibrate again after training")
        # The maps must agree as functions of the level (the largest training level sets the slope); the levels each
        # run trains at may differ: a fine-tune may add levels inside the range, e.g. sigma 5 under 15 35 55 75.
        # An offset run (knots) may start from a plain map.
        mine = self.level_map if init.level_map.knots else self.level_map.uncalibrated()
        if replace(init.level_map, train_levels=()) != replace(mine, train_levels=()):
            levels = " ".join(f"{x:g}" for x in init.level_map.train_levels)
            raise UserError(f"{path} was trained at levels {levels} ({init.level_map.to_dict()['formula']}), this run "
                            f"maps levels by {mine.to_dict()['formula']}; keep the largest training level and the "
                            "strength options of the run it starts from")
        if init.cfg == target:
            return init.state_dict()
        try:
            return convert_weights(init, target)
        except UserError:
            raise UserError(f"{path} is a {meta.get('task')} model of another architecture than this run's; "
                            "start from a checkpoint of the same preset (its form may differ, and it may grow in "
                            "--channels or --blocks)") from None

    def _quant_sim(self, images):
        """The int8 simulation around the model; its activation ranges are calibrated once (kept on resume)."""
        from train.qat import CALIBRATION_BATCHES, QuantSim

        sim = QuantSim(self.model, self.qat_ranges)
        if not sim.ranges:
            exact = LevelBatches(images, self.cfg.task, self.levels, self.cfg.batch, self.cfg.patch, self.cfg.seed,
                                 self.rank, jitter=0.0)
            sim.calibrate([self._degraded(exact[i], i)[1:] for i in range(CALIBRATION_BATCHES)])
        return sim

    def _wrap(self, model):
        net = torch.compile(model, mode=self.compile_mode) if self.compile_mode else model
        if self.world > 1:
            net = torch.nn.parallel.DistributedDataParallel(net, device_ids=[self.device.index])
        return net

    def _resume(self) -> None:
        """Continue from `last.state.safetensors` (weights, optimizer and schedule in one atomic file)."""
        from safetensors.torch import load_file

        last = self.out / "last.safetensors"
        info, weights, opt_state = load_train_state(self.out / "last.state.safetensors")
        if "arch" not in info or not weights:  # a state file of an older run: the weights are in last.safetensors
            meta = read_meta(last)
            info = {"arch": meta.get("arch"), "task": meta.get("task"), **info}
            if meta.get("steps") != info["step"]:
                raise UserError(f"{last} (step {meta.get('steps')}) and its training state (step {info['step']}) "
                                "disagree; start a new run with another --out")
            weights = load_file(str(last), device="cpu")
        if info["arch"] != self.model.cfg.to_dict() or info["task"] != self.cfg.task:
            raise UserError(f"the run in {self.out} was trained with another task/architecture; "
                            "use a new --out or the same options")
        try:
            self.model.load_state_dict(weights, strict=True)
            self.opt.load_state_dict(opt_state)
        except (RuntimeError, KeyError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UserError(f"the training state in {self.out} does not fit this model ({first}); "
                            "use a new --out") from None
        self.step, self.total, self.best = info["step"], info["total"], info["best"]
        self.history, self.elapsed = info["history"], info["elapsed"]
        # a state file of an older trainer has no lineage: the chain is followed from the run's own --init
        self.lineage = info["lineage"] if isinstance(info.get("lineage"), list) else (
            lineage(read_meta(last)) if last.is_file() else [])
        self.qat_ranges = {k: tuple(v) for k, v in info["qat_ranges"].items()} if info.get("qat_ranges") else None

    def _loader(self):
        workers = self.cfg.workers if self.cfg.workers is not None else min(8, max(0, (os.cpu_count() or 2) - 1))
        kw = dict(batch_size=None, sampler=range(self.step, 2**62), num_workers=workers,
                  pin_memory=self.device.type == "cuda")
        if workers:
            kw.update(persistent_workers=False, prefetch_factor=4)
        return torch.utils.data.DataLoader(self.batches, **kw)

    def _degraded(self, batch, step: int):
        """(target, degraded, levels) on the device from a `LevelBatches` item (denoising adds its noise here)."""
        clean, deg, levels = (torch.as_tensor(t).to(self.device, non_blocking=True) for t in batch)
        target = clean.repeat(len(self.levels), 1, 1, 1)
        if self.cfg.task == "denoise":
            deg = add_noise_torch(target, levels, self.cfg.seed, self.rank, step)
        return target, deg, levels

    def train_step(self, batch) -> float:
        target, deg, levels = self._degraded(batch, self.step)
        if self.device.type == "cuda":
            target, deg = (t.contiguous(memory_format=torch.channels_last) for t in (target, deg))
        lr = lr_at(self.cfg, self.step, self.total)
        for g in self.opt.param_groups:
            g["lr"] = lr
        amp = self.cfg.amp and self.device.type == "cuda"
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            try:
                if self.compile_mode == "reduce-overhead" and self.net is not self.model:
                    torch.compiler.cudagraph_mark_step_begin()  # last step's graph outputs are no longer read
                out = self.net(deg, levels)
            except Exception as exc:  # a torch.compile failure on this platform: fall back to eager
                if self.net is self.model or self.world > 1:
                    raise
                warnings.warn(f"torch.compile failed ({type(exc).__name__}); training eagerly", stacklevel=2)
                self.net = self.model
                out = self.net(deg, levels)
        loss = self.loss(out.float(), target, levels)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.clip_grad is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_grad)
        self.opt.step()
        return loss.detach()

    def loss(self, out: torch.Tensor, target: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
        """L1 averaged over levels; with "strength" weighting each level's L1 is divided by its strength,
        so every level pulls equally on the shared weights (the residual scales with the strength); with "log"
        the mean of log(L1 + LOG_EPS) per sample, whose gradient is each sample's own over its error: the
        gradient of the mean PSNR (for L1), between "none" (high levels dominate) and "strength" (low ones do)."""
        per_sample = (out - target).abs().mean(dim=(1, 2, 3))
        if self.cfg.level_weighting == "log":
            return torch.log(per_sample + LOG_EPS).mean()
        if self.cfg.level_weighting == "strength" and self.model.cfg.form != "plain":
            floor = 1e-3 if self.cfg.weight_floor is None else max(1e-3, self.level_map.strength(self.cfg.weight_floor))
            s = self.model.strength(levels).abs().clamp_min(floor)
            per_sample = per_sample / s * s.mean()
        return per_sample.mean()

    def validate(self) -> dict | None:
        if self.val_images is None or self.rank != 0:
            return None
        self.model.eval()
        res = evaluate_model(self.sim or self.model, self.val_images, self.val_levels, self.device, with_ssim=False)
        self.model.train()
        row = {"step": self.step, **{f"{r['level']:g}": round(r["psnr"], 3) for r in res["rows"]},
               "mean": round(res["mean"]["psnr"], 3)}
        self.history.append(row)
        return row

    def meta(self) -> dict:
        c = self.cfg
        return {"preset": c.preset, "train_levels": list(self.levels), "baseline_level": c.baseline_level,
                "steps": self.step, "train_seconds": round(self.elapsed, 1), "validation": self.history,
                "train_config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(c).items()},
                "code_version": code_version(), "params": count_params(self.model.cfg),
                "gmac_1080p": round(count_macs(self.model.cfg, 1080, 1920) / 1e9, 2),
                "device": self.device_name(), "compile_mode": self.compile_mode,
                **({"lineage": self.lineage} if self.lineage else {})}

    def device_name(self) -> str:
        """The hardware the run trained on, as the tables report it beside steps/s."""
        if self.device.type == "cuda":
            return torch.cuda.get_device_name(self.device)
        n = torch.get_num_threads()
        return f"cpu: {cpu_model()}, {os.cpu_count()} cores, {n} thread{'s' if n > 1 else ''}"

    def save(self, best: bool = False) -> None:
        """best (when it is), then the training state --resume reads, then last: a kill at any point resumes
        from a consistent state and reaches the same weights."""
        if self.rank != 0:
            return
        if not all(bool(torch.isfinite(p).all()) for p in self.model.parameters()):
            raise UserError(f"training diverged by step {self.step}: the weights are no longer finite, so nothing "
                            f"was saved over the run's last good checkpoint; train again with a lower --lr "
                            f"(was {self.cfg.lr:g})")
        if best:
            save_checkpoint(self.out / "best.safetensors", self.model, self.meta())
        info = {"step": self.step, "total": self.total, "best": self.best, "history": self.history,
                "elapsed": self.elapsed, "arch": self.model.cfg.to_dict(), "task": self.cfg.task,
                "lineage": self.lineage}
        if self.sim is not None:
            info["qat_ranges"] = self.sim.ranges
        save_train_state(self.out / "last.state.safetensors", self.opt, info, self.model)
        save_checkpoint(self.out / "last.safetensors", self.model, self.meta())

    def _estimate_total(self, t0: float, start: int) -> None:
        rate = (self.step - start) / max(1e-6, time.perf_counter() - t0)
        remaining = self.cfg.minutes * 60 - self.elapsed
        self.total = max(self.step + 1, int(self.step + rate * remaining))

    def fit(self) -> Path:
        """Run to the step/time budget; returns the path of the best checkpoint."""
        from tqdm import tqdm

        c = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        if self.total is None:
            self.total = c.steps or 10**9  # --minutes: re-estimated after a short warm-up
        self.model.train()
        bar = tqdm(total=self.total, initial=self.step, disable=not c.progress or self.rank != 0,
                   dynamic_ncols=True, file=sys.stderr, unit="step")
        t0, start, loss = time.perf_counter(), self.step, None
        self._t0, self._base = t0, self.elapsed
        probe = 30 if self.device.type == "cpu" else 300
        for batch in self._loader():
            if self.step >= self.total or (c.stop_at is not None and self.step >= c.stop_at):
                break
            loss = self.train_step(batch)
            self.step += 1
            bar.update(1)
            self.elapsed = self._base + time.perf_counter() - t0
            if c.minutes and c.steps is None and self.step - start in (probe, 4 * probe):
                # first estimate includes start-up/compilation; the second measures from the first
                self._estimate_total(*((t0, start) if self.step - start == probe else (self._t_probe, start + probe)))
                self._t_probe = time.perf_counter()
                bar.total = self.total
            if self.step % 50 == 0 or self.step == self.total:
                bar.set_postfix(loss=f"{float(loss):.4f}", lr=f"{lr_at(c, self.step, self.total):.2e}")
            self._periodic()
            self._stop_if_interrupted()
        bar.close()
        self._finish()
        return self.out / "best.safetensors"

    def _stop_if_interrupted(self) -> None:
        """After a whole step, on a first Ctrl-C (`train.interrupt`): save the resumable state and stop."""
        if interrupt.requested():
            self.save()
            raise KeyboardInterrupt(f"state saved at step {self.step} in {self.out}; continue with --resume")

    def _periodic(self) -> None:
        c = self.cfg
        if self.step % c.val_every == 0 or self.step >= self.total:
            row = self.validate()
            if row is not None and row["mean"] > self.best:
                self.best = row["mean"]
                self.save(best=True)
                return
        if self.step % c.save_every == 0:
            self.save()

    def _finish(self) -> None:
        if self.val_images is None:  # no validation set: the final weights are the best we know
            self.save(best=True)
        else:
            self.save(best=not (self.out / "best.safetensors").exists())
        if self.rank == 0 and self.history:
            atomic_write_bytes(self.out / "history.json", (json.dumps(self.history, indent=1) + "\n").encode())
        if self.world > 1:
            torch.distributed.destroy_process_group()


def seed_everything(seed: int) -> None:
    """Seed torch's and numpy's global generators (model initialisation)."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def train(cfg: TrainConfig, resume: bool = False) -> Path:
    """Train (or resume) a run; returns the best checkpoint's path."""
    seed_everything(cfg.seed)
    with removed_if_left_empty(cfg.out):  # a run that fails before its first save leaves no empty folder
        trainer = Trainer(cfg, resume=resume)
        with interrupt.deferred_sigint():
            try:
                return trainer.fit()
            except Exception:  # a Ctrl-C that also stopped the data-loader workers fails the next fetch
                trainer._stop_if_interrupted()
                raise
