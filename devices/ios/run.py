"""The Mac benchmark of a CoreML package: coremltools predictions per compute unit through runtimes/runners/coreml.py.

An iPhone is profiled with Xcode's performance report instead (docs/devices.md); the Mac run gives accuracy
and latency per compute unit in the runtimes.apps.bench schema.

Usage:
    doc = run_ios(IosConfig(mlpackage=Path("dn.mlpackage"), compute_units=("all", "cpu_and_ne")))
"""

from __future__ import annotations

import platform
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from devices.common import (
    BenchOptions,
    bench_runner,
    device_doc,
    is_macos,
    load_bench_images,
    print_dry_run,
    write_device_reports,
)
from devices.profiles import detect_profile, find_profile
from runtimes.core.errors import UserError
from runtimes.core.meta import read_artifact_meta
from runtimes.runners.coreml import COMPUTE_UNITS

XCODE_HINT = ("open the .mlpackage in Xcode, Performance tab, choose the connected iPhone and Create a "
              "performance report")


@dataclass(frozen=True)
class IosConfig:
    """A Mac (CoreML) run.

    Attributes:
        mlpackage: the project's .mlpackage (with its .meta.json).
        compute_units: any of all, cpu_only, cpu_and_gpu, cpu_and_ne.
        bench: images, levels, sizes, runs, report path, dry-run / local.
        profile: a devices.ios.profiles key; None detects it from the Mac's chip.
    """

    mlpackage: Path
    compute_units: tuple[str, ...] = tuple(COMPUTE_UNITS)
    bench: BenchOptions = field(default_factory=BenchOptions)
    profile: str | None = None


def planned_commands(cfg: IosConfig) -> list[str]:
    """What a run executes: one coremltools model per compute unit."""
    lines = ["sysctl -n machdep.cpu.brand_string", "sw_vers -productVersion"]
    for cu in cfg.compute_units:
        lines.append(f"# coremltools: MLModel({cfg.mlpackage}, compute_units=ComputeUnit.{COMPUTE_UNITS[cu]}).predict "
                     f"(runtimes.runners.coreml.CoreMLRunner): accuracy + latency at "
                     f"{', '.join(f'{h}x{w}' for h, w in cfg.bench.eval.sizes)}")
    lines.append(f"# iPhone: {XCODE_HINT}")
    return lines


def chip() -> str | None:
    """The Mac's chip name (e.g. 'Apple M3'), or None elsewhere."""
    if not is_macos():
        return None
    try:
        return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                              timeout=10).stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None


def check_host(local: bool) -> None:
    """CoreML predictions need macOS and coremltools; a one-line error saying what to do otherwise."""
    if not is_macos():
        if local:
            raise UserError(f"--local has no CoreML stand-in on {sys.platform}: CoreML runs only on macOS/iOS; run "
                            "python -m devices.ios on a Mac, or benchmark the ONNX/TFLite artifacts here "
                            "(python -m devices.jetson --local, python -m devices.android --local)")
        raise UserError(f"CoreML predictions need macOS (this is {sys.platform}): run python -m devices.ios on a Mac "
                        "with coremltools (pip install 'levelres[coreml]'); for an iPhone, " + XCODE_HINT)
    import importlib.util

    if importlib.util.find_spec("coremltools") is None:
        raise UserError("coremltools is not installed: pip install 'levelres[coreml]'")


def run_ios(cfg: IosConfig) -> dict | None:
    """Run (or print, with dry_run) the CoreML benchmark; returns the report document."""
    if cfg.mlpackage.suffix.lower() != ".mlpackage":
        raise UserError(f"--model expects the project's .mlpackage, got {cfg.mlpackage.name}")
    unknown = [cu for cu in cfg.compute_units if cu not in COMPUTE_UNITS]
    if unknown:
        raise UserError(f"unknown compute unit(s) {', '.join(unknown)}; choose from {', '.join(COMPUTE_UNITS)}")
    if cfg.bench.local:
        check_host(local=True)
    read_artifact_meta(cfg.mlpackage)
    if cfg.bench.dry_run:
        print_dry_run(f"ios (Mac): {cfg.mlpackage.name}, compute units {' '.join(cfg.compute_units)}",
                      planned_commands(cfg))
        return None
    check_host(cfg.bench.local)
    from runtimes.runners.coreml import CoreMLRunner

    image_dir, images = load_bench_images(cfg.bench)
    records = [bench_runner(CoreMLRunner(cfg.mlpackage, compute_units=cu), cfg.mlpackage, images, cfg.bench.eval,
                            runtime=f"device: coremltools ({cu})", compute_units=cu) for cu in cfg.compute_units]
    name = chip()
    prof = find_profile("ios", cfg.profile) or detect_profile("ios", name)
    device = {"target": "ios", "mode": "device", "runtime": "coremltools MLModel.predict on macOS", "model": name,
              "os": platform.mac_ver()[0], "profile": prof.to_dict() if prof else None,
              "note": "Mac predictions; the Neural Engine may decline layers (see the Xcode performance report)"}
    doc = device_doc(records, device, cfg.bench, image_dir, len(images))
    write_device_reports(doc, cfg.bench)
    return doc
