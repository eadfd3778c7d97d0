"""Target device profiles: runtime, precisions, and vendor-published peak figures (plain data).

Each target package holds its profiles in `devices/<target>/profiles.py` as `PROFILES`. Peak figures
are what the vendor publishes (datasheets, product pages), copied with their conditions; they are not
measured by this project and are not comparable across vendors (sparse vs dense, INT8 vs FP16).

Usage:
    prof = find_profile("jetson", "orin-nano-8gb")
    prof = detect_profile("jetson", "NVIDIA Jetson Orin Nano Developer Kit")
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field

from runtimes.core.errors import UserError

TARGETS = ("jetson", "android", "ios")


@dataclass(frozen=True)
class Profile:
    """One target device.

    Attributes:
        key: short id used on the command line (--profile).
        name: marketing name.
        runtime: the runtime the project runs on it.
        precisions: precisions worth benchmarking there.
        peak: vendor-published peak figures, e.g. {"ai_tops_int8_sparse": 67}.
        conditions: what the figures assume (power mode, sparsity, precision).
        match: lower-case substrings that identify the device in its model/SoC string.
        source: always "vendor-published" for `peak`.
    """

    key: str
    name: str
    runtime: str
    precisions: tuple[str, ...]
    peak: dict = field(default_factory=dict)
    conditions: str = ""
    match: tuple[str, ...] = ()
    source: str = "vendor-published"

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("match")
        return d


def profiles(target: str) -> tuple[Profile, ...]:
    """The profiles of one target."""
    if target not in TARGETS:
        raise UserError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    return importlib.import_module(f"devices.{target}.profiles").PROFILES


def find_profile(target: str, key: str | None) -> Profile | None:
    """A profile by key (None: none); a clear error listing the keys for an unknown one."""
    if key is None:
        return None
    for prof in profiles(target):
        if prof.key == key:
            return prof
    raise UserError(f"unknown {target} profile {key!r}; choose one of {', '.join(p.key for p in profiles(target))}")


def detect_profile(target: str, description: str | None) -> Profile | None:
    """The profile whose match strings occur in a device description (model name, SoC id), if any."""
    if not description:
        return None
    text = description.lower()
    best = None
    for prof in profiles(target):
        hits = [m for m in prof.match if m in text]
        if hits and (best is None or max(map(len, hits)) > best[0]):
            best = (max(map(len, hits)), prof)
    return best[1] if best else None
