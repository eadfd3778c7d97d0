"""The project's main job: export the shipped weight sets to every format this machine can run, then benchmark
them against the torch reference with `runtimes.apps.bench`.

It lives here, in the layer that may use every other (the exporters, the training code's checkpoints, the
runtimes), so that the runtimes never reach up. `python -m runtimes.bench` with no artifacts runs it.

Usage:
    python -m runtimes.bench                 # the main job (same as python -m export.job)
    python -m export.job --max-images 4 --no-plots
"""

from __future__ import annotations

import sys
from pathlib import Path

from runtimes.apps.bench import REPO, BenchConfig, build_parser, config_from_args, preflight, print_summary, run_bench
from runtimes.core.errors import UserError, require, run_cli
from runtimes.core.formats import FORMATS, Format

DEFAULT_WEIGHTS = ("denoise-mobile", "denoise-fast")  # shipped weight sets the main job exports and benchmarks


def runnable_formats() -> list[str]:
    """Formats whose exporter and runner stacks are installed and can run on this machine (the format table)."""
    return [key for key, fmt in FORMATS.items() if fmt.runnable_here()]


SIZES = ("256x256", "720x1280")  # what fixed-size formats are exported at (the benchmark's default frame sizes)


def export_args(fmt: Format) -> list[str]:
    """The exporter's extra command-line arguments: the sizes, for a fixed-size format."""
    return [arg for size in SIZES for arg in ("--size", size)] if fmt.fixed_size else []


def export_shipped(weights: Path, formats: list[str], out_dir: Path) -> list[Path]:
    """Export `weights` to each format (fp32, folded) with the exporters' command lines; reuse fresh artifacts."""
    import subprocess

    artifacts = []
    for key in formats:
        fmt = FORMATS[key]
        path = out_dir / f"{weights.stem}{fmt.suffix}"
        meta = path.with_name(path.name + ".meta.json")
        if path.exists() and meta.is_file() and meta.stat().st_mtime >= weights.stat().st_mtime:
            print(f"reusing {path}", file=sys.stderr)
            artifacts.append(path)
            continue
        # absolute paths: the exporter runs in the project's folder (a checkout's root, or site-packages)
        cmd = [sys.executable, "-m", fmt.exporter, "--weights", str(Path(weights).resolve()),
               "-o", str(Path(out_dir).resolve()),
               "--name", weights.stem, *export_args(fmt)]
        print(f"exporting {weights.name} to {key}: {' '.join(cmd[1:])}", file=sys.stderr)
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        if proc.returncode != 0 or not path.exists():
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise UserError(f"exporting {weights.name} to {key} failed: {tail}")
        artifacts.append(path)
    return artifacts


def default_job(export_dir: Path) -> list[tuple[tuple[Path, ...], str]]:
    """Export each shipped weight set to every runnable format; returns [(artifacts, reference weights)]."""
    require("torch", "train")
    from train.checkpoint import resolve_weights

    formats = runnable_formats()
    if not formats:
        raise UserError("no exporter/runtime stack is installed: pip install 'levelres[onnx]' (or [tflite])")
    groups = []
    for name in DEFAULT_WEIGHTS:
        weights = resolve_weights(name)
        groups.append((tuple(export_shipped(weights, formats, export_dir)), str(weights)))
    return groups


def run_main_job(cfg: BenchConfig) -> dict:
    """Export every shipped weight set (`default_job`), then benchmark each group against its own weights (or
    `cfg.reference`); the report paths and plotting stack are checked before anything is exported."""
    preflight(cfg)  # before anything is exported
    groups = [(arts, cfg.reference or ref) for arts, ref in default_job(cfg.export_dir)]
    return run_bench(cfg, groups)


def main(argv: list[str] | None = None) -> int:
    """The benchmark command: the given artifacts, or (none given) the main job."""
    cfg = config_from_args(build_parser().parse_args(argv))
    print_summary(run_bench(cfg) if cfg.artifacts else run_main_job(cfg))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
