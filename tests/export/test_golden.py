"""Golden vectors: every exporter writes `<artifact>.golden/`, and they check out against every runner available here
(the artifact's own runtime and the torch reference); damaged or wrong outputs fail the check."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install 'levelres[onnx]')")

from export.base import ExportConfig  # noqa: E402
from runtimes.apps import golden as g  # noqa: E402
from runtimes.core.errors import UserError  # noqa: E402

HAS_TFLITE = all(importlib.util.find_spec(m) for m in ("litert_torch", "ai_edge_litert"))
HAS_COREML = importlib.util.find_spec("coremltools") is not None


@pytest.fixture(scope="module")
def exported(tiny_ckpt, affine_ckpt, tmp_path_factory):
    from export.onnx import OnnxConfig, export_onnx
    from export.tensorrt import TensorRTConfig, export_tensorrt

    out = tmp_path_factory.mktemp("golden")
    cfg = lambda ckpt=tiny_ckpt, **kw: ExportConfig(str(ckpt), out, **kw)  # noqa: E731
    made = {
        "onnx": export_onnx(OnnxConfig(cfg())),
        "onnx-u8-nhwc": export_onnx(OnnxConfig(cfg(io="uint8", nhwc=True))),
        "onnx-affine-fixed": export_onnx(OnnxConfig(cfg(affine_ckpt, level_mode="fixed", level=55.0))),
        "tensorrt-u8-nhwc": export_tensorrt(TensorRTConfig(cfg(precision="fp16", io="uint8", nhwc=True),
                                                           shapes=((1, 32, 48, 3),) * 3)),
    }
    if HAS_TFLITE:
        from export.tflite import TFLiteConfig, export_tflite

        made["tflite"] = export_tflite(TFLiteConfig(cfg(), sizes=((40, 24), (32, 32))))
        made["tflite-u8-nhwc-fixed"] = export_tflite(TFLiteConfig(cfg(io="uint8", nhwc=True, level_mode="fixed",
                                                                      level=35.0), sizes=((32, 32),)))
    if HAS_COREML:
        from export.coreml import CoreMLConfig, export_coreml

        made["coreml-image-io"] = export_coreml(CoreMLConfig(cfg(precision="fp16"), image_io=True,
                                                             enumerated=((32, 32), (48, 40))))
    return made


def artifact_runner(result):
    from runtimes.runners.factory import load_runner

    return load_runner(result.path, threads=1)[0]


VARIANTS = ["onnx", "onnx-u8-nhwc", "onnx-affine-fixed", "tensorrt-u8-nhwc", "tflite", "tflite-u8-nhwc-fixed"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_goldens_pass_on_every_runner_here(exported, variant, tiny_ckpt, affine_ckpt):
    from train.reference import TorchRunner

    if variant not in exported:
        pytest.skip("litert-torch / ai-edge-litert not installed (pip install 'levelres[tflite]')")
    result = exported[variant]
    folder = g.golden_dir(result.path)
    assert folder in result.extra_files and folder.is_dir()
    golden = g.load_golden(result.path)
    assert result.meta["golden"]["folder"] == folder.name and golden.spec["artifact"] == result.path.name
    with artifact_runner(result) as runner:
        report = g.check_runner(runner, golden)
    assert report["passed"], report
    ckpt = affine_ckpt if "affine" in variant else tiny_ckpt
    with TorchRunner(ckpt, threads=1) as ref:
        report = g.check_reference(ref, golden)
    assert report["passed"], report
    on_disk = json.loads(result.path.with_name(result.path.name + ".meta.json").read_text())
    assert on_disk["golden"]["levels"] == [c["level"] for c in golden.cases]


def test_golden_contents(exported):
    """Input from 8-bit data in the artifact's layout and type; neutral returns the input; sizes fit the artifact."""
    onnx = g.load_golden(exported["onnx"].path)
    assert onnx.spec["layout"] == "NCHW" and onnx.image.shape == (1, 3, 64, 64) and onnx.image.dtype == np.float32
    from PIL import Image

    png = np.asarray(Image.open(onnx.folder / "input.png").convert("RGB"))
    np.testing.assert_array_equal(onnx.image[0].transpose(1, 2, 0), png.astype(np.float32) / np.float32(255))
    assert [c["level"] for c in onnx.cases] == [0.0, 35.0] and onnx.spec["tolerance"] == {"max_abs_diff": 1e-4}
    np.testing.assert_array_equal(onnx.expected[0], onnx.image)  # the neutral level returns the input
    assert onnx.cases[0]["expected"]["file"] == "input.bin"  # identical arrays are written once
    assert not np.array_equal(onnx.expected[1], onnx.image)
    u8 = g.load_golden(exported["onnx-u8-nhwc"].path)
    assert u8.image.dtype == np.uint8 and u8.image.shape == (1, 64, 64, 3)
    assert u8.spec["tolerance"] == {"max_abs_diff": 1.0} and "unchanged" in u8.spec["preprocessing"]
    fixed = g.load_golden(exported["onnx-affine-fixed"].path)
    assert [(c["level"], c["feed_level"]) for c in fixed.cases] == [(55.0, False)]
    trt = g.load_golden(exported["tensorrt-u8-nhwc"].path)  # the profile's minimum shape, in NHWC
    assert trt.image.shape == (1, 32, 48, 3) and trt.spec["tolerance"] == {"min_psnr_db": 45.0}
    if "tflite" in exported:
        tfl = g.load_golden(exported["tflite"].path)  # the smallest signature
        assert tfl.image.shape == (1, 3, 40, 24) and tfl.spec["signature"] == "s40x24"


@pytest.mark.skipif(not HAS_COREML, reason="coremltools not installed (pip install 'levelres[coreml]')")
def test_coreml_image_io_goldens_are_bytes_from_the_reference(exported, tiny_ckpt):
    """Core ML cannot run on Linux: the expected outputs come from the torch export graph, as bytes for image I/O."""
    from train.reference import TorchRunner

    golden = g.load_golden(exported["coreml-image-io"].path)
    assert golden.spec["layout"] == "NHWC" and golden.spec["io"] == "uint8" and golden.image.shape == (1, 32, 32, 3)
    assert "PyTorch" in golden.spec["expected_from"] and "CVPixelBuffer" in golden.spec["preprocessing"]
    with TorchRunner(tiny_ckpt, threads=1) as ref:
        assert g.check_reference(ref, golden)["passed"]


@pytest.mark.skipif(sys.platform != "darwin" or not HAS_COREML, reason="Core ML predicts on macOS only")
def test_coreml_runner_on_goldens(tiny_ckpt, tmp_path):
    from export.coreml import CoreMLConfig, export_coreml
    from runtimes.runners.coreml import CoreMLRunner

    result = export_coreml(CoreMLConfig(ExportConfig(str(tiny_ckpt), tmp_path, precision="fp16")))
    with CoreMLRunner(result.path) as runner:
        assert g.check_runner(runner, g.load_golden(result.path))["passed"]


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is None, reason="TensorRT not installed (Jetson/GPU only)")
def test_tensorrt_engine_on_goldens(exported):
    script = exported["tensorrt-u8-nhwc"].path.with_name(exported["tensorrt-u8-nhwc"].path.stem + ".build_engine.sh")
    subprocess.run(["sh", str(script)], check=True, cwd=script.parent)
    from runtimes.runners.tensorrt import TensorRTRunner

    engine = script.with_name(exported["tensorrt-u8-nhwc"].path.stem + ".engine")
    shutil.copy(exported["tensorrt-u8-nhwc"].path.with_name(exported["tensorrt-u8-nhwc"].path.name + ".meta.json"),
                engine.with_name(engine.name + ".meta.json"))
    with TensorRTRunner(engine) as runner:
        assert g.check_runner(runner, g.load_golden(exported["tensorrt-u8-nhwc"].path))["passed"]


def _copy(result, tmp_path) -> Path:
    dest = tmp_path / result.path.name
    shutil.copy(result.path, dest)
    shutil.copy(result.path.with_name(result.path.name + ".meta.json"), dest.with_name(dest.name + ".meta.json"))
    shutil.copytree(g.golden_dir(result.path), g.golden_dir(dest))
    return dest


def test_wrong_outputs_fail(exported, tmp_path):
    """The check can fail: one float off by 2e-4, a uint8 off by 2 codes, a wrong level, a damaged file."""
    from runtimes.runners.onnxruntime import OnnxRunner

    dest = _copy(exported["onnx"], tmp_path)
    folder = g.golden_dir(dest)
    spec = json.loads((folder / g.SPEC_FILE).read_text())
    entry = spec["cases"][1]["expected"]
    arr = np.fromfile(folder / entry["file"], dtype="<f4").reshape(entry["shape"])
    arr[0, 1, 5, 7] += 2e-4
    (folder / entry["file"]).write_bytes(g.array_bytes(arr))
    with pytest.raises(UserError, match="sha256"):
        g.load_golden(dest)
    entry["sha256"] = g.sha256(g.array_bytes(arr))
    (folder / g.SPEC_FILE).write_text(json.dumps(spec))
    with OnnxRunner(dest) as runner:
        report = g.check_runner(runner, g.load_golden(dest))
    assert not report["passed"] and report["cases"][0]["passed"] and not report["cases"][1]["passed"]
    assert 1.9e-4 < report["cases"][1]["max_abs_diff"] < 2.1e-4

    golden = g.load_golden(exported["onnx"].path)
    with OnnxRunner(exported["onnx"].path) as runner:
        wrong_level = g.check_golden(lambda x, lv: runner.run({"image": x, "level": np.array([lv + 10], np.float32)})[
            "restored"], golden)
        wrong_layout = g.check_golden(lambda x, lv: runner.run({"image": x, "level": np.array([lv], np.float32)})[
            "restored"].transpose(0, 1, 3, 2), golden)
    assert not wrong_level["passed"] and not wrong_layout["passed"]

    u8 = g.load_golden(exported["onnx-u8-nhwc"].path)
    off = lambda d: lambda x, lv: np.clip(  # noqa: E731
        u8.expected[[c["level"] for c in u8.cases].index(lv)].astype(int) + d, 0, 255).astype(np.uint8)
    assert g.check_golden(off(1), u8)["passed"] and not g.check_golden(off(3), u8)["passed"]
    assert not g.check_golden(lambda x, lv: u8.expected[0].astype(np.float32), u8)["passed"]  # wrong dtype


def test_tolerances_per_precision():
    assert g.tolerance_for("fp32", "float") == {"max_abs_diff": 1e-4}
    assert g.tolerance_for("fp32", "uint8") == {"max_abs_diff": 1.0}
    assert g.tolerance_for("fp16", "uint8") == {"min_psnr_db": 45.0}
    assert g.tolerance_for("int8", "float") == {"min_psnr_db": 35.0}
    with pytest.raises(UserError):
        g.tolerance_for("int4", "float")
    want = np.full((1, 3, 8, 8), 0.5, np.float32)
    assert g.compare(want + 0.002, want, {"min_psnr_db": 45.0}, "float")["passed"]  # 54 dB
    assert not g.compare(want + 0.01, want, {"min_psnr_db": 45.0}, "float")["passed"]  # 40 dB


def test_cli_checks_an_artifact_and_refuses_a_missing_golden(exported, tmp_path):
    path = exported["onnx-u8-nhwc"].path
    run = lambda *a: subprocess.run([sys.executable, "-m", "runtimes.golden", *map(str, a)],  # noqa: E731
                                    capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2])
    ok = run(path)
    assert ok.returncode == 0 and ok.stdout.startswith("golden passed: 2 cases on onnxruntime"), ok.stderr
    dest = _copy(exported["onnx"], tmp_path)
    shutil.rmtree(g.golden_dir(dest))
    missing = run(dest)
    assert missing.returncode == 2 and "no golden vectors" in missing.stderr and "Traceback" not in missing.stderr


def test_no_golden_option(tiny_ckpt, tmp_path):
    from export.onnx import OnnxConfig, export_onnx, main

    result = export_onnx(OnnxConfig(ExportConfig(str(tiny_ckpt), tmp_path, golden=False)))
    assert result.extra_files == [] and "golden" not in result.meta and not g.golden_dir(result.path).exists()
    assert main(["--weights", str(tiny_ckpt), "-o", str(tmp_path / "b"), "--no-golden", "--no-validate"]) == 0
    assert not any(p.name.endswith(".golden") for p in (tmp_path / "b").iterdir())
