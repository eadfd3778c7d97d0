"""Jetson system readings: model, power mode (nvpmodel -q), clocks (jetson_clocks --show, else sysfs) and a
background tegrastats sampler.

Usage:
    info = {"model": board_model(), "power_mode": power_mode(), "clocks": clocks()}
    with Tegrastats(interval_ms=100) as ts:
        ...                                      # the benchmark
    summary = ts.summary()
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from devices.jetson.tegrastats import parse_line, summarize

NVPMODEL_CMD = ["nvpmodel", "-q"]
CLOCKS_CMD = ["jetson_clocks", "--show"]
MODEL_FILE = Path("/proc/device-tree/model")


def tegrastats_command(interval_ms: int) -> list[str]:
    return ["tegrastats", "--interval", str(interval_ms)]


def board_model() -> str | None:
    """The board's model string from the device tree (e.g. 'NVIDIA Jetson Orin Nano Developer Kit')."""
    try:
        return MODEL_FILE.read_bytes().rstrip(b"\0").decode(errors="replace").strip() or None
    except OSError:
        return None


def _query(cmd: list[str]) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def parse_nvpmodel(text: str) -> dict:
    """`nvpmodel -q` output -> {"name": "15W", "id": 0}."""
    out = {}
    if (m := re.search(r"NV Power Mode:\s*(\S+)", text)) is not None:
        out["name"] = m.group(1)
    nums = [line.strip() for line in text.splitlines() if line.strip().isdigit()]
    if nums:
        out["id"] = int(nums[-1])
    return out


def power_mode() -> dict | None:
    """The current nvpmodel power mode, or None when nvpmodel is absent (not a Jetson)."""
    text = _query(NVPMODEL_CMD)
    return parse_nvpmodel(text) if text else None


def parse_clocks_show(text: str) -> dict:
    """`jetson_clocks --show` -> {"cpu": [{"cpu": 0, "online": true, "cur_mhz": ...}], "gpu": {...}, "emc": {...}}."""
    out: dict = {"cpu": []}
    for m in re.finditer(r"cpu(\d+):\s*Online=(\d)\s+Governor=(\S+)\s+MinFreq=(\d+)\s+MaxFreq=(\d+)\s+"
                         r"CurrentFreq=(\d+)", text):
        out["cpu"].append({"cpu": int(m.group(1)), "online": m.group(2) == "1", "governor": m.group(3),
                           "cur_mhz": int(m.group(6)) / 1e3, "max_mhz": int(m.group(5)) / 1e3})
    if (m := re.search(r"GPU\s+MinFreq=(\d+)\s+MaxFreq=(\d+)\s+CurrentFreq=(\d+)", text)) is not None:
        out["gpu"] = {"min_mhz": int(m.group(1)) / 1e6, "max_mhz": int(m.group(2)) / 1e6,
                      "cur_mhz": int(m.group(3)) / 1e6}
    if (m := re.search(r"EMC\s+MinFreq=(\d+)\s+MaxFreq=(\d+)\s+CurrentFreq=(\d+)", text)) is not None:
        out["emc"] = {"max_mhz": int(m.group(2)) / 1e6, "cur_mhz": int(m.group(3)) / 1e6}
    return out


def sysfs_clocks(root: Path = Path("/sys")) -> dict:
    """Clocks from sysfs (no root needed): CPU scaling frequencies and devfreq (GPU) frequencies, in MHz."""
    out: dict = {"cpu": [], "devfreq": {}, "source": "sysfs"}
    for cpu in sorted((root / "devices/system/cpu").glob("cpu[0-9]*/cpufreq"), key=lambda p: int(p.parent.name[3:])):
        cur, top = _read_int(cpu / "scaling_cur_freq"), _read_int(cpu / "scaling_max_freq")
        if cur is not None:
            out["cpu"].append({"cpu": int(cpu.parent.name[3:]), "cur_mhz": cur / 1e3,
                               "max_mhz": top / 1e3 if top else None})
    for dev in sorted((root / "class/devfreq").glob("*")):
        cur, top = _read_int(dev / "cur_freq"), _read_int(dev / "max_freq")
        if cur is not None:
            out["devfreq"][dev.name] = {"cur_mhz": cur / 1e6, "max_mhz": top / 1e6 if top else None}
    return out


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def clocks() -> dict:
    """`jetson_clocks --show` where it runs (it usually needs root), else sysfs."""
    text = _query(CLOCKS_CMD)
    if text and "cpu" in text:
        return {**parse_clocks_show(text), "source": "jetson_clocks --show"}
    return sysfs_clocks()


class Tegrastats:
    """tegrastats sampling in the background while a block runs (a no-op when tegrastats is absent)."""

    def __init__(self, interval_ms: int = 100):
        self.interval_ms = interval_ms
        self.available = shutil.which("tegrastats") is not None
        self._proc = self._log = None
        self.text = ""

    def __enter__(self) -> Tegrastats:
        if self.available:
            self._log = tempfile.TemporaryFile(mode="w+")
            self._proc = subprocess.Popen(tegrastats_command(self.interval_ms), stdout=self._log,
                                          stderr=subprocess.DEVNULL, text=True)
        return self

    def __exit__(self, *exc) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._log.seek(0)
        self.text = self._log.read()
        self._log.close()
        self._proc = None

    def summary(self) -> dict | None:
        """Power, temperature, load and RAM over the block; None when tegrastats was not available."""
        if not self.available:
            return None
        samples = [parse_line(line) for line in self.text.splitlines() if line.strip()]
        return summarize(samples, self.interval_ms)
