"""Command lines: one-line errors (exit 2, no traceback), no partial artifacts, --allow-mismatch."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from export import all as export_all_mod  # noqa: E402
from export import onnx as export_onnx_mod  # noqa: E402
from export import tensorrt as export_trt_mod  # noqa: E402
from export import tflite as export_tflite_mod  # noqa: E402
from export import validate as validate_mod  # noqa: E402
from runtimes.core.errors import MissingDependency, run_cli  # noqa: E402


def _run(module, argv, capsys):
    code = run_cli(module.main, argv)
    err = capsys.readouterr().err.strip()
    return code, err


def _one_line_error(code, err, needle):
    assert code == 2, err
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert needle in err, err


def test_corrupt_checkpoint(tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    _one_line_error(*_run(export_onnx_mod, ["--weights", str(bad), "-o", str(tmp_path / "o")], capsys),
                    "not a readable safetensors checkpoint")
    _one_line_error(*_run(export_onnx_mod, ["--weights", "no-such-weights", "-o", str(tmp_path / "o")], capsys),
                    "checkpoint not found")


def test_unwritable_output(tiny_ckpt, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _one_line_error(*_run(export_onnx_mod, ["--weights", str(tiny_ckpt), "-o", str(blocker / "sub")], capsys),
                    "cannot create output folder")


@pytest.mark.parametrize("precision", ["int8", "a16w8"])
def test_full_integer_needs_calibration(tiny_ckpt, tmp_path, capsys, precision):
    argv = ["--weights", str(tiny_ckpt), "-o", str(tmp_path), "--precision", precision, "--size", "32x32"]
    _one_line_error(*_run(export_tflite_mod, argv, capsys), "--calibration")
    assert list(tmp_path.iterdir()) == []


def test_unknown_activation_ranges(tiny_ckpt, tmp_path, capsys):
    argv = ["--weights", str(tiny_ckpt), "-o", str(tmp_path), "--precision", "int8", "--ranges", "entropy"]
    _one_line_error(*_run(export_tflite_mod, argv, capsys), "--ranges")
    assert list(tmp_path.iterdir()) == []
    for precision in ("fp16", "a16w8"):  # a16w8 always uses min/max ranges
        argv = ["--weights", str(tiny_ckpt), "-o", str(tmp_path), "--precision", precision, "--ranges", "minmax"]
        _one_line_error(*_run(export_tflite_mod, argv, capsys), "needs --precision int8")
        assert list(tmp_path.iterdir()) == []


def test_int8_with_runtime_weights_is_refused(tiny_ckpt, calib_dir, tmp_path, capsys):
    pytest.importorskip("litert_torch")
    args = ["--weights", str(tiny_ckpt), "-o", str(tmp_path), "--level-mode", "weights", "--precision", "int8",
            "--calibration", str(calib_dir), "--size", "32x32"]
    _one_line_error(*_run(export_tflite_mod, args, capsys), "needs constant conv weights")
    assert list(tmp_path.iterdir()) == []


def test_a_runtime_that_cannot_load_the_artifact_fails_validation(tiny_ckpt):
    from export.validate import describe, validate_with
    from train.checkpoint import load_checkpoint

    class Broken:
        name = "fake-runtime"

        def __enter__(self):
            raise RuntimeError("kernels/conv.cc:390 zero_point != 0\nNode number 9 (CONV_2D) failed to prepare.")

        def __exit__(self, *exc):
            return None

    model, _ = load_checkpoint(tiny_ckpt)
    result = validate_with(Broken(), model, {"precision": "int8", "layout": "NCHW"})
    assert result["status"] == "failed" and "CONV_2D) failed to prepare" in describe(result)


def test_malformed_sizes_and_shapes(tiny_ckpt, tmp_path, capsys):
    _one_line_error(*_run(export_tflite_mod, ["--weights", str(tiny_ckpt), "--size", "720by1280"], capsys),
                    "malformed size")
    _one_line_error(*_run(export_trt_mod, ["--weights", str(tiny_ckpt), "--shapes", "1x3x64"], capsys),
                    "malformed shape")


def test_unknown_format_and_fixed_without_level(tiny_ckpt, tmp_path, capsys):
    _one_line_error(*_run(export_all_mod, ["--weights", str(tiny_ckpt), "--formats", "onnx,tfjs"], capsys),
                    "unknown format 'tfjs'")
    _one_line_error(*_run(export_onnx_mod, ["--weights", str(tiny_ckpt), "-o", str(tmp_path), "--level-mode",
                                            "fixed"], capsys), "needs --level")


def test_missing_dependency_names_extra(tiny_ckpt, tmp_path, capsys, monkeypatch):
    def missing(module, extra):
        raise MissingDependency(module, extra)

    monkeypatch.setattr(export_onnx_mod, "require", missing)
    _one_line_error(*_run(export_onnx_mod, ["--weights", str(tiny_ckpt), "-o", str(tmp_path)], capsys),
                    "pip install 'levelres[onnx]'")
    assert list(tmp_path.iterdir()) == []


def test_validation_failure_leaves_nothing_unless_allowed(tiny_ckpt, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(validate_mod.TOLERANCES, "fp32", {"max_abs_diff": -1.0})
    out = tmp_path / "o"
    _one_line_error(*_run(export_onnx_mod, ["--weights", str(tiny_ckpt), "-o", str(out)], capsys),
                    "validation failed")
    assert not out.exists()  # a failed export leaves no empty output folder
    code = run_cli(export_onnx_mod.main, ["--weights", str(tiny_ckpt), "-o", str(out), "--allow-mismatch"])
    line = capsys.readouterr().out.strip()
    assert code == 0 and "validation failed" in line and line.startswith(str(out / "tiny-folded-fp32.onnx"))
    meta = json.loads((out / "tiny-folded-fp32.onnx.meta.json").read_text())
    assert meta["validation"]["status"] == "failed"


def test_all_reports_skipped_formats(tiny_ckpt, tmp_path, monkeypatch):
    from dataclasses import replace

    from export.base import ExportConfig
    from runtimes.core.formats import FORMATS

    monkeypatch.setitem(FORMATS, "coreml", replace(FORMATS["coreml"], export_needs=("no_such_module_for_tests",)))
    rows = export_all_mod.export_all(export_all_mod.AllConfig(ExportConfig(str(tiny_ckpt), tmp_path),
                                                              formats=("coreml",)))
    assert rows[0].made == "skipped" and "pip install 'levelres[coreml]'" in rows[0].note
    table = export_all_mod.format_table(rows)
    assert table.splitlines()[0].split()[:3] == ["format", "made", "validated"]


@pytest.mark.parametrize("module", ["export.onnx", "export.coreml"])
def test_calibration_is_not_offered_without_a_calibrated_precision(module, tiny_ckpt, tmp_path, capsys, calib_dir):
    """ONNX and Core ML have no int8: --calibration is not offered there (export.tensorrt and export.tflite keep it)."""
    import importlib

    mod = importlib.import_module(module)
    code, err = _run(mod, ["--weights", str(tiny_ckpt), "-o", str(tmp_path), "--calibration", str(calib_dir)], capsys)
    assert code == 2 and "unrecognized arguments: --calibration" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_all_makes_the_camera_artifacts(tiny_ckpt, tmp_path, capsys):
    """`export.all --nhwc --io uint8`: bytes in and out, NHWC, for ONNX, TensorRT and TFLite; Core ML image I/O."""
    import importlib.util

    formats = ["onnx", "tensorrt"] + [f for f, mods in (("tflite", ("litert_torch", "ai_edge_litert")),
                                                        ("coreml", ("coremltools",)))
                                      if all(importlib.util.find_spec(m) for m in mods)]
    assert export_all_mod.main(["--weights", str(tiny_ckpt), "-o", str(tmp_path), "--formats", ",".join(formats),
                                "--nhwc", "--io", "uint8", "--size", "32x32"]) == 0
    metas = {json.loads(p.read_text())["artifact_format"]: json.loads(p.read_text())
             for p in tmp_path.glob("*.meta.json")}
    for fmt in ("onnx", "tensorrt-onnx", "tflite"):
        if fmt in metas:
            assert (metas[fmt]["layout"], metas[fmt]["io"]) == ("NHWC", "uint8"), fmt
    assert "onnx" in metas and "tensorrt-onnx" in metas
    if "coreml" in metas:
        assert metas["coreml"]["image_io"] and metas["coreml"]["layout"] == "NCHW"
    assert "failed" not in capsys.readouterr().out
