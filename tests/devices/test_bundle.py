"""devices.bundle: a self-contained Jetson folder (ONNX only, to stay fast) that runs without the project or torch."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from devices.bundle import BundleConfig, code_closure, make_bundle, run_script

RUN_BLOCKED = textwrap.dedent("""
    import runpy, sys

    class BlockTorch:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "train", "export"):
                raise ImportError(name + " is blocked for this test")

    sys.meta_path.insert(0, BlockTorch())
    sys.argv = ["devices.jetson", *sys.argv[1:]]
    runpy.run_module("devices.jetson", run_name="__main__")
""")


def test_code_closure_is_torch_free_and_complete():
    for target, runner in (("jetson", "runtimes.tensorrt"), ("android", "runtimes.tflite"), ("ios", "runtimes.coreml")):
        mods = code_closure(target)
        assert runner in mods and f"devices.{target}.__main__" in mods and "devices.common" in mods
        assert "runtimes.torch_ref" not in mods and not any(m.startswith(("train", "export")) for m in mods)
    assert "devices.android.run" not in code_closure("jetson")
    assert "exec python3 -m devices.android" in run_script("android", "dn.tflite", "fp32")


def test_jetson_bundle_runs_on_its_own(tiny_ckpt, tmp_path):
    out = tmp_path / "bundle"
    (manifest,) = make_bundle(BundleConfig(weights=str(tiny_ckpt), out_dir=out, target="jetson", validate=False))
    assert manifest["target"] == "jetson" and manifest["artifact"].endswith(".onnx")
    onnx = out / manifest["artifact"]
    assert onnx.is_file() and onnx.with_name(onnx.name + ".meta.json").is_file()
    assert any(f.endswith(".build_engine.sh") for f in manifest["models"])
    for rel in ("run.sh", "requirements.txt", "bundle.json", "devices/jetson/__main__.py", "devices/jetson/profiles.py",
                "runtimes/tensorrt.py", "runtimes/bench_eval.py", "samples/README.md"):
        assert (out / rel).is_file(), rel
    assert not (out / "runtimes/torch_ref.py").exists() and not (out / "export").exists()
    assert len([s for s in manifest["samples"] if s.endswith(".png")]) >= 1
    run_sh = (out / "run.sh").read_text()
    assert "python3 -m devices.jetson" in run_sh and f"models/{onnx.name}" in run_sh
    assert json.loads((out / "bundle.json").read_text())["code"] == manifest["code"]

    proc = subprocess.run([sys.executable, "-c", RUN_BLOCKED, "--onnx", manifest["artifact"], "--local", "--set",
                           "samples", "--max-images", "1", "--levels", "25", "--sizes", "32x32", "--runs", "1",
                           "--warmup", "0", "--json", "results/bench.json"],
                          cwd=out, capture_output=True, text=True, timeout=120, env={"PATH": ""})
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads((out / "results/bench.json").read_text())
    assert doc["results"][0]["runtime"] == "stand-in: onnxruntime" and doc["config"]["images"] == "samples"
