"""Level units: the user's unit (sigma, JPEG quality, SR scale) and the strength the network sees.

strength = a * level + b, where 0 means "no degradation" and the largest training level maps to 1:
    denoise  sigma on 0-255        strength = sigma / max(train sigma)
    dejpeg   JPEG quality 1-100    strength = (100 - q) / (100 - min(train q))
    sr       scale >= 1            strength = (s - 1) / (max(train s) - 1)
Levels past the largest training level are run at strength 1 (`max_strength`): a level-scaled network
extrapolates badly (measured in docs/results.md: `denoise-fast` on σ 90 images, 14.4 dB run at σ 90 vs
20.9 dB at σ 75), so the map saturates unless a caller asks for extrapolation (`extrapolating()`).
The map travels in every checkpoint and artifact (`LevelMap.to_dict`). Torch-free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from runtimes.errors import UserError

UNITS = {"denoise": "sigma", "dejpeg": "quality", "sr": "scale"}
RANGES = {"denoise": (0.0, 255.0), "dejpeg": (1.0, 100.0), "sr": (1.0, 16.0)}
NEUTRAL = {"denoise": 0.0, "dejpeg": 100.0, "sr": 1.0}
DEFAULT_TRAIN_LEVELS = {"denoise": (15, 35, 55, 75), "dejpeg": (10, 30, 50, 80), "sr": (2, 3, 4, 5)}


@dataclass(frozen=True)
class LevelMap:
    """Affine map from the user's unit to the network's strength, with the valid range."""

    task: str
    unit: str
    a: float
    b: float
    lo: float
    hi: float
    train_levels: tuple[float, ...] = field(default_factory=tuple)
    max_strength: float | None = 1.0  # the largest training level; None extrapolates past it

    def strength(self, level: float) -> float:
        """Strength for a level in the user's unit (0 = no degradation), saturated at `max_strength`."""
        s = self.a * float(level) + self.b
        return s if self.max_strength is None else min(s, self.max_strength)

    def extrapolating(self) -> LevelMap:
        """The same map without the saturation: levels past the training range scale the weights further."""
        return replace(self, max_strength=None)

    def level(self, strength: float) -> float:
        """Inverse of `strength`."""
        return (float(strength) - self.b) / self.a

    @property
    def neutral(self) -> float:
        """The level meaning 'no degradation' (strength 0)."""
        return NEUTRAL[self.task]

    @property
    def trained_range(self) -> tuple[float, float]:
        """The smallest and largest training level."""
        return (min(self.train_levels), max(self.train_levels))

    def check(self, level: float) -> float:
        """Validate a level: an error outside the unit's range, a warning outside the trained range."""
        if not isinstance(level, int | float) or math.isnan(level) or math.isinf(level):
            raise UserError(f"level must be a finite number in {self.unit} units, got {level!r}")
        if not self.lo <= level <= self.hi:
            raise UserError(f"{self.unit} level {level:g} is outside [{self.lo:g}, {self.hi:g}] for task {self.task}")
        return float(level)

    def outside_trained(self, level: float) -> bool:
        """True when the level lies beyond the neutral..max-trained span (extrapolation)."""
        s = self.a * float(level) + self.b
        return s > 1.0 + 1e-9 or s < -1e-9

    def to_dict(self) -> dict:
        return {
            "task": self.task, "unit": self.unit, "a": self.a, "b": self.b, "lo": self.lo, "hi": self.hi,
            "train_levels": list(self.train_levels), "max_strength": self.max_strength,
            "formula": f"strength = {self.a:.10g} * {self.unit} + {self.b:.10g}"
                       + ("" if self.max_strength is None else f", at most {self.max_strength:g}"),
        }

    @classmethod
    def from_dict(cls, d: dict) -> LevelMap:
        cap = d.get("max_strength", 1.0)  # maps written before the field saturate too
        return cls(d["task"], d["unit"], float(d["a"]), float(d["b"]), float(d["lo"]), float(d["hi"]),
                   tuple(float(x) for x in d.get("train_levels", ())), None if cap is None else float(cap))


def parse_level(text: str) -> float:
    """argparse type: a finite, non-negative number."""
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"level {text!r} is not a number") from None
    if math.isnan(value) or math.isinf(value) or value < 0:
        raise UserError(f"level {text!r} must be a finite non-negative number")
    return value


def make_level_map(task: str, train_levels: tuple[float, ...] | list[float] | None = None) -> LevelMap:
    """The level map of a task for the given training levels (the task's defaults when None)."""
    if task not in UNITS:
        raise UserError(f"unknown task {task!r}; choose one of {', '.join(UNITS)}")
    levels = tuple(float(x) for x in (train_levels or DEFAULT_TRAIN_LEVELS[task]))
    lo, hi = RANGES[task]
    for lv in levels:
        if not lo <= lv <= hi:
            raise UserError(f"training level {lv:g} outside [{lo:g}, {hi:g}] for task {task}")
    neutral = NEUTRAL[task]
    span = max(abs(lv - neutral) for lv in levels)
    if span == 0:
        raise UserError("training levels must include at least one degraded level")
    sign = -1.0 if task == "dejpeg" else 1.0
    a = sign / span
    return LevelMap(task, UNITS[task], a, -a * neutral, lo, hi, levels)
