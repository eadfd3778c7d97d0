"""ONNX Runtime runner: CPU, CUDA, TensorRT and CoreML execution providers where installed.

Usage:
    with OnnxRunner("dn.onnx", provider="auto", threads=2) as r:
        out = r.run({"image": x, "level": np.array([25], np.float32)})["restored"]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runtimes import artifact
from runtimes.base import TensorSpec, read_artifact_meta
from runtimes.errors import UserError, require

PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
}
AUTO_ORDER = ("tensorrt", "cuda", "coreml", "cpu")


def available_providers() -> list[str]:
    """Short names of the execution providers this onnxruntime build offers."""
    ort = require("onnxruntime", "onnx")
    present = set(ort.get_available_providers())
    return [k for k, v in PROVIDERS.items() if v in present]


def resolve_provider(provider: str) -> str:
    """A short provider name ('auto' picks the fastest present); a clear error for absent ones."""
    present = available_providers()
    if provider == "auto":
        return next(p for p in AUTO_ORDER if p in present)
    if provider not in PROVIDERS:
        raise UserError(f"unknown onnxruntime provider {provider!r}; choose auto or one of {', '.join(PROVIDERS)}")
    if provider not in present:
        raise UserError(f"onnxruntime provider {provider} is not available here (present: {', '.join(present)}); "
                        "install the matching onnxruntime build (onnxruntime-gpu for cuda/tensorrt)")
    return provider


class OnnxRunner:
    """Runs a `.onnx` artifact with onnxruntime.

    Args:
        path: the .onnx file (its `.meta.json` beside it).
        provider: auto, cpu, cuda, tensorrt or coreml.
        threads: intra-op threads (None: onnxruntime's default).
    """

    def __init__(self, path: str | Path, provider: str = "auto", threads: int | None = None):
        self.path = Path(path)
        self.meta = read_artifact_meta(self.path)
        self.provider = resolve_provider(provider)
        self.threads = threads
        self.name = f"onnxruntime-{self.provider}"
        self._session = None

    def __enter__(self) -> OnnxRunner:
        ort = require("onnxruntime", "onnx")
        opts = ort.SessionOptions()
        if self.threads:
            opts.intra_op_num_threads = int(self.threads)
        providers = [PROVIDERS[self.provider]] + (["CPUExecutionProvider"] if self.provider != "cpu" else [])
        try:
            self._session = ort.InferenceSession(str(self.path), opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise UserError(f"onnxruntime cannot load {self.path}: {str(exc).splitlines()[0]}; re-export it") from None
        return self

    def __exit__(self, *exc) -> None:
        self._session = None

    def input_specs(self) -> list[TensorSpec]:
        return artifact.input_specs(self.meta)

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run on {"image", "level"} (level omitted or equal to the baked one for fixed artifacts)."""
        if self._session is None:
            raise UserError("OnnxRunner must be entered (use it in a with block) before run()")
        feed = {"image": artifact.check_image(self.meta, inputs["image"])}
        level = artifact.check_level(self.meta, inputs.get("level"))
        if level is not None:
            feed["level"] = level
        (out,) = self._session.run(["restored"], feed)
        return {"restored": out}
