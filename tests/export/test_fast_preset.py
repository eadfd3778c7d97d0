"""The stride-4, tail-less "fast" topology through every exporter: each artifact validates against the reference."""

from __future__ import annotations

import numpy as np
import pytest

from export.base import ExportConfig

LEVELS = (0.0, 35.0, 75.0)


@pytest.fixture(scope="module")
def fast_ckpt(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from runtimes.core.levels import make_level_map
    from train.checkpoint import save_checkpoint
    from train.model import build_model, preset

    torch.manual_seed(2)
    model = build_model(preset("fast", channels=8, blocks=1), make_level_map("denoise"))
    for p in model.conv_out.parameters():  # a visible residual, so the comparison is not against the input
        p.data.mul_(10.0)
    return save_checkpoint(tmp_path_factory.mktemp("fast") / "fast.safetensors", model, {"note": "test"})


def test_onnx_matches_reference(fast_ckpt, reference_fast, tmp_path):
    pytest.importorskip("onnxruntime")
    from export.onnx import OnnxConfig, export_onnx
    from runtimes.runners.onnxruntime import OnnxRunner

    result = export_onnx(OnnxConfig(ExportConfig(str(fast_ckpt), tmp_path)))
    assert result.meta["validation"]["status"] == "passed"
    x = np.random.default_rng(0).random((1, 3, 37, 50), dtype=np.float32)  # not a multiple of the stride
    with OnnxRunner(result.path, threads=2) as r:
        for level in LEVELS:
            got = r.run({"image": x, "level": np.array([level], np.float32)})["restored"]
            np.testing.assert_allclose(got, reference_fast(fast_ckpt, x, level), atol=1e-4, rtol=0)


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_tflite_validates(fast_ckpt, calib_dir, tmp_path, precision):
    pytest.importorskip("litert_torch")
    pytest.importorskip("ai_edge_litert")
    from export.tflite import TFLiteConfig, export_tflite

    common = ExportConfig(str(fast_ckpt), tmp_path, precision=precision,
                          calibration=calib_dir if precision == "int8" else None)
    result = export_tflite(TFLiteConfig(common, sizes=((56, 64),)))
    assert result.meta["validation"]["status"] == "passed", result.meta["validation"]


def test_coreml_structure(fast_ckpt, tmp_path):
    pytest.importorskip("coremltools")
    from export.coreml import CoreMLConfig, check_structure, export_coreml

    result = export_coreml(CoreMLConfig(ExportConfig(str(fast_ckpt), tmp_path, precision="fp16")))
    assert check_structure(result.meta["structure"], "folded") == []


@pytest.fixture(scope="module")
def reference_fast():
    import torch

    from train.checkpoint import load_checkpoint

    def run(ckpt, image, level):
        model = load_checkpoint(ckpt)[0].eval()
        with torch.no_grad():
            return model(torch.from_numpy(image), torch.tensor([level])).numpy()

    return run
