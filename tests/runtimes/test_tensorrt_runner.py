"""TensorRT runner against fake `tensorrt` and cuda-python modules (TensorRT cannot be installed here).

The fakes follow the TensorRT 10 tensor API (num_io_tensors, get_tensor_name/mode/dtype/shape,
set_input_shape, set_tensor_address, execute_async_v3) and cuda-python's `(err, value)` results;
"device memory" is host memory, so the copies and the engine's reads and writes are real.
"""

from __future__ import annotations

import ctypes
import json
import sys
import types

import numpy as np
import pytest

from runtimes.core.errors import UserError
from runtimes.runners.tensorrt import TensorRTRunner

IO = {"image": ("in", "half", (-1, 3, -1, -1)), "level": ("in", "float", (1,)),
      "restored": ("out", "float", (-1, 3, -1, -1))}
NP = {"half": np.float16, "float": np.float32}


def _view(ptr, shape, dtype):
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    return np.frombuffer((ctypes.c_char * n).from_address(ptr), dtype=dtype).reshape(shape)


class FakeContext:
    def __init__(self):
        self.shapes, self.addr = {}, {}

    def set_input_shape(self, name, shape):
        self.shapes[name] = tuple(shape)
        return shape[-1] <= 4096 if name == "image" else True

    def get_tensor_shape(self, name):
        return self.shapes["image"] if name == "restored" else self.shapes[name]

    def set_tensor_address(self, name, ptr):
        assert isinstance(ptr, int) and ptr
        self.addr[name] = ptr

    def execute_async_v3(self, stream_handle):
        assert stream_handle == 1234
        image = _view(self.addr["image"], self.shapes["image"], np.float16).astype(np.float32)
        level = _view(self.addr["level"], (1,), np.float32)[0]
        out = _view(self.addr["restored"], self.shapes["image"], np.float32)
        out[...] = image * (1.0 + level / 100.0)
        return True


class FakeEngine:
    num_io_tensors = 3

    def get_tensor_name(self, i):
        return list(IO)[i]

    def get_tensor_mode(self, name):
        return IO[name][0]

    def get_tensor_dtype(self, name):
        return IO[name][1]

    def get_tensor_shape(self, name):
        return IO[name][2]

    def create_execution_context(self):
        return FakeContext()


def fake_tensorrt():
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.0-fake"
    trt.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level: None})
    trt.TensorIOMode = types.SimpleNamespace(INPUT="in", OUTPUT="out")
    trt.nptype = lambda dt: NP[dt]

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, blob):
            return FakeEngine() if blob.startswith(b"FAKE") else None

    trt.Runtime = Runtime
    return trt


def fake_cudart():
    rt = types.ModuleType("cuda.bindings.runtime")
    rt.cudaError_t = types.SimpleNamespace(cudaSuccess=0)
    rt.cudaMemcpyKind = types.SimpleNamespace(cudaMemcpyHostToDevice=1, cudaMemcpyDeviceToHost=2)
    rt.allocations = {}

    def malloc(n):
        buf = ctypes.create_string_buffer(n)
        rt.allocations[ctypes.addressof(buf)] = buf
        return 0, ctypes.addressof(buf)

    def memcpy(dst, src, n, kind, stream):
        ctypes.memmove(dst, src, n)
        return (0,)

    rt.cudaSetDevice = lambda i: (0,)
    rt.cudaMalloc = malloc
    rt.cudaFree = lambda ptr: (rt.allocations.pop(ptr), 0)[1:]
    rt.cudaStreamCreate = lambda: (0, type("Stream", (), {"__int__": lambda self: 1234})())
    rt.cudaMemcpyAsync = memcpy
    rt.cudaStreamSynchronize = lambda s: (0,)
    rt.cudaStreamDestroy = lambda s: (0,)
    return rt


@pytest.fixture
def fakes(monkeypatch):
    rt = fake_cudart()
    bindings = types.ModuleType("cuda.bindings")
    bindings.runtime = rt
    cuda = types.ModuleType("cuda")
    cuda.bindings = bindings
    for name, mod in {"tensorrt": fake_tensorrt(), "cuda": cuda, "cuda.bindings": bindings,
                      "cuda.bindings.runtime": rt}.items():
        monkeypatch.setitem(sys.modules, name, mod)
    return rt


def _engine(tmp_path, blob=b"FAKE engine"):
    path = tmp_path / "dn.engine"
    path.write_bytes(blob)
    meta = {"format": "levelres-artifact", "artifact_format": "tensorrt", "task": "denoise", "layout": "NCHW",
            "level_mode": "folded", "precision": "fp16",
            "level_map": {"task": "denoise", "unit": "sigma", "a": 1 / 75, "b": 0.0, "lo": 0, "hi": 255,
                          "train_levels": [15, 75]}}
    (tmp_path / "dn.engine.meta.json").write_text(json.dumps(meta))
    return path


def test_run_copies_and_executes(fakes, tmp_path):
    x = np.random.default_rng(0).random((1, 3, 20, 30), dtype=np.float32)
    with TensorRTRunner(_engine(tmp_path)) as r:
        assert r.name == "tensorrt-10.0-fake"
        assert [(s.name, s.dtype) for s in r.input_specs()] == [("image", "float16"), ("level", "float32")]
        for level in (0.0, 50.0):
            out = r.run({"image": x, "level": np.array([level], np.float32)})["restored"]
            assert out.dtype == np.float32 and out.shape == x.shape
            np.testing.assert_allclose(out, x.astype(np.float16).astype(np.float32) * (1 + level / 100), rtol=1e-6)
        big = np.zeros((1, 3, 40, 60), np.float32)  # buffers grow for a larger frame
        assert r.run({"image": big, "level": np.array([1.0], np.float32)})["restored"].shape == big.shape
        with pytest.raises(UserError, match="profile"):
            r.run({"image": np.zeros((1, 3, 8, 5000), np.float32), "level": np.array([1.0], np.float32)})
        with pytest.raises(UserError, match="missing"):
            r.run({"image": x})
    assert fakes.allocations == {}  # every device buffer freed on exit


def test_bad_engine_is_a_user_error(fakes, tmp_path):
    with pytest.raises(UserError, match="rebuild it on this device"):
        TensorRTRunner(_engine(tmp_path, b"not an engine")).__enter__()


def test_missing_cuda_python(fakes, monkeypatch, tmp_path):
    for name in ("cuda", "cuda.bindings", "cuda.bindings.runtime", "cuda.cudart"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(UserError, match="cuda-python"):
        TensorRTRunner(_engine(tmp_path)).__enter__()


def test_bench_loads_the_runner_from_the_format_table(fakes, tmp_path):
    from runtimes.apps.bench_eval import load_runner

    runner, meta = load_runner(_engine(tmp_path), threads=2)
    assert isinstance(runner, TensorRTRunner) and meta["precision"] == "fp16"
