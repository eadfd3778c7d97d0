"""--local runs with stand-in runtimes, and one-line errors for missing device tools."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from devices.android.__main__ import main as android_main
from devices.ios.__main__ import main as ios_main
from devices.jetson.__main__ import main as jetson_main
from runtimes.core.errors import run_cli
from tests.devices.conftest import REPO
from tests.devices.test_commands import fake_artifact

FAST = ["--levels", "0", "25", "--sizes", "32x32", "--runs", "2", "--warmup", "0"]


def test_jetson_local_onnxruntime(tiny_onnx, small_images, tmp_path):
    out = tmp_path / "j.json"
    assert jetson_main(["--onnx", str(tiny_onnx), "--local", "--set", str(small_images), "--json", str(out),
                        *FAST]) == 0
    doc = json.loads(out.read_text())
    assert doc["schema"] == "levelres-bench/1" and doc["device"]["mode"] == "local"
    (rec,) = doc["results"]
    assert rec["runtime"] == "stand-in: onnxruntime" and rec["runner"] == "onnxruntime-cpu"
    assert [a["level"] for a in rec["accuracy"]] == [0, 25] and rec["accuracy"][1]["psnr"] > 0
    assert len(rec["latency"]) == 2 and rec["latency"][0]["p50_ms"] > 0
    assert "stand-in: onnxruntime" in out.with_suffix(".md").read_text() and out.with_suffix(".csv").is_file()


def test_android_local_litert(tiny_tflite, small_images, tmp_path, capsys):
    out = tmp_path / "a.json"
    assert android_main(["--tflite", str(tiny_tflite), "--local", "--delegates", "cpu", "xnnpack", "gpu",
                         "--set", str(small_images), "--json", str(out), *FAST]) == 0
    doc = json.loads(out.read_text())
    assert [r["delegate"] for r in doc["results"]] == ["cpu", "xnnpack"]
    assert all(r["runtime"] == "stand-in: ai-edge-litert" for r in doc["results"])
    assert "gpu" in doc["device"]["note"] and "skipped gpu" in capsys.readouterr().err
    assert doc["results"][1]["accuracy"][0]["tiled"]  # 40x48 images on a 32x32 signature


@pytest.mark.skipif(sys.platform == "darwin", reason="CoreML runs on macOS; the Linux error is tested elsewhere")
def test_ios_local_is_a_clear_error(tmp_path, capsys):
    pkg = fake_artifact(tmp_path, "dn.mlpackage")
    assert run_cli(ios_main, ["--mlpackage", str(pkg), "--local"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no CoreML stand-in" in err and "Mac" in err
    assert run_cli(ios_main, ["--mlpackage", str(pkg)]) == 2
    assert "need macOS" in capsys.readouterr().err


def _cli(module: str, *args: str, env_path: str = "") -> subprocess.CompletedProcess:
    env = {"PATH": env_path, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True, env=env,
                          timeout=120)


def test_missing_tools_are_one_line_errors(tmp_path):
    onnx = fake_artifact(tmp_path, "dn.onnx", onnx_precision="fp32")
    tfl = fake_artifact(tmp_path, "dn.tflite", signatures={"s32x32": {"size": [32, 32], "inputs": {
        "image": "a0", "level": "a1"}, "outputs": {"restored": "o"}, "runner_inputs": [
        {"role": "image", "tensor": "s32x32_a0", "shape": [1, 3, 32, 32]},
        {"role": "level", "tensor": "s32x32_a1", "shape": [1]}]}})
    cases = [
        (("devices.jetson", "--onnx", str(onnx), "--trtexec", "--trtexec-path", "", "--max-images", "1"),
         "trtexec not found"),
        (("devices.android", "--tflite", str(tfl), "--benchmark-binary", "bm", "--max-images", "1"), "adb not found"),
    ]
    if importlib_missing("tensorrt"):
        cases.append((("devices.jetson", "--onnx", str(onnx), "--max-images", "1"), "python3-libnvinfer"))
    for args, message in cases:
        proc = _cli(*args)
        assert proc.returncode == 2, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr


def importlib_missing(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is None
