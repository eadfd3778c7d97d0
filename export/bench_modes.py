"""Latency of the level modes side by side: folded vs fixed vs weights, in onnxruntime and LiteRT.

Exports the three modes (unvalidated, into a temporary folder unless -o is given), then times them
interleaved in one run (round-robin, warm-up excluded, median of the repeats; compute + host copy,
`time.perf_counter`). The goal is folded/fixed <= 1.02: the runtime level should cost nothing.
For onnxruntime it also times the folded graph with the level bound per session
(`OnnxRunner(bind_level=True)`) and what binding a new level costs (median of several session builds).

Usage:
    python -m export.bench_modes --weights denoise-mobile --size 720x1280 --repeats 20 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from export.base import ExportConfig, quiet
from runtimes.core.errors import CliParser, UserError, run_cli

MODES = ("folded", "fixed", "weights")
RUNTIMES = ("onnxruntime", "litert")


@dataclass(frozen=True)
class BenchConfig:
    """Benchmark options.

    Attributes:
        weights: checkpoint path or shipped name.
        size: (H, W) of the frame.
        repeats: timed runs per variant (after `warmup`).
        warmup: untimed runs per variant.
        threads: threads for both runtimes.
        runtimes: which runtimes to time.
        out_dir: where to keep the exported artifacts (None: a temporary folder).
    """

    weights: str
    size: tuple[int, int] = (720, 1280)
    repeats: int = 10
    warmup: int = 2
    threads: int = 2
    runtimes: tuple[str, ...] = RUNTIMES
    out_dir: Path | None = None


def export_variants(cfg: BenchConfig, out: Path) -> dict[tuple[str, str], Path]:
    """(runtime, mode) -> artifact path, exported without validation."""
    from runtimes.core.levels import LevelMap
    from train.checkpoint import read_meta, resolve_weights

    lm = LevelMap.from_dict(read_meta(resolve_weights(cfg.weights))["level_map"])
    level = lm.trained_range[1] if lm.task != "dejpeg" else lm.trained_range[0]
    paths = {}
    for mode in MODES:
        common = ExportConfig(cfg.weights, out, level_mode=mode, level=level if mode == "fixed" else None,
                              validate=False)
        if "onnxruntime" in cfg.runtimes:
            from export.onnx import OnnxConfig, export_onnx

            paths["onnxruntime", mode] = export_onnx(OnnxConfig(common)).path
        if "litert" in cfg.runtimes:
            from export.tflite import TFLiteConfig, export_tflite

            paths["litert", mode] = export_tflite(TFLiteConfig(replace(common), sizes=(cfg.size,))).path
    return paths


BOUND = "bound"  # the onnxruntime folded graph, level bound per session
REBINDS = 5  # distinct levels bound after timing, for the cost of a new level


def open_runner(runtime: str, path: Path, threads: int, bind_level: bool = False):
    if runtime == "onnxruntime":
        from runtimes.runners.onnxruntime import OnnxRunner

        return OnnxRunner(path, provider="cpu", threads=threads, bind_level=bind_level)
    from runtimes.runners.tflite import TFLiteRunner

    return TFLiteRunner(path, threads=threads, xnnpack=True)


def time_interleaved(cfg: BenchConfig, paths: dict) -> dict[tuple[str, str], list[float]]:
    """Milliseconds per run for every variant, measured round-robin so drifts hit all alike.

    The onnxruntime level-bound variant also gets ("onnxruntime", "rebind"): ms per new bound level.
    """
    h, w = cfg.size
    image = np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32)
    runners = {}
    try:
        for key, p in paths.items():
            runners[key] = open_runner(key[0], p, cfg.threads).__enter__()
        if ("onnxruntime", "folded") in paths:
            runners["onnxruntime", BOUND] = open_runner("onnxruntime", paths["onnxruntime", "folded"], cfg.threads,
                                                        bind_level=True).__enter__()
        feeds = {}
        for key, r in runners.items():
            level = r.meta.get("fixed_level") or r.meta["train_levels"][-1]
            feeds[key] = {"image": image, "level": np.array([level], np.float32)}
        for _ in range(cfg.warmup):
            for key, r in runners.items():
                r.run(feeds[key])
        times: dict = {key: [] for key in runners}
        keys = list(runners)
        for i in range(cfg.repeats):
            for key in keys[i % len(keys):] + keys[:i % len(keys)]:
                t0 = time.perf_counter()
                runners[key].run(feeds[key])
                times[key].append((time.perf_counter() - t0) * 1e3)
        bound = runners.get(("onnxruntime", BOUND))
        if bound is not None:
            lo, hi = bound.meta["level_range"]
            first = len(bound.bind_ms)
            for level in np.linspace(lo, hi, REBINDS + 2, dtype=np.float32)[1:-1]:
                bound.run({"image": image[..., :64, :64], "level": np.array([level], np.float32)})
            times["onnxruntime", "rebind"] = bound.bind_ms[first:]
        return times
    finally:
        for r in runners.values():
            r.__exit__(None, None, None)


def report(times: dict, cfg: BenchConfig) -> str:
    """A table of median (min) ms per runtime and mode, plus folded/fixed and weights/fixed ratios."""
    lines = [f"frame {cfg.size[0]}x{cfg.size[1]}, {cfg.threads} threads, {cfg.repeats} interleaved runs "
             "(median ms, min in brackets; compute + host copy)",
             f"{'runtime':<12}" + "".join(f"{m:>20}" for m in MODES) + f"{'folded/fixed':>14}{'weights/fixed':>15}"]
    for runtime in cfg.runtimes:
        med = {m: statistics.median(times[runtime, m]) for m in MODES}
        cells = "".join(f"{med[m]:>11.1f} ({min(times[runtime, m]):>6.1f})" for m in MODES)
        lines.append(f"{runtime:<12}{cells}{med['folded'] / med['fixed']:>14.3f}{med['weights'] / med['fixed']:>15.3f}")
    if ("onnxruntime", BOUND) in times:
        bound, fixed = statistics.median(times["onnxruntime", BOUND]), statistics.median(times["onnxruntime", "fixed"])
        rebind = statistics.median(times["onnxruntime", "rebind"])
        lines.append(f"onnxruntime, folded graph with the level bound per session: {bound:.1f} "
                     f"({min(times['onnxruntime', BOUND]):.1f}) ms, bound/fixed {bound / fixed:.3f}; a new level "
                     f"costs {rebind:.1f} ms (median of {len(times['onnxruntime', 'rebind'])} session builds)")
    return "\n".join(lines)


def bench_modes(cfg: BenchConfig) -> str:
    """Export, time and report."""
    if cfg.repeats < 1 or cfg.warmup < 0 or cfg.threads < 1:
        raise UserError("--repeats and --threads must be >= 1 and --warmup >= 0")
    with tempfile.TemporaryDirectory() as tmp:
        out = cfg.out_dir or Path(tmp)
        paths = export_variants(cfg, out)
        with quiet():
            times = time_interleaved(cfg, paths)
    return report(times, cfg)


def build_parser() -> argparse.ArgumentParser:
    from runtimes.core.cli import positive_int, thread_count

    parser = CliParser(prog="python -m export.bench_modes", description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True, help="checkpoint (.safetensors) or shipped weight-set name")
    parser.add_argument("--size", default="720x1280", help="frame HxW (default 720x1280)")
    parser.add_argument("--repeats", type=positive_int, default=10, help="timed runs per variant (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs per variant (default 2)")
    parser.add_argument("--threads", type=thread_count, default=2, help="threads for both runtimes (default 2)")
    parser.add_argument("--runtimes", default=",".join(RUNTIMES),
                        help="comma-separated subset of " + ",".join(RUNTIMES))
    parser.add_argument("-o", "--out", default=None,
                        help="keep the exported artifacts here (default: a temporary folder)")
    return parser


def main(argv: list[str] | None = None) -> int:
    from export.tflite import parse_sizes

    args = build_parser().parse_args(argv)
    runtimes = tuple(r.strip() for r in args.runtimes.split(",") if r.strip())
    if not runtimes or set(runtimes) - set(RUNTIMES):
        raise UserError(f"--runtimes must be a comma-separated subset of {', '.join(RUNTIMES)}")
    cfg = BenchConfig(args.weights, parse_sizes(args.size)[0], args.repeats, args.warmup, args.threads, runtimes,
                      Path(args.out) if args.out else None)
    print(bench_modes(cfg))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
