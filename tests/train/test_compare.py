"""train.compare: the seed's table (dedicated vs one weight set per level) from run folders."""

import json

import pytest

from runtimes.core.errors import run_cli
from train.compare import main

INPUT = {0.0: 100.0, 5.0: 34.25, 25.0: 20.53, 90.0: 10.97}


def _run(root, name, form="linear", baseline=None, psnr=None, task="denoise", inputs=INPUT, steps=1000):
    folder = root / name
    folder.mkdir()
    meta = {"task": task, "arch": {"form": "plain" if baseline is not None else form}, "baseline_level": baseline,
            "steps": steps, "train_seconds": 500.0, "device": "cpu", "preset": "fast",
            "level_map": {"unit": "sigma"}}
    (folder / "best.json").write_text(json.dumps(meta))
    rows = [{"level": lv, "psnr": p, "input_psnr": inputs[lv]} for lv, p in psnr.items()]
    (folder / "eval-CBSD68.json").write_text(json.dumps({"task": task, "rows": rows}))
    return str(folder)


@pytest.fixture
def runs(tmp_path):
    return [
        _run(tmp_path, "dn-fast-linear", psnr={0.0: 100.0, 5.0: 35.0, 25.0: 29.0, 90.0: 21.0}),
        _run(tmp_path, "dn-fast-affine", form="affine", psnr={0.0: 100.0, 5.0: 35.5, 25.0: 28.5, 90.0: 22.0}),
        _run(tmp_path, "dn25-fast-dedicated", baseline=25.0, psnr={0.0: 31.0, 25.0: 29.25}, steps=4000),
        _run(tmp_path, "dn90-fast-dedicated", baseline=90.0, psnr={0.0: 20.0, 90.0: 21.5}, steps=4000),
    ]


def test_table_gaps_and_mean(runs, tmp_path, capsys):
    assert main([*runs, "--set", "CBSD68", "--json", str(tmp_path / "t.json")]) == 0
    out = capsys.readouterr().out
    assert "| 25 | 20.53 | 29.25 | 29.00 | 28.50 | -0.25 | -0.75 |" in out
    assert "| 5 | 34.25 |  | 35.00 | 35.50 |  |  |" in out  # no dedicated model at sigma 5: no gap
    t = json.loads((tmp_path / "t.json").read_text())
    assert t["forms"] == ["linear", "affine"] and t["mean_levels"] == [25.0, 90.0]
    assert t["mean"]["dedicated"] == pytest.approx((29.25 + 21.5) / 2)
    assert t["mean"]["linear_gap"] == pytest.approx((29.0 + 21.0) / 2 - (29.25 + 21.5) / 2)
    assert [r["name"] for r in t["runs"]] == ["dn-fast-linear", "dn-fast-affine", "dn25-fast-dedicated",
                                              "dn90-fast-dedicated"]
    assert "| dn25-fast-dedicated | 25 only | 4000 | 8.3 | 8.00 | cpu |" in out


def test_dedicated_level_zero_row_is_not_a_gap(runs, capsys):
    main([*runs, "--set", "CBSD68"])
    assert "| 0 | 100.00 |  | 100.00 | 100.00 |  |  |" in capsys.readouterr().out


@pytest.mark.parametrize("case", ["missing_eval", "not_folder", "two_dedicated", "two_linear", "tasks",
                                  "only_dedicated", "own_level", "inputs", "bad_json"])
def test_bad_runs_are_one_line_errors(case, runs, tmp_path, capsys):
    args = list(runs)
    if case == "missing_eval":
        (tmp_path / "dn25-fast-dedicated" / "eval-CBSD68.json").unlink()
    elif case == "not_folder":
        args.append(str(tmp_path / "nowhere"))
    elif case == "two_dedicated":
        args.append(_run(tmp_path, "dn25-again", baseline=25.0, psnr={25.0: 29.0}))
    elif case == "two_linear":
        args.append(_run(tmp_path, "dn-other", psnr={25.0: 29.0}))
    elif case == "tasks":
        args.append(_run(tmp_path, "dj30", baseline=30.0, task="dejpeg", psnr={25.0: 29.0}))
    elif case == "only_dedicated":
        args = args[2:]
    elif case == "own_level":
        args.append(_run(tmp_path, "dn45", baseline=45.0, psnr={0.0: 30.0}))
    elif case == "inputs":
        args[1] = _run(tmp_path, "dn-affine-2", form="affine", psnr={25.0: 28.0}, inputs={25.0: 20.0})
    elif case == "bad_json":
        (tmp_path / "dn-fast-linear" / "best.json").write_text("{ not json")
    assert run_cli(main, [*args, "--set", "CBSD68", "--json", str(tmp_path / "t.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "t.json").exists()
