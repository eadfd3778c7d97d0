"""TensorRT export without TensorRT: the ONNX, the trtexec script, and the version-aware precision switch."""

from __future__ import annotations

import json
import sys
import types

import pytest

onnx = pytest.importorskip("onnx", reason="onnx not installed (pip install 'levelres[onnx]')")
pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install 'levelres[onnx]')")

from export import tensorrt as trt_export  # noqa: E402
from export.base import ExportConfig  # noqa: E402
from export.tensorrt import TensorRTConfig, export_tensorrt, parse_shapes, trtexec_command  # noqa: E402
from runtimes.core.errors import UserError  # noqa: E402
from runtimes.runners.trt_precision import plan_for  # noqa: E402
from runtimes.runners.trt_targets import resolve_target  # noqa: E402

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
    assert '"$TRTEXEC" --onnx=tiny-folded-fp16-trt.onnx --saveEngine=tiny-folded-fp16-trt.engine' in text
    assert "Made for TensorRT 10.x" in text and 'case "$v" in 10????)' in text
    assert "--exportTimes=tiny-folded-fp16-trt.times.json --exportProfile=tiny-folded-fp16-trt.profile.json" in text
    assert "--minShapes=image:1x3x64x64 --optShapes=image:1x3x128x128 --maxShapes=image:1x3x256x256" in text
    assert "--fp16" in text and "--stronglyTyped" not in text
    assert "Cast" not in _ops(result.path)  # TensorRT 10: fp32 ONNX, fp16 from the builder flag
    assert any("build it on the target" in n for n in result.notes)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "tiny-folded-fp16-trt.build_engine.sh", "tiny-folded-fp16-trt.onnx", "tiny-folded-fp16-trt.onnx.golden",
        "tiny-folded-fp16-trt.onnx.meta.json"]


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
    p85 = plan_for("int8", "8.5")
    assert p85.major == 8 and p85.onnx_precision == "int8-qdq" and p85.trtexec_flags == ("--int8", "--fp16")
    assert plan_for("fp16", "8.6.2").builder_flags == ("FP16",)
    with pytest.raises(UserError, match="TensorRT 8.4 is not supported"):
        plan_for("fp16", "8.4")


def test_trtexec_command_refit():
    cmd = trtexec_command("m.onnx", "m.engine", SHAPES, plan_for("fp32", None), refit=True)
    assert cmd[0] == "trtexec" and "--refit" in cmd and "--timingCacheFile=m.timing.cache" in cmd


@pytest.mark.parametrize("bad", ["1x3x256", "1x3x64x64:1x3x32x32:1x3x128x128", "axbxcxd", "1x4x64x64", "1:2"])
def test_malformed_shapes(bad):
    with pytest.raises(UserError):
        parse_shapes(bad)


def _opset(path):
    return next(o.version for o in onnx.load(str(path)).opset_import if o.domain in ("", "ai.onnx"))


@pytest.mark.parametrize("version,opset,flag", [("8.5", 17, "--fp16"), ("8.6", 17, "--fp16"), ("10", 18, "--fp16"),
                                                ("11", 18, "--stronglyTyped")])
def test_each_version_writes_its_opset_checked_and_validated(tiny_ckpt, tmp_path, monkeypatch, version, opset, flag):
    monkeypatch.setattr(trt_export, "installed_version", lambda: None)
    cfg = TensorRTConfig(ExportConfig(str(tiny_ckpt), tmp_path, precision="fp16"), shapes=SHAPES,
                         target_version=version)
    result = export_tensorrt(cfg)
    assert _opset(result.path) == opset == result.meta["opset"]
    assert result.validation["status"] == "passed"
    trt_meta = result.meta["tensorrt"]
    assert trt_meta["support_check"]["status"] == "passed" and "onnx-tensorrt" in trt_meta["support_check"]["table"]
    text = (tmp_path / "tiny-folded-fp16-trt.build_engine.sh").read_text()
    assert f"Made for TensorRT {resolve_target(version).label}" in text and flag in text
    assert f"(TensorRT {resolve_target(version).label})" in result.notes[-1]


# every level mode, precision and I/O variant on opset 17 (TensorRT 8.5), with the Split of the affine form and
# the level-moved biases of the shift form, and the multi-scale (unet) topology; the 8.6/10/11 tables are
# checked on the same graphs
MODES = [
    ("tiny_ckpt", dict(level_mode="weights", precision="fp32")),
    ("tiny_ckpt", dict(level_mode="fixed", level=25.0, precision="fp16")),
    ("tiny_ckpt", dict(nhwc=True, io="uint8", precision="fp16")),
    ("tiny_ckpt", dict(io="uint8", precision="fp32")),
    ("affine_ckpt", dict(precision="fp16")),
    ("shift_ckpt", dict(level_mode="weights", precision="fp16")),
    ("shift_ckpt", dict(precision="fp16")),
    ("shift_ckpt", dict(precision="fp32")),
    ("unet_ckpt", dict(precision="fp16")),
    ("tiny_ckpt", dict(precision="int8", nhwc=True)),
]


@pytest.mark.parametrize("ckpt,kw", MODES, ids=lambda v: "-".join(f"{k}={x}" for k, x in v.items())
                         if isinstance(v, dict) else v)
def test_opset17_every_mode(request, calib_dir, tmp_path, monkeypatch, ckpt, kw):
    from runtimes.runners.trt_check import check_graph

    monkeypatch.setattr(trt_export, "installed_version", lambda: None)
    nhwc = kw.get("nhwc", False)
    shapes = parse_shapes("1x64x64x3:1x128x128x3:1x256x256x3" if nhwc else "1x3x64x64:1x3x128x128:1x3x256x256", nhwc)
    common = ExportConfig(str(request.getfixturevalue(ckpt)), tmp_path, calibration=calib_dir, **kw)
    result = export_tensorrt(TensorRTConfig(common, shapes=shapes, jetpack="5"))
    assert result.meta["tensorrt"]["target"] == "8.5" and _opset(result.path) == 17
    assert result.validation["status"] == "passed", result.validation
    proto = onnx.load(str(result.path))
    onnx.checker.check_model(proto, full_check=True)
    if kw.get("io") == "uint8":  # uint8 touches only the boundary Casts
        uses = [n.op_type for n in proto.graph.node if "image" in n.input or "restored" in n.output]
        assert uses == ["Cast", "Cast"], uses
    for version in ("8.6", "10", "11"):
        check_graph(proto, resolve_target(version))


def test_refused_graph_leaves_nothing(tiny_ckpt, tmp_path, monkeypatch):
    from runtimes.runners import trt_ops

    monkeypatch.setattr(trt_export, "installed_version", lambda: None)
    rows = {k: v for k, v in trt_ops.TABLES["8.5"].rows.items() if k != "DepthToSpace"}
    monkeypatch.setitem(trt_ops.TABLES, "8.5", trt_ops.SupportTable("8.5", "test table", rows))
    with pytest.raises(UserError, match=r"^TensorRT 8.5 cannot parse this graph: DepthToSpace .* outside the operator"):
        export_tensorrt(TensorRTConfig(ExportConfig(str(tiny_ckpt), tmp_path), shapes=SHAPES, target_version="8.5"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args,words", [(["--trt-version", "9"], "TensorRT 9 is not supported"),
                                        (["--trt-version", "8.5", "--jetpack", "6.1"], "ships TensorRT 10.x"),
                                        (["--jetpack", "4"], "invalid choice")])
def test_cli_bad_target_is_one_line(tiny_ckpt, tmp_path, capsys, args, words):
    from runtimes.core.errors import run_cli

    code = run_cli(trt_export.main, ["--weights", str(tiny_ckpt), "-o", str(tmp_path), *args])
    err = capsys.readouterr().err.strip()
    assert code != 0 and words in err and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []


def test_lowering_refuses_an_operator_without_a_rewrite():
    from onnx import TensorProto, helper

    from export.trt_onnx import lower_opset

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    node = helper.make_node("Pad", ["x", "p"], ["y"])
    pads = onnx.numpy_helper.from_array(__import__("numpy").array([0, 0, 0, 0], "int64"), "p")
    proto = helper.make_model(helper.make_graph([node], "g", [x], [y], [pads]),
                              opset_imports=[helper.make_opsetid("", 18)])
    with pytest.raises(UserError, match="Pad changed in opset 18 and has no rewrite"):
        lower_opset(proto, 17)


def test_nhwc_uint8_cli_uses_default_shapes_in_its_layout(tiny_ckpt, tmp_path, monkeypatch, capsys):
    """`--nhwc --io uint8` without --shapes: the default profile in NHWC, in the metadata and the trtexec line."""
    monkeypatch.setattr(trt_export, "installed_version", lambda: None)
    assert trt_export.main(["--weights", str(tiny_ckpt), "-o", str(tmp_path), "--nhwc", "--io", "uint8",
                            "--no-validate"]) == 0
    meta = json.loads((tmp_path / "tiny-folded-fp16-nhwc-u8-trt.onnx.meta.json").read_text())
    assert meta["tensorrt"]["shapes"] == [[1, 256, 256, 3], [1, 720, 1280, 3], [1, 1088, 1920, 3]]
    assert "--minShapes=image:1x256x256x3" in meta["tensorrt"]["trtexec"]
    assert trt_export.default_shapes(False) == ((1, 3, 256, 256), (1, 3, 720, 1280), (1, 3, 1088, 1920))
    with pytest.raises(UserError, match="not 1xHxWx3"):  # a library call with NCHW shapes for an NHWC artifact
        export_tensorrt(TensorRTConfig(ExportConfig(str(tiny_ckpt), tmp_path / "b", nhwc=True), shapes=SHAPES))
