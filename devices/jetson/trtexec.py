"""trtexec: command lines (build an engine, time it per shape) and a parser of its performance summary.

trtexec prints, after `=== Performance summary ===`, lines such as
`[I] Throughput: 1173.2 qps` and
`[I] Latency: min = 0.83 ms, max = 1.9 ms, mean = 0.85 ms, median = 0.84 ms, percentile(90%) = 0.86 ms, ...`
(also for `GPU Compute Time`, `H2D Latency`, `D2H Latency`, `Enqueue Time`). "Latency" covers
H2D + GPU compute + D2H, like the project's TensorRT runner, so it is the one reported.

Usage:
    summary = parse_trtexec(text)
    row_stats = latency_stats(summary)           # keys of a bench latency entry
"""

from __future__ import annotations

import re
from pathlib import Path

from runtimes.errors import UserError

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
            out["version"] = m.group(1) or out.get("version") or _from_code(int(m.group(2)))
    return out


def _from_code(code: int) -> str:
    """trtexec's banner code (100300) as a version string (10.3.0)."""
    return f"{code // 10000}.{code // 100 % 100}.{code % 100}"


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
            f"--memPoolSize=workspace:{workspace_mib}M", f"--timingCacheFile={engine.with_suffix('.timing.cache')}"]


def bench_command(trtexec: str, engine: Path, shape, level_file: Path | None, runs: int, warmup_ms: int = 200
                  ) -> list[str]:
    """trtexec timing a built engine at one image shape (the level read from a raw float32 file)."""
    cmd = [trtexec, f"--loadEngine={engine}", f"--shapes=image:{_dims(shape)}", f"--warmUp={warmup_ms}",
           f"--iterations={runs}", "--duration=0", f"--avgRuns={runs}"]
    if level_file is not None:
        cmd.append(f"--loadInputs=level:{level_file}")
    return cmd
