"""The one format table shared by export/, runtimes/ and the benchmark (plain data, no heavy imports).

Every per-format fact lives in its row; export (`export.all`, `export.bundle`), the main job (`export.job`) and the
runner factory loop over the table. Adding a format touches its exporter, its runner, one row here, one pip extra,
and tests (docs/architecture.md).
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from runtimes.core.errors import UserError


@dataclass(frozen=True)
class Format:
    """One deployable format.

    Attributes:
        key: the format's name on command lines and in metadata.
        suffix: the artifact's file suffix.
        exporter: the module run as `python -m <exporter>`; its `export_with(common, sizes, **options)` is the
            library entry the table's consumers call.
        runner: "module:Class" deriving from `runtimes.runners.base.Runner`.
        extra: the pip extra that installs the exporter's and runner's stacks.
        precisions: what the exporter makes (`export.<key>.PRECISIONS`, in the same order).
        default_precision: the precision `export.all` and the device bundles make.
        runs_on: where the runner can execute (for people).
        export_needs: modules the exporter needs, validation included ("a|b": either).
        run_needs: modules the runner needs ("a|b": either).
        platform: the `sys.platform` the runner needs (None: any).
        fixed_size: the artifact has fixed input sizes (the exporter takes the sizes to make).
    """

    key: str
    suffix: str
    exporter: str
    runner: str
    extra: str
    precisions: tuple[str, ...]
    default_precision: str
    runs_on: str
    export_needs: tuple[str, ...] = ()
    run_needs: tuple[str, ...] = ()
    platform: str | None = None
    fixed_size: bool = False

    def missing(self, needs: tuple[str, ...] | None = None) -> list[str]:
        """The modules of `needs` (default: the exporter's) that are not installed."""
        have = lambda name: importlib.util.find_spec(name) is not None  # noqa: E731
        wanted = self.export_needs if needs is None else needs
        return [n.replace("|", " or ") for n in wanted if not any(have(m) for m in n.split("|"))]

    def runnable_here(self) -> bool:
        """Whether this machine can export the format and run its artifacts."""
        on_platform = self.platform is None or sys.platform == self.platform
        return on_platform and not self.missing(self.export_needs + self.run_needs)


_ONNX_STACK = ("onnx", "onnxscript", "onnxruntime")
_LITERT = "ai_edge_litert|tflite_runtime"  # either interpreter runs the artifacts
FORMATS: dict[str, Format] = {
    "onnx": Format("onnx", ".onnx", "export.onnx", "runtimes.runners.onnxruntime:OnnxRunner", "onnx",
                   ("fp32", "fp16"), "fp32", "any (onnxruntime)", _ONNX_STACK, ("onnxruntime",)),
    "tensorrt": Format("tensorrt", ".engine", "export.tensorrt", "runtimes.runners.tensorrt:TensorRTRunner",
                       "tensorrt", ("fp32", "fp16", "int8"), "fp16", "NVIDIA GPU with TensorRT (Jetson, dGPU)",
                       _ONNX_STACK, ("tensorrt", "cuda")),
    "coreml": Format("coreml", ".mlpackage", "export.coreml", "runtimes.runners.coreml:CoreMLRunner", "coreml",
                     ("fp16", "fp32"), "fp16", "macOS / iOS", ("coremltools",), ("coremltools",), platform="darwin"),
    "tflite": Format("tflite", ".tflite", "export.tflite", "runtimes.runners.tflite:TFLiteRunner", "tflite",
                     ("fp32", "fp16", "int8-dynamic", "int8", "a16w8"), "fp32", "any (LiteRT)",
                     ("litert_torch", _LITERT), (_LITERT,), fixed_size=True),
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
