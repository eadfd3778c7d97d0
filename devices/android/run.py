"""The Android benchmark over adb: push the model and benchmark_model, time every delegate on the phone, score
accuracy on the host with LiteRT (labelled "host").

Latency: benchmark_model on the phone, once per (delegate, signature size, level); the level is fed from a raw
float32 file with --input_layer_value_files (beside --input_layer and --input_layer_shape, in the
subgraph's input order from the metadata), the image is benchmark_model's random input. Accuracy: the same
.tflite run on this host with ai-edge-litert or tflite-runtime (XNNPACK), since benchmark_model does not return
outputs.

Usage:
    doc = run_android(AndroidConfig(tflite=Path("dn.tflite"), benchmark_binary=Path("benchmark_model")))
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from devices.android import benchmark_model as bm
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
from devices.profiles import detect_profile, find_profile
from runtimes.apps.bench_eval import artifact_levels
from runtimes.core.artifact import has_level_input
from runtimes.core.errors import UserError
from runtimes.core.meta import read_artifact_meta

ADB_INSTALL = "install Android platform-tools (sdkmanager 'platform-tools', or apt install adb) and put adb on PATH"
BINARY_HINT = ("download LiteRT's benchmark_model for android_arm64 (the prebuilt 'benchmark_model' from the "
               "TensorFlow Lite performance-measurement page) and pass --benchmark-binary PATH")
PROPS = ("ro.product.model", "ro.soc.model", "ro.board.platform", "ro.build.version.release")


@dataclass(frozen=True)
class AndroidConfig:
    """An Android run.

    Attributes:
        tflite: the project's .tflite (with its .meta.json).
        benchmark_binary: LiteRT's benchmark_model built for the phone (android_arm64).
        delegates: any of cpu (builtin kernels), xnnpack, gpu, nnapi.
        threads: CPU threads (--num_threads).
        bench: images, levels, runs, report path, dry-run / local.
        serial: adb device serial (None: the only device).
        op_profiling: add --enable_op_profiling=true (per-op times in the raw log).
        remote_dir: working folder on the phone.
        profile: a devices.android.profiles key; None detects it from the SoC properties.
    """

    tflite: Path
    benchmark_binary: Path | None = None
    delegates: tuple[str, ...] = ("cpu", "xnnpack", "gpu", "nnapi")
    threads: int = 4
    bench: BenchOptions = field(default_factory=BenchOptions)
    serial: str | None = None
    op_profiling: bool = False
    remote_dir: str = "/data/local/tmp/levelres"
    profile: str | None = None


def adb(cfg: AndroidConfig, *args: str) -> list[str]:
    """An adb command for the chosen device."""
    return ["adb", *(["-s", cfg.serial] if cfg.serial else []), *args]


def remote(cfg: AndroidConfig, name: str) -> str:
    return f"{cfg.remote_dir}/{name}"


def signatures(meta: dict) -> dict[str, dict]:
    """Signature name -> its entry (size, input names) from the artifact metadata."""
    sigs = meta.get("signatures") or {}
    if not sigs:
        raise UserError("the .tflite metadata lists no signatures; re-export it with python -m export.tflite")
    return sigs


def level_name(lv: float) -> str:
    return f"level_{lv:g}.raw"


def setup_commands(cfg: AndroidConfig, levels: list[float], has_level: bool, level_dir: str = "<tmp>"
                   ) -> list[list[str]]:
    """Push the model, the binary and the level files (written to `level_dir`); make the binary executable."""
    binary = str(cfg.benchmark_binary or "benchmark_model")
    cmds = [adb(cfg, "shell", "mkdir", "-p", cfg.remote_dir),
            adb(cfg, "push", str(cfg.tflite), remote(cfg, cfg.tflite.name)),
            adb(cfg, "push", binary, remote(cfg, "benchmark_model")),
            adb(cfg, "shell", "chmod", "+x", remote(cfg, "benchmark_model"))]
    if has_level:
        cmds += [adb(cfg, "push", f"{level_dir}/{level_name(lv)}", remote(cfg, level_name(lv))) for lv in levels]
    return cmds


def runner_inputs(sig_name: str, sig: dict) -> list[tuple[str, list[int], str]]:
    """(tensor name, shape, role) of a signature's subgraph inputs, in order, from the artifact metadata."""
    entries = sig.get("runner_inputs")
    if not entries:
        raise UserError(f"the .tflite metadata has no input order for signature {sig_name} (exported by an older "
                        "version); re-export it with python -m export.tflite")
    try:
        return [(str(e["tensor"]), [int(d) for d in e["shape"]], str(e["role"])) for e in entries]
    except (KeyError, TypeError, ValueError):
        raise UserError(f"the .tflite metadata's input order for signature {sig_name} is malformed; re-export it "
                        "with python -m export.tflite") from None


def run_commands(cfg: AndroidConfig, meta: dict, levels: list[float]) -> list[tuple[str, str, float, list[str]]]:
    """(delegate, signature, level, adb command) for every benchmark_model run."""
    out = []
    has_level = has_level_input(meta)
    for delegate in cfg.delegates:
        for sig_name, sig in signatures(meta).items():
            inputs = runner_inputs(sig_name, sig) if has_level else []
            level_tensor = next((name for name, _, role in inputs if role == "level"), None)
            if has_level and level_tensor is None:
                raise UserError(f"signature {sig_name} has no level input in its metadata; re-export the .tflite")
            for lv in levels:
                files = {level_tensor: remote(cfg, level_name(lv))} if has_level else None
                cmd = bm.benchmark_command(remote(cfg, "benchmark_model"), remote(cfg, cfg.tflite.name), delegate,
                                           cfg.threads, cfg.bench.eval.latency.runs, cfg.bench.eval.latency.warmup,
                                           signature=sig_name if len(signatures(meta)) > 1 else None,
                                           op_profiling=cfg.op_profiling,
                                           inputs=[(name, shape) for name, shape, _ in inputs], input_files=files)
                out.append((delegate, sig_name, lv, adb(cfg, "shell", shell_line(cmd))))
    return out


def run_android(cfg: AndroidConfig) -> dict | None:
    """Run (or print, with dry_run) the Android benchmark; returns the report document."""
    if cfg.tflite.suffix.lower() != ".tflite":
        raise UserError(f"--model expects the project's .tflite artifact, got {cfg.tflite.name}")
    for d in cfg.delegates:
        bm.delegate_flags(d)
    meta = read_artifact_meta(cfg.tflite)
    levels = artifact_levels(meta, cfg.bench.eval.levels)
    if cfg.bench.local:
        return run_local(cfg)
    has_level = has_level_input(meta)
    runs = run_commands(cfg, meta, levels)
    if cfg.bench.dry_run:
        cmds = setup_commands(cfg, levels, has_level) + [adb(cfg, "shell", "getprop", p) for p in PROPS]
        print_dry_run(f"android: {cfg.tflite.name}, delegates {' '.join(cfg.delegates)}",
                      [shell_line(c) for c in cmds] + [shell_line(c) for *_, c in runs]
                      + ["# accuracy: the same .tflite on this host with ai-edge-litert or tflite-runtime (XNNPACK)"])
        return None
    backend = host_litert()  # before the phone runs: they may take long, and accuracy needs it afterwards
    find_tool("adb", ADB_INSTALL)
    if cfg.benchmark_binary is None or not cfg.benchmark_binary.is_file():
        raise UserError(f"benchmark_model binary not found ({cfg.benchmark_binary}): {BINARY_HINT}")
    _check_device(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        for lv in levels if has_level else []:
            np.array([lv], np.float32).tofile(Path(tmp) / level_name(lv))
        for cmd in setup_commands(cfg, levels, has_level, tmp):
            run_tool(cmd, timeout=300)
    device = {"target": "android", "mode": "device", "android": _props(cfg)}
    prof = find_profile("android", cfg.profile) or detect_profile("android", " ".join(device["android"].values()))
    device["profile"] = prof.to_dict() if prof else None
    records = [_delegate_record(cfg, meta, levels, d, [r for r in runs if r[0] == d]) for d in cfg.delegates]
    image_dir, images = load_bench_images(cfg.bench)
    records.append(_host_accuracy(cfg, images, f"host: {backend} (accuracy of the same .tflite)"))
    device["runtime"] = f"device: benchmark_model ({', '.join(cfg.delegates)})"
    device["accuracy_runtime"] = f"host: {backend} XNNPACK (benchmark_model returns no outputs)"
    doc = device_doc(records, device, cfg.bench, image_dir, len(images))
    write_device_reports(doc, cfg.bench)
    return doc


def _check_device(cfg: AndroidConfig) -> None:
    state = run_tool(adb(cfg, "get-state"), timeout=30, check=False).strip().splitlines()
    if not state or state[-1].strip() != "device":
        raise UserError(f"no Android device ready over adb ({state[-1] if state else 'no answer'}): connect the "
                        "phone by USB, enable USB debugging and accept the prompt (adb devices lists it)")


def _props(cfg: AndroidConfig) -> dict:
    return {p: run_tool(adb(cfg, "shell", "getprop", p), timeout=30, check=False).strip() for p in PROPS}


def _delegate_record(cfg: AndroidConfig, meta: dict, levels: list[float], delegate: str, runs: list) -> dict:
    """One delegate's benchmark_model runs as a result record (latency only)."""
    rows, init, peak, logs = [], [], [], []
    sigs = signatures(meta)
    for _, sig_name, lv, cmd in runs:
        text = run_tool(cmd, timeout=1800)
        parsed = bm.parse_benchmark_model(text)
        stats = bm.latency_stats(parsed, cfg.bench.eval.latency.warmup)
        rows.append(tool_latency_row(sigs[sig_name]["size"], lv, stats, "benchmark_model Inference (avg) on the phone"))
        init.append(parsed["init_us"] / 1e3)
        peak.append(parsed.get("peak_memory_mb"))
        logs.append({"signature": sig_name, "level": lv, **{k: v for k, v in parsed.items() if k != "runs"}})
    peaks = [p for p in peak if p is not None]
    return tool_record(cfg.tflite, meta, f"benchmark_model-{delegate}", f"device: benchmark_model {delegate}", levels,
                       rows, threads=cfg.threads, init_ms=float(np.mean(init)) if init else None,
                       peak_memory_mb=max(peaks) if peaks else None,
                       memory_method="benchmark_model peak footprint (periodic monitoring)", tool_output=logs)


def host_litert() -> str:
    """The package that runs .tflite on this host: ai-edge-litert, else tflite-runtime (or the install hint)."""
    from runtimes.runners.tflite import load_interpreter_module

    return {"litert": "ai-edge-litert"}.get(load_interpreter_module("auto")[1], "tflite-runtime")


def _host_accuracy(cfg: AndroidConfig, images, runtime: str) -> dict:
    from runtimes.runners.tflite import TFLiteRunner

    return bench_runner(TFLiteRunner(cfg.tflite, threads=cfg.threads, xnnpack=True), cfg.tflite, images,
                        cfg.bench.eval, runtime=runtime)


def run_local(cfg: AndroidConfig) -> dict | None:
    """The on-host part with ai-edge-litert (or tflite-runtime) standing in for the phone (cpu and xnnpack;
    gpu/nnapi skipped)."""
    local = [d for d in cfg.delegates if d in ("cpu", "xnnpack")]
    skipped = [d for d in cfg.delegates if d not in local]
    if cfg.bench.dry_run:
        print_dry_run("android --local: ai-edge-litert (or tflite-runtime) stands in for the phone; no adb commands",
                      [f"# runtimes: TFLiteRunner({cfg.tflite}, xnnpack={d == 'xnnpack'}) accuracy + latency"
                       for d in local])
        return None
    if not local:
        raise UserError("--local runs the cpu and xnnpack delegates only (gpu and nnapi need the phone)")
    from runtimes.runners.tflite import TFLiteRunner

    backend = host_litert()
    image_dir, images = load_bench_images(cfg.bench)
    runtime = f"stand-in: {backend}"
    records = [bench_runner(TFLiteRunner(cfg.tflite, threads=cfg.threads, xnnpack=d == "xnnpack"), cfg.tflite, images,
                            cfg.bench.eval, runtime=runtime, delegate=d) for d in local]
    prof = find_profile("android", cfg.profile)
    device = {"target": "android", "mode": "local", "runtime": runtime, "profile": prof.to_dict() if prof else None,
              "note": f"run on this host with {backend} standing in for the phone"
                      + (f"; skipped delegates (need the phone): {', '.join(skipped)}" if skipped else "")}
    if skipped:
        print(f"--local: skipped {', '.join(skipped)} (needs the phone)", file=sys.stderr)
    doc = device_doc(records, device, cfg.bench, image_dir, len(images))
    write_device_reports(doc, cfg.bench)
    return doc
