"""The metadata every artifact and checkpoint carries, read without torch: `<artifact>.meta.json` and the
`levelres` block in a `.safetensors` header.

Every reader checks the level map and architecture (`runtimes.core.metacheck`) once, at load, so the layers
above never meet a malformed one.

Usage:
    meta = read_artifact_meta("dn.onnx")
    meta = checkpoint_meta(resolve_checkpoint("denoise-mobile"))
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from runtimes.core.errors import UserError
from runtimes.core.formats import meta_path
from runtimes.core.metacheck import check_arch, check_level_map


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
