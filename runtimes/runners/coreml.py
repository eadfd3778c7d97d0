"""CoreML runner: an exported `.mlpackage` run through coremltools' `MLModel.predict`.

Predictions need macOS (coremltools links the CoreML framework only there); on other systems the
runner stops with a clear error on enter, while the metadata and specs stay readable.

Usage:
    with CoreMLRunner("dn.mlpackage", compute_units="cpu_and_ne") as r:
        out = r.run({"image": x, "level": np.array([25], np.float32)})["restored"]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from runtimes.core.artifact import TensorSpec
from runtimes.core.errors import UserError, require
from runtimes.core.meta import read_artifact_meta
from runtimes.runners.base import Runner

COMPUTE_UNITS = {"all": "ALL", "cpu_only": "CPU_ONLY", "cpu_and_gpu": "CPU_AND_GPU", "cpu_and_ne": "CPU_AND_NE"}
_DTYPES = {65568: "float32", 65552: "float16", 65600: "float64", 131104: "int32"}  # ArrayFeatureType codes


class CoreMLRunner(Runner):
    """Run a CoreML model package.

    Args:
        path: the `.mlpackage` (with its `.meta.json` beside it).
        compute_units: "all", "cpu_only", "cpu_and_gpu" or "cpu_and_ne" (Neural Engine).
        threads: accepted for a uniform interface; CoreML chooses its own threads (ignored).
    """

    def __init__(self, path: str | Path, compute_units: str = "all", threads: int | None = None):
        if compute_units not in COMPUTE_UNITS:
            raise UserError(f"unknown compute_units {compute_units!r}; choose one of {', '.join(COMPUTE_UNITS)}")
        super().__init__(read_artifact_meta(path))
        self.path = Path(path)
        self.compute_units = compute_units
        self.threads = threads
        self.name = f"coreml-{compute_units.replace('_', '-')}"
        self._model = None

    def activate_impl(self) -> None:
        if sys.platform != "darwin":
            raise UserError(f"CoreML predictions need macOS (this is {sys.platform}); run {self.path.name} on a Mac, "
                            "or benchmark the ONNX/TFLite artifacts here")
        ct = require("coremltools", "coreml")
        units = getattr(ct.ComputeUnit, COMPUTE_UNITS[self.compute_units])
        try:
            self._model = ct.models.MLModel(str(self.path), compute_units=units)
        except Exception as exc:  # coremltools raises several types for unreadable packages
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"cannot load {self.path} with CoreML ({first}); re-export it") from None

    def deactivate_impl(self) -> None:
        self._model = None

    def input_specs(self) -> list[TensorSpec]:
        if self._model is None:
            return [TensorSpec("image", (None, 3, None, None), "float32"), TensorSpec("level", (1,), "float32")]
        specs = []
        for inp in self._model.get_spec().description.input:
            arr = inp.type.multiArrayType
            specs.append(TensorSpec(inp.name, tuple(int(d) for d in arr.shape), _DTYPES.get(arr.dataType, "float32")))
        return specs

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Predict on the checked feeds (no level for a fixed-level package); returns {"restored": the output in
        the artifact's layout}."""
        out = self._model.predict(feeds)
        name = (self.meta.get("outputs") or ["restored"])[0]
        if name not in out:
            name = next(iter(out))
        return {"restored": np.asarray(out[name], dtype=np.float32)}
