"""LiteRT/TFLite `benchmark_model`: its command line and a parser of its output.

benchmark_model prints one `count=... first=... curr=... min=... max=... avg=... std=...` line (in us) for
the warm-up phase and one for the timed runs, then
`Inference timings in us: Init: X, First inference: Y, Warmup (avg): Z, Inference (avg): W`,
`Memory footprint delta from the start of the tool (MB): init=A overall=B` and
`Overall peak memory footprint (MB) via periodic monitoring: C`.

Usage:
    cmd = benchmark_command("/data/local/tmp/levelres/benchmark_model", "/data/local/tmp/levelres/dn.tflite",
                            "xnnpack", threads=4, runs=50, warmup=5, signature="s720x1280",
                            inputs=[("s720x1280_image", [1, 3, 720, 1280]), ("s720x1280_level", [1])],
                            input_files={"s720x1280_level": "/data/local/tmp/levelres/level_25.raw"})
    parsed = parse_benchmark_model(text)         # {"init_us", "inference_avg_us", "runs": {...}, ...}
"""

from __future__ import annotations

import re

from runtimes.core.errors import UserError

DELEGATES = ("cpu", "xnnpack", "gpu", "nnapi")
_TIMINGS = re.compile(r"Inference timings in us:\s*Init:\s*([\d.]+),\s*First inference:\s*([\d.]+),\s*"
                      r"Warmup \(avg\):\s*([\d.eE+-]+|nan|-nan),\s*Inference \(avg\):\s*([\d.eE+-]+)")
_COUNT = re.compile(r"count=(\d+)((?:\s+[a-z0-9_]+=-?[\d.eE+]+)+)")
_DELTA = re.compile(r"Memory footprint delta from the start of the tool \(MB\):\s*init=([\d.]+)\s+overall=([\d.]+)")
_PEAK = re.compile(r"Overall peak memory footprint \(MB\) via periodic monitoring:\s*([\d.]+)")
_SIZE = re.compile(r"The input model file size \(MB\):\s*([\d.]+)")
_FAIL = re.compile(r"(Benchmarking failed|Failed to|ERROR:|error:)")


def delegate_flags(delegate: str) -> list[str]:
    """Flags selecting one delegate: cpu = builtin kernels (XNNPACK off), xnnpack, gpu, nnapi."""
    flags = {"cpu": ["--use_xnnpack=false"], "xnnpack": ["--use_xnnpack=true"],
             "gpu": ["--use_gpu=true"], "nnapi": ["--use_nnapi=true"]}
    if delegate not in flags:
        raise UserError(f"unknown delegate {delegate!r}; choose from {', '.join(DELEGATES)}")
    return flags[delegate]


def benchmark_command(binary: str, graph: str, delegate: str, threads: int, runs: int, warmup: int,
                      signature: str | None = None, op_profiling: bool = False,
                      inputs: list[tuple[str, list[int]]] | None = None,
                      input_files: dict[str, str] | None = None) -> list[str]:
    """The benchmark_model command for one delegate (and one signature of a multi-signature model).

    `inputs`: every input of the subgraph it runs, in the subgraph's order, as (tensor name, shape).
    benchmark_model matches `--input_layer_value_files` names against `--input_layer` only, and feeds
    those lists to the subgraph's inputs by position, so a value file needs the whole ordered list.
    `input_files`: tensor name -> file of raw values (the others get random data).
    """
    cmd = [binary, f"--graph={graph}", f"--num_threads={threads}", *delegate_flags(delegate),
           f"--num_runs={runs}", f"--warmup_runs={warmup}"]
    if signature:
        cmd.append(f"--signature_to_run_for={signature}")
    if input_files:
        names = [name for name, _ in inputs or []]
        if any(n not in names for n in input_files):
            raise UserError(f"value files for {sorted(input_files)} but the inputs are {names}; re-export the .tflite")
        if any("," in n for n in names):
            raise UserError(f"benchmark_model cannot name inputs containing ',': {names}")
        cmd.append("--input_layer=" + ",".join(names))
        cmd.append("--input_layer_shape=" + ":".join(",".join(str(int(d)) for d in shape) for _, shape in inputs))
        esc = lambda text: text.replace(":", "::")  # noqa: E731 - benchmark_model's escape for ':' in a pair
        cmd.append("--input_layer_value_files=" + ",".join(f"{esc(n)}:{esc(f)}" for n, f in input_files.items()))
    if op_profiling:
        cmd.append("--enable_op_profiling=true")
    return cmd


def _count_line(fields: str) -> dict:
    return {k: float(v) for k, v in (f.split("=") for f in fields.split())}


def parse_benchmark_model(text: str) -> dict:
    """The timings (us) and memory (MB) benchmark_model printed.

    Returns:
        {"init_us", "first_us", "warmup_avg_us", "inference_avg_us", "runs": {count, min, max, avg, std, ...},
        "warmup": {...}, "memory_init_mb", "memory_overall_mb", "peak_memory_mb", "model_mb"}; a clear error
        when the summary line is missing (the tool failed).
    """
    m = _TIMINGS.search(text)
    if m is None:
        fails = [line.strip() for line in text.splitlines() if _FAIL.search(line)]
        why = fails[-1] if fails else "no 'Inference timings in us' line in its output"
        raise UserError(f"benchmark_model did not finish: {why}")
    warm = m.group(3)
    out = {"init_us": float(m.group(1)), "first_us": float(m.group(2)),
           "warmup_avg_us": None if "nan" in warm else float(warm), "inference_avg_us": float(m.group(4))}
    counts = [{"count": int(c), **_count_line(f)} for c, f in _COUNT.findall(text)]
    out["runs"] = counts[-1] if counts else None
    out["warmup"] = counts[-2] if len(counts) >= 2 else None
    if (d := _DELTA.search(text)) is not None:
        out["memory_init_mb"], out["memory_overall_mb"] = float(d.group(1)), float(d.group(2))
    if (p := _PEAK.search(text)) is not None:
        out["peak_memory_mb"] = float(p.group(1))
    if (s := _SIZE.search(text)) is not None:
        out["model_mb"] = float(s.group(1))
    return out


def latency_stats(parsed: dict, warmup: int) -> dict:
    """The timed runs as the keys of a bench latency entry (ms; benchmark_model gives no percentiles)."""
    runs = parsed.get("runs") or {}
    ms = lambda key: runs[key] / 1e3 if key in runs else None  # noqa: E731
    return {"n": runs.get("count"), "warmup": warmup, "mean_ms": parsed["inference_avg_us"] / 1e3,
            "std_ms": ms("std"), "min_ms": ms("min"), "max_ms": ms("max"), "p50_ms": ms("median"),
            "first_ms": parsed["first_us"] / 1e3}
