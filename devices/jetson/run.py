"""The Jetson benchmark: build the engine on the device, benchmark it through runtimes/, read power and clocks.

Usage:
    doc = run_jetson(JetsonConfig(onnx=Path("dn.onnx"), precision="fp16", bench=BenchOptions(...)))
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from devices.common import (
    BenchOptions,
    bench_runner,
    device_doc,
    find_tool,
    load_bench_images,
    print_dry_run,
    run_tool,
    shell_line,
    tool_latency_row,
    tool_record,
    write_device_reports,
)
from devices.jetson import engine as eng
from devices.jetson import system, trtexec
from devices.jetson.tegrastats import energy_per_frame_mj
from devices.profiles import detect_profile, find_profile
from runtimes.apps.bench_eval import artifact_levels
from runtimes.core.artifact import has_level_input
from runtimes.core.errors import UserError
from runtimes.core.meta import read_artifact_meta
from runtimes.runners.trt_precision import PrecisionPlan

TRTEXEC_INSTALL = ("it ships with JetPack's TensorRT in /usr/src/tensorrt/bin (sudo apt install tensorrt); "
                   "put it on PATH or pass --trtexec-path")
TRTEXEC_DIRS = ("/usr/src/tensorrt/bin",)


@dataclass(frozen=True)
class JetsonConfig:
    """A Jetson run.

    Attributes:
        onnx: the project's ONNX (python -m export.tensorrt or export.onnx) with its .meta.json.
        precision: fp32, fp16 or int8 (int8 needs the Q/DQ ONNX).
        bench: images, levels, sizes, latency runs, report path, dry-run / local.
        trtexec: build (and also time) the engine with trtexec instead of the Python API.
        trtexec_path: the trtexec executable (default: PATH, then JetPack's folder).
        engine: use this prebuilt engine (with its .meta.json) instead of building one.
        profile: a devices.jetson.profiles key; None detects it from the board's model string.
        tegrastats_ms: tegrastats sampling interval.
        workspace_mib: builder workspace limit.
    """

    onnx: Path
    precision: str = "fp16"
    bench: BenchOptions = field(default_factory=BenchOptions)
    trtexec: bool = False
    trtexec_path: str | None = None
    engine: Path | None = None
    profile: str | None = None
    tegrastats_ms: int = 100
    workspace_mib: int = 2048


def engine_path(cfg: JetsonConfig) -> Path:
    """Where the built engine goes: beside the JSON report, named after the ONNX and the precision."""
    if cfg.engine is not None:
        return cfg.engine
    stem = cfg.onnx.stem if cfg.onnx.suffix == ".onnx" else cfg.onnx.name  # no str.removesuffix: Python 3.8 hosts
    return cfg.bench.json_path.parent / f"{stem}-{cfg.precision}.engine"


def level_file(cfg: JetsonConfig, level: float) -> Path:
    return cfg.bench.json_path.parent / f"{cfg.bench.json_path.stem}_level_{level:g}.bin"


def report_files(cfg: JetsonConfig, size, level: float) -> tuple[Path, Path]:
    """trtexec's --exportTimes and --exportProfile JSON for one (size, level), beside the report."""
    base = cfg.bench.json_path.parent / f"{cfg.bench.json_path.stem}_trtexec_{size[0]}x{size[1]}_{level:g}"
    return Path(f"{base}.times.json"), Path(f"{base}.profile.json")


def _image_shape(meta: dict, size) -> tuple[int, ...]:
    h, w = size
    return (1, h, w, 3) if meta.get("layout") == "NHWC" else (1, 3, h, w)


def planned_commands(cfg: JetsonConfig, meta: dict, plan: PrecisionPlan, shapes, levels: list[float]) -> list[str]:
    """The exact commands of a device run, in order (the Python-API build shown as a comment)."""
    tool = cfg.trtexec_path or "trtexec"
    engine = engine_path(cfg)
    lines = [shell_line(system.NVPMODEL_CMD), shell_line(system.CLOCKS_CMD) + "   # else sysfs clocks",
             shell_line(system.tegrastats_command(cfg.tegrastats_ms)) + " &   # background, stopped after the run"]
    if cfg.engine is not None:
        lines.append(f"# use the prebuilt engine {engine}")
    elif cfg.trtexec:
        lines.append(shell_line(trtexec.build_command(tool, cfg.onnx, engine, shapes, plan.trtexec_flags,
                                                      cfg.workspace_mib)))
    else:
        flags = ", ".join(plan.builder_flags) or "none"
        lines.append(f"# TensorRT Python API: build {engine} from {cfg.onnx} (flags {flags}"
                     f"{', strongly typed' if plan.strongly_typed else ''}; image profile "
                     f"{' / '.join('x'.join(map(str, s)) for s in shapes)})")
    lines.append(f"# runtimes: TensorRTRunner({engine}) accuracy on the images and latency at "
                 f"{', '.join(f'{h}x{w}' for h, w in cfg.bench.eval.sizes)}")
    if cfg.trtexec:
        has_level = has_level_input(meta)
        for size in cfg.bench.eval.sizes:
            for lv in levels:
                lines.append(shell_line(trtexec.bench_command(tool, engine, _image_shape(meta, size),
                                                              level_file(cfg, lv) if has_level else None,
                                                              cfg.bench.eval.latency.runs,
                                                              reports=report_files(cfg, size, lv))))
    return lines


def run_jetson(cfg: JetsonConfig) -> dict | None:
    """Run (or print, with dry_run) the Jetson benchmark; returns the report document."""
    if cfg.onnx.suffix.lower() != ".onnx":
        raise UserError(f"--model expects the project's .onnx artifact, got {cfg.onnx.name}")
    if cfg.tegrastats_ms < 1 or cfg.workspace_mib < 1:
        raise UserError(f"--tegrastats-ms and --workspace-mib must be >= 1, got {cfg.tegrastats_ms} and "
                        f"{cfg.workspace_mib}")
    meta = read_artifact_meta(cfg.onnx)
    if cfg.bench.local:
        return run_local(cfg, meta)
    image_dir, images = load_bench_images(cfg.bench)
    levels = artifact_levels(meta, cfg.bench.eval.levels)
    trt = eng.python_tensorrt()
    plan = eng.precision_plan(cfg.precision, getattr(trt, "__version__", None), meta)
    shapes = eng.profile_shapes(meta, cfg.bench.eval.sizes, [img.shape for _, img in images])
    if cfg.bench.dry_run:
        print_dry_run(f"jetson: {cfg.onnx.name} at {cfg.precision}", planned_commands(cfg, meta, plan, shapes, levels))
        return None
    tool = _check_tools(cfg, trt)
    device = {"target": "jetson", "mode": "device", "model": system.board_model(), "power_mode": system.power_mode(),
              "clocks": system.clocks()}
    prof = find_profile("jetson", cfg.profile) or detect_profile("jetson", device["model"])
    device["profile"] = prof.to_dict() if prof else None
    with system.Tegrastats(cfg.tegrastats_ms) as ts:
        engine, emeta = _engine(cfg, meta, plan, shapes, trt, tool)
        records = []
        if trt is not None:
            from runtimes.runners.tensorrt import TensorRTRunner

            records.append(bench_runner(TensorRTRunner(engine), engine, images, cfg.bench.eval,
                                        runtime=f"device: tensorrt {trt.__version__}"))
        if cfg.trtexec:
            records.append(_trtexec_record(cfg, engine, emeta, levels, tool))
    device["runtime"] = records[0]["runtime"]
    device["tegrastats"] = ts.summary()
    if device["tegrastats"] is None:
        device["note"] = "tegrastats not found: power and temperature not recorded"
    device["power"] = _energy(device["tegrastats"], records)
    doc = device_doc(records, device, cfg.bench, image_dir, len(images))
    write_device_reports(doc, cfg.bench)
    return doc


def _check_tools(cfg: JetsonConfig, trt) -> str | None:
    """The trtexec path when asked; a one-line error for whatever the run needs but cannot find."""
    if cfg.trtexec:
        return cfg.trtexec_path or find_tool("trtexec", TRTEXEC_INSTALL, TRTEXEC_DIRS)
    if trt is None:
        raise UserError("TensorRT's Python API is not importable: sudo apt install python3-libnvinfer (JetPack; "
                        "use the system python3 or a venv with --system-site-packages), or pass --trtexec")
    return None


def _engine(cfg: JetsonConfig, meta: dict, plan: PrecisionPlan, shapes, trt, tool: str | None) -> tuple[Path, dict]:
    """The engine to benchmark (prebuilt, or built now) and its metadata."""
    engine = engine_path(cfg)
    if cfg.engine is not None:
        return engine, read_artifact_meta(engine)
    engine.parent.mkdir(parents=True, exist_ok=True)
    if cfg.trtexec:
        text = run_tool(trtexec.build_command(tool, cfg.onnx, engine, shapes, plan.trtexec_flags, cfg.workspace_mib),
                        timeout=3600)
        parsed = trtexec.parse_trtexec(text)
        built_with, how = f"trtexec (TensorRT {parsed.get('version', '?')})", "trtexec"
    else:
        seconds = eng.build_with_python(cfg.onnx, engine, plan, shapes, cfg.workspace_mib)
        built_with, how = trt.__version__, f"python api ({seconds:.1f} s)"
    print(f"built {engine} ({how})", file=sys.stderr)
    return engine, eng.write_engine_meta(meta, engine, plan, shapes, built_with, how)


def _trtexec_record(cfg: JetsonConfig, engine: Path, meta: dict, levels: list[float], tool: str) -> dict:
    """trtexec's own timing of the engine, per (size, level), as a result record (no accuracy): read from its
    --exportTimes JSON, or from its text summary where the JSON is absent; top layers from --exportProfile."""
    rows, layers, version = [], {}, None
    for size in cfg.bench.eval.sizes:
        for lv in levels:
            lf = None
            if has_level_input(meta):
                lf = level_file(cfg, lv)
                np.array([lv], np.float32).tofile(lf)
            row, top, found = _trtexec_row(cfg, engine, meta, tool, size, lv, lf)
            rows.append(row)
            version = version or found
            if top:
                layers[f"{size[0]}x{size[1]}@{lv:g}"] = top
    return tool_record(engine, meta, f"trtexec-{version or '?'}", f"device: trtexec {version or ''}".strip(),
                       levels, rows, trtexec_top_layers=layers or None)


def _trtexec_row(cfg: JetsonConfig, engine: Path, meta: dict, tool: str, size, lv: float, lf: Path | None):
    """(latency row, top layers or None, trtexec version) of one timing run."""
    times, profile = report_files(cfg, size, lv)
    for stale in (times, profile):  # a JSON left from an earlier run must not stand in for this one
        stale.unlink(missing_ok=True)
    warmup_ms = 200
    text = run_tool(trtexec.bench_command(tool, engine, _image_shape(meta, size), lf, cfg.bench.eval.latency.runs,
                                          warmup_ms, reports=(times, profile)), timeout=1800)
    parsed = trtexec.parse_trtexec(text)
    stats = trtexec.parse_export_times(times, warmup_ms)
    source = "trtexec --exportTimes latencyMs (H2D + GPU compute + D2H)"
    if stats is None:
        stats = {**trtexec.latency_stats(parsed), "n": cfg.bench.eval.latency.runs}
        source = "trtexec Latency summary (H2D + GPU compute + D2H; no --exportTimes JSON)"
    row = tool_latency_row(size, lv, {**stats, "warmup": None}, source)
    return row, trtexec.parse_export_profile(profile), parsed.get("version")


def _energy(summary: dict | None, records: list[dict]) -> dict | None:
    """Approximate mJ per frame at each latency size (mean input power over the run x p50 or mean latency)."""
    if not summary or not summary.get("total_power_mw"):
        return None
    out = {}
    for lat in records[0]["latency"]:
        ms = lat.get("p50_ms") or lat.get("mean_ms")
        out[f"{lat['size'][0]}x{lat['size'][1]}@{lat['level']:g}"] = energy_per_frame_mj(summary, ms)
    return {"mean_input_mw": summary["total_power_mw"]["mean"], "energy_mj_per_frame": out,
            "method": "mean input-rail power over the whole run x latency (approximate)"}


def run_local(cfg: JetsonConfig, meta: dict) -> dict | None:
    """The on-host part with onnxruntime standing in for TensorRT (no engine, no power readings)."""
    if cfg.bench.dry_run:
        print_dry_run("jetson --local: onnxruntime stands in for TensorRT; no device commands",
                      [f"# runtimes: OnnxRunner({cfg.onnx}, provider=cpu) accuracy + latency"])
        return None
    from runtimes.runners.onnxruntime import OnnxRunner

    image_dir, images = load_bench_images(cfg.bench)
    runtime = "stand-in: onnxruntime"
    record = bench_runner(OnnxRunner(cfg.onnx, provider="cpu", threads=cfg.bench.eval.threads), cfg.onnx, images,
                          cfg.bench.eval, runtime=runtime)
    prof = find_profile("jetson", cfg.profile)
    device = {"target": "jetson", "mode": "local", "runtime": runtime, "profile": prof.to_dict() if prof else None,
              "precision_asked": cfg.precision,
              "note": "run on this host with onnxruntime standing in for TensorRT; no engine was built and power "
                      "mode, clocks and tegrastats were not read"}
    doc = device_doc([record], device, cfg.bench, image_dir, len(images))
    write_device_reports(doc, cfg.bench)
    return doc
