"""The public API on a small ONNX export: `levelres.restore`, `levelres.load`, and its one-line errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import levelres
from runtimes.core.errors import MissingDependency, UserError


def _image(h: int = 20, w: int = 28) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    return (np.stack([np.sin(3 * xx), np.cos(4 * yy), xx * yy], axis=2) * 0.4 + 0.5).astype(np.float32)


def test_level_zero_returns_the_input_uint8_and_float(tiny_onnx):
    f = _image()
    u8 = np.round(f * 255).astype(np.uint8)
    out_u8 = levelres.restore(u8, 0, model=tiny_onnx)
    assert out_u8.dtype == np.uint8 and out_u8.shape == u8.shape
    np.testing.assert_array_equal(out_u8, u8)
    out_f = levelres.restore(f, 0.0, model=str(tiny_onnx))
    assert out_f.dtype == np.float32
    np.testing.assert_array_equal(out_f, f)


def test_uint8_and_float_round_trip_agree(tiny_onnx):
    f = np.round(_image() * 255) / 255
    u8 = np.round(f * 255).astype(np.uint8)
    out_f = levelres.restore(f.astype(np.float64), 50, model=tiny_onnx)
    out_u8 = levelres.restore(u8, 50, model=tiny_onnx)
    assert out_f.dtype == np.float64 and 0 <= out_f.min() and out_f.max() <= 1
    assert np.abs(out_f - f).max() > 1e-4  # the model does something at level 50
    np.testing.assert_array_equal(out_u8, np.round(out_f * 255).astype(np.uint8))


def test_matches_the_runner(tiny_onnx):
    x = _image()
    with levelres.load(tiny_onnx) as runner:
        want = runner.run({"image": x.transpose(2, 0, 1)[None].copy(),
                           "level": np.array([35.0], np.float32)})["restored"][0].transpose(1, 2, 0)
    np.testing.assert_allclose(levelres.restore(x, 35, model=tiny_onnx), np.clip(want, 0, 1), atol=1e-6)


def test_load_needs_enter(tiny_onnx):
    runner = levelres.load(tiny_onnx)
    with pytest.raises(UserError):
        runner.run({"image": np.zeros((1, 3, 8, 8), np.float32), "level": np.array([5.0], np.float32)})


def test_level_past_training_warns(tiny_onnx):
    with pytest.warns(UserWarning, match=r"past the strongest training level \(sigma 75\): the model saturates"):
        levelres.restore(_image(), 120, model=tiny_onnx)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        levelres.restore(_image(), 75, model=tiny_onnx)


@pytest.mark.parametrize("level, match", [
    (300, r"level 300 is outside the model's sigma range \[0, 255\]"),
    (-1, "outside the model's sigma range"),
    (float("nan"), "level must be a finite number"),
    ("25", "level must be a number"),
    (True, "level must be a number"),
])
def test_bad_level_is_a_one_line_user_error(tiny_onnx, level, match):
    with pytest.raises(UserError, match=match) as err:
        levelres.restore(_image(), level, model=tiny_onnx)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("image, match", [
    ([[0, 1, 2]], "must be a numpy array"),
    (np.zeros((8, 8), np.uint8), r"must be \(H, W, 3\) RGB"),
    (np.zeros((8, 8, 3), np.int32), "must be uint8 or float"),
    (np.full((8, 8, 3), np.nan, np.float32), "non-finite"),
])
def test_bad_image_is_a_one_line_user_error(tiny_onnx, image, match):
    with pytest.raises(UserError, match=match) as err:
        levelres.restore(image, 25, model=tiny_onnx)
    assert "\n" not in str(err.value)


def test_missing_model_is_a_one_line_user_error(tmp_path):
    for model in (tmp_path / "nope.onnx", "no-such-weight-set"):
        with pytest.raises(UserError) as err:
            levelres.restore(_image(), 25, model=model)
        assert "\n" not in str(err.value) and "not found" in str(err.value)
    with pytest.raises(UserError, match="not found"):
        levelres.load(tmp_path / "nope.onnx")


def test_a_checkpoint_without_torch_names_the_extra(tiny_ckpt, monkeypatch):
    def no_torch(module, extra):
        raise MissingDependency(module, extra)

    monkeypatch.setattr("runtimes.core.errors.require", no_torch)
    with pytest.raises(MissingDependency, match=r"torch is not installed: pip install 'levelres\[train\]'"):
        levelres.restore(_image(), 25, model=tiny_ckpt)


def test_export_checks_the_format_before_torch():
    with pytest.raises(UserError, match="unknown format 'jpeg'; one of: onnx"):
        levelres.export("denoise-mobile", "jpeg")


def test_export_makes_a_runnable_artifact(tiny_ckpt, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    result = levelres.export(tiny_ckpt, "onnx", out_dir=tmp_path, name="api", validate=False, golden=False)
    assert result.path == tmp_path / "api.onnx"
    x = _image()
    np.testing.assert_array_equal(levelres.restore(x, 0, model=result.path), x)
    with pytest.raises(UserError, match="bad option for the onnx exporter"):
        levelres.export(tiny_ckpt, "onnx", out_dir=tmp_path, name="api2", validate=False, no_such_option=1)
