"""trtexec: command lines (build an engine, time it per shape), its timing JSON, and its text summary as a fallback.

Timing runs pass `--exportTimes` (one JSON record per inference: h2dMs, computeMs, d2hMs, latencyMs, ...,
warm-up inferences included; trtexec counts an inference as warm-up when its startComputeMs is below
--warmUp) and `--exportProfile` with `--separateProfileRun` (per-layer averageMs/percentage from a separate
run, so profiling does not slow the timed one); `parse_export_times` and `parse_export_profile` read them.
Where the JSON is absent (an older trtexec, a failed write), the text summary is parsed instead:
trtexec prints, after `=== Performance summary ===`, lines such as
`[I] Throughput: 1173.2 qps` and
`[I] Latency: min = 0.83 ms, max = 1.9 ms, mean = 0.85 ms, median = 0.84 ms, percentile(90%) = 0.86 ms, ...`
(also for `GPU Compute Time`, `H2D Latency`, `D2H Latency`, `Enqueue Time`). "Latency" covers
H2D + GPU compute + D2H, like the project's TensorRT runner, so it is the one reported.

Usage:
    stats = parse_export_times(Path("t.times.json"), warmup_ms=200)   # None when the JSON is absent
    stats = stats or latency_stats(parse_trtexec(text))                # keys of a bench latency entry
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from runtimes.core.errors import UserError
from runtimes.runners.trt_targets import version_from_code

_METRIC = re.compile(r"\]?\s*(Latency|GPU Compute Time|H2D Latency|D2H Latency|Enqueue Time|Host Latency):\s*"
                     r"(min = .*)$")
_PAIR = re.compile(r"(min|max|mean|median|percentile\(([\d.]+)%\))\s*=\s*([\d.eE+-]+)\s*ms")
_THROUGHPUT = re.compile(r"Throughput:\s*([\d.eE+-]+)\s*qps")
_BUILD = re.compile(r"Engine built in\s*([\d.]+)\s*sec")
_VERSION = re.compile(r"TensorRT version:\s*([\d.]+)|\[TensorRT v(\d+)\]")
_SHAPES = ("min", "opt", "max")


def _key(name: str) -> str:
    return name.lower().replace(" ", "_")


def parse_trtexec(text: str) -> dict:
    """The performance summary of one trtexec run.

    Returns:
        {"throughput_qps", "build_s", "version", "passed", and per metric ("latency", "gpu_compute_time",
        "h2d_latency", ...) a dict of min/max/mean/median/p90/p95/p99 in ms}; absent values are missing.
    """
    out: dict = {"passed": None}
    for line in text.splitlines():
        if "&&&& PASSED" in line:
            out["passed"] = True
        elif "&&&& FAILED" in line:
            out["passed"] = False
        m = _METRIC.search(line)
        if m:
            out[_key(m.group(1))] = {_stat_name(name, pct): float(value) for name, pct, value in _PAIR.findall(
                m.group(2))}
            continue
        if (m := _THROUGHPUT.search(line)) is not None:
            out["throughput_qps"] = float(m.group(1))
        elif (m := _BUILD.search(line)) is not None:
            out["build_s"] = float(m.group(1))
        elif (m := _VERSION.search(line)) is not None:
            out["version"] = m.group(1) or out.get("version") or version_from_code(int(m.group(2)))
    return out


def parse_export_times(path: Path, warmup_ms: float = 0.0) -> dict | None:
    """trtexec's --exportTimes JSON as the keys of a bench latency entry (warm-up records dropped as trtexec does);
    None when the file is absent, unreadable or holds no records (the caller then parses the text summary)."""
    try:
        records = json.loads(Path(path).read_text())
        kept = [r for r in records if float(r.get("startComputeMs", 0.0)) >= warmup_ms] or records
        lat = sorted(float(r["latencyMs"]) for r in kept)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    if not lat:
        return None
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]  # noqa: E731 - trtexec's nearest-rank percentile
    return {"mean_ms": sum(lat) / len(lat), "min_ms": lat[0], "p50_ms": pick(0.5), "p90_ms": pick(0.9),
            "p99_ms": pick(0.99), "max_ms": lat[-1], "n": len(lat)}


def parse_export_profile(path: Path, top: int = 5) -> list[dict] | None:
    """The `top` slowest layers of trtexec's --exportProfile JSON (name, average_ms, percent); None when absent."""
    try:
        rows = [r for r in json.loads(Path(path).read_text()) if "name" in r]
        layers = [{"name": str(r["name"]), "average_ms": float(r["averageMs"]), "percent": float(r["percentage"])}
                  for r in rows]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    return sorted(layers, key=lambda r: -r["average_ms"])[:top] or None


def _stat_name(name: str, pct: str) -> str:
    if name.startswith("percentile"):
        return f"p{float(pct):g}"
    return name


def latency_stats(summary: dict, metric: str = "latency") -> dict:
    """A trtexec metric as the keys of a bench latency entry (mean_ms, min_ms, p50_ms, p90_ms, p99_ms, max_ms)."""
    if metric not in summary:
        passed = summary.get("passed")
        why = "trtexec reported FAILED" if passed is False else "no performance summary in trtexec's output"
        raise UserError(f"cannot read trtexec latency: {why}; rerun with --verbose to see its log")
    m = summary[metric]
    names = {"mean": "mean_ms", "min": "min_ms", "median": "p50_ms", "p90": "p90_ms", "p99": "p99_ms", "max": "max_ms"}
    return {names[k]: v for k, v in m.items() if k in names}


def _dims(shape) -> str:
    return "x".join(str(int(d)) for d in shape)


def build_command(trtexec: str, onnx: Path, engine: Path, shapes, flags: tuple[str, ...],
                  workspace_mib: int = 2048) -> list[str]:
    """trtexec building `engine` from `onnx` with an optimization profile over the image input."""
    if len(shapes) != len(_SHAPES):
        raise ValueError(f"trtexec needs {len(_SHAPES)} shapes (min, opt, max), got {len(shapes)}")
    profile = [f"--{name}Shapes=image:{_dims(s)}" for name, s in zip(_SHAPES, shapes)]
    return [trtexec, f"--onnx={onnx}", f"--saveEngine={engine}", *profile, *flags,
            f"--memPoolSize=workspace:{workspace_mib}", f"--timingCacheFile={engine.with_suffix('.timing.cache')}"]


def bench_command(trtexec: str, engine: Path, shape, level_file: Path | None, runs: int, warmup_ms: int = 200,
                  reports: tuple[Path, Path] | None = None) -> list[str]:
    """trtexec timing a built engine at one image shape (the level read from a raw float32 file).

    Args:
        reports: (times JSON, profile JSON) to write with --exportTimes and --exportProfile, or None.
    """
    cmd = [trtexec, f"--loadEngine={engine}", f"--shapes=image:{_dims(shape)}", f"--warmUp={warmup_ms}",
           f"--iterations={runs}", "--duration=0", f"--avgRuns={runs}"]
    if level_file is not None:
        cmd.append(f"--loadInputs=level:{level_file}")
    if reports is not None:
        cmd += [f"--exportTimes={reports[0]}", f"--exportProfile={reports[1]}", "--separateProfileRun"]
    return cmd
