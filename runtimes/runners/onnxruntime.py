"""ONNX Runtime runner: CPU, CUDA, TensorRT and CoreML execution providers where installed.

Usage:
    with OnnxRunner("dn.onnx", provider="auto", threads=2) as r:
        out = r.run({"image": x, "level": np.array([25], np.float32)})["restored"]

Level binding (`bind_level=True`): each level gets its own session, built from the graph with `level`
turned into a constant. onnxruntime then folds the strength into the convolutions, and a folded or
weights-mode graph optimises to the same graph as a fixed-level export: its blocked (NCHWc)
convolutions need constant weights, and a runtime strength otherwise costs a multiply, a bias add and
two layout reorders per residual block. A new level costs one session build (about 12 ms for
`denoise-mobile` on 2 CPU cores); the last `cache_size` sessions are kept (one by default: each
holds its own activation memory). Use it where the level changes rarely against the frame rate (a
camera pipeline that sets the strength per scene); outputs equal the unbound graph's to float rounding.
With `provider="auto"` a bound runner skips the tensorrt provider, which would build an engine per level.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

from runtimes.core import artifact
from runtimes.core.errors import UserError, require
from runtimes.core.meta import read_artifact_meta
from runtimes.runners import sidecar
from runtimes.runners.base import Runner

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


def resolve_provider(provider: str, skip: tuple[str, ...] = ()) -> str:
    """A short provider name ('auto' picks the fastest present, other than `skip`); a clear error for absent ones."""
    present = available_providers()
    if provider == "auto":
        return next(p for p in AUTO_ORDER if p in present and p not in skip)
    if provider not in PROVIDERS:
        raise UserError(f"unknown onnxruntime provider {provider!r}; choose auto or one of {', '.join(PROVIDERS)}")
    if provider not in present:
        raise UserError(f"onnxruntime provider {provider} is not available here (present: {', '.join(present)}); "
                        "install the matching onnxruntime build (onnxruntime-gpu for cuda/tensorrt)")
    return provider


def bound_model(proto, level: float) -> bytes:
    """The serialized graph with its `level` input replaced by the constant `level` (float32 [1])."""
    from onnx import numpy_helper

    model = type(proto)()
    model.CopyFrom(proto)
    inputs = [i for i in model.graph.input if i.name != "level"]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    model.graph.initializer.append(numpy_helper.from_array(np.array([level], np.float32), "level"))
    return model.SerializeToString()


class OnnxRunner(Runner):
    """Runs a `.onnx` artifact with onnxruntime.

    Args:
        path: the .onnx file (its `.meta.json` beside it).
        provider: auto, cpu, cuda, tensorrt or coreml.
        threads: intra-op threads (None: onnxruntime's default).
        bind_level: one session per level with the level as a constant (see the module docstring); a
            no-op for fixed-level graphs. Not with the tensorrt provider (each level would build an engine).
        cache_size: how many level-bound sessions to keep (least recently used goes first). Each keeps its own
            activation memory (about 180 MB at 720x1280 for `denoise-mobile`), so the default keeps one.
    """

    def __init__(self, path: str | Path, provider: str = "auto", threads: int | None = None,
                 bind_level: bool = False, cache_size: int = 1):
        super().__init__(read_artifact_meta(path))
        self.path = Path(path)
        self.bind_level = bind_level and artifact.has_level_input(self.meta)
        self.provider = resolve_provider(provider, skip=("tensorrt",) if self.bind_level else ())
        self.threads = threads
        if self.bind_level and self.provider == "tensorrt":
            raise UserError("level binding builds one session per level, and with the tensorrt provider each "
                            "would build an engine; bind with the cpu/cuda provider, or refit a weights-mode engine")
        if cache_size < 1:
            raise UserError(f"cache_size must be >= 1, got {cache_size}")
        self.cache_size = cache_size
        self.name = f"onnxruntime-{self.provider}" + ("-bound" if self.bind_level else "")
        self.bind_ms: list[float] = []  # the time each level-bound session took to build
        self._session = None
        self._proto = None
        self._bound: OrderedDict[float, object] = OrderedDict()

    def _new_session(self, model):
        ort = require("onnxruntime", "onnx")
        opts = ort.SessionOptions()
        if self.threads:
            opts.intra_op_num_threads = int(self.threads)
        providers = [PROVIDERS[self.provider]] + (["CPUExecutionProvider"] if self.provider != "cpu" else [])
        try:
            return ort.InferenceSession(model, opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise UserError(f"onnxruntime cannot load {self.path}: {str(exc).splitlines()[0]}; re-export it") from None

    def activate_impl(self) -> None:
        if not self.bind_level:
            self._session = self._new_session(str(self.path))
            sidecar.check_onnx_io(self._session, self.meta, self.path)
            return
        onnx = require("onnx", "onnx")
        try:
            self._proto = onnx.load(str(self.path))
        except Exception as exc:  # protobuf's decode errors have no common public base class
            raise UserError(f"onnx cannot read {self.path}: {str(exc).splitlines()[0]}; re-export it") from None
        if not any(i.name == "level" for i in self._proto.graph.input):
            raise UserError(f"{self.path} has no 'level' input although its metadata says so; re-export it")
        # build one bound session now, so a graph onnxruntime cannot load fails here as it does unbound
        levels = self.meta.get("train_levels") or [1.0]
        sidecar.check_onnx_io(self._bound_session(np.float32(levels[-1])), self.meta, self.path, level_bound=True)

    def deactivate_impl(self) -> None:
        self._session = None
        self._proto = None
        self._bound.clear()

    def _bound_session(self, level: np.float32):
        """The session with `level` folded in as a constant (built and cached on first use)."""
        key = float(level)
        if key in self._bound:
            self._bound.move_to_end(key)
            return self._bound[key]
        while len(self._bound) >= self.cache_size:  # free the least recent session before building the next
            self._bound.popitem(last=False)
        t0 = time.perf_counter()
        session = self._new_session(bound_model(self._proto, key))
        self.bind_ms.append((time.perf_counter() - t0) * 1e3)
        self._bound[key] = session
        return session

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run on the checked feeds; a level-bound runner picks the session of the level instead of feeding it."""
        feed, session = dict(feeds), self._session
        if self.bind_level:
            session = self._bound_session(feed.pop("level")[0])
        try:
            (out,) = session.run(["restored"], feed)
        except Exception as exc:  # onnxruntime's own error types (InvalidArgument, Fail, ...)
            raise sidecar.runtime_error(self.path, "onnxruntime", exc) from None
        return {"restored": out}
