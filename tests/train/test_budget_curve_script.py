"""scripts/budget_curve.sh: dedicated runs at several budgets, scored, then read by train.curve (tiny runs)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
from PIL import Image  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "budget_curve.sh"


def _images(folder: Path, n: int, size: int, seed: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        smooth = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
        Image.fromarray(smooth).resize((size, size), Image.BICUBIC).save(folder / f"{i}.png")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    _images(root / "train" / "CBSD432", 3, 112, 0)
    for i, name in enumerate(("CBSD68", "Set14")):
        _images(root / "test" / name, 2, 192, i + 1)
    return root


def _run(data_root, out, *budgets, **env):
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"  # the script calls `python`
    env = {**os.environ, "PRESET": "tiny", "LEVEL": "25", "PATCH": "48", "PATH": path, **env}
    return subprocess.run(["bash", str(SCRIPT), str(data_root), str(out), *budgets], env=env, capture_output=True,
                          text=True, timeout=600, cwd=SCRIPT.parents[1])


def test_runs_then_curve_per_batch(data_root, tmp_path):
    res = _run(data_root, tmp_path, "2x2", "4x2", "8x2", "4x2", "3x4", TARGET="99")
    assert res.returncode == 0, res.stderr + res.stdout
    for name in ("dn25-s2-b2", "dn25-s4-b2", "dn25-s8-b2", "dn25-s3-b4"):
        assert f"{name}: exit 0" in res.stdout, (tmp_path / f"{name}.log").read_text()
        meta = json.loads((tmp_path / name / "last.json").read_text())
        assert meta["baseline_level"] == 25.0 and meta["train_config"]["batch"] == int(name.split("-b")[1])
    assert res.stdout.count("dn25-s4-b2: exit") == 1  # a budget given twice runs once
    curve = json.loads((tmp_path / "curve-dn25-b2.json").read_text())
    assert [r["steps"] for r in curve["runs"]] == [2, 4, 8] and curve["curve"][0]["level"] == 25.0
    assert not (tmp_path / "curve-dn25-b4.json").exists()  # one budget at batch 4: no curve
    assert "sigma 25: target 99.00 dB" in res.stdout
    again = _run(data_root, tmp_path, "2x2", "4x2")
    assert again.returncode == 0 and "dn25-s2-b2: kept" in again.stdout


def test_a_failed_run_fails_the_script_and_is_left_out_of_the_curve(data_root, tmp_path):
    res = _run(data_root, tmp_path, "2x2", "4x2", "8x2", PATCH="500")  # crops larger than the training images
    assert res.returncode == 1 and "dn25-s2-b2: exit 2" in res.stdout
    assert not (tmp_path / "curve-dn25-b2.json").exists()


def test_bad_budget_and_usage(data_root, tmp_path):
    res = _run(data_root, tmp_path / "o", "2x2", "4000")
    assert res.returncode == 2 and "not STEPSxBATCH" in res.stderr and not (tmp_path / "o").exists()
    res = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and res.stderr.startswith("usage:")
