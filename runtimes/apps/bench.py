"""Accuracy and latency benchmark of exported artifacts: one markdown table, plus JSON, CSV and plots.

For every artifact and level: PSNR/SSIM vs ground truth on an image set (degraded per the datasets'
protocol), parity (PSNR vs the torch reference, when torch and `--reference` weights are
available), and per frame size: latency p50/p90/p99/mean, throughput, init time, first inference
and peak memory. Fixed-size artifacts are tiled on other sizes (timed as "end-to-end").

With no artifacts, `python -m runtimes.bench` runs the project's main job (`export.job`: export the shipped
weights to every format this machine can run, then benchmark them here); this module itself never exports.

Usage:
    python -m runtimes.bench out/dn.onnx out/dn.tflite --set IMAGE_DIR --levels 0 15 25 50 \\
        --sizes 256x256 720x1280 --json out/bench.json [--threads N] [--reference WEIGHTS] [--bind-level]
    python -m runtimes.bench                      # export the shipped weights and benchmark them

Reports land beside the JSON: <stem>.csv, <stem>.md, <stem>_psnr.png, <stem>_latency.png; the
JSON schema is in docs/bench_schema.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from runtimes.apps.bench_eval import EvalConfig, ReferenceOutputs, artifact_levels, bench_artifact, load_images
from runtimes.apps.bench_report import SCHEMA, check_report_paths, flat_rows, markdown_table, write_reports
from runtimes.core.cli import OnOffAction, SizesAction, positive_int, thread_count
from runtimes.core.errors import CliParser, UserError, require, run_cli
from runtimes.core.images import SAMPLES_DIR
from runtimes.core.latency import LatencyConfig, machine_info
from runtimes.core.levels import parse_level
from runtimes.core.meta import checkpoint_meta, read_artifact_meta, resolve_checkpoint

REPO = Path(__file__).resolve().parents[2]
SAMPLES = SAMPLES_DIR
CBSD68 = REPO.parent / "shared" / "datasets" / "test" / "CBSD68"


@dataclass(frozen=True)
class BenchConfig:
    """A benchmark run.

    Attributes:
        artifacts: exported models (the main job, `export.job`, passes its own groups to `run_bench`).
        image_dir: ground-truth images; None: the shipped samples (runtimes/samples), else CBSD68.
        eval: levels, sizes, latency settings and threads.
        json_path: the JSON report; the other reports go beside it.
        reference: torch weights for parity (checkpoint or shipped name); None: parity n/a.
        max_images: use only the first N images (None: all).
        plots: write the PNG plots (needs matplotlib).
        export_dir: where the main job (`export.job`) writes its artifacts.
        progress: show a tqdm progress bar on stderr.
    """

    artifacts: tuple[Path, ...] = ()
    image_dir: Path | None = None
    eval: EvalConfig = field(default_factory=EvalConfig)
    json_path: Path = Path("out/bench.json")
    reference: str | None = None
    max_images: int | None = None
    plots: bool = True
    export_dir: Path = Path("out/artifacts")
    progress: bool = True


def default_image_dir() -> Path:
    """The shipped samples (runtimes/samples) when they hold images, else the CBSD68 test set beside the project."""
    from runtimes.core.images import IMAGE_SUFFIXES

    if SAMPLES.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in SAMPLES.iterdir()):
        return SAMPLES
    if CBSD68.is_dir():
        return CBSD68
    raise UserError(f"no images to benchmark on: put images in {SAMPLES} or give --set IMAGE_DIR")


def _reference_usable(reference: str | None, tasks: set[str]) -> str | None:
    """The reference weights when torch is installed and the task matches; None (parity n/a) otherwise."""
    if reference is None:
        return None
    if importlib.util.find_spec("torch") is None:
        print("torch is not installed: parity is n/a (pip install 'levelres[train]')", file=sys.stderr)
        return None
    task = checkpoint_meta(resolve_checkpoint(reference))["task"]
    if task not in tasks:
        raise UserError(f"reference {reference} restores {task}, the artifacts {', '.join(sorted(tasks))}")
    return reference


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="bench", unit="step", disable=not enabled, file=sys.stderr, leave=False)


def preflight(cfg: BenchConfig) -> None:
    """The checks a run can fail before any work: the plotting stack (when plotting) and the report paths."""
    if cfg.plots:
        try:
            require("matplotlib", "plots")
        except UserError as exc:
            raise UserError(f"{exc}, or pass --no-plots") from None
    check_report_paths(Path(cfg.json_path))


def run_bench(cfg: BenchConfig, groups: list[tuple[tuple[Path, ...], str | None]] | None = None) -> dict:
    """Benchmark every artifact; writes the reports and returns the JSON document.

    Args:
        cfg: the run.
        groups: (artifacts, reference weights) pairs, each compared with its own reference; None: one group,
            `cfg.artifacts` with `cfg.reference` (the main job passes one group per shipped weight set).
    """
    preflight(cfg)
    if groups is None:
        if not cfg.artifacts:
            raise UserError("no artifacts to benchmark; give exported models (python -m runtimes.bench with none "
                            "runs the main job)")
        groups = [(tuple(cfg.artifacts), cfg.reference)]
    image_dir = cfg.image_dir or default_image_dir()
    images = load_images(image_dir, cfg.max_images)
    plan = []  # (artifacts, their levels, reference outputs)
    for artifacts, reference in groups:
        metas = [read_artifact_meta(p) for p in artifacts]
        refs = ReferenceOutputs(_reference_usable(reference, {m["task"] for m in metas}), cfg.eval.threads)
        plan.append((artifacts, [artifact_levels(m, cfg.eval.levels) for m in metas], refs))
    work = 0
    for _, levels, refs in plan:
        n_acc = len(images) * len(cfg.eval.protocols)
        work += sum(len(lv) * (len(cfg.eval.sizes) + n_acc) for lv in levels)
        work += len({x for lv in levels for x in lv}) * n_acc if refs.available else 0
    records = []
    with _progress(work, cfg.progress) as bar:
        for artifacts, levels, refs in plan:
            refs.compute(images, sorted({x for lv in levels for x in lv}), bar, cfg.eval.protocols)
            for path in artifacts:
                bar.set_postfix_str(Path(path).name)
                records.append(bench_artifact(path, images, refs, cfg.eval, bar))
    references = [refs.weights for _, _, refs in plan]
    reference = references[0] if len(references) == 1 else references
    doc = {
        "schema": SCHEMA, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine_info(cfg.eval.threads),
        "config": {"images": _display(image_dir), "n_images": len(images), "levels": cfg.eval.levels,
                   "sizes": [list(s) for s in cfg.eval.sizes], "latency": asdict(cfg.eval.latency),
                   "reference": reference, "seed": cfg.eval.seed, "protocols": list(cfg.eval.protocols)},
        "results": records,
    }
    doc["paths"] = {k: str(v) for k, v in write_reports(doc, cfg.json_path, cfg.plots).items()}
    return doc


def _display(path: Path) -> str:
    """A path relative to the project's parent folder when inside it (no machine-specific prefix)."""
    try:
        return str(Path(path).resolve().relative_to(REPO.parent))
    except ValueError:
        return str(path)


def build_parser() -> argparse.ArgumentParser:
    p = CliParser(prog="python -m runtimes.bench", description=__doc__.splitlines()[0])
    p.add_argument("artifacts", nargs="*", type=Path, help="exported models (.onnx, .tflite, .engine, .mlpackage); "
                   "none: export the shipped weights and benchmark them")
    p.add_argument("--set", dest="image_dir", type=Path, default=None, help="folder of ground-truth images "
                   "(default: samples/)")
    p.add_argument("--levels", nargs="+", type=parse_level, default=None,
                   help="levels in the model's unit (default: neutral + training levels; fixed-mode "
                   "artifacts run at their baked level)")
    p.add_argument("--sizes", action=SizesAction, default=None, help="latency frame sizes HxW,HxW "
                   "(default 256x256,720x1280)")
    p.add_argument("--json", type=Path, default=Path("out/bench.json"), help="JSON report (default out/bench.json)")
    p.add_argument("--threads", type=thread_count, default=None,
                   help="runtime threads (default: the usable cores)")
    p.add_argument("--reference", default=None, help="torch weights for parity (checkpoint or shipped name)")
    p.add_argument("--runs", type=positive_int, default=10, help="timed runs per size and level (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed warm-up runs (default 2)")
    p.add_argument("--min-time", type=float, default=0.0, help="keep timing for at least this many seconds "
                   "(default 0: just --runs)")
    p.add_argument("--max-images", type=positive_int, default=None, help="use only the first N images")
    p.add_argument("--plots", action=OnOffAction, default=True,
                   help="write the PNG plots (needs matplotlib; --no-plots skips them)")
    p.add_argument("--export-dir", type=Path, default=Path("out/artifacts"),
                   help="the main job's export folder (no artifacts given)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--protocol", choices=("float", "clipped", "both"), default="float",
                   help="degraded inputs for accuracy: float = the datasets' unclipped float noise (default); "
                   "clipped = camera-realistic, noise added then clipped to 0-255 and rounded to 8 bits; both = "
                   "one labelled set of rows each")
    p.add_argument("--bind-level", action="store_true",
                   help="onnxruntime: one session per level with the level as a constant (fixed-graph speed; "
                   "the runner is named onnxruntime-<provider>-bound); other runtimes ignore it")
    return p


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    """The run the parsed command line asks for (shared with the main job, `export.job`)."""
    threads = args.threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    ev = EvalConfig(levels=tuple(args.levels) if args.levels else None,
                    sizes=tuple(args.sizes) if args.sizes else EvalConfig().sizes,
                    latency=LatencyConfig(warmup=args.warmup, runs=args.runs, min_time_s=args.min_time),
                    threads=threads, bind_level=args.bind_level,
                    protocols=("float", "clipped") if args.protocol == "both" else (args.protocol,))
    cfg = BenchConfig(artifacts=tuple(args.artifacts), image_dir=args.image_dir, eval=ev, json_path=args.json,
                      reference=args.reference, max_images=args.max_images, plots=args.plots,
                      export_dir=args.export_dir, progress=not args.no_progress)
    return cfg


def print_summary(doc: dict) -> None:
    """The table on stdout; what was timed and where the reports went on stderr."""
    print(markdown_table(flat_rows(doc["results"])))
    methods = sorted({r["memory_method"] for r in doc["results"]})
    print(f"peak RSS MB: {'; '.join(methods)}. timed: 'compute' = runner.run on prepared inputs, 'end-to-end' = "
          "tiling included. reports: " + ", ".join(doc["paths"].values()), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    print_summary(run_bench(config_from_args(build_parser().parse_args(argv))))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
