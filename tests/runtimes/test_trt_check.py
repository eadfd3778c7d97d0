"""The static TensorRT checks: targets per version, the operator-support check on small hand-built graphs, the
installed-version line of the build script (run in sh against a stand-in trtexec)."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from runtimes.core.errors import UserError
from runtimes.runners.trt_ops import TABLES, table_for, with_rows
from runtimes.runners.trt_targets import resolve_target, target_key, version_from_code

onnx = pytest.importorskip("onnx", reason="onnx not installed (pip install 'levelres[onnx]')")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from runtimes.runners.trt_check import check_graph, graph_problems  # noqa: E402

F, U8 = TensorProto.FLOAT, TensorProto.UINT8


def _model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _image(dtype=F, dims=("N", 3, "H", "W")):
    return helper.make_tensor_value_info("image", dtype, list(dims))


def _out(dtype=F, dims=("N", 3, "H", "W")):
    return helper.make_tensor_value_info("restored", dtype, list(dims))


def _relu_model(op="Relu", opset=17, **attrs):
    return _model([helper.make_node(op, ["image"], ["restored"], **attrs)], [_image()], [_out()], opset=opset)


def _problems(proto, key):
    return graph_problems(proto, resolve_target(key), table_for(key))


@pytest.mark.parametrize("given,key,opset", [("8.5", "8.5", 17), ("8.5.2", "8.5", 17), ("8.6", "8.6", 17),
                                             ("10", "10", 18), ("10.3.0", "10", 18), ("11.1", "11", 18)])
def test_targets(given, key, opset):
    target = resolve_target(given)
    assert target.key == key and target.opset == opset and target.opset <= target.max_opset
    assert target_key(given) == key


def test_jetpack_alias_and_bad_versions():
    assert resolve_target(None, jetpack="5").key == "8.5" and resolve_target(None, jetpack="6").key == "8.6"
    assert resolve_target(None, jetpack="6.1").key == "10" and resolve_target(None).key == "10"
    for bad in ("8.4", "9.2", "7", "x", "12"):
        with pytest.raises(UserError, match="--trt-version 8.5, 8.6, 10 or 11"):
            resolve_target(bad)
    with pytest.raises(UserError, match="ships TensorRT 10.x, not 8.5"):
        resolve_target("8.5", jetpack="6.2")
    with pytest.raises(UserError, match="unknown --jetpack"):
        resolve_target(None, jetpack="4.6")


def test_version_codes():
    assert version_from_code(8502) == "8.5.2" and version_from_code(8611) == "8.6.11"
    assert version_from_code(100300) == "10.3.0" and version_from_code(110000) == "11.0.0"


def test_every_table_records_its_source():
    for key, table in TABLES.items():
        assert table.version == key and "onnx/onnx-tensorrt docs/operators.md" in table.source
        assert {"Conv", "Mul", "Add", "DepthToSpace", "QuantizeLinear", "DequantizeLinear"} <= set(table.rows)


def test_op_outside_a_table_is_refused():
    ln = helper.make_node("LayerNormalization", ["image", "g", "b"], ["restored"], axis=1)
    inits = [numpy_helper.from_array(np.ones([3, 1, 1], np.float32), n) for n in ("g", "b")]
    proto = _model([ln], [_image()], [_out()], inits)
    with pytest.raises(UserError, match=r"TensorRT 8.5 cannot parse this graph: LayerNormalization .* unsupported"):
        check_graph(proto, resolve_target("8.5"))
    assert _problems(proto, "8.6") == [] and _problems(proto, "10") == []  # added in 8.6 (Changelog)
    for key in TABLES:
        assert "outside the operator table" in _problems(_relu_model("Einsum", equation="ij->ij"), key)[0]
    smaller = with_rows(table_for("10"), Relu=table_for("10").rows["Relu"].__class__(frozenset()))
    assert graph_problems(_relu_model(), resolve_target("10"), smaller)


def test_fp16_clamp_as_min_max():  # the fp16 graph of a calibrated level map clamps with Min/Max
    lo, hi = (numpy_helper.from_array(np.array([v], np.float16), n) for v, n in ((0.0, "lo"), (1.0, "hi")))
    nodes = [helper.make_node("Cast", ["image"], ["h"], to=TensorProto.FLOAT16),
             helper.make_node("Max", ["h", "lo"], ["a"]), helper.make_node("Min", ["a", "hi"], ["b"]),
             helper.make_node("Cast", ["b"], ["restored"], to=F)]
    proto = _model(nodes, [_image()], [_out()], [lo, hi])
    for key in TABLES:
        assert _problems(proto, key) == [], key


def test_opset_ceiling_per_version():
    proto = _relu_model(opset=18)
    assert "parses opsets up to 17" in _problems(proto, "8.5")[0]
    assert _problems(proto, "10") == [] and _problems(_relu_model(opset=21), "10")


def test_uint8_only_at_the_boundary_through_a_cast():
    ok = _model([helper.make_node("Cast", ["image"], ["x"], to=F), helper.make_node("Relu", ["x"], ["y"]),
                 helper.make_node("Cast", ["y"], ["restored"], to=U8)], [_image(U8)], [_out(U8)])
    for key in TABLES:
        assert _problems(ok, key) == [], key
    bad = _model([helper.make_node("Transpose", ["image"], ["t"], perm=[0, 3, 1, 2]),
                  helper.make_node("Cast", ["t"], ["restored"], to=F)], [_image(U8, ("N", "H", "W", 3))], [_out()])
    assert "UINT8 is only supported as a network input or output" in _problems(bad, "10")[0]


def test_constant_and_zero_inputs():
    shape = helper.make_node("Shape", ["image"], ["s"])
    axes = helper.make_node("Slice", ["s", "st", "en", "s"], ["ax"])  # axes computed at run time
    sl = helper.make_node("Slice", ["image", "st", "en", "ax"], ["restored"])
    inits = [numpy_helper.from_array(np.array([0], np.int64), "st"), numpy_helper.from_array(np.array([1], np.int64),
                                                                                              "en")]
    proto = _model([shape, axes, sl], [_image()], [_out()], inits)
    assert any("computed at run time" in p for p in _problems(proto, "8.5"))
    assert not any("computed at run time" in p for p in _problems(proto, "11"))  # tensor axes since 10.3
    q = helper.make_node("QuantizeLinear", ["image", "sc", "zp"], ["q"])
    dq = helper.make_node("DequantizeLinear", ["q", "sc", "zp"], ["restored"])
    for zp, bad in ((0, False), (3, True)):
        inits = [numpy_helper.from_array(np.float32(0.1), "sc"), numpy_helper.from_array(np.int8(zp), "zp")]
        problems = _problems(_model([q, dq], [_image()], [_out()], inits), "8.5")
        assert bool(problems) == bad and all("zero point" in p for p in problems)


def test_int32_dequantize_and_dynamic_level_are_refused():
    dq = helper.make_node("DequantizeLinear", ["b", "sc"], ["bias"])
    add = helper.make_node("Add", ["image", "bias"], ["restored"])
    inits = [numpy_helper.from_array(np.array([5], np.int32), "b"), numpy_helper.from_array(np.float32(0.1), "sc")]
    proto = _model([dq, add], [_image()], [_out()], inits)
    for key in TABLES:
        assert "INT32 tensor 'b'" in _problems(proto, key)[0]
    level = helper.make_tensor_value_info("level", F, ["L"])
    mul = helper.make_node("Mul", ["image", "level"], ["restored"])
    assert "input 'level' has a dynamic shape" in _problems(_model([mul], [_image(), level], [_out()]), "10")[0]


def test_resize_mode_and_pool_rank():
    rs = helper.make_node("Resize", ["image", "", "sc"], ["restored"], mode="cubic")
    inits = [numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "sc")]
    assert "mode='cubic'" in _problems(_model([rs], [_image()], [_out()], inits), "8.5")[0]
    pool = helper.make_node("MaxPool", ["image"], ["restored"], kernel_shape=[2])
    proto = _model([pool], [_image(dims=("N", 3, "W"))], [_out(dims=("N", 3, "W"))])
    assert "rank-3 input: 2D or 3D pooling only" in _problems(proto, "8.5")[0]


@pytest.mark.parametrize("key,code,ok", [("8.5", "8502", True), ("8.5", "8602", False), ("8.6", "8602", True),
                                         ("10", "100300", True), ("10", "8502", False), ("11", "", False)])
def test_installed_version_line(tmp_path, key, code, ok):
    fake = tmp_path / "trtexec"
    banner = f"&&&& RUNNING TensorRT.trtexec [TensorRT v{code}] # trtexec" if code else "usage: trtexec"
    fake.write_text(f"#!/bin/sh\necho '{banner}'\nexit 1\n")
    fake.chmod(0o755)
    line = resolve_target(key).version_check_line()
    proc = subprocess.run(["sh", "-c", f'TRTEXEC={fake}; {line}; echo continued'], capture_output=True, text=True)
    assert (proc.returncode == 0 and "continued" in proc.stdout) == ok, proc.stderr
    if not ok:
        assert proc.returncode == 1 and f"made for TensorRT {resolve_target(key).label}" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
