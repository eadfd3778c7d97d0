"""export.bundle: a self-contained Jetson folder (ONNX only, to stay fast) that runs without the project or torch."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from export.bundle import REPO, REQUIREMENTS, BundleConfig, code_closure, make_bundle, module_file, run_script

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
    for target, runner in (("jetson", "runtimes.runners.tensorrt"), ("android", "runtimes.runners.tflite"),
                           ("ios", "runtimes.runners.coreml")):
        mods = code_closure(target)
        assert runner in mods and f"devices.{target}.__main__" in mods and "devices.common" in mods
        assert "train.reference" not in mods and not any(m.startswith(("train", "export")) for m in mods)
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
                "runtimes/runners/tensorrt.py", "runtimes/apps/bench_eval.py", "samples/README.md"):
        assert (out / rel).is_file(), rel
    assert not (out / "train/reference.py").exists() and not (out / "export").exists()
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


# import name -> pip name, for the third-party modules the bundled code imports
PIP_NAMES = {"PIL": "pillow", "cv2": "opencv-python-headless", "skimage": "scikit-image", "cuda": "cuda-python",
             "ai_edge_litert": "ai-edge-litert"}
# imported somewhere in the bundled code, never on a device script's path (or not from pip)
NOT_FROM_REQUIREMENTS = {
    "tensorrt": "JetPack's python3-libnvinfer",
    "tflite_runtime": "the fallback when ai-edge-litert is absent",
    "onnx": "only OnnxRunner(bind_level=True), which the device scripts do not use",
    "train": "the torch reference runner, loaded by name (runtimes.runners.factory), and the shipped-weight lookup "
             "(runtimes.core.meta)",
    "torch": "the same torch reference path (runtimes.runners.factory's require)",
}
# calls that import a module named by their first (string) argument
IMPORTING_CALLS = {"require", "import_module", "MissingDependency", "find_spec"}


def _third_party_imports(modules: list[str]) -> set[str]:
    """Top-level modules imported by statements, or by name through require / import_module / find_spec."""
    names = set()
    for mod in modules:
        for node in ast.walk(ast.parse(module_file(mod).read_text())):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
            elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str):
                func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if func in IMPORTING_CALLS:
                    names.add(node.args[0].value.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("runtimes", "devices", "__future__")}


def _requirements(target: str) -> tuple[set[str], set[str]]:
    """(required, optional) pip names: plain lines, and lines commented out."""
    required, optional = set(), set()
    for line in REQUIREMENTS[target].splitlines():
        if line.strip():
            (optional if line.startswith("#") else required).add(line.lstrip("# ").split()[0])
    return required, optional


@pytest.mark.parametrize(("target", "runtime"), [("jetson", "onnxruntime"), ("android", "ai-edge-litert"),
                                                 ("ios", "coremltools")])
def test_requirements_cover_every_import_of_the_bundled_code(target, runtime):
    required, optional = _requirements(target)
    imports = _third_party_imports(code_closure(target))
    assert {"numpy", "PIL", "cv2", "tqdm", "matplotlib"} <= imports  # the scan sees them
    assert "skimage" not in imports  # SSIM is numpy (runtimes.core.metrics)
    missing = {m for m in imports if PIP_NAMES.get(m, m) not in required | optional and m not in NOT_FROM_REQUIREMENTS}
    assert not missing, f"{target}: requirements.txt lacks {sorted(missing)}"
    assert optional == {"matplotlib"}, optional  # only --plots is optional on a device
    assert {"numpy", "pillow", "opencv-python-headless", "tqdm", runtime} <= required and "scikit-image" not in required


def test_device_code_runs_on_python_3_8():
    """JetPack 5's system Python (3.8) is where TensorRT's bindings live: runtimes/ and devices/ must run there."""
    pytest.importorskip("vermin", reason="vermin not installed (pip install 'levelres[dev]')")
    script = shutil.which("vermin", path=str(Path(sys.executable).parent)) or shutil.which("vermin")
    assert script, "the vermin package is installed without its command"
    proc = subprocess.run([script, "--no-tips", "--violations", "--no-parse-comments", "-t=3.8-", "runtimes",
                           "devices"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]
    # vermin leaves annotations unevaluated: that holds on 3.8 only under `from __future__ import annotations`
    for path in [*REPO.glob("runtimes/**/*.py"), *REPO.glob("devices/**/*.py")]:
        tree = ast.parse(path.read_text())
        annotated = any(isinstance(n, ast.AnnAssign) or (isinstance(n, ast.arg) and n.annotation)
                        or (isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.returns)
                        for n in ast.walk(tree))
        future = any(isinstance(n, ast.ImportFrom) and n.module == "__future__" and
                     any(a.name == "annotations" for a in n.names) for n in tree.body)
        assert future or not annotated, f"{path.relative_to(REPO)} has annotations without the __future__ import"


def test_device_code_avoids_what_vermin_misses():
    """str.removesuffix/removeprefix (3.9) and `X | Y` in isinstance (3.10) are not reported by vermin's 3.8
    check, so a scan of their own: they broke `devices.jetson` and `--level auto` on JetPack 5 before."""
    bad = []
    for path in [*REPO.glob("runtimes/**/*.py"), *REPO.glob("devices/**/*.py")]:
        for n in ast.walk(ast.parse(path.read_text())):
            if isinstance(n, ast.Attribute) and n.attr in ("removesuffix", "removeprefix"):
                bad.append(f"{path.relative_to(REPO)}:{n.lineno} {n.attr}")
            if (isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("isinstance", "issubclass")
                    and len(n.args) == 2 and isinstance(n.args[1], ast.BinOp)):
                bad.append(f"{path.relative_to(REPO)}:{n.lineno} {n.func.id}(..., X | Y)")
    assert not bad, bad


def test_android_bundle_ships_the_camera_artifact(tiny_ckpt, tmp_path):
    """docs/embedding.md tells Android apps to ship uint8 NHWC: the bundle exports that, with its golden vectors, and
    its script runs it (LiteRT standing in for the phone) without torch."""
    pytest.importorskip("litert_torch", reason="litert-torch not installed (pip install 'levelres[tflite]')")
    pytest.importorskip("ai_edge_litert", reason="ai-edge-litert not installed (pip install 'levelres[tflite]')")
    out = tmp_path / "bundle"
    (manifest,) = make_bundle(BundleConfig(weights=str(tiny_ckpt), out_dir=out, target="android", validate=False,
                                           tflite_sizes=((32, 32),)))
    tflite = out / manifest["artifact"]
    meta = json.loads(tflite.with_name(tflite.name + ".meta.json").read_text())
    assert meta["layout"] == "NHWC" and meta["io"] == "uint8" and tflite.name.endswith("-nhwc-u8.tflite")
    assert meta["signatures"]["s32x32"]["runner_inputs"][0]["shape"] == [1, 32, 32, 3]
    assert f"models/{tflite.name}.golden/golden.json" in manifest["models"]
    proc = subprocess.run([sys.executable, "-c", RUN_BLOCKED.replace("devices.jetson", "devices.android"),
                           "--tflite", manifest["artifact"], "--local", "--delegates", "xnnpack", "--set", "samples",
                           "--max-images", "1", "--levels", "25", "--runs", "1", "--warmup", "0",
                           "--json", "results/bench.json"],
                          cwd=out, capture_output=True, text=True, timeout=120, env={"PATH": ""})
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads((out / "results/bench.json").read_text())
    assert doc["results"][0]["runtime"] == "stand-in: ai-edge-litert"
    check = subprocess.run([sys.executable, "-c", RUN_BLOCKED.replace("devices.jetson", "runtimes.golden"),
                            manifest["artifact"]], cwd=out, capture_output=True, text=True, timeout=120,
                           env={"PATH": ""})
    assert check.returncode == 0 and check.stdout.startswith("golden passed: 2 cases"), check.stderr[-2000:]


def test_bundles_ship_the_golden_checker():
    from export.bundle import golden_command

    assert all("runtimes.golden" in code_closure(t) for t in ("jetson", "android", "ios"))
    assert golden_command("jetson", "dn-trt.onnx", "fp16") == (
        "python3 -m runtimes.golden models/dn-trt.onnx --model results/dn-trt-fp16.engine")
