"""OnnxRunner and TFLiteRunner: metadata-driven inputs, provider/threads/XNNPACK options, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from runtimes.core.errors import UserError
from runtimes.runners.base import Runner


def _x(shape, seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


@pytest.fixture(scope="module")
def tiny_tflite(tiny_ckpt, tmp_path_factory):
    pytest.importorskip("litert_torch", reason="litert-torch not installed (pip install 'levelres[tflite]')")
    pytest.importorskip("ai_edge_litert", reason="ai-edge-litert not installed (pip install 'levelres[tflite]')")
    from export.base import ExportConfig
    from export.tflite import TFLiteConfig, export_tflite

    out = tmp_path_factory.mktemp("tfl")
    return export_tflite(TFLiteConfig(ExportConfig(str(tiny_ckpt), out, name="tiny"), sizes=((32, 32), (24, 32)))).path


def test_onnx_runner(tiny_onnx):
    from runtimes.runners.onnxruntime import OnnxRunner, available_providers

    assert "cpu" in available_providers()
    with OnnxRunner(tiny_onnx, provider="auto", threads=1) as r:
        assert isinstance(r, Runner) and r.name.startswith("onnxruntime-")
        assert [s.name for s in r.input_specs()] == ["image", "level"]
        x = _x((2, 3, 19, 30))
        out = r.run({"image": x, "level": np.array([0.0], np.float32)})["restored"]
        np.testing.assert_array_equal(out, x)  # level 0 is the identity
        with pytest.raises(UserError, match="required"):
            r.run({"image": x})
        with pytest.raises(UserError, match=r"\(N, 3, H, W\)"):
            r.run({"image": x[0], "level": np.array([5.0], np.float32)})
        with pytest.raises(UserError, match="outside"):
            r.run({"image": x, "level": np.array([900.0], np.float32)})


def test_onnx_runner_errors(tiny_onnx, tmp_path):
    from runtimes.runners.onnxruntime import OnnxRunner

    with pytest.raises(UserError, match="unknown onnxruntime provider"):
        OnnxRunner(tiny_onnx, provider="directml")
    lonely = tmp_path / "m.onnx"
    lonely.write_bytes(tiny_onnx.read_bytes())
    with pytest.raises(UserError, match="meta.json"):
        OnnxRunner(lonely)
    with pytest.raises(UserError, match="must be entered"):
        OnnxRunner(tiny_onnx).run({"image": _x((1, 3, 8, 8))})


def test_tflite_runner_signatures_batch_and_xnnpack(tiny_tflite, tiny_onnx):
    from runtimes.runners.onnxruntime import OnnxRunner
    from runtimes.runners.tflite import TFLiteRunner

    x = _x((2, 3, 24, 32), seed=3)
    level = np.array([35.0], np.float32)
    with OnnxRunner(tiny_onnx, provider="cpu") as ref:
        want = ref.run({"image": x, "level": level})["restored"]
    outs = []
    for xnnpack in (True, False):
        with TFLiteRunner(tiny_tflite, threads=2, xnnpack=xnnpack) as r:
            assert isinstance(r, Runner) and r.sizes() == {"s32x32": (32, 32), "s24x32": (24, 32)}
            outs.append(r.run({"image": x, "level": level})["restored"])
            with pytest.raises(UserError, match="no signature for 20x20"):
                r.run({"image": _x((1, 3, 20, 20)), "level": level})
    for out in outs:
        assert out.shape == x.shape
        np.testing.assert_allclose(out, want, rtol=0, atol=1e-4)


def test_tflite_backend_choice(tiny_tflite):
    from runtimes.runners.tflite import load_interpreter_module

    mod, name = load_interpreter_module("litert")
    assert name == "litert" and hasattr(mod, "Interpreter")
    with pytest.raises(UserError, match="unknown TFLite backend"):
        load_interpreter_module("tfjs")


def test_tflite_runtime_built_for_numpy1_is_a_clear_error(monkeypatch):
    import sys
    import types

    from runtimes.runners import tflite

    assert tflite.numpy_abi_problem("2.14.0", "1.26.4") is None
    assert tflite.numpy_abi_problem("2.15.0", "2.1.0") is None
    msg = tflite.numpy_abi_problem("2.14.0", "2.4.6")
    assert "tflite-runtime 2.14.0" in msg and "NumPy 2.4.6" in msg and "pip install 'numpy<2'" in msg

    package, interpreter = types.ModuleType("tflite_runtime"), types.ModuleType("tflite_runtime.interpreter")
    package.__version__, package.interpreter = "2.14.0", interpreter
    monkeypatch.setitem(sys.modules, "tflite_runtime", package)
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", interpreter)
    monkeypatch.setattr(np, "__version__", "2.3.0")
    with pytest.raises(UserError, match=r"built for NumPy 1\.x and cannot run with NumPy 2\.3\.0"):
        tflite.load_interpreter_module("tflite-runtime")
    monkeypatch.setattr(np, "__version__", "1.26.4")
    assert tflite.load_interpreter_module("tflite-runtime") == (interpreter, "tflite-runtime")


@pytest.mark.parametrize(("backend", "xnnpack", "allocates"), [("tflite-runtime", True, True),
                                                               ("tflite-runtime", False, False),
                                                               ("litert", True, False)])
def test_tflite_runtime_gets_its_xnnpack_delegate(tiny_tflite, monkeypatch, backend, xnnpack, allocates):
    """tflite-runtime applies XNNPACK only inside allocate_tensors; ai-edge-litert must not pay that call's memory."""
    import types

    from runtimes.runners import tflite

    calls = []

    class Interpreter:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

        def allocate_tensors(self):
            calls.append(self.kwargs["model_path"])

        def __getattr__(self, name):  # the signature checks at load read the real model
            from ai_edge_litert.interpreter import Interpreter as Real

            return getattr(Real(model_path=self.kwargs["model_path"]), name)

    fake = types.SimpleNamespace(Interpreter=Interpreter, OpResolverType=types.SimpleNamespace(
        BUILTIN_WITHOUT_DEFAULT_DELEGATES="builtin"))
    monkeypatch.setattr(tflite, "load_interpreter_module", lambda b: (fake, backend))
    with tflite.TFLiteRunner(tiny_tflite, xnnpack=xnnpack) as r:
        assert r.name == f"{backend}-{'xnnpack' if xnnpack else 'builtin'}"
    assert calls == ([str(tiny_tflite)] if allocates else [])
