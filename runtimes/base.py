"""The Runner protocol: one interface over every runtime.

A runner is a context manager that acquires its session/engine on `__enter__`, reports its input
specs, and maps named numpy arrays to named numpy arrays. Inputs of every artifact:
`image` float32 (N, 3, H, W) in [0, 1] (NHWC where the artifact's metadata says so) and `level`
float32 (1,) in the user's unit (sigma, JPEG quality, SR scale); output `restored`.

Usage:
    with OnnxRunner("dn.onnx") as r:
        out = r.run({"image": x, "level": np.array([25], np.float32)})["restored"]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from runtimes.errors import UserError
from runtimes.formats import meta_path
from runtimes.metacheck import check_arch, check_level_map


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple  # ints, or None / str for dynamic axes
    dtype: str


@runtime_checkable
class Runner(Protocol):
    """What every runtime adapter provides."""

    name: str  # e.g. "onnxruntime-cpu", "tflite-xnnpack"
    meta: dict  # the artifact's metadata (<artifact>.meta.json)

    def __enter__(self) -> Runner: ...

    def __exit__(self, *exc) -> None: ...

    def input_specs(self) -> list[TensorSpec]: ...

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


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
