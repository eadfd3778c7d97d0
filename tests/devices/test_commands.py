"""Command construction and --dry-run output of every target (no device, no torch, no model needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devices.android.__main__ import main as android_main
from devices.android.benchmark_model import benchmark_command, delegate_flags
from devices.ios.__main__ import main as ios_main
from devices.jetson import engine as eng
from devices.jetson import trtexec
from devices.jetson.__main__ import main as jetson_main
from devices.profiles import TARGETS, detect_profile, find_profile, profiles
from runtimes.core.errors import UserError

LEVEL_MAP = {"task": "denoise", "unit": "sigma", "a": 1 / 75, "b": 0.0, "lo": 0.0, "hi": 255.0,
             "train_levels": [15.0, 35.0]}


def fake_artifact(folder: Path, name: str, **meta) -> Path:
    """An artifact file with the project's metadata beside it (enough for dry runs)."""
    path = folder / name
    path.write_bytes(b"x")
    path.with_name(name + ".meta.json").write_text(json.dumps({"task": "denoise", "level_map": LEVEL_MAP,
                                                               "level_mode": "folded", **meta}))
    return path


def test_trtexec_commands():
    shapes = ((1, 3, 256, 256), (1, 3, 720, 1280), (1, 3, 1088, 1920))
    cmd = trtexec.build_command("trtexec", Path("m/dn.onnx"), Path("o/dn.engine"), shapes, ("--fp16",), 1024)
    assert cmd == ["trtexec", "--onnx=m/dn.onnx", "--saveEngine=o/dn.engine", "--minShapes=image:1x3x256x256",
                   "--optShapes=image:1x3x720x1280", "--maxShapes=image:1x3x1088x1920", "--fp16",
                   "--memPoolSize=workspace:1024", "--timingCacheFile=o/dn.timing.cache"]
    run = trtexec.bench_command("trtexec", Path("dn.engine"), (1, 3, 720, 1280), Path("l25.bin"), 50)
    assert "--shapes=image:1x3x720x1280" in run and "--loadInputs=level:l25.bin" in run and "--iterations=50" in run
    assert not any(c.startswith("--export") for c in run)
    run = trtexec.bench_command("trtexec", Path("dn.engine"), (1, 3, 720, 1280), None, 50,
                                reports=(Path("t.times.json"), Path("t.profile.json")))
    assert run[-3:] == ["--exportTimes=t.times.json", "--exportProfile=t.profile.json", "--separateProfileRun"]


def test_precision_plan_on_jetpack5():
    assert eng.precision_plan("fp16", "8.5.2", {"onnx_precision": "fp32"}).trtexec_flags == ("--fp16",)
    with pytest.raises(UserError, match="TensorRT 8.4"):
        eng.precision_plan("fp16", "8.4.1", {"onnx_precision": "fp32"})


def test_precision_plans():
    onnx_meta = {"onnx_precision": "fp32"}
    assert eng.precision_plan("fp16", "10.3.0", onnx_meta).builder_flags == ("FP16",)
    assert eng.precision_plan("fp32", None, onnx_meta).trtexec_flags == ()
    assert eng.precision_plan("int8", "10.3", {"onnx_precision": "int8-qdq"}).trtexec_flags == ("--int8", "--fp16")
    with pytest.raises(UserError, match="Q/DQ ONNX"):
        eng.precision_plan("int8", "10.3", onnx_meta)
    assert eng.precision_plan("fp16", "11.0", {"onnx_precision": "fp16"}).strongly_typed
    with pytest.raises(UserError, match="strongly typed"):
        eng.precision_plan("fp16", "11.0", onnx_meta)
    with pytest.raises(UserError, match="TensorRT 9.2 is not supported"):
        eng.precision_plan("fp16", "9.2", onnx_meta)


def test_profile_shapes_cover_sizes_and_images():
    lo, opt, hi = eng.profile_shapes({}, [(256, 256), (720, 1280)], [(321, 481, 3), (481, 321, 3)])
    assert lo == (1, 3, 256, 256) and opt == (1, 3, 256, 256) and hi == (1, 3, 720, 1280)
    assert eng.profile_shapes({"layout": "NHWC"}, [(64, 96)], [])[1] == (1, 64, 96, 3)


def test_benchmark_model_commands():
    inputs = [("s32x32_image", [1, 3, 32, 32]), ("s32x32_level", [1])]
    cmd = benchmark_command("/t/benchmark_model", "/t/dn.tflite", "gpu", 4, 50, 5, signature="s32x32",
                            op_profiling=True, inputs=inputs, input_files={"s32x32_level": "/t/level_25.raw"})
    # benchmark_model finds value-file names only in --input_layer, and maps that list to the inputs by position
    assert cmd == ["/t/benchmark_model", "--graph=/t/dn.tflite", "--num_threads=4", "--use_gpu=true",
                   "--num_runs=50", "--warmup_runs=5", "--signature_to_run_for=s32x32",
                   "--input_layer=s32x32_image,s32x32_level", "--input_layer_shape=1,3,32,32:1",
                   "--input_layer_value_files=s32x32_level:/t/level_25.raw",
                   "--enable_op_profiling=true"]
    escaped = benchmark_command("b", "g", "cpu", 1, 1, 0, inputs=[("in:0", [1])], input_files={"in:0": "/t/a:b"})
    assert "--input_layer_value_files=in::0:/t/a::b" in escaped  # ':' escaped as benchmark_model expects
    with pytest.raises(UserError, match="value files for"):
        benchmark_command("b", "g", "cpu", 1, 1, 0, inputs=inputs, input_files={"level": "/t/l.raw"})
    assert delegate_flags("cpu") == ["--use_xnnpack=false"] and delegate_flags("nnapi") == ["--use_nnapi=true"]
    with pytest.raises(UserError, match="unknown delegate"):
        delegate_flags("hexagon")


def test_jetson_dry_run(tmp_path, small_images, capsys):
    onnx = fake_artifact(tmp_path, "dn-trt.onnx", onnx_precision="fp32", artifact_format="tensorrt-onnx")
    assert jetson_main(["--onnx", str(onnx), "--precision", "fp16", "--set", str(small_images), "--levels", "0", "25",
                        "--sizes", "64x64", "--trtexec", "--dry-run", "--json", str(tmp_path / "b.json")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "nvpmodel -q" in out and any(line.startswith("jetson_clocks --show") for line in out)
    assert any(line.startswith("tegrastats --interval 100") for line in out)
    build = next(line for line in out if "--saveEngine=" in line)
    assert "--fp16" in build and "--minShapes=image:1x3x40x48" in build and "--maxShapes=image:1x3x64x64" in build
    assert sum("--loadEngine=" in line for line in out) == 2  # one per (size, level)
    assert not (tmp_path / "b.json").exists()


def _sig(h: int, w: int, order: bool = True) -> dict:
    entry = {"size": [h, w], "inputs": {"image": "image", "level": "level"}, "outputs": {"restored": "restored"}}
    if order:
        entry["runner_inputs"] = [{"role": "image", "tensor": f"s{h}x{w}_image", "shape": [1, 3, h, w]},
                                  {"role": "level", "tensor": f"s{h}x{w}_level", "shape": [1]}]
    return entry


def test_android_dry_run(tmp_path, capsys):
    tfl = fake_artifact(tmp_path, "dn.tflite", signatures={"s32x32": _sig(32, 32), "s64x64": _sig(64, 64)})
    assert android_main(["--tflite", str(tfl), "--benchmark-binary", "bm", "--delegates", "xnnpack", "gpu",
                         "--levels", "25", "--serial", "R5CX", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert f"adb -s R5CX push {tfl} /data/local/tmp/levelres/dn.tflite" in out
    assert "adb -s R5CX shell chmod +x /data/local/tmp/levelres/benchmark_model" in out
    runs = [line for line in out if "--graph=" in line]
    assert len(runs) == 4  # 2 delegates x 2 signatures x 1 level
    assert all("--num_threads=4" in r for r in runs)
    big = [r for r in runs if "--signature_to_run_for=s64x64" in r]
    assert len(big) == 2 and all("--input_layer=s64x64_image,s64x64_level --input_layer_shape=1,3,64,64:1 "
                                 "--input_layer_value_files=s64x64_level:/data/local/tmp/levelres/level_25.raw"
                                 in r for r in big)
    assert sum("--use_gpu=true" in r for r in runs) == 2


def test_android_refuses_a_tflite_without_its_input_order(tmp_path, capsys):
    """Older metadata lacks the subgraph input order that benchmark_model's value files need: one-line error."""
    from runtimes.core.errors import run_cli

    tfl = fake_artifact(tmp_path, "old.tflite", signatures={"s32x32": _sig(32, 32, order=False)})
    assert run_cli(android_main, ["--tflite", str(tfl), "--benchmark-binary", "bm", "--levels", "25", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no input order for signature s32x32" in err[0] and "re-export" in err[0]
    broken = _sig(32, 32)
    del broken["runner_inputs"][1]["shape"]
    bad = fake_artifact(tmp_path, "bad.tflite", signatures={"s32x32": broken})
    assert run_cli(android_main, ["--tflite", str(bad), "--benchmark-binary", "bm", "--levels", "25", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "input order for signature s32x32 is malformed" in err[0]


def test_ios_dry_run(tmp_path, capsys):
    pkg = fake_artifact(tmp_path, "dn.mlpackage")
    assert ios_main(["--mlpackage", str(pkg), "--compute-units", "all", "cpu_and_ne", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "ComputeUnit.ALL" in out and "ComputeUnit.CPU_AND_NE" in out and "Xcode" in out


def test_profiles():
    for target in TARGETS:
        assert profiles(target) and all(p.source == "vendor-published" and p.peak for p in profiles(target))
    assert detect_profile("jetson", "NVIDIA Jetson Orin Nano Developer Kit").key == "orin-nano-8gb"
    assert detect_profile("jetson", "NVIDIA Jetson AGX Orin").key == "agx-orin-64gb"
    assert detect_profile("android", "SM-S928B SM8650 pineapple 14").key == "snapdragon-8-gen-3"
    assert detect_profile("ios", "Apple M3 Pro").key == "mac-m3" and detect_profile("ios", None) is None
    with pytest.raises(UserError, match="orin-nx-16gb"):
        find_profile("jetson", "tx2")


@pytest.mark.parametrize("write_json", [True, False])
def test_trtexec_record_reads_the_json_else_the_text(tmp_path, monkeypatch, write_json):
    from devices.common import BenchOptions
    from devices.jetson import run as jrun
    from runtimes.apps.bench_eval import EvalConfig

    text = ("&&&& RUNNING TensorRT.trtexec [TensorRT v8502] # trtexec\n[I] Latency: min = 9 ms, max = 9 ms, "
            "mean = 9 ms, median = 9 ms, percentile(90%) = 9 ms, percentile(99%) = 9 ms\n&&&& PASSED\n")

    def fake_run_tool(cmd, timeout=600.0, check=True):
        args = dict(c.split("=", 1) for c in cmd if c.startswith("--export"))
        if write_json:
            Path(args["--exportTimes"]).write_text(json.dumps(
                [{"startComputeMs": 0.0, "latencyMs": 50.0}] + [{"startComputeMs": 300.0, "latencyMs": 2.0}] * 4))
            Path(args["--exportProfile"]).write_text('[{"count": 4}, {"name": "conv", "timeMs": 4.0, '
                                                     '"averageMs": 1.0, "percentage": 100.0}]')
        return text

    monkeypatch.setattr(jrun, "run_tool", fake_run_tool)
    cfg = jrun.JetsonConfig(onnx=tmp_path / "dn.onnx", trtexec=True,
                            bench=BenchOptions(eval=EvalConfig(sizes=((64, 64),)), json_path=tmp_path / "b.json"))
    meta = {"task": "denoise", "level_map": LEVEL_MAP, "level_mode": "folded", "precision": "fp16"}
    rec = jrun._trtexec_record(cfg, tmp_path / "dn.engine", meta, [25.0], "trtexec")
    row = rec["latency"][0]
    assert rec["runner"] == "trtexec-8.5.2"
    if write_json:
        assert row["p50_ms"] == 2.0 and row["n"] == 4 and "--exportTimes" in row["source"]
        assert rec["trtexec_top_layers"] == {"64x64@25": [{"name": "conv", "average_ms": 1.0, "percent": 100.0}]}
    else:
        assert row["p50_ms"] == 9.0 and "no --exportTimes JSON" in row["source"]
        assert rec["trtexec_top_layers"] is None
