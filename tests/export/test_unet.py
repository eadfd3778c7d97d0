"""The multi-scale (unet topology) presets: their MAC and receptive-field arithmetic holds on the real network,
and they export, folded and validated, to ONNX, TFLite and Core ML."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from runtimes.core.levels import make_level_map  # noqa: E402
from train.model import PRESETS, ModelConfig, build_model, count_macs, count_params, preset  # noqa: E402

LEVELS = (0.0, 35.0, 75.0)


def measured_macs(model, x: torch.Tensor) -> int:
    """Multiply-accumulates of every conv of one forward pass, counted by hooks on the real modules."""
    total = 0

    def hook(m, inputs, out):
        nonlocal total
        total += out.numel() // out.shape[0] * (m.weight[0].numel())

    from train.model import LevelConv2d

    convs = (torch.nn.Conv2d, LevelConv2d)  # a level conv's MACs are its weights' (affine: one set)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, convs)]
    with torch.no_grad():
        model(x, torch.tensor([25.0]))
    for h in handles:
        h.remove()
    return total


@pytest.mark.parametrize("name", ["unet-fast", "unet-mobile", "unet-tiny", "fast", "tiny"])
def test_macs_and_params_match_the_network(name):
    cfg = preset(name, form="shift")
    model = build_model(cfg, make_level_map("denoise"))
    x = torch.rand(1, 3, 64, 96)
    assert count_macs(cfg, 64, 96) == measured_macs(model, x)
    assert count_params(cfg) == sum(p.numel() for n, p in model.named_parameters() if not n.endswith("bias_level"))


@pytest.mark.parametrize("name", ["unet-tiny", "tiny"])
def test_receptive_field_bounds_the_influence_of_a_pixel(name):
    cfg = preset(name)
    model = build_model(cfg, make_level_map("denoise")).eval()
    size = 2 * cfg.receptive_field + 3 * cfg.grid
    x = torch.rand(1, 3, size, size, requires_grad=True)
    c = size // 2
    model(x, torch.tensor([50.0]))[0, :, c, c].sum().backward()
    rows = torch.nonzero(x.grad.abs().sum(dim=(0, 1)).sum(dim=1)).flatten()
    reach = int(max(c - rows.min(), rows.max() - c)) * 2 + 1
    assert 0 < reach <= cfg.receptive_field + 2 * cfg.grid, (reach, cfg.receptive_field)
    assert reach > cfg.receptive_field // 2  # the stated field is not a loose over-estimate


def test_level_zero_exact_on_sizes_off_the_grid():
    model = build_model(preset("unet-tiny", form="affine"), make_level_map("denoise")).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, 0.0, 0.1)
    x = torch.rand(1, 3, 37, 53)
    with torch.no_grad():
        assert torch.equal(model(x, torch.tensor([0.0])), x)
        assert (model(x, torch.tensor([50.0])) - x).abs().max() > 1e-3


def test_unet_settings_checked():
    from runtimes.core.errors import UserError

    with pytest.raises(UserError, match="depth 1-4"):
        ModelConfig(topology="unet", depth=0, tail_channels=0)
    with pytest.raises(UserError, match="no tail channels"):
        ModelConfig(topology="unet", depth=2, tail_channels=16)
    with pytest.raises(UserError, match="unknown topology"):
        ModelConfig(topology="resnet")
    assert ModelConfig.from_dict(PRESETS["unet-fast"].to_dict()) == PRESETS["unet-fast"]


def test_unet_presets_fit_their_latency_classes():
    assert count_macs(PRESETS["unet-fast"], 1080, 1920) < count_macs(PRESETS["fast"], 1080, 1920)
    assert count_macs(PRESETS["unet-mobile"], 1080, 1920) <= 80e9
    for name in ("unet-fast", "unet-mobile"):
        assert PRESETS[name].channels % 16 == 0


def test_onnx_folded_matches_reference(unet_ckpt, reference, tmp_path):
    pytest.importorskip("onnxruntime")
    from export.base import ExportConfig
    from export.onnx import OnnxConfig, export_onnx
    from runtimes.runners.onnxruntime import OnnxRunner

    result = export_onnx(OnnxConfig(ExportConfig(str(unet_ckpt), tmp_path)))
    assert result.meta["validation"]["status"] == "passed"
    assert result.meta["arch"]["grid"] == 8
    x = np.random.default_rng(0).random((1, 3, 40, 56), dtype=np.float32)
    with OnnxRunner(result.path, provider="cpu") as runner:
        for level in LEVELS:
            got = runner.run({"image": x, "level": np.array([level], np.float32)})["restored"]
            np.testing.assert_allclose(got, reference(unet_ckpt, x, level), rtol=0, atol=1e-4)


def test_level_biases_export_folded_and_fixed(unet_level_bias_ckpt, reference, tmp_path):
    """Level biases everywhere (the topology's plain convs become shift convs): the folded and fixed ONNX graphs
    match the network, and the folded graph keeps constant weights (no weight is computed from the level)."""
    pytest.importorskip("onnxruntime")
    import onnx

    from export.base import ExportConfig
    from export.onnx import OnnxConfig, export_onnx
    from runtimes.runners.onnxruntime import OnnxRunner

    x = np.random.default_rng(2).random((1, 3, 40, 56), dtype=np.float32)
    folded = export_onnx(OnnxConfig(ExportConfig(str(unet_level_bias_ckpt), tmp_path / "folded")))
    assert folded.meta["validation"]["status"] == "passed"
    g = onnx.load(folded.path).graph
    consts = {t.name for t in g.initializer}
    assert all(n.input[1] in consts for n in g.node if n.op_type == "Conv")
    with OnnxRunner(folded.path, provider="cpu") as runner:
        for level in (0.0, 0.5, 5.0, 35.0, 75.0):
            got = runner.run({"image": x, "level": np.array([level], np.float32)})["restored"]
            np.testing.assert_allclose(got, reference(unet_level_bias_ckpt, x, level), rtol=0, atol=1e-4)
    fixed = export_onnx(OnnxConfig(ExportConfig(str(unet_level_bias_ckpt), tmp_path / "fixed", level_mode="fixed",
                                                level=15.0)))
    with OnnxRunner(fixed.path, provider="cpu") as runner:
        got = runner.run({"image": x})["restored"]
    np.testing.assert_allclose(got, reference(unet_level_bias_ckpt, x, 15.0), rtol=0, atol=1e-4)


def test_affine_head_exports_folded(unet_affine_head_ckpt, reference, tmp_path):
    """An affine head in a shift-form unet: the folded ONNX graph matches the network at every level and keeps
    constant weights."""
    pytest.importorskip("onnxruntime")
    import onnx

    from export.base import ExportConfig
    from export.onnx import OnnxConfig, export_onnx
    from runtimes.runners.onnxruntime import OnnxRunner

    result = export_onnx(OnnxConfig(ExportConfig(str(unet_affine_head_ckpt), tmp_path)))
    assert result.meta["validation"]["status"] == "passed"
    g = onnx.load(result.path).graph
    consts = {t.name for t in g.initializer}
    assert all(n.input[1] in consts for n in g.node if n.op_type == "Conv")
    x = np.random.default_rng(3).random((1, 3, 40, 56), dtype=np.float32)
    with OnnxRunner(result.path, provider="cpu") as runner:
        for level in (0.0, 5.0, 35.0, 75.0):
            got = runner.run({"image": x, "level": np.array([level], np.float32)})["restored"]
            np.testing.assert_allclose(got, reference(unet_affine_head_ckpt, x, level), rtol=0, atol=1e-4)


@pytest.mark.slow
def test_tflite_and_coreml_convert(unet_ckpt, reference, tmp_path):
    pytest.importorskip("litert_torch")
    pytest.importorskip("coremltools")
    from export.base import ExportConfig
    from export.coreml import CoreMLConfig, check_structure, export_coreml
    from export.tflite import TFLiteConfig, export_tflite
    from runtimes.runners.tflite import TFLiteRunner

    result = export_tflite(TFLiteConfig(ExportConfig(str(unet_ckpt), tmp_path), sizes=((104, 112),)))
    assert result.meta["validation"]["status"] == "passed"
    x = np.random.default_rng(1).random((1, 3, 104, 112), dtype=np.float32)
    with TFLiteRunner(result.path, threads=1) as runner:
        got = runner.run({"image": x, "level": np.array([35.0], np.float32)})["restored"]
    np.testing.assert_allclose(got, reference(unet_ckpt, x, 35.0), rtol=0, atol=1e-4)
    ml = export_coreml(CoreMLConfig(ExportConfig(str(unet_ckpt), tmp_path, precision="fp16")))
    assert check_structure(ml.meta["structure"], ml.meta["level_mode"]) == []


def test_unet_metadata_and_export_sizes_checked():
    """A unet's grid and receptive field come from its metadata: sizes off its grid or below its field are
    refused, and out-of-bounds values in a file's metadata are named."""
    from runtimes.apps.tiling import check_fixed_sizes
    from runtimes.core.errors import UserError
    from runtimes.core.metacheck import check_arch

    arch = PRESETS["unet-tiny"].to_dict()
    check_fixed_sizes([(112, 120)], arch)
    with pytest.raises(UserError, match="8-pixel grid"):
        check_fixed_sizes([(112, 118)], arch)
    with pytest.raises(UserError, match="receptive field"):
        check_fixed_sizes([(32, 48)], arch)
    for key, bad in (("depth", 9), ("grid", 0), ("receptive_field", -1)):
        with pytest.raises(UserError, match=key):
            check_arch({**arch, key: bad}, "m.onnx")
