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

from typing import Protocol, runtime_checkable

import numpy as np

from runtimes.core.artifact import TensorSpec


@runtime_checkable
class Runner(Protocol):
    """What every runtime adapter provides."""

    name: str  # e.g. "onnxruntime-cpu", "tflite-xnnpack"
    meta: dict  # the artifact's metadata (<artifact>.meta.json)

    def __enter__(self) -> Runner: ...

    def __exit__(self, *exc) -> None: ...

    def input_specs(self) -> list[TensorSpec]: ...

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...
