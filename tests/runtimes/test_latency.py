"""The latency method: warm-up excluded, run counts and time limits, percentiles, memory and machine info."""

from __future__ import annotations

import time

import numpy as np
import pytest

from runtimes.core.errors import UserError
from runtimes.core.latency import LatencyConfig, PeakMemory, machine_info, measure, stats_from_samples, time_call


def test_warmup_excluded_and_run_count():
    calls = []

    def fn():
        calls.append(1)
        time.sleep(0.02 if len(calls) == 1 else 0.001)  # a slow first call must not reach the samples

    stats = measure(fn, LatencyConfig(warmup=2, runs=5), timed="compute")
    assert len(calls) == 7 and stats.n == 5 and stats.warmup == 2
    assert stats.max_ms < 15 and stats.timed == "compute"


def test_min_time_extends_runs():
    stats = measure(lambda: time.sleep(0.005), LatencyConfig(warmup=0, runs=1, min_time_s=0.05))
    assert stats.n >= 5


def test_percentiles():
    s = stats_from_samples([i / 1000 for i in range(1, 101)], "end-to-end", 0)
    assert s.p50_ms == pytest.approx(50.5) and s.p90_ms == pytest.approx(90.1) and s.p99_ms == pytest.approx(99.01)
    assert s.mean_ms == pytest.approx(50.5) and len(s.to_dict()["samples_ms"]) == 100
    with pytest.raises(ValueError):
        stats_from_samples([0.1], "wall", 0)


def test_config_validation():
    with pytest.raises(UserError):
        LatencyConfig(runs=0)


def test_time_call_and_peak_memory():
    with PeakMemory() as mem:
        out, ms = time_call(lambda: np.ones(32 * 1024 * 1024 // 8).sum())
    assert out == 32 * 1024 * 1024 // 8 and ms > 0
    assert mem.peak_mb is not None and mem.peak_mb >= 0 and mem.method


def test_machine_info():
    info = machine_info(threads=2)
    assert info["cpu"] and info["logical_cores"] >= 1 and info["threads"] == 2
    assert "numpy" in info["libraries"] and info["clock"] == "time.perf_counter"
