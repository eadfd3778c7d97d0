"""The shared TensorRT engine builder against a recording stand-in for the `tensorrt` module.

TensorRT itself is not installable here; this checks the builder-API calls the exporter and the Jetson
script make (flags per precision plan, strongly typed networks, refit, calibrator, timing cache, errors).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from runtimes.core.errors import UserError
from runtimes.runners.trt_precision import build_serialized_engine, plan_for


class _Rec:
    """Records every call made on it (and on the objects it returns)."""

    def __init__(self, log, name):
        self._log, self._name = log, name

    def __getattr__(self, attr):
        def call(*args, **kw):
            self._log.append((f"{self._name}.{attr}", args, kw))
            return _Rec(self._log, attr)
        return call


def fake_trt(parse_ok=True, build_ok=True):
    log = []

    class Config(_Rec):
        int8_calibrator = None

        def get_timing_cache(self):
            return SimpleNamespace(serialize=lambda: b"cache-v2")

    class Builder(_Rec):
        def create_builder_config(self):
            self.config = Config(log, "config")
            return self.config

        def build_serialized_network(self, network, config):
            log.append(("build", (), {}))
            return b"ENGINE" if build_ok else None

    class Parser:
        num_errors = 1

        def __init__(self, network, logger):
            pass

        def parse(self, data):
            log.append(("parse", (len(data),), {}))
            return parse_ok

        def get_error(self, i):
            return "unsupported op Foo"

    builders = []

    def make_builder(logger):
        builders.append(Builder(log, "builder"))
        return builders[0]

    class Logger:
        WARNING = 2

        def __init__(self, level):
            self.level = level

    trt = SimpleNamespace(
        Logger=Logger, Builder=make_builder, OnnxParser=Parser,
        NetworkDefinitionCreationFlag=SimpleNamespace(EXPLICIT_BATCH=0, STRONGLY_TYPED=5),
        MemoryPoolType=SimpleNamespace(WORKSPACE="ws"),
        BuilderFlag=SimpleNamespace(FP16="FP16", INT8="INT8", REFIT="REFIT"))
    return trt, log, builders


def _calls(log, name):
    return [c for c in log if c[0] == name]


def test_fp16_build_on_tensorrt10_with_timing_cache(tmp_path):
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"onnx-bytes")
    cache = tmp_path / "m.timing.cache"
    trt, log, builders = fake_trt()
    shapes = ((1, 3, 64, 64), (1, 3, 256, 256), (1, 3, 1088, 1920))
    out = build_serialized_engine(trt, onnx, plan_for("fp16", "10.3"), shapes, 512, refit=True, timing_cache=cache)
    assert out == b"ENGINE" and cache.read_bytes() == b"cache-v2"
    assert _calls(log, "builder.create_network")[0][1] == (0,)  # weakly typed
    flags = [c[1][0] for c in _calls(log, "config.set_flag")]
    assert "FP16" in flags and "REFIT" in flags and "INT8" not in flags
    assert _calls(log, "config.set_memory_pool_limit")[0][1] == ("ws", 512 << 20)
    assert _calls(log, "create_optimization_profile.set_shape")[0][1] == ("image", *shapes)
    assert builders[0].config.int8_calibrator is None


def test_tensorrt8_networks_are_explicit_batch(tmp_path):
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"x")
    trt, log, _ = fake_trt()
    build_serialized_engine(trt, onnx, plan_for("fp16", "8.5.2"), ((1, 3, 8, 8),) * 3)
    assert _calls(log, "builder.create_network")[0][1] == (1 << 0,)
    assert [c[1][0] for c in _calls(log, "config.set_flag")] == ["FP16"]


def test_strongly_typed_and_calibrator(tmp_path):
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"x")
    trt, log, builders = fake_trt()
    build_serialized_engine(trt, onnx, plan_for("fp16", "11.0"), ((1, 3, 8, 8),) * 3)
    assert _calls(log, "builder.create_network")[0][1] == (1 << 5,)
    assert not _calls(log, "config.set_flag")  # the precision comes from the ONNX
    trt, log, builders = fake_trt()
    calibrator = object()
    build_serialized_engine(trt, onnx, plan_for("int8", "10.3", engine_build=True), ((1, 3, 8, 8),) * 3,
                            calibrator=calibrator)
    assert builders[0].config.int8_calibrator is calibrator and _calls(log, "config.set_calibration_profile")


@pytest.mark.parametrize("parse_ok,build_ok,words", [(False, True, "could not parse m.onnx: unsupported op Foo"),
                                                     (True, False, "failed to build")])
def test_failures_are_user_errors(tmp_path, parse_ok, build_ok, words):
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"x")
    trt, _, _ = fake_trt(parse_ok, build_ok)
    with pytest.raises(UserError, match=words):
        build_serialized_engine(trt, onnx, plan_for("fp32", "10.3"), ((1, 3, 8, 8),) * 3)
