"""The CPU benchmark script end to end on a small frame (latency values are not asserted: machines are noisy)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("litert_torch")

from export.bench_cpu import CpuBenchConfig, markdown, run_cpu_bench  # noqa: E402
from runtimes.core.latency import LatencyConfig  # noqa: E402


def test_every_path_for_each_model(tmp_path, calib_dir):
    cfg = CpuBenchConfig(models=("tiny",), size=(32, 48), latency=LatencyConfig(warmup=0, runs=1),
                         out_dir=tmp_path / "a", json_path=tmp_path / "cpu.json", calibration=calib_dir, calib_images=2)
    doc = run_cpu_bench(cfg)
    assert json.loads((tmp_path / "cpu.json").read_text())["schema"] == "levelres-bench-cpu/2"
    paths = [r["path"] for r in doc["rows"]]
    assert paths == ["tiny: torch eager fp32", "tiny: onnxruntime fp32", "tiny: litert xnnpack fp32",
                     "tiny: litert xnnpack int8"]
    fp32 = [r for r in doc["rows"] if "fp32" in r["path"] and r["parity_psnr_vs_torch"] is not None]
    assert all(r["parity_psnr_vs_torch"] > 80 for r in fp32)  # the same function in every runtime
    assert doc["models"][0]["arch"]["channels"] == 8 and doc["paper_preset_onnxruntime"]["gmacs"] > 0
    assert "tiny: litert xnnpack int8" in markdown(doc)


def test_a_frame_off_the_grid_is_padded_to_it(tmp_path, calib_dir):
    """A multi-scale network runs the frame padded up to its grid (as deployments do), and says so."""
    from runtimes.apps.tiling import receptive_field
    from train.model import preset

    arch = preset("unet-tiny")
    side = max(64, -(-receptive_field(arch.to_dict()) // arch.grid) * arch.grid) + arch.grid
    h, w = side - 2, side + arch.grid - 2  # even, off the grid
    cfg = CpuBenchConfig(models=("unet-tiny",), size=(h, w), latency=LatencyConfig(warmup=0, runs=1),
                         out_dir=tmp_path / "a", json_path=tmp_path / "cpu.json", calibration=calib_dir, calib_images=2)
    doc = run_cpu_bench(cfg)
    frame = [side, side + arch.grid]
    assert doc["models"][0]["frame"] == frame and all(r["frame"] == frame for r in doc["rows"])
    assert doc["rows"][0]["path"] == f"unet-tiny ({side}x{side + arch.grid}): torch eager fp32"
    assert all(r["parity_psnr_vs_torch"] > 80 for r in doc["rows"] if "fp32" in r["path"] and r["parity_psnr_vs_torch"])
