"""tegrastats: parse its lines and summarise power, temperature, load and RAM over a run.

A tegrastats line (Orin, JetPack 6) looks like:
`RAM 2448/7620MB (lfb 2x4MB) SWAP 0/3810MB (cached 0MB) CPU [2%@729,1%@729,off,off] EMC_FREQ 0%@2133
GR3D_FREQ 45%@[624] cpu@47.2C gpu@45.5C tj@48C VDD_IN 4825mW/4825mW VDD_CPU_GPU_CV 1012mW/1012mW`
Power rails read `NAME instant/average` in mW (older JetPacks print `POM_5V_IN 4825/4825` without units).

Usage:
    samples = [parse_line(line) for line in text.splitlines() if line.strip()]
    summary = summarize(samples)     # {"power_mw": {"VDD_IN": {"mean", "max"}}, "temperature_c": ...}
"""

from __future__ import annotations

import re

import numpy as np

_RAM = re.compile(r"\bRAM (\d+)/(\d+)MB")
_SWAP = re.compile(r"\bSWAP (\d+)/(\d+)MB")
_CPU = re.compile(r"\bCPU \[([^\]]*)\]")
_GR3D = re.compile(r"\bGR3D_FREQ (\d+)%(?:@\[?(\d+)[^\s]*)?")
_EMC = re.compile(r"\bEMC_FREQ (\d+)%(?:@(\d+))?")
_TEMP = re.compile(r"\b([A-Za-z][\w-]*)@(-?\d+(?:\.\d+)?)C\b")
_RAIL = re.compile(r"\b([A-Z][A-Z0-9_]+) (\d+)(mW)?/(\d+)(mW)?(?=\s|$)")
TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")  # the module's input power where the board reports it


def parse_line(line: str) -> dict:
    """One tegrastats line as numbers: ram_mb, ram_total_mb, cpu_load (list, % per online core), cpu_mhz,
    gpu_load, gpu_mhz, emc_load, temperature_c {sensor: C}, power_mw {rail: instant mW}."""
    out: dict = {"temperature_c": {}, "power_mw": {}}
    if (m := _RAM.search(line)) is not None:
        out["ram_mb"], out["ram_total_mb"] = int(m.group(1)), int(m.group(2))
    if (m := _SWAP.search(line)) is not None:
        out["swap_mb"] = int(m.group(1))
    if (m := _CPU.search(line)) is not None:
        cores = [c for c in m.group(1).split(",") if "%" in c]
        out["cpu_load"] = [float(c.split("%")[0]) for c in cores]
        out["cpu_mhz"] = [float(c.split("@")[1]) for c in cores if "@" in c and c.split("@")[1].isdigit()]
    if (m := _GR3D.search(line)) is not None:
        out["gpu_load"] = float(m.group(1))
        out["gpu_mhz"] = float(m.group(2)) if m.group(2) else None
    if (m := _EMC.search(line)) is not None:
        out["emc_load"] = float(m.group(1))
    for name, value in _TEMP.findall(line):
        if float(value) > -200:  # -256C marks an absent sensor
            out["temperature_c"][name] = float(value)
    for name, inst, unit, _avg, unit2 in _RAIL.findall(line):
        if unit or unit2 or name.startswith(("VDD_", "POM_")):
            out["power_mw"][name] = float(inst)
    return out


def _stats(values: list[float]) -> dict:
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "max": float(arr.max())}


def summarize(samples: list[dict], interval_ms: int | None = None) -> dict:
    """Mean and max over the samples of every rail, sensor and load; `total_power_mw` = the input rail (VDD_IN)
    where present, else the sum of the rails."""
    samples = [s for s in samples if s.get("power_mw") or s.get("temperature_c") or "ram_mb" in s]
    if not samples:
        return {"n_samples": 0}
    out: dict = {"n_samples": len(samples), "interval_ms": interval_ms, "power_mw": {}, "temperature_c": {}}
    for group in ("power_mw", "temperature_c"):
        names = dict.fromkeys(k for s in samples for k in s[group])
        for name in names:
            out[group][name] = _stats([s[group][name] for s in samples if name in s[group]])
    totals = [_total(s["power_mw"]) for s in samples if s["power_mw"]]
    out["total_power_mw"] = _stats(totals) if totals else None
    for key in ("gpu_load", "emc_load", "ram_mb"):
        vals = [s[key] for s in samples if s.get(key) is not None]
        out[key] = _stats(vals) if vals else None
    cpu = [float(np.mean(s["cpu_load"])) for s in samples if s.get("cpu_load")]
    out["cpu_load"] = _stats(cpu) if cpu else None
    return out


def _total(rails: dict) -> float:
    for name in TOTAL_RAILS:
        if name in rails:
            return rails[name]
    return float(sum(rails.values()))


def energy_per_frame_mj(summary: dict, latency_ms: float | None) -> float | None:
    """Approximate energy per frame: mean input power x latency (the samples span the whole run)."""
    total = summary.get("total_power_mw")
    if not total or not latency_ms:
        return None
    return total["mean"] * latency_ms / 1e3
