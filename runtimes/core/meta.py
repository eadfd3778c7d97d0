"""The metadata every artifact and checkpoint carries, read without torch: `<artifact>.meta.json` and the
`levelres` block in a `.safetensors` header.

Every reader checks the level map and architecture (`runtimes.core.metacheck`) once, at load, so the layers
above never meet a malformed one.

`ArtifactMeta` is the typed view the layers above read the level facts from (the level map, whether the model
takes a level, the levels to evaluate, the range check), instead of string keys.

Usage:
    meta = read_artifact_meta("dn.onnx")
    meta = checkpoint_meta(resolve_checkpoint("denoise-mobile"))
    levels = ArtifactMeta.from_dict(meta).levels(requested=(0, 25))
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from runtimes.core.errors import UserError, number_text
from runtimes.core.formats import meta_path
from runtimes.core.levels import LevelMap
from runtimes.core.metacheck import check_arch, check_level_map


@dataclass(frozen=True)
class ArtifactMeta:
    """The level facts of an artifact's (or checkpoint's) metadata, typed.

    Attributes:
        level_map: the model's map from the user's unit to its strength (range, unit, training levels).
        level_mode: folded, weights or fixed (artifacts); runtime (checkpoints).
        fixed_level: the baked level of a fixed-mode artifact.
    """

    level_map: LevelMap
    level_mode: str = "folded"
    fixed_level: float | None = None

    @classmethod
    def from_dict(cls, meta: dict) -> ArtifactMeta:
        """The typed view of a metadata dict (already checked by the reader that loaded it)."""
        fixed = meta.get("fixed_level")
        return cls(LevelMap.from_dict(meta["level_map"]), meta.get("level_mode") or "folded",
                   None if fixed is None else float(fixed))

    @property
    def takes_level(self) -> bool:
        """False for fixed-mode artifacts (the level is baked into the weights)."""
        return self.level_mode != "fixed"

    @property
    def neutral(self) -> float:
        """The level of strength 0 (sigma 0, quality 100, scale 1), from the map's own line."""
        return -self.level_map.b / self.level_map.a

    def check_level(self, value: float, what: str = "level") -> float:
        """`value`, or a `UserError` when it is outside the model's range or is not a fixed artifact's own level."""
        lm = self.level_map
        if not lm.lo <= value <= lm.hi:
            raise UserError(f"{what} {number_text(value)} is outside the model's {lm.unit} range "
                            f"[{lm.lo:g}, {lm.hi:g}] (task {lm.task})")
        if not self.takes_level and abs(value - self.fixed_level) > 1e-6:
            raise UserError(f"this artifact is fixed at {lm.unit} {self.fixed_level:g}; give that level")
        return float(value)

    def past_training(self, value: float) -> str | None:
        """A one-line warning when `value` lies past the largest training level (None within the trained range):
        the graph clamps the strength there, so the model restores such a level as it does that one."""
        lm = self.level_map
        if not self.takes_level:
            return None
        if lm.max_strength is not None:
            top = (lm.max_strength - lm.b) / lm.a
            if lm.linear(value) <= lm.max_strength + 1e-9:
                return None
            return (f"level {number_text(value)} is past the strongest training level ({lm.unit} {top:g}): "
                    f"the model saturates there and restores it as {lm.unit} {top:g}")
        if not lm.train_levels:
            return None
        top = max(lm.train_levels, key=lm.linear)
        if lm.linear(value) <= lm.linear(top) + 1e-9:
            return None
        return (f"level {number_text(value)} is past the strongest training level ({lm.unit} {top:g}): "
                "the model extrapolates there, untested")

    def levels(self, requested: tuple[float, ...] | None = None) -> list[float]:
        """Levels to evaluate: the requested ones (checked), or neutral + training levels; a fixed-mode artifact
        runs at its baked level only."""
        if not self.takes_level:
            return [self.fixed_level]
        levels = list(requested) if requested else [self.neutral, *self.level_map.train_levels]
        return list(dict.fromkeys(self.check_level(float(x)) for x in levels))


def read_artifact_meta(artifact: str | Path) -> dict:
    """Read `<artifact>.meta.json`; a clear error when it is missing or not the project's."""
    artifact = Path(artifact)
    if not artifact.exists():
        raise UserError(f"model file not found: {artifact}")
    mp = meta_path(artifact)
    if not mp.is_file():
        raise UserError(f"{artifact} has no {mp.name}; export it with this project's exporters (python -m export.*)")
    try:
        meta = json.loads(mp.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{mp} is not valid JSON ({exc}); re-export the model") from None
    if not isinstance(meta, dict) or "level_map" not in meta or "task" not in meta:
        raise UserError(f"{mp} lacks the project's metadata (task, level_map); re-export the model")
    check_level_map(meta["level_map"], str(mp))
    check_arch(meta.get("arch"), str(mp))
    return meta


def shipped_weights_dir() -> Path | None:
    """The folder of shipped weight sets (train/pretrained), found without importing the training code."""
    spec = importlib.util.find_spec("train")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "pretrained"


def shipped_names() -> list[str]:
    """The shipped weight-set names (for error messages)."""
    shipped = shipped_weights_dir()
    return sorted(p.stem for p in shipped.glob("*.safetensors")) if shipped and shipped.is_dir() else []


def resolve_checkpoint(name: str | Path) -> Path:
    """A checkpoint path, or the name of a shipped weight set (e.g. 'denoise-mobile'); the same lookup as
    `train.checkpoint.resolve_weights`, without torch."""
    path = Path(name)
    if path.is_file():
        return path
    shipped = shipped_weights_dir()
    if shipped is not None and (shipped / f"{name}.safetensors").is_file():
        return shipped / f"{name}.safetensors"
    if path.is_dir():
        raise UserError(f"{path} is a folder, not a checkpoint; give its .safetensors file "
                        f"(e.g. {path}/best.safetensors)")
    raise UserError(f"checkpoint not found: {name} (shipped weight sets: {', '.join(shipped_names()) or 'none'})")


def checkpoint_meta(path: Path) -> dict:
    """Runner-style metadata from a `.safetensors` checkpoint's header (no torch needed)."""
    try:
        with open(path, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            if not 0 < n <= min(path.stat().st_size - 8, 100 << 20):
                raise ValueError("bad header length")
            header = json.loads(fh.read(n))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is not a readable safetensors checkpoint ({exc}); re-train or re-download it"
                        ) from None
    try:
        meta = json.loads(header.get("__metadata__", {})["levelres"])
        meta["task"], meta["level_map"]["lo"]  # noqa: B018 - presence check
    except (KeyError, TypeError, ValueError, AttributeError):
        raise UserError(f"{path} has no levelres metadata (task, level_map); it was not written by this project's "
                        "trainer") from None
    check_level_map(meta["level_map"], str(path))
    check_arch(meta.get("arch"), str(path))
    return {"format": "torch", "task": meta["task"], "level_map": meta["level_map"], "arch": meta.get("arch"),
            "level_mode": "runtime", "layout": "NCHW", "sizes": None}
