"""A real device-host environment: the project installed without torch, with tflite-runtime instead of
ai-edge-litert, and onnxruntime. The runners, the benchmark and the `--local` device stand-ins must
run there and give the same outputs as this environment.

`LEVELRES_HOST_PYTHON` names that environment's Python; `.ci/run` builds it (`pip install .
tflite-runtime 'numpy<2' onnxruntime`: every tflite-runtime wheel was built for NumPy 1.x). Without it
these tests skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.devices.conftest import REPO

HOST = os.environ.get("LEVELRES_HOST_PYTHON", "")
pytestmark = pytest.mark.skipif(
    not HOST, reason="LEVELRES_HOST_PYTHON is not set (a torch-less Python with levelres, tflite-runtime and "
                     "onnxruntime installed; .ci/run builds one)")

LEVELS = (0.0, 35.0, 75.0)

RUN_BOTH = textwrap.dedent("""
    import importlib, importlib.util, json, pkgutil, sys
    import numpy as np
    import devices, runtimes
    from runtimes.runners.onnxruntime import OnnxRunner
    from runtimes.runners.tflite import TFLiteRunner

    tflite, onnx, out = sys.argv[1:4]
    levels = [float(v) for v in sys.argv[4:]]
    mods = [m.name for m in pkgutil.walk_packages(runtimes.__path__, "runtimes.")]
    mods += [m.name for m in pkgutil.walk_packages(devices.__path__, "devices.")]
    for name in mods:
        importlib.import_module(name)
    x = np.random.default_rng(7).random((1, 3, 32, 32), dtype=np.float32)
    got = {"x": x}
    delegate_nodes = lambda r: sum(o["op_name"] == "DELEGATE" for o in r._interp._get_ops_details())  # noqa: E731
    with TFLiteRunner(tflite, threads=2) as r:
        tfl_name = r.name
        for lv in levels:
            got[f"tflite{lv:g}"] = r.run({"image": x, "level": np.array([lv], np.float32)})["restored"]
        delegated = delegate_nodes(r)
    with TFLiteRunner(tflite, threads=2, xnnpack=False) as r:
        r.run({"image": x, "level": np.array([levels[-1]], np.float32)})
        builtin = delegate_nodes(r)
    with OnnxRunner(onnx, provider="cpu", threads=2) as r:
        for lv in levels:
            got[f"onnx{lv:g}"] = r.run({"image": x, "level": np.array([lv], np.float32)})["restored"]
    np.savez(out, **got)
    print(json.dumps({"torch": importlib.util.find_spec("torch") is not None, "runtimes": runtimes.__file__,
                      "tflite_runner": tfl_name, "numpy": np.__version__, "modules": len(mods),
                      "xnnpack_nodes": delegated, "builtin_delegate_nodes": builtin,
                      "loaded": sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "train", "export"))}))
""")


def _host(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([HOST, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module", autouse=True)
def _installed_copy_is_current(tmp_path_factory):
    """The host runs its installed copy: it must be this checkout's runtimes/ and devices/, not an older install."""
    proc = _host(["-c", "import devices, runtimes; print(runtimes.__path__[0]); print(devices.__path__[0])"],
                 cwd=tmp_path_factory.mktemp("host"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    stale = []
    for pkg, installed in zip(("runtimes", "devices"), proc.stdout.split(), strict=True):
        for src in (REPO / pkg).rglob("*.py"):
            copy = Path(installed) / src.relative_to(REPO / pkg)
            if not copy.is_file() or copy.read_bytes() != src.read_bytes():
                stale.append(f"{pkg}/{src.relative_to(REPO / pkg)}")
    assert not stale, (f"{HOST} holds an older copy of {', '.join(stale[:5])}: reinstall it with "
                       f"{HOST} -m pip install --no-deps --force-reinstall .")


def test_host_runs_installed_runners_without_torch_and_matches(tiny_tflite, tiny_onnx, tmp_path):
    from runtimes.runners.onnxruntime import OnnxRunner
    from runtimes.runners.tflite import TFLiteRunner

    out = tmp_path / "host.npz"
    proc = _host(["-c", RUN_BOTH, str(tiny_tflite), str(tiny_onnx), str(out), *map(str, LEVELS)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not info["torch"], "the host environment has torch; it must be the torch-less one"
    assert info["loaded"] == [], info["loaded"]
    installed = Path(info["runtimes"]).parent
    assert installed != REPO / "runtimes" and "site-packages" in installed.parts, f"not the installed copy: {installed}"
    assert info["tflite_runner"] == "tflite-runtime-xnnpack", info  # auto falls back when ai-edge-litert is absent
    assert info["modules"] >= 30
    # tflite-runtime applies XNNPACK only through the interpreter's allocate_tensors (the runner calls it)
    assert info["xnnpack_nodes"] > 0 and info["builtin_delegate_nodes"] == 0, info

    host = np.load(out)
    x = host["x"]
    with TFLiteRunner(tiny_tflite, threads=2, backend="litert") as tfl, OnnxRunner(tiny_onnx, provider="cpu") as ort:
        for lv in LEVELS:
            level = np.array([lv], np.float32)
            np.testing.assert_allclose(host[f"tflite{lv:g}"], tfl.run({"image": x, "level": level})["restored"],
                                       rtol=0, atol=1e-5)
            np.testing.assert_allclose(host[f"onnx{lv:g}"], ort.run({"image": x, "level": level})["restored"],
                                       rtol=0, atol=1e-5)
    np.testing.assert_array_equal(host["tflite0"], x)
    np.testing.assert_array_equal(host["onnx0"], x)
    assert np.abs(host["tflite75"] - x).max() > 1e-3  # the model does something at the top level


def test_host_benchmark_and_device_stand_ins(tiny_tflite, tiny_onnx, small_images, tmp_path):
    fast = ["--set", str(small_images), "--levels", "0", "25", "--sizes", "32x32", "--runs", "2", "--warmup", "0"]
    bench = _host(["-m", "runtimes.bench", str(tiny_tflite), str(tiny_onnx), *fast, "--json", str(tmp_path / "b.json"),
                   "--no-plots", "--no-progress", "--threads", "2"], cwd=tmp_path)
    assert bench.returncode == 0, bench.stderr[-3000:]
    doc = json.loads((tmp_path / "b.json").read_text())
    runners = {r["runner"] for r in doc["results"]}
    assert runners == {"tflite-runtime-xnnpack", "onnxruntime-cpu"}, runners
    for rec in doc["results"]:
        assert [a["level"] for a in rec["accuracy"]] == [0, 25] and rec["accuracy"][1]["psnr"] > 0
        assert rec["latency"] and all(r["p50_ms"] > 0 for r in rec["latency"])

    plots = _host(["-m", "runtimes.bench", str(tiny_onnx), *fast, "--json", str(tmp_path / "p.json")], cwd=tmp_path)
    assert plots.returncode == 2 and plots.stderr.strip().splitlines() == [
        "error: matplotlib is not installed: pip install 'levelres[plots]', or pass --no-plots"]
    assert not (tmp_path / "p.json").exists()

    android = _host(["-m", "devices.android", "--tflite", str(tiny_tflite), "--local", "--delegates", "cpu", "xnnpack",
                     *fast, "--json", str(tmp_path / "a.json")], cwd=tmp_path)
    assert android.returncode == 0, android.stderr[-3000:]
    doc = json.loads((tmp_path / "a.json").read_text())
    assert [r["delegate"] for r in doc["results"]] == ["cpu", "xnnpack"]
    assert {r["runtime"] for r in doc["results"]} == {"stand-in: tflite-runtime"}

    jetson = _host(["-m", "devices.jetson", "--onnx", str(tiny_onnx), "--local", *fast, "--json",
                    str(tmp_path / "j.json")], cwd=tmp_path)
    assert jetson.returncode == 0, jetson.stderr[-3000:]
    (rec,) = json.loads((tmp_path / "j.json").read_text())["results"]
    assert rec["runner"] == "onnxruntime-cpu" and rec["accuracy"][1]["psnr"] > 0


RUN_INT8 = textwrap.dedent("""
    import sys
    import numpy as np
    from runtimes.runners.tflite import TFLiteRunner
    path, out = sys.argv[1:3]
    x = np.random.default_rng(3).random((1, 3, 32, 32), dtype=np.float32)
    with TFLiteRunner(path, threads=2) as r:
        got = {f"{lv:g}": r.run({"image": x, "level": np.array([lv], np.float32)})["restored"] for lv in (0.0, 75.0)}
        name = r.name
    np.savez(out, x=x, **got)
    print(name)
""")


def test_host_runs_a_full_integer_tflite(tiny_ckpt, small_images, tmp_path):
    """An int8 artifact from this exporter loads in tflite-runtime 2.14 and agrees with ai-edge-litert up to
    int8 kernel rounding (the two runtimes' int8 kernels may round differently; fp32 agrees to 1e-5 above)."""
    pytest.importorskip("litert_torch", reason="litert-torch not installed (pip install 'levelres[tflite]')")
    from export.base import ExportConfig
    from export.tflite import TFLiteConfig, export_tflite
    from runtimes.runners.tflite import TFLiteRunner

    art = export_tflite(TFLiteConfig(ExportConfig(str(tiny_ckpt), tmp_path, name="tiny-int8", precision="int8",
                                                  calibration=small_images, validate=False),
                                     sizes=((32, 32),))).path
    proc = _host(["-c", RUN_INT8, str(art), str(tmp_path / "int8.npz")], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[-1] == "tflite-runtime-xnnpack"
    host = np.load(tmp_path / "int8.npz")
    x = host["x"]
    np.testing.assert_array_equal(host["0"], x)  # level 0 stays exact in the full-integer graph
    with TFLiteRunner(art, threads=2, backend="litert") as r:
        want = r.run({"image": x, "level": np.array([75.0], np.float32)})["restored"]
    mse = float(np.mean((host["75"] - want) ** 2))
    assert 10 * np.log10(1.0 / max(mse, 1e-12)) >= 40.0, mse


HOST_LIMIT_MB = 300  # the base install is a runtime install (.ci/run checks the same bound)


def test_host_is_the_small_base_install_with_the_command_and_samples(tmp_path):
    """The host environment (the base install + tflite-runtime) stays under the size bound, has no OpenCV,
    scikit-image or torch, and runs `levelres` and the benchmark's default image set from the installed package."""
    probe = ("import importlib.util, json, sys; from runtimes.apps.bench import default_image_dir; "
             "print(json.dumps({'missing': [m for m in ('cv2', 'skimage', 'scipy', 'torch') "
             "if importlib.util.find_spec(m) is None], 'samples': str(default_image_dir()), 'prefix': sys.prefix}))")
    proc = _host(["-c", probe], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    root = Path(info["prefix"])
    size_mb = sum(p.lstat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink()) / 2**20
    print(f"{root}: {size_mb:.0f} MB")
    assert size_mb <= HOST_LIMIT_MB, f"{root} is {size_mb:.0f} MB: a base dependency grew; move it into an extra"
    assert info["missing"] == ["cv2", "skimage", "scipy", "torch"], info
    assert Path(info["samples"]).parts[-3:] == ("site-packages", "runtimes", "samples"), info
    script = Path(HOST).parent / "levelres"
    proc = subprocess.run([str(script), "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "restore" in proc.stdout, proc.stderr[-2000:]
