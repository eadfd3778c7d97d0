"""train.calibrate: a fitted level -> strength curve, stored in the level map, used by torch and the exports."""

import json

import numpy as np
import pytest

from runtimes.core.errors import UserError, run_cli
from runtimes.core.levels import LevelMap, make_level_map

torch = pytest.importorskip("torch")


def _cal_map() -> LevelMap:
    lm = make_level_map("denoise", (15, 35, 55, 75))
    return lm.calibrated(((0.2, 0.3), (35 / 75, 0.5), (55 / 75, 0.7), (1.0, 0.87)))


def test_calibrated_map_curve_and_round_trip():
    lm = _cal_map()
    assert lm.strength(0) == 0.0 and lm.strength(15) == pytest.approx(0.3) and lm.strength(75) == pytest.approx(0.87)
    assert lm.strength(90) == pytest.approx(0.87)  # saturated at the top level's calibrated strength
    assert lm.strength(7.5) == pytest.approx(0.15)  # first segment: through (0, 0)
    assert lm.strength(25) == pytest.approx(0.3 + (0.5 - 0.3) * (25 / 75 - 0.2) / (35 / 75 - 0.2))
    assert lm.extrapolating().strength(90) == pytest.approx(0.87 + (0.87 - 0.7) / (1 - 55 / 75) * 0.2)
    levels = np.linspace(0, 75, 31)
    s = [lm.strength(v) for v in levels]
    assert all(b > a for a, b in zip(s, s[1:], strict=False))
    assert all(lm.level(lm.strength(v)) == pytest.approx(v) for v in levels)
    again = LevelMap.from_dict(json.loads(json.dumps(lm.to_dict())))
    assert again == lm and "piecewise-linear" in lm.to_dict()["formula"]
    assert lm.uncalibrated().strength(15) == pytest.approx(0.2)
    with pytest.raises(UserError, match="increase"):
        lm.calibrated(((0.5, 0.6), (0.4, 0.7)))
    with pytest.raises(UserError, match="increase"):
        lm.calibrated(((0.5, 0.6), (1.0, 0.5)))


def _past_top_map() -> LevelMap:
    """A knot at sigma 90 on a sigma 15-75 map: the saturation moves there."""
    return _cal_map().uncalibrated().calibrated(((0.2, 0.3), (1.0, 0.95), (1.2, 1.1)))


def test_a_knot_past_the_top_level_moves_the_saturation():
    from export.calibration import calibration_levels

    lm = _past_top_map()
    assert lm.strength(75) == pytest.approx(0.95) and lm.strength(90) == pytest.approx(1.1)
    assert lm.strength(82.5) == pytest.approx((0.95 + 1.1) / 2) and lm.strength(200) == pytest.approx(1.1)
    assert lm.saturation_level == pytest.approx(90) and _cal_map().saturation_level == pytest.approx(75)
    assert not lm.outside_trained(85) and lm.outside_trained(95) and _cal_map().outside_trained(85)
    assert LevelMap.from_dict(json.loads(json.dumps(lm.to_dict()))) == lm
    assert lm.max_strength == pytest.approx(1.2)
    assert lm.uncalibrated() == _cal_map().uncalibrated()  # saturated at the top training level again
    assert lm.extrapolating().calibrated(lm.knots).max_strength is None  # an extrapolating map stays one
    assert calibration_levels(lm) == pytest.approx([0, 15, 35, 55, 75, 90])  # int8 ranges cover the top knot
    assert calibration_levels(_cal_map()) == [0, 15, 35, 55, 75]


def test_torch_strength_follows_the_calibrated_map():
    from train.model import build_model, preset

    levels = torch.tensor([0.0, 5.0, 15.0, 25.0, 60.0, 75.0, 85.0, 90.0, 200.0])
    for m in (_cal_map(), _cal_map().extrapolating(), _past_top_map()):
        net = build_model(preset("tiny"), m)
        expect = [m.strength(float(v)) for v in levels]
        np.testing.assert_allclose(net.strength(levels).numpy(), expect, rtol=1e-6, atol=1e-7)


@pytest.fixture
def tiny_run(tmp_path, tiny_image_dir):
    from train.trainer import TrainConfig, train

    cfg = TrainConfig(task="denoise", data=str(tiny_image_dir), out=str(tmp_path / "run"), preset="tiny",
                      levels=(15.0, 45.0), steps=4, batch=2, patch=32, workers=0, device="cpu", compile=False,
                      progress=False, save_every=4, val_every=1000)
    return train(cfg)


def test_calibrate_writes_a_checkpoint_that_is_never_worse(tiny_run, tiny_image_dir, tmp_path, capsys):
    from train.calibrate import main
    from train.checkpoint import load_checkpoint
    from train.evaluate import evaluate_model, load_eval_set

    out = tmp_path / "cal.safetensors"
    assert run_cli(main, ["--weights", str(tiny_run), "--set", str(tiny_image_dir), "-o", str(out),
                          "--crop", "0", "--factors", "0.5,1,1.5,2"]) == 0
    table = capsys.readouterr().out
    assert "| 15 |" in table and "| 45 |" in table
    base, _ = load_checkpoint(tiny_run)
    cal, meta = load_checkpoint(out)
    assert cal.level_map.knots and meta["calibration"]["images"] >= 1
    assert cal.strength(torch.tensor([0.0])).item() == 0.0
    images = load_eval_set(tiny_image_dir)
    a = evaluate_model(base, images, [15.0, 45.0], with_ssim=False)["rows"]
    b = evaluate_model(cal, images, [15.0, 45.0], with_ssim=False)["rows"]
    assert all(rb["psnr"] >= ra["psnr"] - 1e-6 for ra, rb in zip(a, b, strict=True))
    assert evaluate_model(cal, images, [0.0], with_ssim=False)["rows"][0]["psnr"] == 100.0  # level 0: identity


def test_calibrate_pools_several_sets(tiny_run, tiny_image_dir, tmp_path, capsys):
    import shutil

    from train.calibrate import main
    from train.checkpoint import load_checkpoint

    other = tmp_path / "other"
    other.mkdir()
    for img in sorted(tiny_image_dir.glob("*.png"))[:2]:
        shutil.copy(img, other / f"b-{img.name}")
    out = tmp_path / "cal.safetensors"
    argv = ["--weights", str(tiny_run), "--set", str(tiny_image_dir), str(other), "-o", str(out), "--crop", "0",
            "--factors", "0.8,1,1.2"]
    assert run_cli(main, argv) == 0
    _, meta = load_checkpoint(out)
    n = len(list(tiny_image_dir.glob("*.png")))
    assert meta["calibration"]["images"] == n + 2
    assert meta["calibration"]["set"] == f"{tiny_image_dir.name}+other"
    assert f"{n + 2} images of {tiny_image_dir.name}+other" in capsys.readouterr().err
    out.unlink()
    out.with_suffix(".json").unlink(missing_ok=True)
    (tmp_path / "empty").mkdir()
    assert run_cli(main, [*argv[:5], str(tmp_path / "empty"), *argv[5:]]) == 2  # one unusable folder: refused
    assert "no image files" in capsys.readouterr().err and not out.exists()
    assert run_cli(main, [*argv[:5], str(tiny_image_dir), *argv[5:]]) == 2  # a folder twice: refused
    err = capsys.readouterr().err.strip()
    assert "twice" in err and len(err.splitlines()) == 1 and not out.exists()


def test_refine_bisects_the_jump_between_knots(tiny_run, tiny_image_dir, tmp_path, capsys, monkeypatch):
    """A network whose best strength jumps (the shift form's band) gets knots closing in on the jump."""
    import train.calibrate as cal
    from train.checkpoint import load_checkpoint

    scanned = []

    def fake_scan(model, images, level, strengths, device="cpu"):  # best at 0.5x own below σ 33, 1.5x from it
        scanned.append(level)
        want = strengths[0] / 0.5 * (0.5 if level < 33 else 1.5)  # strengths[0] is 0.5 x own
        return [-abs(s - want) for s in strengths]

    monkeypatch.setattr(cal, "scan", fake_scan)
    out = tmp_path / "cal.safetensors"
    argv = ["--weights", str(tiny_run), "--set", str(tiny_image_dir), "-o", str(out), "--factors", "0.5,1,1.5",
            "--crop", "0", "--levels", "15", "30", "45", "--refine", "3"]
    assert run_cli(cal.main, argv) == 0
    assert scanned[:3] == [15.0, 30.0, 45.0] and scanned[3:] == [37.5, 33.75, 31.875]  # one knot per round
    _, meta = load_checkpoint(out)
    rows = meta["calibration"]["rows"]
    assert [r["level"] for r in rows] == sorted(r["level"] for r in rows)
    assert meta["calibration"]["refine"] == 3
    assert [r["best_factor"] for r in rows if r["level"] in (31.875, 33.75)] == [0.5, 1.5]  # the jump is there
    assert "| 33.75 |" in capsys.readouterr().out
    scanned.clear()
    out.unlink()
    assert run_cli(cal.main, [*argv[:-1], "0"]) == 0 and len(scanned) == 3  # --refine 0: the knots given only
    assert run_cli(cal.main, [*argv[:-1], "-1"]) == 2  # bad value: refused
    assert "--refine must be >= 0" in capsys.readouterr().err
    new_dir = tmp_path / "new" / "cal.safetensors"
    assert run_cli(cal.main, [*argv[:4], "-o", str(new_dir), *argv[6:-1], "-1"]) == 2
    assert not new_dir.parent.exists()  # refused before the output folder is made


def test_calibrated_checkpoint_exports_exactly(tiny_run, tiny_image_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    from export.base import ExportConfig
    from export.onnx import OnnxConfig, export_onnx
    from train.calibrate import main

    out = tmp_path / "cal.safetensors"
    assert run_cli(main, ["--weights", str(tiny_run), "--set", str(tiny_image_dir), "-o", str(out), "--crop", "0",
                          "--factors", "0.6,1,1.4"]) == 0
    for mode, level in (("folded", None), ("weights", None), ("fixed", 30.0)):
        res = export_onnx(OnnxConfig(ExportConfig(str(out), tmp_path / mode, level_mode=mode, level=level)))
        assert res.meta["validation"]["status"] == "passed", res.meta["validation"]
        assert res.meta["level_map"]["knots"]


def test_calibrate_a_knot_past_the_top_level(tiny_run, tiny_image_dir, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from export.base import ExportConfig
    from export.onnx import OnnxConfig, export_onnx
    from train.calibrate import main
    from train.checkpoint import load_checkpoint

    out = tmp_path / "cal.safetensors"
    assert run_cli(main, ["--weights", str(tiny_run), "--set", str(tiny_image_dir), "-o", str(out), "--crop", "0",
                          "--factors", "0.8,1,1.2", "--levels", "15", "45", "60"]) == 0
    assert "| 60 |" in capsys.readouterr().out
    cal, _ = load_checkpoint(out)
    lm = cal.level_map
    assert [round(u, 6) for u, _ in lm.knots] == [round(15 / 45, 6), 1.0, round(60 / 45, 6)]
    assert lm.saturation_level == pytest.approx(60) and lm.strength(70) == lm.strength(60)
    s = cal.strength(torch.tensor([45.0, 52.5, 60.0, 70.0]))
    assert s[0] < s[1] < s[2] and s[3] == s[2]  # past the top training level, up to the knot at 60
    res = export_onnx(OnnxConfig(ExportConfig(str(out), tmp_path / "folded")))
    assert res.meta["validation"]["status"] == "passed", res.meta["validation"]


@pytest.mark.parametrize("args,msg", [
    (["-o", "{d}/cal.safetensors", "--levels", "0"], "degraded side"),
    (["-o", "{d}/cal.safetensors", "--levels", "300"], "outside [0, 255]"),
    (["-o", "{d}/cal.onnx"], "must end in .safetensors"),
    (["-o", "{d}/cal.safetensors", "--factors", "0.5,2"], "include 1"),
    (["-o", "{d}/cal.safetensors", "--factors", "a,b"], "comma-separated"),
])
def test_calibrate_bad_input(tiny_run, tiny_image_dir, tmp_path, capsys, args, msg):
    from train.calibrate import main

    argv = ["--weights", str(tiny_run), "--set", str(tiny_image_dir), *[a.format(d=tmp_path) for a in args]]
    assert run_cli(main, argv) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1
    assert not list(tmp_path.glob("cal*"))


def test_calibrate_refuses_an_unwritable_output_before_the_scan(tiny_run, tiny_image_dir, tmp_path, capsys,
                                                                 monkeypatch):
    import train.calibrate as cal

    monkeypatch.setattr(cal, "scan", lambda *a, **k: pytest.fail("scanned before checking the output"))
    (tmp_path / "file").write_text("x")
    argv = ["--weights", str(tiny_run), "--set", str(tiny_image_dir), "-o", str(tmp_path / "file" / "c.safetensors")]
    assert run_cli(cal.main, argv) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_refine_midpoints_are_whole_jpeg_qualities():
    from types import SimpleNamespace

    from train.calibrate import _midpoint

    assert _midpoint(SimpleNamespace(unit="quality"), 20, 25) == 22.0  # the encoder takes whole qualities
    assert _midpoint(SimpleNamespace(unit="sigma"), 21, 22) == 21.5
