"""TFLite export: folded, weights and fixed signatures equal the reference in ai-edge-litert; int8 within tolerance.

Conversions are slow, so each artifact is converted once per module at small sizes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("litert_torch", reason="litert-torch not installed (pip install 'levelres[tflite]')")
pytest.importorskip("ai_edge_litert", reason="ai-edge-litert not installed (pip install 'levelres[tflite]')")

from export.base import ExportConfig  # noqa: E402
from export.tflite import TFLiteConfig, export_tflite, parse_sizes  # noqa: E402
from runtimes.core.errors import UserError  # noqa: E402
from runtimes.runners.tflite import TFLiteRunner  # noqa: E402

SIZES = ((32, 32), (24, 40))
LEVELS = (0.0, 35.0, 75.0)  # neutral, a training level, the maximum training level (sigma)


def rand_image(shape, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


@pytest.fixture(scope="module")
def exported(tiny_ckpt, affine_ckpt, calib_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("tflite")
    make = lambda ckpt, sizes=SIZES, **kw: export_tflite(TFLiteConfig(ExportConfig(str(ckpt), out, **kw), sizes=sizes))  # noqa: E731
    return {
        "folded": make(tiny_ckpt),
        "weights": make(tiny_ckpt, sizes=SIZES[:1], level_mode="weights"),
        "fixed-nhwc": make(tiny_ckpt, sizes=SIZES[:1], level_mode="fixed", level=75.0, nhwc=True),
        "affine": make(affine_ckpt, sizes=SIZES[1:]),
        "int8": make(tiny_ckpt, sizes=SIZES[:1], precision="int8", calibration=calib_dir),
        "int8-minmax": export_tflite(TFLiteConfig(
            ExportConfig(str(tiny_ckpt), out, precision="int8", calibration=calib_dir, name="tiny-minmax"),
            sizes=SIZES[:1], ranges="minmax")),
        "a16w8": make(tiny_ckpt, sizes=SIZES[:1], precision="a16w8", calibration=calib_dir),
    }


@pytest.mark.parametrize("variant", ["folded", "weights", "affine"])
def test_matches_reference_at_three_levels(exported, variant, tiny_ckpt, affine_ckpt, reference):
    result = exported[variant]
    ckpt = affine_ckpt if variant == "affine" else tiny_ckpt
    with TFLiteRunner(result.path, threads=2) as runner:
        for h, w in runner.sizes().values():
            x = rand_image((1, 3, h, w), seed=h)
            for level in LEVELS:
                got = runner.run({"image": x, "level": np.array([level], np.float32)})["restored"]
                np.testing.assert_allclose(got, reference(ckpt, x, level), rtol=0, atol=1e-4)
                if level == 0.0:
                    np.testing.assert_allclose(got, x, rtol=0, atol=1e-6)


def test_fixed_nhwc(exported, tiny_ckpt, reference):
    result = exported["fixed-nhwc"]
    assert result.meta["layout"] == "NHWC" and result.meta["fixed_level"] == 75.0
    x = rand_image((1, 3, 32, 32), seed=5)
    with TFLiteRunner(result.path) as runner:
        got = runner.run({"image": x.transpose(0, 2, 3, 1).copy()})["restored"]
        with pytest.raises(UserError, match="fixed at sigma 75"):
            runner.run({"image": x.transpose(0, 2, 3, 1).copy(), "level": np.array([35.0], np.float32)})
    np.testing.assert_allclose(got.transpose(0, 3, 1, 2), reference(tiny_ckpt, x, 75.0), rtol=0, atol=1e-4)


def test_int8_full_integer_within_tolerance(exported, tiny_ckpt, reference):
    result = exported["int8"]
    v = result.validation
    assert v["status"] == "passed" and v["min_psnr_vs_reference"] >= 35
    assert v["max_restoration_loss_db"] <= 0.3
    assert result.meta["calibration"]["images"] == 6
    with TFLiteRunner(result.path) as runner:
        x = rand_image((1, 3, 32, 32), seed=9)
        got = runner.run({"image": x, "level": np.array([35.0], np.float32)})["restored"]
    assert np.abs(got - reference(tiny_ckpt, x, 35.0)).max() < 0.2


def test_int8_graph_calibrated_over_the_level_range(exported, tiny_ckpt):
    """Convs int8; the strength reaching them spans neutral..maximum level; level 0 returns the input exactly."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils as fbu

    result = exported["int8"]
    assert result.meta["calibration"]["levels"] == [0.0, 15.0, 35.0, 55.0, 75.0]
    model = fbu.read_model_from_bytearray(bytearray(result.path.read_bytes()))
    g = model.subgraphs[0]
    code = lambda op: max(model.operatorCodes[op.opcodeIndex].builtinCode,  # noqa: E731
                          model.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode)
    convs = [op for op in g.operators if code(op) == schema.BuiltinOperator.CONV_2D]
    assert convs and all(g.tensors[op.inputs[0]].type == schema.TensorType.INT8 for op in convs)
    strengths = [g.tensors[t] for op in g.operators if code(op) == schema.BuiltinOperator.MUL for t in op.inputs
                 if list(g.tensors[t].shape) == [1, 1, 1, 1] and g.tensors[t].type == schema.TensorType.INT8]
    assert strengths
    for t in strengths:  # the strongest training level (strength 1) is representable, not clamped
        q = t.quantization
        assert q.scale[0] * (q.zeroPoint[0] + 128) < 1e-6 and q.scale[0] * (127 - q.zeroPoint[0]) >= 0.99
    with TFLiteRunner(result.path) as runner:
        x = rand_image((1, 3, 32, 32), seed=3) * 1.4 - 0.2
        got = runner.run({"image": x, "level": np.array([0.0], np.float32)})["restored"]
    np.testing.assert_array_equal(got, x)


def _int8_scales(path) -> dict:
    """Activation tensor name -> quantization scale of a full-integer artifact (per-tensor scales only)."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils as fbu

    model = fbu.read_model_from_bytearray(bytearray(path.read_bytes()))
    g = model.subgraphs[0]
    weights = {op.inputs[1] for op in g.operators if len(op.inputs) > 1}
    return {t.name: float(t.quantization.scale[0]) for i, t in enumerate(g.tensors)
            if t.type == schema.TensorType.INT8 and i not in weights and t.quantization is not None
            and t.quantization.scale is not None and len(t.quantization.scale) == 1}


def test_mse_ranges_narrow_activations_and_keep_the_strength_range(exported):
    """The default ranges are never wider than min/max, some are narrower, and the strength scalar keeps its range."""
    from export.tflite import RANGE_TEXT

    mse, minmax = exported["int8"], exported["int8-minmax"]
    assert mse.meta["calibration"]["ranges"] == RANGE_TEXT["mse"]
    assert minmax.meta["calibration"]["ranges"] == RANGE_TEXT["minmax"]
    a, b = _int8_scales(mse.path), _int8_scales(minmax.path)
    shared = sorted(set(a) & set(b))
    assert len(shared) >= 5
    assert all(a[n] <= b[n] * (1 + 1e-6) for n in shared)
    assert sum(a[n] < 0.99 * b[n] for n in shared) >= 2
    assert minmax.validation["status"] == "passed"


def test_mse_range_clips_rare_outliers_and_keeps_dense_ranges():
    from train.int8_range import mse_range

    rng = np.random.default_rng(0)
    v = np.concatenate([rng.normal(0.0, 1.0, 200_000), [40.0, -35.0]]).astype(np.float32)
    lo, hi = mse_range(v)
    assert 0.9 * v.min() < lo < -3 and 3 < hi < 0.9 * v.max()  # a few outliers do not set the grid

    def err(lo, hi):
        step = (hi - lo) / 255.0
        return np.mean(np.square(np.clip(np.round((v - lo) / step), 0, 255) * step + lo - v))

    assert err(lo, hi) < 0.75 * err(float(v.min()), float(v.max()))
    u = rng.random(100_000, dtype=np.float32)
    lo, hi = mse_range(u)
    assert lo == 0.0 and hi > 0.97  # dense values keep (almost) their whole range; ReLU outputs keep 0


def test_range_sample_reaches_every_channel():
    """A stride through an NHWC tensor reads a few channels only; the sample must see all of them."""
    from export.tflite_quant import sample_values

    x = np.broadcast_to(np.arange(16, dtype=np.float32) * 10, (1, 64, 64, 16)).copy()  # channel c holds 10*c
    picked = sample_values(x, x.size // 16, np.random.default_rng(0))
    assert picked.size == x.size // 16 and set(np.unique(picked)) == set(np.arange(16) * 10.0)
    assert set(np.unique(x.reshape(-1)[::16])) == {0.0}  # what a stride of 16 would have seen
    assert sample_values(x[:, :2, :2], 10_000, np.random.default_rng(0)).size == 64


def test_level_union_range_keeps_the_strongest_level():
    """A range fitted to the weak levels would clip the strongest one: the union holds each level's own optimum."""
    from train.int8_range import level_union_range, mse_range

    rng = np.random.default_rng(1)
    weak, strong = rng.random(50_000, dtype=np.float32) * 0.5, rng.random(50_000, dtype=np.float32) * 4 - 1
    lo, hi = level_union_range([weak, strong])
    assert (lo, hi) == (min(mse_range(strong)[0], 0.0), max(mse_range(weak)[1], mse_range(strong)[1]))
    assert hi > 2.9 and lo < -0.95  # the strong level spans [-1, 3]; the weak one [0, 0.5]
    assert level_union_range([]) == (0.0, 0.0)


def test_calibration_covers_every_level(calib_dir):
    from export.calibration import calibration_samples
    from runtimes.core.levels import make_level_map

    samples = list(calibration_samples(calib_dir, make_level_map("denoise"), (16, 24)))
    assert len(samples) == 30  # 6 images x (neutral + 4 training levels)
    assert sorted({lv for _, lv in samples}) == [0.0, 15.0, 35.0, 55.0, 75.0]
    assert all(img.shape == (16, 24, 3) and img.dtype == np.float32 for img, _ in samples)
    assert min(img.min() for img, _ in samples) < 0 < 1 < max(img.max() for img, _ in samples)
    assert [lv for _, lv in calibration_samples(calib_dir, make_level_map("denoise"), (8, 8), max_samples=5)] == [
        0.0, 15.0, 35.0, 55.0, 75.0]


def test_signatures_and_metadata(exported):
    meta = exported["folded"].meta
    assert set(meta["signatures"]) == {"s32x32", "s24x40"}
    assert meta["signatures"]["s24x40"]["inputs"].keys() == {"image", "level"}
    assert meta["validation"]["status"] == "passed" and len(meta["validation"]["checks"]) == 6
    # the subgraph input order benchmark_model needs: as the interpreter sees it, for every signature
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(exported["folded"].path))
    for name, sig in meta["signatures"].items():
        details = interp.get_signature_runner(name).get_input_details()
        by_key = {sig["inputs"][role]: role for role in ("image", "level")}
        want = sorted(details.items(), key=lambda kv: kv[1]["index"])
        assert [e["tensor"] for e in sig["runner_inputs"]] == [d["name"] for _, d in want]
        assert [e["role"] for e in sig["runner_inputs"]] == [by_key[k] for k, _ in want] == ["image", "level"]
        assert sig["runner_inputs"][0]["shape"] == [1, 3, *sig["size"]] and sig["runner_inputs"][1]["shape"] == [1]
    primary = [d["name"] for d in interp.get_input_details()]
    assert primary == [e["tensor"] for e in meta["signatures"][next(iter(meta["signatures"]))]["runner_inputs"]]
    blob = exported["folded"].path.read_bytes()
    assert b'"level_map"' in blob  # metadata embedded in the flatbuffer
    on_disk = json.loads(exported["folded"].path.with_name(exported["folded"].path.name + ".meta.json").read_text())
    assert on_disk["validation"]["max_abs_diff"] <= 1e-4


@pytest.mark.parametrize("variant", ["folded", "fixed-nhwc", "int8"])
def test_signature_names_are_the_documented_ones(exported, variant):
    """An app calls the signature with image (and level) and reads restored, as in ONNX; no args_0 / output_0."""
    from ai_edge_litert.interpreter import Interpreter

    result = exported[variant]
    interp = Interpreter(model_path=str(result.path))
    fixed = variant == "fixed-nhwc"
    for name, sig in interp.get_signature_list().items():
        assert sig == {"inputs": ["image"] if fixed else ["image", "level"], "outputs": ["restored"]}, name
        h, w = result.meta["signatures"][name]["size"]
        feed = {"image": np.zeros((1, h, w, 3) if fixed else (1, 3, h, w), np.float32)}
        if not fixed:
            feed["level"] = np.array([0.0], np.float32)
        out = interp.get_signature_runner(name)(**feed)
        assert set(out) == {"restored"} and out["restored"].shape == feed["image"].shape


def test_runner_reads_artifacts_with_positional_names(exported, tmp_path):
    """Artifacts exported before the names were set (args_0, args_1 -> output_0) still run: the runner follows the
    sidecar's role -> tensor-name map."""
    import shutil

    from ai_edge_litert.tools import flatbuffer_utils as fbu

    new = exported["folded"].path
    model = fbu.read_model_from_bytearray(bytearray(new.read_bytes()))
    old_names = {b"image": "args_0", b"level": "args_1", b"restored": "output_0"}
    for sd in model.signatureDefs:
        for tm in [*sd.inputs, *sd.outputs]:
            tm.name = old_names[tm.name if isinstance(tm.name, bytes) else tm.name.encode()]
    old = tmp_path / new.name
    old.write_bytes(bytes(fbu.convert_object_to_bytearray(model)))
    meta = json.loads(new.with_name(new.name + ".meta.json").read_text())
    for sig in meta["signatures"].values():
        sig["inputs"], sig["outputs"] = {"image": "args_0", "level": "args_1"}, {"restored": "output_0"}
    old.with_name(old.name + ".meta.json").write_text(json.dumps(meta))
    x = rand_image((1, 3, 32, 32), seed=2)
    level = {"level": np.array([35.0], np.float32)}
    with TFLiteRunner(new) as a, TFLiteRunner(old) as b:
        np.testing.assert_array_equal(b.run({"image": x, **level})["restored"],
                                      a.run({"image": x, **level})["restored"])
    shutil.copy(new.with_name(new.name + ".meta.json"), old.with_name(old.name + ".meta.json"))
    with pytest.raises(UserError, match="do not belong together"):  # a new sidecar beside an old file: one line
        TFLiteRunner(old).__enter__()


def test_parse_sizes():
    assert parse_sizes("720x1280, 32x32") == ((720, 1280), (32, 32))
    for bad in ("720", "axb", "1x0", "720x1280x3"):
        with pytest.raises(UserError):
            parse_sizes(bad)


def test_qat_simulation_models_the_int8_artifact(exported, tiny_ckpt, calib_dir):
    """train.qat.QuantSim, calibrated on the exporter's samples, departs from the float model as much as the int8
    artifact does (not element by element: the exporter's bias correction moves values across rounding steps)."""
    torch = pytest.importorskip("torch")
    from export.calibration import calibration_samples
    from train.checkpoint import load_checkpoint
    from train.qat import QuantSim

    model, _ = load_checkpoint(tiny_ckpt)
    pairs = list(calibration_samples(calib_dir, model.level_map, (32, 32)))
    sim = QuantSim(model)
    sim.calibrate([(torch.from_numpy(np.stack([im.transpose(2, 0, 1) for im, _ in pairs])),
                    torch.tensor([lv for _, lv in pairs]))])
    psnr = lambda a, b: 10 * np.log10(1 / np.mean((a - b) ** 2))  # noqa: E731
    with TFLiteRunner(exported["int8"].path) as runner, torch.no_grad():
        for level in (35.0, 75.0):
            x = rand_image((1, 3, 32, 32), seed=11)
            got = runner.run({"image": x, "level": np.array([level], np.float32)})["restored"]
            lv = torch.tensor([level])
            simulated = sim(torch.from_numpy(x), lv).numpy()
            floating = model(torch.from_numpy(x), lv).numpy()
            assert abs(psnr(simulated, floating) - psnr(got, floating)) < 3, (level, psnr(simulated, floating),
                                                                                psnr(got, floating))


def test_a16w8_int16_activations_closer_than_int8(exported, tiny_ckpt, reference):
    """a16w8: int8 weights, int16 activations in every conv, min/max ranges; nearer the float model than int8,
    and level 0 still returns the input exactly."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils as fbu

    from export.tflite import RANGE_TEXT

    a16, a8 = exported["a16w8"], exported["int8"]
    assert a16.validation["status"] == "passed"
    assert a16.meta["precision"] == "a16w8" and a16.meta["calibration"]["activations"] == "int16"
    assert a16.meta["calibration"]["ranges"] == RANGE_TEXT["minmax"]
    assert a16.validation["min_psnr_vs_reference"] > a8.validation["min_psnr_vs_reference"]
    model = fbu.read_model_from_bytearray(bytearray(a16.path.read_bytes()))
    g = model.subgraphs[0]
    convs = [op for op in g.operators if max(model.operatorCodes[op.opcodeIndex].builtinCode,
                                             model.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode)
             == schema.BuiltinOperator.CONV_2D]
    assert convs and all(g.tensors[op.inputs[0]].type == schema.TensorType.INT16 for op in convs)
    assert all(g.tensors[op.inputs[1]].type == schema.TensorType.INT8 for op in convs)
    with TFLiteRunner(a16.path) as runner:
        x = rand_image((1, 3, 32, 32), seed=4)
        np.testing.assert_array_equal(runner.run({"image": x, "level": np.array([0.0], np.float32)})["restored"], x)
        got = runner.run({"image": x, "level": np.array([75.0], np.float32)})["restored"]
    ref = reference(tiny_ckpt, x, 75.0)
    assert 10 * np.log10(1 / np.mean((got - ref) ** 2)) > 45


def _standard_metadata(path) -> dict:
    from ai_edge_litert.tools import flatbuffer_utils as fbu

    from export.tflite_metadata import NAME, read_model_metadata

    model = fbu.read_model_from_bytearray(bytearray(path.read_bytes()))
    (entry,) = [m for m in model.metadata if m.name in (NAME, NAME.encode())]
    return read_model_metadata(bytes(model.buffers[entry.buffer].data))


def test_standard_tflite_metadata(exported):
    """TFLITE_METADATA (the tflite-support schema) describes the model and every subgraph's tensors, in order."""
    meta = exported["folded"].meta
    md = _standard_metadata(exported["folded"].path)
    assert md["name"] == "levelres denoise (tiny.safetensors)" and md["license"] == "MIT"
    assert md["version"] == meta["levelres_version"] == "0.2.0" and md["author"] == "the levelres authors"
    assert md["min_parser_version"] == "1.0.0" and "denoise" in md["description"]
    assert sorted(sg["name"] for sg in md["subgraphs"]) == ["s24x40", "s32x32"]
    for sg in md["subgraphs"]:
        image, level = sg["inputs"]
        assert (image["name"], level["name"], [o["name"] for o in sg["outputs"]]) == ("image", "level", ["restored"])
        assert image["content"] == "feature" and image["dimension_names"] == ["batch", "channels", "height", "width"]
        assert image["normalization"] == {"mean": [0.0], "std": [255.0]}
        assert image["stats"] == {"max": [1.0], "min": [0.0]}
        assert level["stats"] == {"max": [255.0], "min": [0.0]} and "sigma" in level["description"]
        assert "not clamped" in sg["outputs"][0]["description"] and "normalization" not in sg["outputs"][0]


def test_standard_metadata_of_an_nhwc_fixed_graph(exported):
    """NHWC images are RGB image tensors with their size (what Android's model binding maps to a TensorImage)."""
    md = _standard_metadata(exported["fixed-nhwc"].path)
    (sg,) = md["subgraphs"]
    (image,) = sg["inputs"]
    assert image["content"] == "image" and image["color_space"] == 1 and image["default_size"] == [32, 32]
    assert image["dimension_names"] == ["batch", "height", "width", "channels"]
    assert sg["outputs"][0]["content"] == "image"


def test_metadata_reader_refuses_other_buffers():
    from export.tflite_metadata import read_model_metadata

    with pytest.raises(ValueError, match="not a TFLite metadata buffer"):
        read_model_metadata(b"\x08\x00\x00\x00TFL3" + bytes(16))
