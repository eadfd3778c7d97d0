"""Benchmark one artifact: accuracy on an image set, parity with the torch reference, latency, memory.

Accuracy follows the datasets' evaluation protocol: each clean image is degraded with
`runtimes.core.degrade.degrade(clean_u8, task, level, seed=image_seed(name))`, restored (tiled where the
artifact has fixed sizes that differ from the image), and scored with `runtimes.core.metrics` on the
Y channel for sr and dejpeg, on RGB for denoise. Parity is the PSNR of the artifact's output
against the torch reference's output on the same degraded input.

Usage:
    with bench_progress(total) as bar:
        record = bench_artifact("out/dn.onnx", images, reference, EvalConfig(levels=(0, 25)), bar)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from runtimes.apps.tiling import fixed_sizes, plan_tiles, restore
from runtimes.core.artifact import encode_image, has_level_input
from runtimes.core.degrade import degrade, image_seed
from runtimes.core.errors import UserError
from runtimes.core.images import list_images, read_uint8
from runtimes.core.latency import LatencyConfig, PeakMemory, measure, time_call
from runtimes.core.meta import ArtifactMeta
from runtimes.core.metrics import MIN_SCORED_SIDE, psnr, scorable, ssim
from runtimes.runners.factory import artifact_format, enter_runner, load_runner, reference_runner


@dataclass(frozen=True)
class EvalConfig:
    """What to measure for every artifact.

    Attributes:
        levels: levels in the artifact's unit; None: neutral + training levels from its metadata.
        sizes: (H, W) frame sizes for latency.
        latency: warm-up, runs and time limits.
        threads: threads for the runtimes (None: each runtime's default).
        seed: seeds the random latency inputs.
        bind_level: onnxruntime artifacts run with the level bound per session (`OnnxRunner(bind_level=True)`);
            runners without the option ignore it.
        protocols: how degraded inputs are stored (`runtimes.core.degrade.PROTOCOLS`): "float" (the datasets'
            unclipped noise) and/or "clipped" (camera-realistic 8-bit); one set of accuracy rows each.
    """

    levels: tuple[float, ...] | None = None
    sizes: tuple[tuple[int, int], ...] = ((256, 256), (720, 1280))
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    threads: int | None = None
    seed: int = 0
    bind_level: bool = False
    protocols: tuple[str, ...] = ("float",)


def artifact_levels(meta: dict, requested: tuple[float, ...] | None) -> list[float]:
    """Levels to evaluate (`ArtifactMeta.levels`): the requested ones checked against the range, or neutral +
    training levels; a fixed-mode artifact at its baked level only."""
    return ArtifactMeta.from_dict(meta).levels(requested)


def load_images(folder: str | Path, limit: int | None = None) -> list[tuple[str, np.ndarray]]:
    """(file name, clean uint8 RGB) for the images of a folder, sorted by name; an image too small to score is
    skipped with a warning naming it, and a folder with none left is an error."""
    files = list_images(folder)[:limit]
    images = scorable([(p.name, read_uint8(p)) for p in files])
    if not images:
        raise UserError(f"no image in {folder} is large enough to score (at least {MIN_SCORED_SIDE}x{MIN_SCORED_SIDE} "
                        "px); add larger images")
    return images


def y_only(task: str) -> bool:
    """Protocol: Y channel for sr and dejpeg, RGB for denoise."""
    return task in ("sr", "dejpeg")


def _to_nchw(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(img.transpose(2, 0, 1)[None], dtype=np.float32)


def _to_hwc(out: np.ndarray) -> np.ndarray:
    return out[0].transpose(1, 2, 0)


class ReferenceOutputs:
    """Torch reference outputs (uint8, as the metrics quantise) per (image, level, protocol), computed once."""

    def __init__(self, weights: str | Path | None, threads: int | None = None):
        self.weights, self.threads = weights, threads
        self.outputs: dict[tuple[str, float, str], np.ndarray] = {}
        self.task: str | None = None

    @property
    def available(self) -> bool:
        return self.weights is not None

    def compute(self, images: list[tuple[str, np.ndarray]], levels: list[float], progress=None,
                protocols: tuple[str, ...] = ("float",)) -> None:
        """Run the reference on every degraded image at every level (and protocol) not computed yet."""
        if not self.available:
            return
        from runtimes.core.images import to_uint8

        todo = [(n, c, lv, p) for p in protocols for lv in levels for n, c in images if (n, lv, p) not in self.outputs]
        if not todo:
            return
        with reference_runner(self.weights, threads=self.threads) as ref:
            self.task = ref.meta["task"]
            for name, clean, lv, protocol in todo:
                x = _to_nchw(degrade(clean, self.task, lv, seed=image_seed(name), protocol=protocol))
                self.outputs[(name, lv, protocol)] = to_uint8(_to_hwc(restore(ref, x, lv)))
                if progress is not None:
                    progress.update(1)


def evaluate_accuracy(runner, images, levels, task: str, reference: ReferenceOutputs, progress=None,
                      protocols: tuple[str, ...] = ("float",)) -> list[dict]:
    """Mean PSNR/SSIM vs ground truth, of the degraded input, and parity with the reference, per protocol and
    level."""
    return [row for protocol in protocols
            for row in _accuracy(runner, images, levels, task, reference, progress, protocol)]


def _accuracy(runner, images, levels, task: str, reference: ReferenceOutputs, progress, protocol: str) -> list[dict]:
    rows = []
    yo = y_only(task)
    for lv in levels:
        scores = {"psnr": [], "ssim": [], "input_psnr": [], "parity_psnr": []}
        tiled = False
        for name, clean in images:
            degraded = degrade(clean, task, lv, seed=image_seed(name), protocol=protocol)
            tiled |= plan_tiles(runner.meta, *clean.shape[:2]) is not None
            out = _to_hwc(restore(runner, _to_nchw(degraded), lv))
            scores["psnr"].append(psnr(out, clean, y_only=yo))
            scores["ssim"].append(ssim(out, clean, y_only=yo))
            scores["input_psnr"].append(psnr(degraded, clean, y_only=yo))
            ref = reference.outputs.get((name, lv, protocol)) if reference.task == task else None
            if ref is not None:
                scores["parity_psnr"].append(psnr(out, ref))
            if progress is not None:
                progress.update(1)
        row = {"level": lv, "protocol": protocol, "n_images": len(images), "channels": "Y" if yo else "RGB",
               "tiled": tiled}
        row.update({k: (float(np.mean(v)) if v else None) for k, v in scores.items()})
        rows.append(row)
    return rows


def evaluate_latency(runner, sizes, levels, cfg: EvalConfig, progress=None) -> list[dict]:
    """Latency per (size, level): the runner's `run` ("compute"), or tiled `restore` ("end-to-end")."""
    rows = []
    rng = np.random.default_rng(cfg.seed)
    for h, w in sizes:
        image = rng.random((1, 3, h, w), dtype=np.float32)
        plan = plan_tiles(runner.meta, h, w)
        first_ms = None
        for lv in levels:
            fn = _timed_call(runner, image, lv, plan is not None)
            if first_ms is None:
                _, first_ms = time_call(fn)
            stats = measure(fn, cfg.latency, timed="end-to-end" if plan is not None else "compute")
            row = {"size": [h, w], "level": lv, "tiled": plan is not None,
                   "tile": list(plan.tile) if plan is not None else None, "first_ms": first_ms,
                   "throughput_mps": h * w / 1e6 / (stats.p50_ms / 1e3)}
            row.update(stats.to_dict())
            rows.append(row)
            if progress is not None:
                progress.update(1)
    return rows


def _timed_call(runner, image: np.ndarray, level: float, tiled: bool):
    if tiled:
        return lambda: restore(runner, image, level)
    feeds = {"image": encode_image(runner.meta, image)}
    if has_level_input(runner.meta):
        feeds["level"] = np.array([level], np.float32)
    return lambda: runner.run(feeds)


def bench_artifact(path: str | Path, images, reference: ReferenceOutputs, cfg: EvalConfig, progress=None) -> dict:
    """Everything measured for one artifact, as a JSON-ready record (see docs/bench_schema.md)."""
    path = Path(path)
    runner, meta = load_runner(path, cfg.threads, cfg.bind_level)
    return bench_runner_record(runner, path, meta, images, reference, cfg, progress)


def bench_runner_record(runner, path: Path, meta: dict, images, reference: ReferenceOutputs, cfg: EvalConfig,
                        progress=None) -> dict:
    """`bench_artifact` for an already constructed (not entered) runner: init, latency, accuracy, memory."""
    levels = artifact_levels(meta, cfg.levels)
    fmt = artifact_format(path, meta)
    with PeakMemory() as mem:
        _, init_ms = time_call(lambda: enter_runner(runner, path))
        try:
            latency = evaluate_latency(runner, cfg.sizes, levels, cfg, progress)
            accuracy = evaluate_accuracy(runner, images, levels, meta["task"], reference, progress, cfg.protocols)
        finally:
            runner.__exit__(None, None, None)
    lm = meta["level_map"]
    return {
        "artifact": str(path), "name": path.name, "format": fmt.key, "precision": meta.get("precision", "fp32"),
        "runner": runner.name, "task": meta["task"], "unit": lm["unit"], "level_mode": meta.get("level_mode"),
        "layout": meta.get("layout", "NCHW"), "fixed_sizes": fixed_sizes(meta), "threads": cfg.threads,
        "init_ms": init_ms, "peak_memory_mb": mem.peak_mb, "memory_method": mem.method,
        "accuracy": accuracy, "latency": latency,
    }
