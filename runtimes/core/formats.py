"""The one format table shared by export/, runtimes/ and the benchmark (plain data, no heavy imports).

Adding a format touches its exporter, its runner, one row here, one pip extra, and tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runtimes.core.errors import UserError


@dataclass(frozen=True)
class Format:
    """One deployable format."""

    key: str
    suffix: str
    exporter: str  # module run as `python -m <exporter>`
    runner: str  # "module:Class" implementing runtimes.runners.base.Runner
    extra: str  # pip extra that installs the exporter's and runner's stacks
    precisions: tuple[str, ...]
    runs_on: str  # where the runner can execute


FORMATS: dict[str, Format] = {
    "onnx": Format("onnx", ".onnx", "export.onnx", "runtimes.runners.onnxruntime:OnnxRunner", "onnx",
                   ("fp32", "fp16"), "any (onnxruntime)"),
    "tensorrt": Format("tensorrt", ".engine", "export.tensorrt", "runtimes.runners.tensorrt:TensorRTRunner", "tensorrt",
                       ("fp32", "fp16", "int8"), "NVIDIA GPU with TensorRT (Jetson, dGPU)"),
    "coreml": Format("coreml", ".mlpackage", "export.coreml", "runtimes.runners.coreml:CoreMLRunner", "coreml",
                     ("fp32", "fp16"), "macOS / iOS"),
    "tflite": Format("tflite", ".tflite", "export.tflite", "runtimes.runners.tflite:TFLiteRunner", "tflite",
                     ("fp32", "fp16", "int8-dynamic", "int8", "a16w8"), "any (LiteRT)"),
}


# The torch reference runner, named like the table's runners: it lives in train/ (it rebuilds the model from a
# checkpoint), above the runtimes, so the runner factory reaches it by name only (`runtimes.runners.factory`).
REFERENCE_RUNNER = "train.reference:TorchRunner"


def format_for_path(path: str | Path) -> Format:
    """The format of an artifact, from its suffix; a clear error for unknown suffixes."""
    suffix = Path(path).suffix.lower()
    for fmt in FORMATS.values():
        if fmt.suffix == suffix:
            return fmt
    known = ", ".join(f.suffix for f in FORMATS.values())
    raise UserError(f"unknown model format {suffix or '(no suffix)'} for {path}; expected one of {known}")


def get_format(key: str) -> Format:
    if key not in FORMATS:
        raise UserError(f"unknown format {key!r}; choose one of {', '.join(FORMATS)}")
    return FORMATS[key]


def meta_path(artifact: str | Path) -> Path:
    """`<artifact>.meta.json`, the sidecar every exporter writes."""
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".meta.json")
