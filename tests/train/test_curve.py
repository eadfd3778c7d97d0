"""train.curve: PSNR against the step budget from runs of one recipe, and its extrapolation."""

import json

import pytest

from runtimes.core.errors import run_cli
from train.curve import extrapolate, main

CONFIG = {"task": "denoise", "preset": "unet-fast", "form": None, "baseline_level": 25.0, "levels": None,
          "batch": 16, "patch": 96, "lr": 2e-4, "seed": 0, "data": "datasets/train/CBSD432", "init": None}


def _run(root, steps, psnr, name=None, last=None, **config):
    folder = root / (name or f"dn25-s{steps}")
    folder.mkdir()
    cfg = dict(CONFIG, steps=steps, **config)
    if last is not None:
        (folder / "last.json").write_text(json.dumps({"steps": last}))
    ran = steps if last is None else last
    meta = {"task": cfg["task"], "arch": {"form": "plain"}, "baseline_level": 25.0, "steps": ran,
            "train_seconds": ran / 5, "device": "cpu", "preset": cfg["preset"], "level_map": {"unit": "sigma"},
            "train_config": cfg}
    (folder / "best.json").write_text(json.dumps(meta))
    rows = [{"level": lv, "psnr": p, "input_psnr": 20.53 if lv == 25 else 34.25} for lv, p in psnr.items()]
    (folder / "eval-CBSD68.json").write_text(json.dumps({"task": cfg["task"], "rows": rows}))
    return str(folder)


def test_geometric_series_ceiling_and_steps_to_target():
    pts = [(1000, 27.0), (2000, 27.4), (4000, 27.6), (8000, 27.7)]  # gains 0.4, 0.2, 0.1 per doubling
    out = extrapolate(pts, target=27.775)
    assert [g["gain_per_doubling"] for g in out["gains"]] == pytest.approx([0.4, 0.2, 0.1])
    assert out["ratio"] == pytest.approx(0.5)
    assert out["ceiling"] == pytest.approx(27.8)  # 27.7 + 0.05 + 0.025 + ...
    assert out["reached"] is False and out["steps_to_target"] == 32000  # two more doublings: +0.05, +0.025
    far = extrapolate(pts, target=27.9)
    assert far["reached"] is False and far["steps_to_target"] is None


def test_uneven_budgets_are_per_doubling():
    pts = [(1000, 27.0), (4000, 27.8), (8000, 28.0)]  # 0.8 over two doublings, then 0.2 over one
    out = extrapolate(pts)
    assert [g["gain_per_doubling"] for g in out["gains"]] == pytest.approx([0.4, 0.2])
    assert out["ratio"] == pytest.approx(0.5 ** (1 / 1.5))  # interval midpoints 1.5 doublings apart


def test_measured_target_and_flat_curve():
    pts = [(1000, 27.0), (2000, 27.5), (4000, 27.5)]
    out = extrapolate(pts, target=27.2)
    assert out["reached"] is True and out["steps_to_target"] == 2000
    flat = extrapolate(pts, target=28.0)
    assert flat["ceiling"] == pytest.approx(27.5) and flat["reached"] is False and flat["steps_to_target"] is None


def test_growing_gains_hold_the_last_gain():
    out = extrapolate([(1000, 27.0), (2000, 27.1), (4000, 27.4)], target=28.0)
    assert out["ratio"] is None and out["ceiling"] is None
    assert out["steps_to_target"] == 16000  # +0.3 per doubling: two more


def test_cli_table_and_json(tmp_path, capsys):
    runs = [_run(tmp_path, s, {25.0: p, 5.0: q}) for s, p, q in
            [(2250, 27.2, 37.0), (4500, 27.6, 37.5), (9000, 27.8, 37.8)]]
    assert main([*runs, "--set", "CBSD68", "--target", "25=27.85", "--target", "5=37.6",
                 "--json", str(tmp_path / "c.json")]) == 0
    out = capsys.readouterr().out
    assert "| 25 | 20.53 | 27.20 | 27.60 | 27.80 | +0.400 | +0.200 | 0.50 | 28.00 |" in out
    assert "sigma 25: target 27.85 dB: about 12728 steps" in out
    assert "sigma 5: target 37.60 dB: reached at 9000 steps (measured)" in out
    c = json.loads((tmp_path / "c.json").read_text())
    assert [r["steps"] for r in c["runs"]] == [2250, 4500, 9000] and c["set"] == "CBSD68"


def test_two_budgets_do_not_extrapolate(tmp_path, capsys):
    runs = [_run(tmp_path, s, {25.0: p}) for s, p in [(2000, 27.2), (4000, 27.6)]]
    assert main([*runs, "--set", "CBSD68", "--target", "25=29.3"]) == 0
    assert "not reached by more steps of this recipe (three budgets are needed" in capsys.readouterr().out


def test_same_training_set_under_another_root(tmp_path, capsys):
    runs = [_run(tmp_path, 2000, {25.0: 27.2}), _run(tmp_path, 4000, {25.0: 27.6}, data="/data/train/CBSD432/")]
    assert main([*runs, "--set", "CBSD68"]) == 0


def test_a_minutes_budget_is_the_steps_the_finished_run_took(tmp_path, capsys):
    runs = [_run(tmp_path, 2000, {25.0: 27.2}), _run(tmp_path, None, {25.0: 27.6}, name="minutes", last=4000,
                                                      minutes=20.0)]
    assert main([*runs, "--set", "CBSD68", "--json", str(tmp_path / "c.json")]) == 0
    assert [r["steps"] for r in json.loads((tmp_path / "c.json").read_text())["runs"]] == [2000, 4000]


@pytest.mark.parametrize("case", ["one_run", "recipe", "same_budget", "target_level", "target_syntax",
                                  "no_config", "no_common_level", "unfinished"])
def test_bad_input_is_one_line(case, tmp_path, capsys):
    runs = [_run(tmp_path, 2000, {25.0: 27.2}), _run(tmp_path, 4000, {25.0: 27.6})]
    extra = []
    if case == "one_run":
        runs = runs[:1]
    elif case == "recipe":
        runs.append(_run(tmp_path, 8000, {25.0: 27.7}, batch=64))
    elif case == "same_budget":
        runs.append(_run(tmp_path, 4000, {25.0: 27.7}, name="again"))
    elif case == "target_level":
        extra = ["--target", "50=26"]
    elif case == "target_syntax":
        extra = ["--target", "25:29.3"]
    elif case == "no_config":
        meta = json.loads((tmp_path / "dn25-s2000" / "best.json").read_text())
        del meta["train_config"]
        (tmp_path / "dn25-s2000" / "best.json").write_text(json.dumps(meta))
    elif case == "no_common_level":
        runs.append(_run(tmp_path, 8000, {5.0: 37.7}))
    elif case == "unfinished":
        runs.append(_run(tmp_path, 8000, {25.0: 27.7}, last=5000))
    assert run_cli(main, [*runs, "--set", "CBSD68", *extra, "--json", str(tmp_path / "c.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "c.json").exists()
