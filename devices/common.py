"""Shared pieces of the on-device scripts: tool lookup, commands, benchmark records and reports.

Every target writes the `runtimes.apps.bench` report (`levelres-bench/1`, docs/bench_schema.md) plus a
top-level `device` section (target, mode, runtime label, profile, tool readings). Records measured by
the project's runners come from `bench_runner`; records measured by a vendor tool (trtexec,
benchmark_model) come from `tool_record` with the same keys, unknown values null.

Usage:
    opts = bench_options(args)
    record = bench_runner(runner, path, images, opts.eval, runtime="stand-in: onnxruntime")
    write_device_reports(device_doc([record], device, opts, len(images)), opts)
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from runtimes.apps.bench import default_image_dir
from runtimes.apps.bench_eval import (
    EvalConfig,
    ReferenceOutputs,
    bench_runner_record,
    load_images,
    y_only,
)
from runtimes.apps.bench_report import (
    SCHEMA,
    check_report_paths,
    flat_rows,
    markdown_report,
    markdown_table,
    write_reports,
)
from runtimes.apps.tiling import fixed_sizes
from runtimes.core.cli import OnOffAction, SizesAction, positive_int, thread_count
from runtimes.core.errors import UserError
from runtimes.core.images import atomic_write_bytes, json_bytes
from runtimes.core.latency import LatencyConfig, machine_info
from runtimes.core.levels import parse_level
from runtimes.runners.factory import artifact_format

STAND_IN = "stand-in: "


@dataclass(frozen=True)
class BenchOptions:
    """What every target measures and where it writes.

    Attributes:
        image_dir: ground-truth images; None: the bundle's samples/ (or the project's, runtimes/samples).
        eval: levels, sizes, latency runs and threads.
        json_path: the JSON report; .csv and .md land beside it.
        max_images: use only the first N images.
        plots: also write the PNG plots (needs matplotlib).
        dry_run: print the commands and stop.
        local: run the on-host part here with a stand-in runtime.
    """

    image_dir: Path | None = None
    eval: EvalConfig = field(default_factory=EvalConfig)
    json_path: Path = Path("out/device_bench.json")
    max_images: int | None = None
    plots: bool = False
    dry_run: bool = False
    local: bool = False


def add_bench_args(p: argparse.ArgumentParser, json_default: str) -> None:
    """The benchmark flags every target shares (same meaning as in `python -m runtimes.bench`)."""
    p.add_argument("--set", dest="image_dir", type=Path, default=None, help="folder of ground-truth images "
                   "(default: samples/)")
    p.add_argument("--levels", nargs="+", type=parse_level, default=None, help="levels in the model's unit "
                   "(default: neutral + training levels)")
    p.add_argument("--sizes", action=SizesAction, default=None, help="latency frame sizes HxW,HxW "
                   "(default 256x256,720x1280)")
    p.add_argument("--runs", type=positive_int, default=20, help="timed runs per size and level (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed warm-up runs (default 3)")
    p.add_argument("--threads", type=thread_count, default=None,
                   help="runtime CPU threads (default: the runtime's own)")
    p.add_argument("--max-images", type=positive_int, default=None, help="use only the first N images")
    p.add_argument("--json", type=Path, default=Path(json_default), help=f"JSON report (default {json_default})")
    p.add_argument("--plots", action=OnOffAction, default=False,
                   help="also write the PNG plots (needs matplotlib; default: no plots)")
    p.add_argument("--dry-run", action="store_true", help="print the exact commands and stop")
    p.add_argument("--local", action="store_true", help="run the on-host part here with a stand-in runtime")


def bench_options(args: argparse.Namespace) -> BenchOptions:
    """`BenchOptions` from the parsed shared flags."""
    ev = EvalConfig(levels=tuple(args.levels) if args.levels else None,
                    sizes=tuple(args.sizes) if args.sizes else EvalConfig().sizes,
                    latency=LatencyConfig(warmup=args.warmup, runs=args.runs), threads=args.threads)
    check_report_paths(args.json)
    return BenchOptions(image_dir=args.image_dir, eval=ev, json_path=args.json, max_images=args.max_images,
                        plots=args.plots, dry_run=args.dry_run, local=args.local)


def print_report(doc: dict | None) -> None:
    """Print a target's result table (stdout) and where its reports went (stderr); None = a dry run."""
    if doc is None:
        return
    print(markdown_table(flat_rows(doc["results"])))
    print(f"runtime: {doc['device']['runtime']}; reports: {', '.join(doc['paths'].values())}", file=sys.stderr)


def find_tool(name: str, install: str, extra_dirs: tuple[str, ...] = ()) -> str:
    """The path of an executable (PATH, then `extra_dirs`); a one-line UserError saying what to install."""
    found = shutil.which(name)
    if found:
        return found
    for folder in extra_dirs:
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise UserError(f"{name} not found: {install}")


def shell_line(cmd: list[str]) -> str:
    """A command as one copy-pasteable shell line."""
    return shlex.join(str(c) for c in cmd)


def run_tool(cmd: list[str], timeout: float = 600.0, check: bool = True) -> str:
    """Run a command; returns stdout + stderr. A failure becomes a one-line UserError."""
    try:
        proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise UserError(f"{cmd[0]} not found; install it or put it on PATH") from None
    except subprocess.TimeoutExpired:
        raise UserError(f"{shell_line(cmd)} did not finish within {timeout:g} s") from None
    text = proc.stdout + proc.stderr
    if check and proc.returncode != 0:
        tail = (text.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"{Path(cmd[0]).name} failed (exit {proc.returncode}): {tail}")
    return text


def load_bench_images(opts: BenchOptions) -> tuple[Path, list]:
    """(image folder, [(name, clean uint8)]) for the accuracy run."""
    folder = opts.image_dir or bundled_samples() or default_image_dir()
    return folder, load_images(folder, opts.max_images)


def bundled_samples() -> Path | None:
    """samples/ beside the devices package (a device bundle's), when present; the project's are in runtimes/samples."""
    folder = Path(__file__).resolve().parents[1] / "samples"
    return folder if folder.is_dir() else None


def bench_runner(runner, path: str | Path, images, cfg: EvalConfig, runtime: str, **extra) -> dict:
    """`runtimes.apps.bench_eval.bench_artifact` for an already constructed runner (any runner options).

    Args:
        runner: a Runner, not entered yet.
        path: its artifact.
        images: [(name, clean uint8)] for accuracy.
        cfg: levels, sizes, latency settings.
        runtime: the label recorded as "runtime" (e.g. "stand-in: onnxruntime").
        **extra: more keys for the record.
    """
    path = Path(path)
    rec = bench_runner_record(runner, path, runner.meta, images, ReferenceOutputs(None), cfg)
    return {**rec, "runtime": runtime, **extra}


def _record_head(path: Path, meta: dict, runner_name: str, threads, runtime: str) -> dict:
    lm = meta["level_map"]
    return {
        "artifact": str(path), "name": path.name, "format": artifact_format(path, meta).key,
        "precision": meta.get("precision", "fp32"), "runner": runner_name, "runtime": runtime, "task": meta["task"],
        "unit": lm["unit"], "level_mode": meta.get("level_mode"), "layout": meta.get("layout", "NCHW"),
        "fixed_sizes": fixed_sizes(meta), "threads": threads,
    }


def tool_latency_row(size, level: float, stats: dict, source: str) -> dict:
    """A `latency[]` entry from a vendor tool's summary (keys of docs/bench_schema.md; unknown ones null)."""
    h, w = size
    row = {"size": [h, w], "level": level, "tiled": False, "tile": None, "timed": "compute", "source": source,
           "first_ms": None, "n": None, "warmup": None, "mean_ms": None, "std_ms": None, "min_ms": None,
           "p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None, "samples_ms": None}
    row.update({k: v for k, v in stats.items() if k in row})
    p = row["p50_ms"] or row["mean_ms"]
    row["throughput_mps"] = h * w / 1e6 / (p / 1e3) if p else None
    return row


def tool_record(path: str | Path, meta: dict, runner_name: str, runtime: str, levels: list[float],
                latency: list[dict], threads=None, accuracy: list[dict] | None = None, **extra) -> dict:
    """A result record measured by a vendor tool; accuracy entries are null when the tool gives none."""
    path = Path(path)
    rec = _record_head(path, meta, runner_name, threads, runtime)
    acc = accuracy if accuracy is not None else [
        {"level": lv, "n_images": 0, "channels": "Y" if y_only(meta["task"]) else "RGB", "tiled": False,
         "psnr": None, "ssim": None, "input_psnr": None, "parity_psnr": None} for lv in levels]
    rec.update(init_ms=extra.pop("init_ms", None), peak_memory_mb=extra.pop("peak_memory_mb", None),
               memory_method=extra.pop("memory_method", "n/a"), accuracy=acc, latency=latency, **extra)
    return rec


def device_doc(records: list[dict], device: dict, opts: BenchOptions, image_dir: Path, n_images: int) -> dict:
    """The report document: the `runtimes.apps.bench` keys plus `device`."""
    return {
        "schema": SCHEMA, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine_info(opts.eval.threads),
        "config": {"images": display_path(image_dir), "n_images": n_images, "levels": opts.eval.levels,
                   "sizes": [list(s) for s in opts.eval.sizes], "latency": asdict(opts.eval.latency),
                   "reference": None, "seed": opts.eval.seed},
        "device": device, "results": records,
    }


def display_path(path: Path) -> str:
    """A path relative to the current folder when inside it (no machine-specific prefix)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return Path(path).name


def device_markdown(device: dict) -> str:
    """The device section of the markdown report."""
    lines = [f"## Device: {device.get('target')} ({device.get('mode')})", "",
             f"- runtime: {device.get('runtime')}"]
    prof = device.get("profile")
    if prof:
        lines.append(f"- profile: {prof['name']} ({prof['runtime']}; figures vendor-published: "
                     f"{', '.join(f'{k} {v}' for k, v in prof['peak'].items())})")
    for key in ("power_mode", "clocks", "power", "tegrastats", "model", "android", "accuracy_runtime", "note"):
        if device.get(key) not in (None, {}, []):
            lines.append(f"- {key.replace('_', ' ')}: {compact(device[key])}")
    return "\n".join(lines) + "\n"


def compact(value) -> str:
    """A short one-line rendering of a JSON value for the markdown header."""
    if isinstance(value, dict):
        return "; ".join(f"{k} {compact(v)}" for k, v in value.items() if v not in (None, {}, []))
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(compact(v) for v in value)
    return str(value)


def write_device_reports(doc: dict, opts: BenchOptions) -> dict:
    """Write JSON/CSV/markdown (and plots when asked) like `runtimes.apps.bench`, with the device section."""
    plots = opts.plots and all(lat["p50_ms"] is not None for r in doc["results"] for lat in r["latency"])
    if opts.plots and not plots:
        print("plots skipped: a tool reported no median latency", file=sys.stderr)
    paths = write_reports(doc, opts.json_path, plots)
    doc["paths"] = {k: str(v) for k, v in paths.items()}
    atomic_write_bytes(paths["json"], json_bytes(doc))
    atomic_write_bytes(paths["md"], (markdown_report(doc) + "\n" + device_markdown(doc["device"])).encode())
    return doc["paths"]


def print_dry_run(title: str, commands: list[str]) -> None:
    """Print the commands a run would execute, one per line (comments start with #)."""
    print(f"# {title}")
    for line in commands:
        print(line)


def is_macos() -> bool:
    return sys.platform == "darwin"
