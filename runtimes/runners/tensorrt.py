"""TensorRT runner: a serialized engine run through the TensorRT 10/11 tensor API, no torch.

Engines are built ON the target (Jetson or GPU host) from the ONNX artifact; they are tied to the
GPU model and the TensorRT version. Memory and the stream come from cuda-python
(`cuda.bindings.runtime`, or the older `cuda.cudart`). `run` copies inputs host->device, calls
`execute_async_v3` and copies the output back, then synchronises: its latency label is "compute"
including those copies.

Usage:
    with TensorRTRunner("dn.engine") as r:
        out = r.run({"image": x, "level": np.array([25], np.float32)})["restored"]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runtimes.core.artifact import TensorSpec
from runtimes.core.errors import UserError, require
from runtimes.core.meta import read_artifact_meta
from runtimes.runners.base import Runner


def import_cudart():
    """cuda-python's runtime module (new `cuda.bindings.runtime` or legacy `cuda.cudart`), or a clear error."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError:
            raise UserError("the TensorRT runner needs cuda-python for device memory: pip install cuda-python "
                            "(the release matching your CUDA major version, e.g. 'cuda-python>=12,<13')") from None
    return cudart


def _check(cudart, result):
    """Unpack a cuda-python result tuple `(err, *values)`, raising on a CUDA error."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if err != cudart.cudaError_t.cudaSuccess:
        raise RuntimeError(f"CUDA error: {err}")
    return values[0] if len(values) == 1 else (tuple(values) or None)


class _DeviceBuffer:
    """A cudaMalloc'd buffer that grows on demand."""

    def __init__(self, cudart):
        self.cudart, self.ptr, self.nbytes = cudart, 0, 0

    def ensure(self, nbytes: int) -> int:
        if nbytes > self.nbytes:
            self.free()
            self.ptr = int(_check(self.cudart, self.cudart.cudaMalloc(max(nbytes, 1))))
            self.nbytes = nbytes
        return self.ptr

    def free(self) -> None:
        if self.ptr:
            _check(self.cudart, self.cudart.cudaFree(self.ptr))
        self.ptr, self.nbytes = 0, 0


class TensorRTRunner(Runner):
    """Run a TensorRT engine file.

    Args:
        path: the `.engine` (with its `.meta.json` beside it).
        threads: accepted for a uniform interface; TensorRT runs on the GPU (ignored).
        device: CUDA device index.
    """

    def __init__(self, path: str | Path, threads: int | None = None, device: int = 0):
        super().__init__(read_artifact_meta(path), "tensorrt")
        self.path = Path(path)
        self.threads, self.device = threads, device
        self._trt = self._cudart = self._runtime = self._engine = self._context = self._stream = None
        self._buffers: dict[str, _DeviceBuffer] = {}

    def activate_impl(self) -> None:
        trt = require("tensorrt", "tensorrt")
        cudart = import_cudart()
        _check(cudart, cudart.cudaSetDevice(self.device))
        self._trt, self._cudart = trt, cudart
        self.name = f"tensorrt-{getattr(trt, '__version__', '?')}"
        logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(logger)
        engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if engine is None:
            raise UserError(f"TensorRT could not deserialize {self.path}: engines are tied to the GPU model and the "
                            "TensorRT version; rebuild it on this device from the ONNX artifact")
        self._engine = engine
        self._context = engine.create_execution_context()
        if self._context is None:
            raise UserError(f"TensorRT could not create an execution context for {self.path} (out of GPU memory?)")
        self._stream = _check(cudart, cudart.cudaStreamCreate())
        self._names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self._inputs = [n for n in self._names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self._outputs = [n for n in self._names if n not in self._inputs]
        self._buffers = {n: _DeviceBuffer(cudart) for n in self._names}

    def deactivate_impl(self) -> None:
        for buf in self._buffers.values():
            buf.free()
        self._buffers = {}
        if self._stream is not None:
            _check(self._cudart, self._cudart.cudaStreamDestroy(self._stream))
        self._context = self._engine = self._stream = self._runtime = None

    def _np_dtype(self, name: str) -> np.dtype:
        try:
            dtype = self._trt.nptype(self._engine.get_tensor_dtype(name))
        except TypeError:  # bf16, fp8, int4: no numpy type
            dtype = None
        if dtype is None:
            raise UserError(f"engine tensor {name!r} has a type numpy cannot hold; export with fp32/fp16 I/O")
        return np.dtype(dtype)

    def input_specs(self) -> list[TensorSpec]:
        if self._engine is None:
            return [TensorSpec("image", (None, 3, None, None), "float32"), TensorSpec("level", (1,), "float32")]
        return [TensorSpec(n, tuple(None if d < 0 else int(d) for d in self._engine.get_tensor_shape(n)),
                           self._np_dtype(n).name) for n in self._inputs]

    def infer_impl(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Copy the checked inputs to the GPU, execute, copy `restored` back (float32, or uint8 for `--io uint8`
        engines)."""
        missing = set(self._inputs) - set(inputs)
        if missing:
            raise UserError(f"missing input(s) {', '.join(sorted(missing))} for {self.path.name}")
        cudart, ctx, stream = self._cudart, self._context, self._stream
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        staged = []  # keep host arrays alive until the stream is synchronised
        for name in self._inputs:
            if self._np_dtype(name) == np.uint8 and np.asarray(inputs[name]).dtype != np.uint8:
                got = np.asarray(inputs[name]).dtype
                raise UserError(f"input {name!r} of {self.path.name} is uint8 (0-255); got {got}")
            arr = np.ascontiguousarray(inputs[name], dtype=self._np_dtype(name))
            if not ctx.set_input_shape(name, tuple(arr.shape)):
                raise UserError(f"input {name!r} shape {arr.shape} is outside the engine's optimisation profile")
            ptr = self._buffers[name].ensure(arr.nbytes)
            _check(cudart, cudart.cudaMemcpyAsync(ptr, arr.ctypes.data, arr.nbytes, h2d, stream))
            ctx.set_tensor_address(name, ptr)
            staged.append(arr)
        results = {}
        for name in self._outputs:
            out = np.empty(tuple(ctx.get_tensor_shape(name)), dtype=self._np_dtype(name))
            ctx.set_tensor_address(name, self._buffers[name].ensure(out.nbytes))
            results[name] = out
        if not ctx.execute_async_v3(int(stream)):
            raise RuntimeError(f"TensorRT execute_async_v3 failed for {self.path.name}")
        for name, out in results.items():
            _check(cudart, cudart.cudaMemcpyAsync(out.ctypes.data, self._buffers[name].ptr, out.nbytes, d2h, stream))
        _check(cudart, cudart.cudaStreamSynchronize(stream))
        del staged
        name = "restored" if "restored" in results else self._outputs[0]
        out = results[name]
        return {"restored": out if out.dtype == np.uint8 else out.astype(np.float32, copy=False)}
