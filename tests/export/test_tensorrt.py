"""TensorRT export without TensorRT: the ONNX, the trtexec script, and the version-aware precision switch."""

from __future__ import annotations

import sys
import types

import pytest

onnx = pytest.importorskip("onnx", reason="onnx not installed (pip install 'levelres[onnx]')")
pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install 'levelres[onnx]')")

from export import tensorrt as trt_export  # noqa: E402
from export.base import ExportConfig  # noqa: E402
from export.tensorrt import TensorRTConfig, export_tensorrt, parse_shapes, trtexec_command  # noqa: E402
from runtimes.errors import UserError  # noqa: E402
from runtimes.trt_precision import plan_for  # noqa: E402

SHAPES = parse_shapes("1x3x64x64:1x3x128x128:1x3x256x256")


def _ops(path):
    return {n.op_type for n in onnx.load(str(path)).graph.node}


def test_writes_onnx_and_script_without_tensorrt(tiny_ckpt, tmp_path, monkeypatch):
    monkeypatch.setattr(trt_export, "installed_version", lambda: None)
    result = export_tensorrt(TensorRTConfig(ExportConfig(str(tiny_ckpt), tmp_path, precision="fp16"), shapes=SHAPES))
    assert result.path.suffix == ".onnx" and result.path.is_file()
    assert result.validation["status"] == "passed"
    script = tmp_path / "tiny-folded-fp16-trt.build_engine.sh"
    text = script.read_text()
    assert "trtexec --onnx=tiny-folded-fp16-trt.onnx --saveEngine=tiny-folded-fp16-trt.engine" in text
    assert "--minShapes=image:1x3x64x64 --optShapes=image:1x3x128x128 --maxShapes=image:1x3x256x256" in text
    assert "--fp16" in text and "--stronglyTyped" not in text
    assert "Cast" not in _ops(result.path)  # TensorRT 10: fp32 ONNX, fp16 from the builder flag
    assert any("build it on the target" in n for n in result.notes)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "tiny-folded-fp16-trt.build_engine.sh", "tiny-folded-fp16-trt.onnx", "tiny-folded-fp16-trt.onnx.meta.json"]


def test_version_switch_with_fake_tensorrt_11(tiny_ckpt, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", types.SimpleNamespace(__version__="11.0.1"))
    monkeypatch.setattr(trt_export, "gpu_present", lambda: False)
    assert trt_export.installed_version() == "11.0.1"
    result = export_tensorrt(TensorRTConfig(ExportConfig(str(tiny_ckpt), tmp_path, precision="fp16"), shapes=SHAPES))
    meta = result.meta
    assert meta["tensorrt"]["target_major"] == 11 and meta["tensorrt"]["strongly_typed"]
    assert meta["onnx_precision"] == "fp16" and "Cast" in _ops(result.path)
    text = (tmp_path / "tiny-folded-fp16-trt.build_engine.sh").read_text()
    assert "--stronglyTyped" in text and "--fp16" not in text
    assert any("no NVIDIA GPU" in n for n in result.notes)


def test_int8_qdq(tiny_ckpt, calib_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(trt_export, "installed_version", lambda: None)
    cfg = TensorRTConfig(ExportConfig(str(tiny_ckpt), tmp_path, precision="int8", calibration=calib_dir), shapes=SHAPES)
    result = export_tensorrt(cfg)
    assert {"QuantizeLinear", "DequantizeLinear"} <= _ops(result.path)
    assert result.validation["status"] == "passed" and result.validation["min_psnr_vs_reference"] >= 35
    assert "--int8" in (tmp_path / "tiny-folded-int8-trt.build_engine.sh").read_text()


def test_precision_plans():
    assert plan_for("fp16", "10.3.0").builder_flags == ("FP16",)
    assert plan_for("int8", "10.3", engine_build=True).calibrator
    assert plan_for("int8", "10").onnx_precision == "int8-qdq"
    p11 = plan_for("int8", "11.0")
    assert p11.strongly_typed and p11.onnx_precision == "int8-qdq" and p11.builder_flags == ()
    with pytest.raises(UserError, match="TensorRT 8"):
        plan_for("fp16", "8.6")


def test_trtexec_command_refit():
    cmd = trtexec_command("m.onnx", "m.engine", SHAPES, plan_for("fp32", None), refit=True)
    assert cmd[0] == "trtexec" and "--refit" in cmd and "--timingCacheFile=m.timing.cache" in cmd


@pytest.mark.parametrize("bad", ["1x3x256", "1x3x64x64:1x3x32x32:1x3x128x128", "axbxcxd", "1x4x64x64", "1:2"])
def test_malformed_shapes(bad):
    with pytest.raises(UserError):
        parse_shapes(bad)
