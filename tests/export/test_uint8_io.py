"""--io uint8: camera bytes in and out (NCHW or NHWC), for ONNX and TFLite; level 0 returns the input bytes."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from export.base import ExportConfig  # noqa: E402
from runtimes.core.artifact import decode_output, encode_image  # noqa: E402
from runtimes.core.errors import UserError  # noqa: E402


def _bytes(shape, seed=0):
    return (np.random.default_rng(seed).random(shape) * 255).astype(np.uint8)


def _check_runner(runner, ckpt, reference, h, w, nhwc):
    x8 = _bytes((1, h, w, 3) if nhwc else (1, 3, h, w))
    for level in (0.0, 35.0, 75.0):
        out = runner.run({"image": x8, "level": np.array([level], np.float32)})["restored"]
        assert out.dtype == np.uint8 and out.shape == x8.shape
        if level == 0.0:
            np.testing.assert_array_equal(out, x8)
        x = x8.astype(np.float32) / 255.0
        ref = reference(ckpt, x.transpose(0, 3, 1, 2) if nhwc else x, level)
        ref8 = np.clip(np.rint(ref * 255.0), 0, 255)
        ref8 = ref8.transpose(0, 2, 3, 1) if nhwc else ref8
        assert np.abs(out.astype(int) - ref8).max() <= 1  # one code value: rounding at a boundary
    with pytest.raises(UserError, match="uint8"):
        runner.run({"image": x8.astype(np.float32), "level": np.array([5.0], np.float32)})


@pytest.mark.parametrize("nhwc", [False, True])
def test_onnx_uint8(tiny_ckpt, reference, tmp_path, nhwc):
    pytest.importorskip("onnxruntime")
    from export.onnx import OnnxConfig, export_onnx
    from runtimes.runners.onnxruntime import OnnxRunner

    result = export_onnx(OnnxConfig(ExportConfig(str(tiny_ckpt), tmp_path, io="uint8", nhwc=nhwc)))
    meta = result.meta
    assert meta["io"] == "uint8" and meta["inputs"][0]["dtype"] == "uint8" and result.path.stem.endswith("-u8")
    assert meta["validation"]["status"] == "passed", meta["validation"]
    with OnnxRunner(result.path, threads=2) as r:
        assert r.input_specs()[0].dtype == "uint8"
        _check_runner(r, tiny_ckpt, reference, 24, 40, nhwc)


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_tflite_uint8_nhwc(tiny_ckpt, reference, tmp_path, calib_dir, precision):
    pytest.importorskip("litert_torch")
    pytest.importorskip("ai_edge_litert")
    from export.tflite import TFLiteConfig, export_tflite
    from runtimes.runners.tflite import TFLiteRunner

    common = ExportConfig(str(tiny_ckpt), tmp_path, io="uint8", nhwc=True, precision=precision,
                          calibration=calib_dir if precision == "int8" else None)
    result = export_tflite(TFLiteConfig(common, sizes=((24, 40),)))
    assert result.meta["validation"]["status"] == "passed", result.meta["validation"]
    if precision == "fp32":
        with TFLiteRunner(result.path, threads=2) as r:
            _check_runner(r, tiny_ckpt, reference, 24, 40, True)


def test_encode_decode_round_trip():
    meta = {"layout": "NHWC", "io": "uint8"}
    x = np.random.default_rng(1).random((1, 3, 5, 7), dtype=np.float32)
    enc = encode_image(meta, x)
    assert enc.dtype == np.uint8 and enc.shape == (1, 5, 7, 3)
    assert np.abs(decode_output(meta, enc) - x).max() <= 0.5 / 255 + 1e-6
    meta = {"layout": "NCHW"}
    assert encode_image(meta, x).dtype == np.float32 and np.array_equal(decode_output(meta, x), x)


def test_coreml_refuses_uint8(tiny_ckpt, tmp_path):
    pytest.importorskip("coremltools")
    from export.coreml import CoreMLConfig, export_coreml

    with pytest.raises(UserError, match="image-io"):
        export_coreml(CoreMLConfig(ExportConfig(str(tiny_ckpt), tmp_path, io="uint8")))
