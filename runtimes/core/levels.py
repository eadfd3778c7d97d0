"""Level units: the user's unit (sigma, JPEG quality, SR scale) and the strength the network sees.

strength = a * level + b, where 0 means "no degradation" and the largest training level maps to 1:
    denoise  sigma on 0-255        strength = sigma / max(train sigma)
    dejpeg   JPEG quality 1-100    strength = (100 - q) / (100 - min(train q))
    sr       scale >= 1            strength = (s - 1) / (max(train s) - 1)
Levels past the largest training level are run at strength 1 (`max_strength`): a level-scaled network
extrapolates badly (measured in docs/results.md: `denoise-fast` on σ 90 images, 14.4 dB run at σ 90 vs
20.9 dB at σ 75), so the map saturates unless a caller asks for extrapolation (`extrapolating()`).
A calibrated map (`train.calibrate`) passes that linear value through a monotone piecewise-linear curve
fitted on validation images (`knots`: (linear value, strength) pairs, the largest training level among
them; the first segment runs through 0, so level 0 stays the identity). A knot may lie past the largest
training level (e.g. σ 90 on a σ 15–75 model); the saturation then moves to it (`max_strength` > 1),
so the levels between run at their own fitted strengths. The map travels in every checkpoint and artifact
(`LevelMap.to_dict`). Torch-free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from runtimes.core.errors import UserError, number_text, strict_float

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
    knots: tuple[tuple[float, float], ...] = ()  # calibration: (linear value, strength), increasing in both

    def linear(self, level: float) -> float:
        """a * level + b: the uncalibrated, unsaturated strength (0 = no degradation, 1 = the largest level)."""
        return self.a * float(level) + self.b

    def strength(self, level: float) -> float:
        """Strength for a level in the user's unit (0 = no degradation), saturated at `max_strength`."""
        return self.strength_of(float(level), _clip)

    def strength_of(self, level, clip):
        """The strength formula over any number type: `clip(x, lo, hi)` bounds x (either bound None). With floats
        it is `strength`; the network runs it on tensors (`torch.clamp`), so every exported graph computes the
        same curve from constants and clamps."""
        u = level * self.a + self.b
        if self.max_strength is not None:  # levels past the largest training level act as it
            u = clip(u, None, self.max_strength)
        return self._curve(u, clip)

    def segments(self) -> list[tuple[float, float, float | None]]:
        """The calibration curve as (slope, start, width) terms: strength = sum(slope * clamp(u - start, 0, width))
        with the first term unclamped below and the last unbounded above (width None)."""
        out, prev_u, prev_s = [], 0.0, 0.0
        for i, (u, s) in enumerate(self.knots):
            last = i == len(self.knots) - 1
            out.append(((s - prev_s) / (u - prev_u), prev_u, None if last else u - prev_u))
            prev_u, prev_s = u, s
        return out

    def curve(self, u: float) -> float:
        """The calibration curve at linear value u (the identity when uncalibrated)."""
        return self._curve(float(u), _clip)

    def _curve(self, u, clip):
        if not self.knots:
            return u
        total = None
        for i, (slope, start, width) in enumerate(self.segments()):
            d = u - start
            d = d if i == 0 else clip(d, 0.0, None)
            d = d if width is None else clip(d, None, width)
            total = d * slope if total is None else total + d * slope
        return total

    def calibrated(self, knots: tuple[tuple[float, float], ...]) -> LevelMap:
        """This map with a calibration curve through (0, 0) and `knots` ((linear value, strength) pairs)."""
        knots = tuple((float(u), float(s)) for u, s in knots)
        us, ss = [0.0] + [u for u, _ in knots], [0.0] + [s for _, s in knots]
        rising = all(b > a for v in (us, ss) for a, b in zip(v[:-1], v[1:]))
        if not knots or not rising:
            raise UserError(f"calibration knots must increase from (0, 0) in both values, got {list(knots)}")
        if not all(math.isfinite(v) for v in us + ss):
            raise UserError("calibration knots must be finite")
        cap = self.max_strength
        if cap is not None and knots[-1][0] > cap + 1e-9:  # a knot past the saturation moves it there
            cap = knots[-1][0]
        return replace(self, knots=knots, max_strength=cap)

    def with_offset(self, offset: float) -> LevelMap:
        """The map with a strength offset: 0 at the neutral level, then `offset + (1 - offset) * linear` from one
        unit away from it (a steep ramp over that first unit keeps level 0 exact), 1 at the largest training level.
        Expressed as a two-knot curve, so every exporter evaluates it as it does a calibrated map."""
        if not 0.0 < offset < 1.0:
            raise UserError(f"a strength offset must be in (0, 1), got {offset:g}")
        u1 = abs(self.a)  # the linear value one unit from the neutral level
        if u1 >= 1.0:
            raise UserError("a strength offset needs training levels more than one unit from the neutral level "
                            f"(the largest is {self.level(1.0):g} {self.unit})")
        return self.calibrated(((u1, offset + (1.0 - offset) * u1), (1.0, 1.0)))

    def uncalibrated(self) -> LevelMap:
        """The plain linear map (saturated at the largest training level again, where a knot past it had moved
        the saturation)."""
        return replace(self, knots=(), max_strength=None if self.max_strength is None else 1.0)

    def extrapolating(self) -> LevelMap:
        """The same map without the saturation: levels past the training range scale the weights further."""
        return replace(self, max_strength=None)

    def level(self, strength: float) -> float:
        """Inverse of `strength` (below the saturation)."""
        s, u = float(strength), float(strength)
        if self.knots:
            prev_u = prev_s = 0.0
            for ku, ks in self.knots:  # the segment holding s (the last one past the top knot)
                slope, start_u, start_s = (ks - prev_s) / (ku - prev_u), prev_u, prev_s
                if s <= ks:
                    break
                prev_u, prev_s = ku, ks
            u = start_u + (s - start_s) / slope
        return (u - self.b) / self.a

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
        if not isinstance(level, (int, float)) or math.isnan(level) or math.isinf(level):
            raise UserError(f"level must be a finite number in {self.unit} units, got {level!r}")
        if not self.lo <= level <= self.hi:
            raise UserError(f"{self.unit} level {number_text(level)} is outside [{self.lo:g}, {self.hi:g}] "
                            f"for task {self.task}")
        return float(level)

    @property
    def _top(self) -> float:
        """The linear value where the map saturates: 1 (the largest training level), or the top calibration knot
        when one lies past it; 1 too for an extrapolating map."""
        return 1.0 if self.max_strength is None else max(1.0, self.max_strength)

    @property
    def saturation_level(self) -> float:
        """The level past which every level runs at the same strength (see `_top`)."""
        return (self._top - self.b) / self.a

    def outside_trained(self, level: float) -> bool:
        """True when the level lies beyond the neutral..saturation span (saturated or extrapolated)."""
        s = self.linear(level)
        return s > self._top + 1e-9 or s < -1e-9

    def to_dict(self) -> dict:
        formula = (f"strength = {self.a:.10g} * {self.unit} + {self.b:.10g}"
                   + ("" if self.max_strength is None else f", at most {self.max_strength:g}"))
        d = {"task": self.task, "unit": self.unit, "a": self.a, "b": self.b, "lo": self.lo, "hi": self.hi,
             "train_levels": list(self.train_levels), "max_strength": self.max_strength, "formula": formula}
        if self.knots:
            d["knots"] = [list(k) for k in self.knots]
            d["formula"] = (f"u = {self.a:.10g} * {self.unit} + {self.b:.10g}"
                            + ("" if self.max_strength is None else f", at most {self.max_strength:g}")
                            + "; strength = piecewise-linear in u through (0, 0), "
                            + ", ".join(f"({u:.4g}, {s:.4g})" for u, s in self.knots))
        return d

    @classmethod
    def from_dict(cls, d: dict) -> LevelMap:
        cap = d.get("max_strength", 1.0)  # maps written before the field saturate too
        m = cls(d["task"], d["unit"], float(d["a"]), float(d["b"]), float(d["lo"]), float(d["hi"]),
                tuple(float(x) for x in d.get("train_levels", ())), None if cap is None else float(cap))
        m.validate()
        return m.calibrated(tuple(tuple(k) for k in d["knots"])).validate() if d.get("knots") else m

    def validate(self) -> LevelMap:
        """This map, or a `UserError` when it is not a usable strength curve (`runtimes.core.metacheck`)."""
        from runtimes.core.metacheck import check_level_map

        check_level_map(self.to_dict(), "level map")
        return self


def _clip(x: float, lo: float | None, hi: float | None) -> float:
    x = x if lo is None else max(x, lo)
    return x if hi is None else min(x, hi)


def parse_level(text: str) -> float:
    """argparse type for every command's levels: a finite, non-negative number in the model's unit.

    The one parser of level text (every task's unit starts at 0 or above); the model's own range is checked
    where its level map is known (`LevelMap.check`).
    """
    try:
        value = strict_float(text)
    except ValueError:
        raise UserError(f"level {text!r} is not a number; give levels in the model's unit, e.g. 0 15 25 50"
                        ) from None
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
