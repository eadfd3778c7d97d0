"""ONNX export: folded, weights and fixed graphs equal the reference at three levels in onnxruntime."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install 'levelres[onnx]')")
onnx = pytest.importorskip("onnx", reason="onnx not installed (pip install 'levelres[onnx]')")

from export.base import ExportConfig  # noqa: E402
from export.onnx import OnnxConfig, export_onnx  # noqa: E402
from runtimes.runners.onnxruntime import OnnxRunner  # noqa: E402

VARIANTS = {
    "folded": dict(level_mode="folded"),
    "weights": dict(level_mode="weights"),
    "fixed": dict(level_mode="fixed", level=35.0),
    "folded-nhwc": dict(nhwc=True),
}
LEVELS = (0.0, 35.0, 75.0)  # neutral, a training level, the maximum training level (sigma)


def rand_image(shape, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


@pytest.fixture(scope="module")
def exported(tiny_ckpt, affine_ckpt, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx")
    arts = {k: export_onnx(OnnxConfig(ExportConfig(str(tiny_ckpt), out, **v))) for k, v in VARIANTS.items()}
    arts["affine"] = export_onnx(OnnxConfig(ExportConfig(str(affine_ckpt), out, precision="fp16")))
    return arts


@pytest.mark.parametrize("variant", ["folded", "weights", "affine", "folded-nhwc"])
def test_matches_reference_at_three_levels(exported, variant, tiny_ckpt, affine_ckpt, reference):
    ckpt = affine_ckpt if variant == "affine" else tiny_ckpt
    result = exported[variant]
    x = rand_image((2, 3, 37, 50))
    nhwc = result.meta["layout"] == "NHWC"
    with OnnxRunner(result.path, provider="cpu") as runner:
        for level in LEVELS:
            xi = x.transpose(0, 2, 3, 1).copy() if nhwc else x
            got = runner.run({"image": xi, "level": np.array([level], np.float32)})["restored"]
            got = got.transpose(0, 3, 1, 2) if nhwc else got
            tol = 2e-3 if result.meta["precision"] == "fp16" else 1e-4
            np.testing.assert_allclose(got, reference(ckpt, x, level), rtol=0, atol=tol)
            if level == 0.0 and result.meta["precision"] == "fp32":
                np.testing.assert_array_equal(got, x)


def test_fixed_mode(exported, tiny_ckpt, reference):
    result = exported["fixed"]
    x = rand_image((1, 3, 40, 33), seed=2)
    with OnnxRunner(result.path) as runner:
        assert [s.name for s in runner.input_specs()] == ["image"]
        got = runner.run({"image": x})["restored"]
        same = runner.run({"image": x, "level": np.array([35.0], np.float32)})["restored"]
    np.testing.assert_allclose(got, reference(tiny_ckpt, x, 35.0), rtol=0, atol=1e-4)
    np.testing.assert_array_equal(got, same)


def test_metadata_and_validation(exported):
    for key, result in exported.items():
        meta = json.loads(result.path.with_name(result.path.name + ".meta.json").read_text())
        v = meta["validation"]
        assert v["status"] == "passed", key
        assert v["image"]
        if meta["precision"] == "fp32":
            assert v["max_abs_diff"] <= 1e-4
        else:
            assert v["min_psnr_vs_reference"] >= 45
        assert meta["level_unit"] == "sigma" and meta["level_mode"] in ("folded", "weights", "fixed")
        proto = onnx.load(str(result.path))
        assert proto.opset_import[0].version == 18
        props = {p.key: p.value for p in proto.metadata_props}
        assert props["task"] == "denoise" and json.loads(props["validation"])["status"] == "passed"
        assert json.loads(props["levelres"])["level_map"]["unit"] == "sigma"
        assert props["levelres_version"] == meta["levelres_version"] == "0.2.0" and props["license"] == "MIT"
    assert exported["folded"].validation["levels"] == [0.0, 35.0, 75.0]


def test_dynamic_axes_and_ops(exported):
    proto = onnx.load(str(exported["folded"].path))
    image = next(i for i in proto.graph.input if i.name == "image")
    assert [d.dim_param or d.dim_value for d in image.type.tensor_type.shape.dim] == ["N", 3, "H", "W"]
    level = next(i for i in proto.graph.input if i.name == "level")
    assert [d.dim_value for d in level.type.tensor_type.shape.dim] == [1]
    assert [o.name for o in proto.graph.output] == ["restored"]
    conv_weights = {n.input[1] for n in proto.graph.node if n.op_type == "Conv"}
    inits = {i.name for i in proto.graph.initializer}
    assert conv_weights <= inits  # folded: every conv weight is a constant
    wproto = onnx.load(str(exported["weights"].path))
    w_weights = {n.input[1] for n in wproto.graph.node if n.op_type == "Conv"}
    assert not w_weights <= {i.name for i in wproto.graph.initializer}  # weights: computed at run time


def test_folded_block_scales_once(exported):
    """A linear residual block scales its branch once (s^2 after conv2), and conv1 feeds its ReLU directly."""
    proto = onnx.load(str(exported["folded"].path))
    producer = {o: n for n in proto.graph.node for o in n.output}
    scaled_convs = [n for n in proto.graph.node if n.op_type == "Mul"
                    and any(producer.get(i) is not None and producer[i].op_type == "Conv" for i in n.input)]
    blocks = 1  # the tiny preset
    assert len(scaled_convs) == blocks + 1  # one per block and the output conv (per-conv scaling: 2 * blocks + 1)
    relu_after_conv = [n for n in proto.graph.node if n.op_type == "Relu" and producer[n.input[0]].op_type == "Conv"]
    assert len(relu_after_conv) >= blocks


@pytest.mark.parametrize("mode", ["folded", "weights"])
def test_levels_past_training_saturate_unless_extrapolating(mode, tiny_ckpt, tmp_path):
    import torch

    from train.checkpoint import load_checkpoint

    x = rand_image((1, 3, 24, 28), seed=5)
    lv = lambda v: np.array([v], np.float32)  # noqa: E731
    capped = export_onnx(OnnxConfig(ExportConfig(str(tiny_ckpt), tmp_path, level_mode=mode, name="capped")))
    free = export_onnx(OnnxConfig(ExportConfig(str(tiny_ckpt), tmp_path, level_mode=mode, name="free",
                                               extrapolate=True)))
    assert capped.meta["level_map"]["max_strength"] == 1.0 and free.meta["level_map"]["max_strength"] is None
    with OnnxRunner(capped.path) as r:
        at_top, past = (r.run({"image": x, "level": lv(v)})["restored"] for v in (75.0, 110.0))
    np.testing.assert_array_equal(past, at_top)  # sigma 110 runs at the strength of sigma 75
    model, _ = load_checkpoint(tiny_ckpt)
    model.level_map = model.level_map.extrapolating()
    with torch.no_grad():
        want = model(torch.from_numpy(x), torch.tensor([110.0])).numpy()
    with OnnxRunner(free.path) as r:
        got = r.run({"image": x, "level": lv(110.0)})["restored"]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)
    assert np.abs(got - at_top).max() > 1e-3
