"""scripts/train_shipped.sh: run names map to the right training and evaluation commands (tiny runs)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
from PIL import Image  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train_shipped.sh"


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
    for i, name in enumerate(("CBSD68", "Set14", "Set5", "Classic5", "LIVE1_color")):
        _images(root / "test" / name, 2, 192, i + 1)
    return root


def _run(data_root, out, runs, budget="2steps"):
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"  # the script calls `python`
    env = dict(os.environ, RUNS=runs, SEQUENTIAL="1", WORKERS="0", PATH=path)
    return subprocess.run(["bash", str(SCRIPT), str(data_root), str(out), budget, "--batch", "2"],
                          env=env, capture_output=True, text=True, timeout=600, cwd=SCRIPT.parents[1])


def test_one_weight_set_and_dedicated_runs(data_root, tmp_path):
    res = _run(data_root, tmp_path, "dn-tiny-linear dn25-tiny-dedicated sr-tiny-affine")
    assert res.returncode == 0, res.stderr
    for name in ("dn-tiny-linear", "dn25-tiny-dedicated", "sr-tiny-affine"):
        assert f"{name}: exit 0" in res.stdout, (tmp_path / f"{name}.log").read_text()
    meta = json.loads((tmp_path / "dn25-tiny-dedicated" / "last.json").read_text())
    assert meta["baseline_level"] == 25.0 and meta["steps"] == 2 and meta["arch"]["form"] == "plain"
    rows = json.loads((tmp_path / "dn25-tiny-dedicated" / "eval-CBSD68.json").read_text())["rows"]
    levels = [r["level"] for r in rows]
    assert levels == [0.0, 25.0]  # the dedicated model is evaluated at its own level and the neutral one
    sr = json.loads((tmp_path / "sr-tiny-affine" / "last.json").read_text())
    assert sr["task"] == "sr" and sr["arch"]["form"] == "affine" and sr["train_levels"] == [2.0, 3.0, 4.0, 5.0]
    assert (tmp_path / "sr-tiny-affine" / "eval-Set5.json").is_file()
    assert (tmp_path / "sr-tiny-affine" / "eval-Set14.json").is_file()  # the second test set of the task


def test_unknown_run_names_are_reported(data_root, tmp_path):
    res = _run(data_root, tmp_path, "xx-tiny-linear dn-tiny-bogus dn-tiny-dedicated")
    assert res.returncode == 1 and res.stderr.count("unknown run") == 3
    assert not any(p.is_dir() for p in tmp_path.iterdir())


def test_a_failed_run_fails_the_script(data_root, tmp_path):
    res = _run(data_root, tmp_path, "dn-tiny-linear", budget="0steps")  # refused: --steps must be positive
    assert res.returncode == 1 and "dn-tiny-linear: exit 2" in res.stdout
    assert "--steps must be positive" in (tmp_path / "dn-tiny-linear.log").read_text()


def test_usage_without_arguments():
    res = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and res.stderr.startswith("usage:")
    res = subprocess.run(["bash", str(SCRIPT.parent / "train_gpu.sh"), "data"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 2 and res.stderr.startswith("usage:")


def test_gpu_batch_script(data_root, tmp_path):
    """scripts/train_gpu.sh: the jittered continuation of the previous mobile denoiser and the seven SR runs."""
    script = SCRIPT.parent / "train_gpu.sh"
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    env = dict(os.environ, WORKERS="0", PATH=path)
    res = subprocess.run(["bash", str(script), str(data_root), str(tmp_path), "1steps", "--batch", "1"], env=env,
                         capture_output=True, text=True, timeout=900, cwd=SCRIPT.parents[1])
    assert res.returncode == 0, res.stderr
    assert "dn-mobile-jitter: exit 0" in res.stdout and "sr6-mobile-dedicated: exit 0" in res.stdout
    runs = ["dn-mobile-jitter", "sr-mobile-linear", "sr-mobile-affine",
            *(f"sr{s}-mobile-dedicated" for s in range(2, 7))]
    for name in runs:
        assert (tmp_path / name / "best.safetensors").is_file(), (tmp_path / f"{name}.log").read_text()
    dn = json.loads((tmp_path / "dn-mobile-jitter" / "last.json").read_text())
    cfg = dn["train_config"]
    assert cfg["init"].endswith("train/candidates/denoise-mobile-linear.safetensors") and cfg["level_jitter"] == 0.5
    assert cfg["lr"] == 1e-4 and (tmp_path / "dn-mobile-jitter" / "eval-CBSD68.json").is_file()
    sr6 = json.loads((tmp_path / "sr6-mobile-dedicated" / "last.json").read_text())
    assert sr6["baseline_level"] == 6.0 and sr6["arch"]["form"] == "plain"
    affine = json.loads((tmp_path / "sr-mobile-affine" / "last.json").read_text())
    assert affine["arch"]["form"] == "affine" and affine["train_config"]["level_jitter"] == 0.5
    assert (tmp_path / "sr-mobile-affine" / "eval-Set14.json").is_file()


def test_paper_gpu_script(data_root, tmp_path):
    """scripts/train_paper_gpu.sh: train, evaluate, calibrate, evaluate the calibrated map, time the step."""
    script = SCRIPT.parent / "train_paper_gpu.sh"
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    env = dict(os.environ, PRESET="tiny", TP_STEPS="1", TP_WARMUP="0", PATH=path)
    res = subprocess.run(["bash", str(script), str(data_root), str(tmp_path), "2steps"], env=env,
                         capture_output=True, text=True, timeout=600, cwd=SCRIPT.parents[1])
    assert res.returncode == 0, res.stderr[-2000:]
    for name in ("best.safetensors", "cal.safetensors", "eval-CBSD68.json", "eval-cal-CBSD68.json",
                 "throughput-reduce-overhead.json", "throughput-default.json"):
        assert (tmp_path / name).is_file(), name
    assert (tmp_path / "run" / "eval-CBSD68.json").is_file()  # train.ship reads it from the run folder
    meta = json.loads((tmp_path / "run" / "best.json").read_text())
    assert meta["preset"] == "tiny" and meta["train_config"]["level_jitter"] == 0.5
    assert "knots" in json.loads((tmp_path / "cal.json").read_text())["level_map"]
    rows = json.loads((tmp_path / "eval-cal-CBSD68.json").read_text())["rows"]
    assert [r["level"] for r in rows] == [0, 5, 15, 25, 35, 45, 55, 65, 75, 90]
    res = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and res.stderr.startswith("usage:")
