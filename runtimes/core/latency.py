"""Latency method shared by every benchmark: warm-up excluded, monotonic clock, labelled.

A measurement times a callable with `time.perf_counter`: `warmup` calls are made and discarded,
then the callable runs until at least `runs` samples AND `min_time_s` seconds were collected
(capped by `max_time_s`). Initialisation (opening a session or engine) and the first inference
are timed separately, never mixed into the steady-state samples. Every result says what was
timed: "compute" (the runner's `run` on prepared inputs, including any host/device copies the
runner does) or "end-to-end" (layout conversion, tiling and blending included).

Usage:
    stats = measure(lambda: runner.run(feeds), LatencyConfig(runs=20), timed="compute")
    print(stats.p50_ms, stats.p99_ms)
"""

from __future__ import annotations

import math
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from runtimes.core.errors import UserError

TIMED_LABELS = ("compute", "end-to-end")


@dataclass(frozen=True)
class LatencyConfig:
    """How many calls to make and for how long."""

    warmup: int = 3
    runs: int = 20
    min_time_s: float = 0.0
    max_time_s: float = 60.0

    def __post_init__(self):
        if self.warmup < 0 or self.runs < 1:
            raise UserError(f"need --warmup >= 0 and --runs >= 1, got warmup={self.warmup} runs={self.runs}")
        if not (0 <= self.min_time_s < math.inf and 0 < self.max_time_s < math.inf):  # nan fails both
            raise UserError(f"--min-time must be a finite number of seconds >= 0, got {self.min_time_s} "
                            f"(and the timing cap finite and > 0, got {self.max_time_s})")


@dataclass(frozen=True)
class LatencyStats:
    """Steady-state latency of one callable, in milliseconds."""

    timed: str
    n: int
    mean_ms: float
    std_ms: float
    min_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    warmup: int
    samples_ms: tuple[float, ...] = field(repr=False, default=())

    def to_dict(self, samples: bool = True) -> dict:
        d = asdict(self)
        d["samples_ms"] = list(self.samples_ms) if samples else None
        return d


def stats_from_samples(samples_s: list[float], timed: str, warmup: int) -> LatencyStats:
    """Summarise raw samples (seconds) into `LatencyStats` (linear-interpolated percentiles)."""
    if timed not in TIMED_LABELS:
        raise ValueError(f"timed must be one of {TIMED_LABELS}, got {timed!r}")
    if not samples_s:
        raise ValueError("no latency samples")
    ms = np.asarray(samples_s, dtype=np.float64) * 1e3
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return LatencyStats(timed, int(ms.size), float(ms.mean()), float(ms.std()), float(ms.min()), float(p50),
                        float(p90), float(p99), float(ms.max()), warmup, tuple(round(float(x), 4) for x in ms))


def measure(fn: Callable[[], object], cfg: LatencyConfig = LatencyConfig(), timed: str = "compute") -> LatencyStats:
    """Time `fn` after `cfg.warmup` discarded calls.

    Args:
        fn: the call to time (no arguments; results are discarded).
        cfg: run counts and time limits.
        timed: what the call covers, "compute" or "end-to-end".
    """
    for _ in range(cfg.warmup):
        fn()
    samples: list[float] = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
        enough = len(samples) >= cfg.runs and elapsed >= cfg.min_time_s
        if enough or (elapsed >= cfg.max_time_s and len(samples) >= 1):
            break
    return stats_from_samples(samples, timed, cfg.warmup)


def time_call(fn: Callable[[], object]) -> tuple[object, float]:
    """Run `fn` once; returns (its result, milliseconds). Used for init and first inference."""
    t0 = time.perf_counter()
    out = fn()
    return out, (time.perf_counter() - t0) * 1e3


class PeakMemory:
    """Peak resident memory growth over a block, in MiB.

    On Linux the kernel's high-water mark (VmHWM) is reset through `/proc/self/clear_refs` on entry,
    so the peak belongs to the block alone: `peak_mb` = VmHWM at exit - VmRSS at entry. Elsewhere
    (or when the reset is refused) it falls back to the growth of `resource.getrusage` ru_maxrss,
    which reads 0 when the block stays below an earlier peak of the process. `method` says which.
    """

    def __enter__(self) -> PeakMemory:
        self.method = "ru_maxrss delta"
        self.peak_mb: float | None = None
        self._rss0 = _proc_status_kb("VmRSS")
        if self._rss0 is not None and _reset_hwm():
            self.method = "VmHWM (reset via /proc/self/clear_refs) - VmRSS at start"
        self._maxrss0 = _maxrss_kb()
        return self

    def __exit__(self, *exc) -> None:
        if self.method.startswith("VmHWM"):
            hwm = _proc_status_kb("VmHWM")
            self.peak_mb = None if hwm is None else max(0.0, (hwm - self._rss0) / 1024)
        else:
            self.peak_mb = max(0.0, (_maxrss_kb() - self._maxrss0) / 1024)


def _maxrss_kb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 if sys.platform == "darwin" else float(rss)  # macOS reports bytes


def _proc_status_kb(key: str) -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else `platform`."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def library_versions(names: tuple[str, ...] = ("numpy", "onnxruntime", "ai_edge_litert", "tflite_runtime", "torch",
                                               "coremltools", "tensorrt")) -> dict[str, str]:
    """Versions of the runtime libraries that are installed (found without importing them)."""
    from importlib import metadata

    dists = {"ai_edge_litert": "ai-edge-litert", "tflite_runtime": "tflite-runtime"}
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(dists.get(name, name))
        except metadata.PackageNotFoundError:
            continue
    return out


def machine_info(threads: int | None = None) -> dict:
    """Machine facts for a benchmark's JSON: CPU, cores, OS, Python, library versions, threads asked for."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    return {
        "cpu": cpu_model(), "machine": platform.machine(), "logical_cores": os.cpu_count(), "usable_cores": usable,
        "os": platform.platform(), "python": platform.python_version(), "libraries": library_versions(),
        "threads": threads, "clock": "time.perf_counter",
    }
