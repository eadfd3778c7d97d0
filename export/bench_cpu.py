"""CPU benchmark script (not a test): checkpoints at 1920x1080 through every CPU path, side by side.

From one run on this CPU it reports, per model and path, latency (warm-up excluded) and the
achieved rate in GMAC/s (`train.model.count_macs` / p50): torch eager, onnxruntime, LiteRT/XNNPACK
fp32 and int8 (full-integer, calibrated on the sample images) — beside the rate onnxruntime reaches
on the paper-size preset (random weights) in the same run, as the machine's ceiling for this network
family. Parity is the PSNR of each output vs torch eager on the same input. Runs are short: a few
iterations each.

Usage:
    python -m export.bench_cpu [MODEL ...] [--size 1080x1920] [--runs 3] [--threads N] [--json out/bench_cpu.json]

Each MODEL is a checkpoint (a path or a shipped name such as denoise-mobile) or a preset name
(mobile, fast, ...: random weights; the rate does not depend on the values). Default: mobile fast.
Exporting needs the train, onnx and tflite extras; this script runs where torch is installed.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from runtimes.apps.bench import default_image_dir
from runtimes.core.cli import parse_size, positive_int, thread_count
from runtimes.core.errors import CliParser, UserError, require, run_cli
from runtimes.core.images import atomic_write_bytes, json_bytes
from runtimes.core.latency import LatencyConfig, machine_info, measure, time_call
from runtimes.core.levels import parse_level
from runtimes.core.metrics import psnr


@dataclass(frozen=True)
class CpuBenchConfig:
    """One CPU benchmark run.

    Attributes:
        models: checkpoints (paths or shipped names) or preset names (random weights).
        size: (H, W) of the frame.
        latency: warm-up and runs per path.
        threads: threads for every runtime.
        out_dir: where the exported artifacts go.
        json_path: the JSON report.
        calibration: images for the int8 model; None: the shipped samples (else CBSD68).
        calib_images: how many of them calibrate (full-frame calibration costs about 20 s per image here).
        level: the level every path runs at (the model's unit).
    """

    models: tuple[str, ...] = ("mobile", "fast")
    size: tuple[int, int] = (1080, 1920)
    latency: LatencyConfig = LatencyConfig(warmup=1, runs=3)
    threads: int = 2
    out_dir: Path = Path("out/bench_cpu")
    json_path: Path = Path("out/bench_cpu.json")
    calibration: Path | None = None
    level: float = 25.0
    calib_images: int = 4


def _random_checkpoint(preset_name: str, out_dir: Path) -> Path:
    torch = require("torch", "train")
    from runtimes.core.levels import make_level_map
    from train.checkpoint import save_checkpoint
    from train.model import PRESETS, build_model

    torch.manual_seed(0)
    model = build_model(PRESETS[preset_name], make_level_map("denoise"))
    return save_checkpoint(out_dir / f"random-{preset_name}.safetensors", model, {"note": "random weights"})


def _calibration_subset(cfg: CpuBenchConfig) -> Path:
    """A folder linking the first `calib_images` calibration images (int8 calibration at full frame is slow)."""
    from runtimes.core.images import list_images

    folder = cfg.out_dir / "calibration"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    for src in list_images(cfg.calibration or default_image_dir())[:cfg.calib_images]:
        (folder / src.name).symlink_to(src.resolve())
    return folder


def _export(kind: str, weights: Path, cfg: CpuBenchConfig, precision: str = "fp32",
            size: tuple[int, int] | None = None) -> Path:
    from export.base import ExportConfig

    calib = _calibration_subset(cfg) if precision == "int8" else None
    common = ExportConfig(weights=str(weights), out_dir=cfg.out_dir, precision=precision, calibration=calib,
                          validate=False, name=f"{weights.stem}-{precision}")
    if kind == "onnx":
        from export.onnx import OnnxConfig, export_onnx

        return export_onnx(OnnxConfig(common)).path
    from export.tflite import TFLiteConfig, export_tflite

    return export_tflite(TFLiteConfig(common, sizes=(size or cfg.size,), threads=cfg.threads)).path


def _time_runner(label: str, runner, image: np.ndarray, cfg: CpuBenchConfig, macs: int, ref) -> tuple[dict, np.ndarray]:
    """Init, first inference and steady-state latency of one entered-on-demand runner."""
    feeds = {"image": image, "level": np.array([cfg.level], np.float32)}
    _, init_ms = time_call(runner.__enter__)
    try:
        out, first_ms = time_call(lambda: runner.run(feeds)["restored"])
        stats = measure(lambda: runner.run(feeds), cfg.latency, timed="compute")
    finally:
        runner.__exit__(None, None, None)
    parity = psnr(out[0].transpose(1, 2, 0), ref[0].transpose(1, 2, 0)) if ref is not None else None
    row = {"path": label, "runner": runner.name, "init_ms": init_ms, "first_ms": first_ms, "gmacs": macs / 1e9,
           "gmac_per_s": macs / 1e9 / (stats.p50_ms / 1e3), "parity_psnr_vs_torch": parity}
    row.update(stats.to_dict())
    print(f"{label:44s} p50 {stats.p50_ms:9.1f} ms  mean {stats.mean_ms:9.1f} ms  "
          f"{row['gmac_per_s']:7.1f} GMAC/s" + (f"  parity {parity:.1f} dB" if parity is not None else ""),
          file=sys.stderr)
    return row, out


def _model(name: str, out_dir: Path) -> Path:
    """A checkpoint path for a checkpoint/shipped name, or random weights for a preset name."""
    from train.checkpoint import resolve_weights
    from train.model import PRESETS

    if name in PRESETS and not Path(name).exists():
        return _random_checkpoint(name, out_dir)
    return resolve_weights(name)


def _check_inputs(cfg: CpuBenchConfig) -> dict[str, Path | None]:
    """Every model loads and takes the level, and the outputs are writable, before any work.

    Returns each model's checkpoint path (None for a preset name: random weights made later).
    """
    from export.base import check_calibration
    from runtimes.core.images import ensure_writable_dir
    from runtimes.core.levels import LevelMap
    from train.checkpoint import load_checkpoint, resolve_weights
    from train.model import PRESETS

    check_calibration(cfg.calibration)
    checked: dict[str, Path | None] = {}
    for name in cfg.models:
        if name in PRESETS and not Path(name).exists():
            checked[name] = None
            continue
        _, meta = load_checkpoint(name)
        LevelMap.from_dict(meta["level_map"]).check(cfg.level)
        checked[name] = resolve_weights(name)
    ensure_writable_dir(cfg.json_path.parent)
    ensure_writable_dir(cfg.out_dir)
    return checked


def run_cpu_bench(cfg: CpuBenchConfig) -> dict:
    """Run every CPU path on one frame for each model; writes and returns the JSON document."""
    require("torch", "train")
    from runtimes.apps.tiling import pad_to, up_to_grid
    from runtimes.runners.onnxruntime import OnnxRunner
    from runtimes.runners.tflite import TFLiteRunner
    from train.checkpoint import read_meta
    from train.model import ModelConfig, count_macs
    from train.reference import TorchRunner

    checked = _check_inputs(cfg)
    h, w = cfg.size
    image = np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32)
    rows, models = [], []
    for name in cfg.models:
        weights = checked[name] or _model(name, cfg.out_dir)
        arch = ModelConfig.from_dict(read_meta(weights)["arch"])
        # a frame off the network's grid is padded up to it, as every deployment path does (runtimes.apps.tiling):
        # the time and MACs of that padded frame are what the model costs per frame of this size
        frame = (up_to_grid(h, arch.grid), up_to_grid(w, arch.grid))
        img = pad_to(image[0], *frame)[None]
        macs = count_macs(arch, *frame)
        models.append({"model": name, "weights": weights.name, "arch": asdict(arch), "gmacs": macs / 1e9,
                       "frame": list(frame)})
        tag = "" if frame == (h, w) else f" ({frame[0]}x{frame[1]})"
        row, ref = _time_runner(f"{name}{tag}: torch eager fp32", TorchRunner(weights, threads=cfg.threads), img,
                                cfg, macs, None)
        rows.append({"model": name, "frame": list(frame), **row})
        paths = [("onnxruntime fp32", OnnxRunner, _export("onnx", weights, cfg)),
                 ("litert xnnpack fp32", TFLiteRunner, _export("tflite", weights, cfg, size=frame)),
                 ("litert xnnpack int8", TFLiteRunner, _export("tflite", weights, cfg, "int8", size=frame))]
        for label, cls, path in paths:
            row = _time_runner(f"{name}{tag}: {label}", cls(path, threads=cfg.threads), img, cfg, macs, ref)[0]
            rows.append({"model": name, "frame": list(frame), **row})
    paper = _random_checkpoint("paper", cfg.out_dir)
    paper_macs = count_macs(ModelConfig.from_dict(read_meta(paper)["arch"]), h, w)
    paper_row = _time_runner("onnxruntime fp32 (paper)", OnnxRunner(_export("onnx", paper, cfg), threads=cfg.threads),
                             image, cfg, paper_macs, None)[0]
    doc = {"schema": "levelres-bench-cpu/2", "machine": machine_info(cfg.threads), "size": [h, w],
           "level": cfg.level, "models": models, "calibration_images": cfg.calib_images,
           "latency": asdict(cfg.latency),
           "rows": rows, "paper_preset_onnxruntime": paper_row}
    atomic_write_bytes(cfg.json_path, json_bytes(doc))
    return doc


def markdown(doc: dict) -> str:
    """The result as a markdown table."""
    lines = ["| path | p50 ms | mean ms | GMAC | GMAC/s | init ms | first ms | parity dB |", "|---" * 8 + "|"]
    for r in [*doc["rows"], doc["paper_preset_onnxruntime"]]:
        parity = f"{r['parity_psnr_vs_torch']:.1f}" if r["parity_psnr_vs_torch"] is not None else "n/a"
        lines.append(f"| {r['path']} | {r['p50_ms']:.1f} | {r['mean_ms']:.1f} | {r['gmacs']:.1f} | "
                     f"{r['gmac_per_s']:.1f} | {r['init_ms']:.1f} | {r['first_ms']:.1f} | {parity} |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = CliParser(prog="python -m export.bench_cpu", description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", default=["mobile", "fast"],
                   help="checkpoints or shipped names, or preset names for random weights (default: mobile fast)")
    p.add_argument("--size", type=parse_size, default=(1080, 1920), help="frame HxW (default 1080x1920)")
    p.add_argument("--runs", type=positive_int, default=3, help="timed runs per path (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs per path (default 1)")
    p.add_argument("--threads", type=thread_count, default=2, help="threads for every runtime (default 2)")
    p.add_argument("--level", type=parse_level, default=25.0, help="level in the model's unit (default 25)")
    p.add_argument("--calibration", type=Path, default=None, help="int8 calibration images (default: the samples)")
    p.add_argument("--calib-images", type=positive_int, default=4, help="int8 calibration images (default 4)")
    p.add_argument("--out-dir", type=Path, default=Path("out/bench_cpu"), help="exported artifacts")
    p.add_argument("--json", type=Path, default=Path("out/bench_cpu.json"), help="JSON report")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.size[0] % 2 or args.size[1] % 2:
        raise UserError(f"--size must be even, got {args.size[0]}x{args.size[1]}")
    cfg = CpuBenchConfig(models=tuple(args.models), size=args.size, threads=args.threads, out_dir=args.out_dir,
                         latency=LatencyConfig(warmup=args.warmup, runs=args.runs), json_path=args.json,
                         calibration=args.calibration, calib_images=args.calib_images, level=args.level)
    print(markdown(run_cpu_bench(cfg)))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
