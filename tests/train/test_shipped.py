"""The shipped weights load, keep level 0 exact, and restore real images better than their degraded input."""

import sys

import pytest

pytest.importorskip("torch")

from tests.conftest import dataset  # noqa: E402
from train.checkpoint import load_checkpoint, read_meta, resolve_weights  # noqa: E402
from train.evaluate import evaluate_model, load_eval_set  # noqa: E402

# name: (task, training levels, max params, max GMAC per 1080p, evaluation set, neutral level, (level, min gain dB))
SHIPPED = {
    # the mobile class is bound by MACs (80 GMAC per 1080p frame): the fast network grown to 28 channels
    "denoise-mobile": ("denoise", [5.0, 15.0, 25.0, 35.0, 50.0, 75.0], 2_000_000, 80, "CBSD68", 0,
                       ((25, 5.0), (75, 5.0))),
    # the fast class is bound by latency (0.5 s per 1080p frame on 2 CPU cores) and MACs, not parameters: its
    # multi-scale network holds more weights at lower resolutions
    "denoise-fast": ("denoise", [5.0, 15.0, 25.0, 35.0, 50.0, 75.0], 700_000, 30, "CBSD68", 0, ((25, 5.0), (75, 5.0))),
    "denoise-fast-cal": ("denoise", [15.0, 35.0, 55.0, 75.0], 250_000, 30, "CBSD68", 0, ((25, 5.0), (75, 5.0))),
    "denoise-fast-affine": ("denoise", [15.0, 35.0, 55.0, 75.0], 250_000, 30, "CBSD68", 0, ((25, 5.0), (75, 5.0))),
    "denoise-paper": ("denoise", [15.0, 35.0, 55.0, 75.0], 1_500_000, 800, "CBSD68", 0, ((25, 5.0), (75, 5.0))),
    "dejpeg-fast": ("dejpeg", [10.0, 30.0, 50.0, 80.0], 250_000, 30, "LIVE1_color", 100, ((10, 0.1), (30, 0.1))),
    "sr-mobile": ("sr", [2.0, 3.0, 4.0, 5.0], 200_000, 100, "Set5", 1, ((2, 0.5), (4, 0.5))),
}


def test_every_shipped_weight_set_is_listed():
    from train.checkpoint import PRETRAINED_DIR

    assert sorted(p.stem for p in PRETRAINED_DIR.glob("*.safetensors")) == sorted(SHIPPED)


@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_metadata(name):
    task, levels, max_params, max_gmac, test_set, _, _ = SHIPPED[name]
    meta = read_meta(resolve_weights(name))
    assert meta["task"] == task and meta["level_map"]["train_levels"] == levels
    assert meta["params"] <= max_params and meta["gmac_1080p"] <= max_gmac
    assert meta["evaluation"]["set"] == test_set and meta["evaluation"]["images"] > 0


@pytest.mark.realdata
@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_restores_real_images(name):
    task, _, _, _, test_set, neutral, checks = SHIPPED[name]
    model, _ = load_checkpoint(name)
    images = load_eval_set(dataset(f"test/{test_set}"))[:3]
    res = evaluate_model(model, images, [neutral, *(lv for lv, _ in checks)], with_ssim=False)
    rows = {r["level"]: r for r in res["rows"]}
    assert rows[neutral]["psnr"] == rows[neutral]["input_psnr"]  # the neutral level returns its input exactly
    for lv, gain in checks:
        assert rows[lv]["psnr"] > rows[lv]["input_psnr"] + gain


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_exports_to_every_format(name, tmp_path):
    """Each shipped set through export.all: ONNX and TFLite validated against the reference here, the
    TensorRT ONNX validated in onnxruntime, CoreML converted with its structure checked."""
    for module in ("onnxruntime", "litert_torch", "ai_edge_litert", "coremltools"):
        pytest.importorskip(module)
    from export.all import AllConfig, export_all
    from export.base import ExportConfig
    from runtimes.apps.tiling import receptive_field
    from train.checkpoint import read_meta, resolve_weights

    side = max(64, -(-receptive_field(read_meta(resolve_weights(name))["arch"]) // 16) * 16)  # exports refuse less
    rows = {r.fmt: r for r in export_all(AllConfig(ExportConfig(name, tmp_path), tflite_sizes=((side, side + 32),)))}
    assert all(r.made == "made" for r in rows.values()), [(r.fmt, r.made, r.note) for r in rows.values()]
    assert rows["onnx"].validated == "passed" and rows["tflite"].validated == "passed"
    assert rows["tensorrt"].validated == "passed (ONNX)"
    expected = "passed" if sys.platform == "darwin" else "not validated: Core ML prediction needs macOS"
    assert rows["coreml"].validated.startswith(expected)
