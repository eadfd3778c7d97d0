"""Checkpoints: safetensors weights with the project's metadata in the header, plus a JSON sidecar.

The safetensors header holds everything needed to rebuild the model (arch, level map, task), so a
`.safetensors` file alone is enough; `<name>.json` repeats the metadata for people and tools. Both
are written atomically. Training state (optimizer moments, step) goes in `<name>.state.safetensors`.
Nothing is pickled.

Usage:
    save_checkpoint("runs/dn/best.safetensors", model, meta)
    model, meta = load_checkpoint("runs/dn/best.safetensors")
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import torch

from runtimes.core.errors import UserError
from runtimes.core.images import atomic_write_bytes
from runtimes.core.levels import LevelMap
from runtimes.core.metacheck import check_arch
from train.lineage import run_summary
from train.model import LevelNet, ModelConfig, build_model

FORMAT = "levelres-checkpoint"
FORMAT_VERSION = 1
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"


def code_version() -> str:
    """The package version and, when run from a git checkout, the commit."""
    from importlib import metadata

    try:
        version = metadata.version("levelres")
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                                capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{version}+g{commit}" if commit else version


def model_meta(model: LevelNet, **extra) -> dict:
    """The metadata block for a model: format, arch, level map, plus `extra` fields."""
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "task": model.level_map.task,
            "arch": model.cfg.to_dict(), "level_map": model.level_map.to_dict(), **extra}


def _state_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}


def save_checkpoint(path: str | Path, model: LevelNet, meta: dict) -> Path:
    """Write weights + metadata atomically to `path` (.safetensors) and `path` with .json."""
    from safetensors.torch import save

    path = Path(path)
    meta = {**model_meta(model), **meta}
    blob = save(_state_tensors(_unwrap(model)), metadata={"levelres": json.dumps(meta)})
    atomic_write_bytes(path, blob)
    atomic_write_bytes(path.with_suffix(".json"), (json.dumps(meta, indent=2) + "\n").encode())
    return path


def read_meta(path: str | Path) -> dict:
    """The project metadata stored in a checkpoint's header; a clear error for foreign files."""
    from safetensors import safe_open

    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder, not a checkpoint; give its .safetensors file "
                        f"(e.g. {path}/best.safetensors)")
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
    except Exception as exc:  # safetensors raises several types for corrupt files
        raise UserError(f"{path} is not a readable safetensors checkpoint ({exc}); re-export or re-train it") from None
    if "levelres" not in header:
        raise UserError(f"{path} has no levelres metadata; it was not written by this project's trainer")
    try:
        meta = json.loads(header["levelres"])
    except json.JSONDecodeError:
        raise UserError(f"{path}: its levelres metadata is not valid JSON; re-export or re-train it") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("format_version", 0) > FORMAT_VERSION:
        raise UserError(f"{path}: unsupported checkpoint format {meta.get('format')} v{meta.get('format_version')}")
    return meta


MAX_LINEAGE = 64


def lineage(meta: dict, _depth: int = 0) -> list[dict]:
    """The earlier runs whose weights this checkpoint's training started from (`--init`), oldest first.

    A checkpoint written by a trainer that records it carries the list itself; for an older one the chain is
    followed through `train_config.init` while those files exist. A link that cannot be read ends the chain with
    an entry `{"run": <file>, "steps": None}`: training of unknown length came before it."""
    if isinstance(meta.get("lineage"), list):
        return [dict(x) for x in meta["lineage"]]
    init = (meta.get("train_config") or {}).get("init")
    if not init:
        return []
    unknown = [{"run": "/".join(Path(str(init)).parts[-2:]), "steps": None}]
    if _depth >= MAX_LINEAGE:
        return unknown
    try:
        parent = read_meta(init)
    except UserError:
        return unknown
    return [*lineage(parent, _depth + 1), run_summary(parent)]


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[LevelNet, dict]:
    """Rebuild the model from a checkpoint; returns (model in eval mode, metadata)."""
    from safetensors.torch import load_file

    path = resolve_weights(path)
    meta = read_meta(path)
    try:
        check_arch(meta["arch"], str(path))
        level_map = LevelMap.from_dict(meta["level_map"])
        model = build_model(ModelConfig.from_dict(meta["arch"]), level_map)
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{path}: its metadata does not describe a model ({type(exc).__name__}: {exc})") from None
    except UserError as exc:  # an unusable level map or architecture: name the file
        raise UserError(str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}") from None
    try:
        state = load_file(str(path), device="cpu")
        model.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise UserError(f"{path}: weights do not match the stored architecture ({first})") from None
    return model.to(device).eval(), meta


def resolve_weights(name: str | Path) -> Path:
    """A checkpoint path, or the name of a shipped weight set (e.g. 'denoise-mobile')."""
    path = Path(name)
    if path.is_file():
        return path
    shipped = PRETRAINED_DIR / f"{name}.safetensors"
    if shipped.is_file():
        return shipped
    if path.is_dir():
        raise UserError(f"{path} is a folder, not a checkpoint; give its .safetensors file "
                        f"(e.g. {path}/best.safetensors)")
    names = ", ".join(sorted(p.stem for p in PRETRAINED_DIR.glob("*.safetensors"))) or "none"
    raise UserError(f"checkpoint not found: {name} (shipped weight sets: {names})")


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    model = getattr(model, "module", model)  # DistributedDataParallel
    return getattr(model, "_orig_mod", model)  # torch.compile


def save_train_state(path: str | Path, optimizer: torch.optim.Optimizer, info: dict,
                     model: torch.nn.Module | None = None) -> None:
    """Optimizer moments, the model's weights and the step/schedule info, in one safetensors file.

    One file written atomically: a run killed at any moment resumes from a consistent state.
    """
    from safetensors.torch import save

    sd = optimizer.state_dict()
    tensors = {}
    for idx, st in sd["state"].items():
        for key, val in st.items():
            t = val if torch.is_tensor(val) else torch.tensor(val)
            tensors[f"state.{idx}.{key}"] = t.detach().to("cpu").contiguous()
    if model is not None:
        for key, val in _unwrap(model).state_dict().items():
            tensors[f"model.{key}"] = val.detach().to("cpu").contiguous()
    groups = [{k: v for k, v in g.items()} for g in sd["param_groups"]]
    blob = save(tensors, metadata={"groups": json.dumps(groups), "info": json.dumps(info)})
    atomic_write_bytes(path, blob)


def load_train_state(path: str | Path) -> tuple[dict, dict, dict]:
    """Read what `save_train_state` saved: (info, model weights (empty for older files), optimizer state dict)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise UserError(f"nothing to resume: {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
            state: dict[int, dict] = {}
            weights = {}
            for key in fh.keys():
                kind, rest = key.split(".", 1)
                if kind == "model":
                    weights[rest] = fh.get_tensor(key)
                else:
                    idx, name = rest.split(".", 1)
                    state.setdefault(int(idx), {})[name] = fh.get_tensor(key)
        info = json.loads(header["info"])
        optimizer = {"state": state, "param_groups": json.loads(header["groups"])}
    except Exception as exc:  # safetensors raises several types for corrupt or foreign files
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"{path} is not a usable training state ({first}); start a new run with another --out"
                        ) from None
    return info, weights, optimizer
