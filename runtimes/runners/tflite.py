"""LiteRT / TFLite runner: ai-edge-litert (default) or tflite-runtime (fallback), XNNPACK on or off.

A `.tflite` artifact has one named signature per fixed image size; the metadata maps each
signature to its size and to the tensor names of `image`, `level` and `restored` (the names themselves since
0.2.0; `args_0`, `args_1` and `output_0` in older artifacts, which still run through the same map). The runner
picks the signature matching the image's H x W and runs a batch one image at a time.

Usage:
    with TFLiteRunner("dn.tflite", threads=2) as r:
        out = r.run({"image": x, "level": np.array([25], np.float32)})["restored"]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runtimes.core import artifact
from runtimes.core.artifact import TensorSpec
from runtimes.core.errors import MissingDependency, UserError
from runtimes.core.meta import read_artifact_meta
from runtimes.runners import sidecar
from runtimes.runners.base import Runner


def load_interpreter_module(backend: str = "auto"):
    """(module, backend name): ai_edge_litert.interpreter, else tflite_runtime.interpreter."""
    import importlib

    order = {"auto": ("litert", "tflite-runtime"), "litert": ("litert",), "tflite-runtime": ("tflite-runtime",)}
    if backend not in order:
        raise UserError(f"unknown TFLite backend {backend!r}; choose auto, litert or tflite-runtime")
    modules = {"litert": "ai_edge_litert.interpreter", "tflite-runtime": "tflite_runtime.interpreter"}
    for name in order[backend]:
        try:
            mod = importlib.import_module(modules[name])
        except ImportError:
            continue
        if name == "tflite-runtime":
            problem = numpy_abi_problem(getattr(importlib.import_module("tflite_runtime"), "__version__", ""),
                                        np.__version__)
            if problem:
                raise UserError(problem)
        return mod, name
    raise MissingDependency("ai_edge_litert", "litert")


def numpy_abi_problem(tflite_runtime_version: str, numpy_version: str) -> str | None:
    """Why this tflite-runtime cannot run beside this NumPy, or None.

    Every tflite-runtime wheel (the last is 2.14) was built against NumPy 1.x: with NumPy 2 its
    interpreter fails on the first model it loads, so the mismatch is reported before that.
    """
    def major_minor(v: str) -> tuple[int, int]:
        parts = [int(p) if p.isdigit() else 0 for p in (v.split(".") + ["0", "0"])[:2]]
        return parts[0], parts[1]

    if major_minor(numpy_version)[0] < 2 or major_minor(tflite_runtime_version) >= (2, 15):
        return None
    return (f"tflite-runtime {tflite_runtime_version or '(unknown version)'} was built for NumPy 1.x and cannot run "
            f"with NumPy {numpy_version}: pip install 'numpy<2' in this environment, or use ai-edge-litert "
            "(pip install 'levelres[litert]')")


class TFLiteRunner(Runner):
    """Runs a `.tflite` artifact.

    Args:
        path: the .tflite file (its `.meta.json` beside it).
        threads: interpreter threads (the interpreter's default behaves like one thread).
        xnnpack: use the XNNPACK delegate (the default CPU path); False runs the builtin kernels.
        backend: auto, litert (ai-edge-litert) or tflite-runtime.
    """

    def __init__(self, path: str | Path, threads: int | None = 2, xnnpack: bool = True, backend: str = "auto"):
        super().__init__(read_artifact_meta(path))
        self.path = Path(path)
        if not self.meta.get("signatures") or not isinstance(self.meta["signatures"], dict):
            raise UserError(f"{self.path} metadata lists no signatures; re-export it with python -m export.tflite")
        self.threads, self.xnnpack, self.backend = threads, xnnpack, backend
        self.name = "tflite-" + ("xnnpack" if xnnpack else "builtin")
        self._interp = None
        self._runners: dict[str, object] = {}

    def activate_impl(self) -> None:
        mod, used = load_interpreter_module(self.backend)
        kwargs = {"model_path": str(self.path)}
        if self.threads:
            kwargs["num_threads"] = int(self.threads)
        if not self.xnnpack:
            kwargs["experimental_op_resolver_type"] = mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            self._interp = mod.Interpreter(**kwargs)
            if self.xnnpack and used == "tflite-runtime":
                # tflite-runtime applies its default delegate (XNNPACK) lazily, in the interpreter's own
                # allocate_tensors, to every signature; a signature runner alone never triggers it and runs the
                # builtin kernels, 3x slower (docs/results.md). The call also allocates the first signature's
                # tensors. ai-edge-litert applies the delegate either way, so it is spared that memory.
                self._interp.allocate_tensors()
        except (ValueError, RuntimeError, SystemError, ImportError) as exc:
            self._interp = None
            raise UserError(f"cannot load {self.path} with {used}: {str(exc).splitlines()[0]}; re-export it") from None
        try:
            sidecar.check_tflite_signatures(self._interp, self.meta, self.path)
        except (ValueError, RuntimeError, KeyError) as exc:
            raise sidecar.runtime_error(self.path, used, exc) from None
        except UserError:
            self._interp = None
            raise
        self.name = f"{used}-{'xnnpack' if self.xnnpack else 'builtin'}"

    def deactivate_impl(self) -> None:
        self._runners.clear()
        self._interp = None

    def sizes(self) -> dict[str, tuple[int, int]]:
        """Signature name -> (H, W)."""
        return {k: tuple(v["size"]) for k, v in self.meta["signatures"].items()}

    def input_specs(self) -> list[TensorSpec]:
        h, w = next(iter(self.sizes().values()))
        return artifact.input_specs(self.meta, h, w)

    def _signature_for(self, image: np.ndarray) -> str:
        nhwc = artifact.layout(self.meta) == "NHWC"
        hw = tuple(image.shape[1:3] if nhwc else image.shape[2:4])
        for name, size in self.sizes().items():
            if size == hw:
                return name
        have = ", ".join(f"{h}x{w}" for h, w in self.sizes().values())
        raise UserError(f"{self.path.name} has no signature for {hw[0]}x{hw[1]} (sizes: {have}); "
                        "re-export with --size HxW or tile the image")

    def _runner(self, name: str):
        if name not in self._runners:
            self._runners[name] = self._interp.get_signature_runner(name)
        return self._runners[name]

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the signature of the image's size; batches run one image at a time."""
        image, level = feeds["image"], feeds.get("level")
        sig = self.meta["signatures"][self._signature_for(image)]
        runner = self._runner(self._signature_for(image))
        outs = []
        for i in range(image.shape[0]):
            feed = {sig["inputs"]["image"]: image[i:i + 1]}
            if level is not None:
                feed[sig["inputs"]["level"]] = level
            try:
                outs.append(runner(**feed)[sig["outputs"]["restored"]])
            except (ValueError, RuntimeError, KeyError, TypeError) as exc:
                raise sidecar.runtime_error(self.path, "LiteRT", exc) from None
        return {"restored": np.concatenate(outs, axis=0)}
