"""Bad input across every command line: one line on stderr, exit status 2, no traceback, nothing left behind.

Each case runs a CLI's `main` in-process through `run_cli` (exactly what `python -m ...` does) with one
thing wrong: a missing, empty, truncated, foreign or mismatched checkpoint or artifact; an empty,
non-image or truncated image (alone or inside an image folder); a NaN, infinite, negative, non-numeric
or huge level; an output under a file. The output folder must hold nothing new afterwards.
Valid but unusual images (1x1, CMYK, 16-bit, 3840x2160) must restore correctly; see `test_odd_images`.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from runtimes.core.errors import run_cli

pytest.importorskip("torch")


def _png(path: Path, arr: np.ndarray, **kw) -> Path:
    from PIL import Image

    Image.fromarray(arr).save(path, **kw)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """Good and bad inputs of every kind, by placeholder name."""
    from safetensors.numpy import load_file, save_file

    from tests.runtimes.conftest import save_random_checkpoint
    from train.checkpoint import read_meta

    d = tmp_path_factory.mktemp("hard")
    rng = np.random.default_rng(0)
    imgs = d / "imgs"
    imgs.mkdir()
    for i in range(2):
        _png(imgs / f"g{i}.png", (rng.random((36, 40, 3)) * 255).astype(np.uint8))
    good = imgs / "g0.png"
    bad_imgs = d / "bad_imgs"
    shutil.copytree(imgs, bad_imgs)
    (bad_imgs / "trunc.png").write_bytes(good.read_bytes()[:60])
    (d / "empty_imgs").mkdir()
    (d / "empty.png").write_bytes(b"")
    (d / "text.png").write_text("not an image")
    (d / "trunc.png").write_bytes(good.read_bytes()[:60])
    (d / "file").write_text("a file where a folder is expected")

    ckpt = save_random_checkpoint(d / "tiny.safetensors")
    raw = ckpt.read_bytes()
    (d / "empty.safetensors").write_bytes(b"")
    (d / "text.safetensors").write_text("hello")
    (d / "trunc.safetensors").write_bytes(raw[: len(raw) // 2])
    tensors = load_file(ckpt)
    save_file(tensors, d / "foreign.safetensors")
    meta = read_meta(ckpt)
    meta["arch"] = {**meta["arch"], "channels": 16}  # metadata that does not match the tensors
    header = {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in meta.items()}
    save_file(tensors, d / "mismatch.safetensors", metadata=header)

    from export.base import ExportConfig
    from export.onnx import OnnxConfig, export_onnx

    onnx = export_onnx(OnnxConfig(ExportConfig(str(ckpt), d, name="tiny"))).path
    (d / "trunc.onnx").write_bytes(onnx.read_bytes()[:200])
    shutil.copy(onnx.with_name(onnx.name + ".meta.json"), d / "trunc.onnx.meta.json")
    shutil.copy(onnx, d / "badmeta.onnx")
    (d / "badmeta.onnx.meta.json").write_text("{ not json")
    tfl_meta = {**json.loads(onnx.with_name(onnx.name + ".meta.json").read_text()), "format": "tflite"}
    (d / "trunc.tflite").write_bytes(b"TFL3" + b"\0" * 30)
    (d / "trunc.tflite.meta.json").write_text(json.dumps(tfl_meta))
    shutil.copy(onnx, d / "foreign.tflite")  # an ONNX file named .tflite, with the ONNX metadata
    shutil.copy(onnx.with_name(onnx.name + ".meta.json"), d / "foreign.tflite.meta.json")
    return {"d": str(d), "img": str(good), "imgs": str(imgs), "bad_imgs": str(bad_imgs), "ckpt": str(ckpt),
            "onnx": str(onnx)}


CKPTS = {"missing": "nope.safetensors", "empty": "empty.safetensors", "text": "text.safetensors",
         "truncated": "trunc.safetensors", "foreign": "foreign.safetensors", "mismatched": "mismatch.safetensors"}
LEVELS = ["nan", "inf", "-inf", "-5", "abc", "1e9"]

# (module, argv template); {W} is the checkpoint under test, {O} the output folder.
CKPT_CLIS = {
    "train.evaluate": ["--weights", "{W}", "--set", "{imgs}", "--levels", "25", "--json", "{O}/e.json"],
    "export.onnx": ["--weights", "{W}", "-o", "{O}"],
    "export.tflite": ["--weights", "{W}", "-o", "{O}", "--size", "32x32"],
    "export.coreml": ["--weights", "{W}", "-o", "{O}"],
    "export.tensorrt": ["--weights", "{W}", "-o", "{O}"],
    "export.all": ["--weights", "{W}", "-o", "{O}"],
    "export.bench_modes": ["--weights", "{W}", "--size", "32x32", "-o", "{O}/m.json"],
    "runtimes.restore": ["{img}", "--model", "{W}", "--level", "25", "-o", "{O}/r.png"],
    "runtimes.bench": ["{onnx}", "--reference", "{W}", "--set", "{imgs}", "--levels", "25", "--sizes", "32x32",
                       "--json", "{O}/b.json", "--no-plots", "--no-progress"],
    "export.bench_cpu": ["{W}", "--size", "32x32", "--json", "{O}/c.json", "--out-dir", "{O}/a"],
    "train": ["--task", "denoise", "--data", "{imgs}", "--out", "{O}/run", "--steps", "2", "--resume",
              "--no-progress", "--patch", "16", "--batch", "2"],
}
ARTIFACTS = {"missing": "nope.onnx", "truncated-onnx": "trunc.onnx", "bad-meta": "badmeta.onnx",
             "truncated-tflite": "trunc.tflite", "foreign-meta": "foreign.tflite"}
ARTIFACT_CLIS = {
    "runtimes.restore": ["{img}", "--model", "{A}", "--level", "25", "-o", "{O}/r.png"],
    "runtimes.bench": ["{A}", "--set", "{imgs}", "--levels", "25", "--sizes", "32x32", "--json", "{O}/b.json",
                       "--no-plots", "--no-progress"],
    "devices.jetson": ["--onnx", "{A}", "--local", "--set", "{imgs}", "--levels", "25", "--sizes", "32x32",
                       "--runs", "1", "--json", "{O}/j.json"],
    "devices.android": ["--tflite", "{A}", "--local", "--set", "{imgs}", "--levels", "25", "--sizes", "32x32",
                        "--runs", "1", "--json", "{O}/a.json"],
    "devices.ios": ["--mlpackage", "{A}", "--local", "--set", "{imgs}", "--levels", "25", "--json", "{O}/i.json"],
}
IMAGE_DIR_CLIS = {  # {S}: an image folder holding a truncated image, or an empty folder
    "train.evaluate": ["--weights", "{ckpt}", "--set", "{S}", "--levels", "25", "--json", "{O}/e.json"],
    "runtimes.bench": ["{onnx}", "--set", "{S}", "--levels", "25", "--sizes", "32x32", "--json", "{O}/b.json",
                       "--no-plots", "--no-progress"],
    "train": ["--task", "denoise", "--data", "{S}", "--out", "{O}/run", "--steps", "2", "--no-progress",
              "--patch", "16", "--batch", "2"],
    "export.tflite": ["--weights", "{ckpt}", "-o", "{O}", "--size", "32x32", "--precision", "int8",
                      "--calibration", "{S}"],
    "devices.jetson": ["--onnx", "{onnx}", "--local", "--set", "{S}", "--levels", "25", "--sizes", "32x32",
                       "--runs", "1", "--json", "{O}/j.json"],
}
LEVEL_CLIS = {  # {L}: the level under test
    "runtimes.restore": ["{img}", "--model", "{ckpt}", "--level", "{L}", "-o", "{O}/r.png"],
    "train.evaluate": ["--weights", "{ckpt}", "--set", "{imgs}", "--levels", "{L}", "--json", "{O}/e.json"],
    "runtimes.bench": ["{onnx}", "--set", "{imgs}", "--levels", "{L}", "--sizes", "32x32", "--json", "{O}/b.json",
                       "--no-plots", "--no-progress"],
    "train": ["--task", "denoise", "--data", "{imgs}", "--out", "{O}/run", "--steps", "2", "--levels", "{L}",
              "--no-progress", "--patch", "16", "--batch", "2"],
    "export.onnx": ["--weights", "{ckpt}", "-o", "{O}", "--level-mode", "fixed", "--level", "{L}"],
    "export.bench_cpu": ["{ckpt}", "--size", "32x32", "--level", "{L}", "--json", "{O}/c.json", "--out-dir",
                           "{O}/a"],
}
OUTPUT_CLIS = {  # {U}: an output path under a plain file
    "runtimes.restore": ["{img}", "--model", "{ckpt}", "--level", "25", "-o", "{U}/r.png"],
    "train.evaluate": ["--weights", "{ckpt}", "--set", "{imgs}", "--levels", "25", "--json", "{U}/e.json"],
    "runtimes.bench": ["{onnx}", "--set", "{imgs}", "--levels", "25", "--sizes", "32x32", "--json", "{U}/b.json",
                       "--no-plots", "--no-progress"],
    "train": ["--task", "denoise", "--data", "{imgs}", "--out", "{U}/run", "--steps", "2", "--no-progress",
              "--patch", "16", "--batch", "2"],
    "export.onnx": ["--weights", "{ckpt}", "-o", "{U}"],
    "export.tflite": ["--weights", "{ckpt}", "-o", "{U}", "--size", "32x32"],
    "export.coreml": ["--weights", "{ckpt}", "-o", "{U}"],
    "export.tensorrt": ["--weights", "{ckpt}", "-o", "{U}"],
    "export.all": ["--weights", "{ckpt}", "-o", "{U}"],
    "export.bench_modes": ["--weights", "{ckpt}", "--size", "32x32", "-o", "{U}/m.json"],
    "export.bench_cpu": ["{ckpt}", "--size", "32x32", "--json", "{U}/c.json", "--out-dir", "{U}/a"],
    "devices.jetson": ["--onnx", "{onnx}", "--local", "--set", "{imgs}", "--levels", "25", "--sizes", "32x32",
                       "--runs", "1", "--json", "{U}/j.json"],
    "export.bundle": ["--weights", "{ckpt}", "--target", "jetson", "-o", "{U}/bundle"],
}


def _run(module: str, template: list[str], subs: dict[str, str], capsys) -> tuple[int, str]:
    mod = importlib.import_module(module)
    main = getattr(mod, "main", None) or importlib.import_module(module + ".__main__").main
    argv = [a.format(**subs) for a in template]
    code = run_cli(main, argv)
    return code, capsys.readouterr().err.strip()


def _check(module: str, template: list[str], subs: dict[str, str], capsys, tmp_path: Path, prepare=None) -> str:
    """Run one bad case: one-line error, exit 2, and the output folder as it was (`prepare(out)` fills it first)."""
    out = tmp_path / "out"
    out.mkdir()
    if prepare is not None:
        prepare(out)
    before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    subs = {**subs, "O": str(out), "U": str(Path(subs["d"]) / "file" / "sub")}
    code, err = _run(module, template, subs, capsys)
    assert code == 2, f"{module} exit {code}: {err}"
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    after = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    assert after == before, f"{module} left {sorted(set(after) ^ set(before))} behind"
    return err


@pytest.mark.parametrize("case", list(CKPTS))
@pytest.mark.parametrize("module", list(CKPT_CLIS))
def test_bad_checkpoints(files, module, case, capsys, tmp_path):
    bad = Path(files["d"]) / CKPTS[case]

    def resume_folder(out: Path) -> None:  # --resume reads the run folder: put the bad file in both its places
        (out / "run").mkdir()
        if case != "missing":
            shutil.copy(bad, out / "run" / "last.safetensors")
            shutil.copy(bad, out / "run" / "last.state.safetensors")

    _require_stack(module)
    err = _check(module, CKPT_CLIS[module], {**files, "W": str(bad)}, capsys, tmp_path,
                 resume_folder if module == "train" else None)
    assert err


@pytest.mark.parametrize("case", list(ARTIFACTS))
@pytest.mark.parametrize("module", list(ARTIFACT_CLIS))
def test_bad_artifacts(files, module, case, capsys, tmp_path):
    pytest.importorskip("onnxruntime")
    if case in ("truncated-tflite", "foreign-meta"):
        pytest.importorskip("ai_edge_litert")
    _check(module, ARTIFACT_CLIS[module], {**files, "A": str(Path(files["d"]) / ARTIFACTS[case])}, capsys, tmp_path)


@pytest.mark.parametrize("folder", ["bad_imgs", "empty_imgs", "file"])
@pytest.mark.parametrize("module", list(IMAGE_DIR_CLIS))
def test_bad_image_folders(files, module, folder, capsys, tmp_path):
    _require_stack(module)
    _check(module, IMAGE_DIR_CLIS[module], {**files, "S": str(Path(files["d"]) / folder)}, capsys, tmp_path)


@pytest.mark.parametrize("image", ["empty.png", "text.png", "trunc.png", "nope.png", "imgs"])
def test_bad_single_images(files, image, capsys, tmp_path):
    _check("runtimes.restore", LEVEL_CLIS["runtimes.restore"],
           {**files, "img": str(Path(files["d"]) / image), "L": "25"}, capsys, tmp_path)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("module", list(LEVEL_CLIS))
def test_bad_levels(files, module, level, capsys, tmp_path):
    _require_stack(module)
    _check(module, LEVEL_CLIS[module], {**files, "L": level}, capsys, tmp_path)


@pytest.mark.parametrize("device", ["bogus", "cuda:7"])
@pytest.mark.parametrize("module", ["train", "train.evaluate", "train.throughput"])
def test_bad_devices(files, module, device, capsys, tmp_path):
    """An unknown or unavailable --device: one line, before any run folder or report is made."""
    template = {"train": ["--task", "denoise", "--data", "{imgs}", "--out", "{O}/run", "--steps", "2", "--no-progress"],
                "train.evaluate": ["--weights", "{ckpt}", "--set", "{imgs}", "--levels", "25", "--json", "{O}/e.json"],
                "train.throughput": ["--preset", "tiny", "--steps", "1", "--json", "{O}/t.json"]}[module]
    err = _check(module, [*template, "--device", device], files, capsys, tmp_path)
    assert "--device" in err


@pytest.mark.parametrize("module", list(OUTPUT_CLIS))
def test_unwritable_outputs(files, module, capsys, tmp_path):
    _require_stack(module)
    err = _check(module, OUTPUT_CLIS[module], files, capsys, tmp_path)
    assert "file" in err or "writ" in err or "folder" in err, err


def _require_stack(module: str) -> None:
    needs = {"export.tflite": "litert_torch", "export.coreml": "coremltools", "runtimes.bench": "onnxruntime",
             "export.bench_cpu": "litert_torch", "export.bench_modes": "litert_torch",
             "devices.jetson": "onnxruntime"}
    if module in needs:
        pytest.importorskip(needs[module])


@pytest.mark.parametrize("model,module,extra", [
    ("{onnx}", "onnxruntime", "onnx"), ("{d}/m.tflite", "ai_edge_litert", "litert"),
    ("{ckpt}", "torch", "train"), ("{d}/m.engine", "tensorrt", "tensorrt"),
    ("{d}/m.mlpackage", "coremltools", "coreml"),
])
def test_missing_runtime_names_its_extra(files, model, module, extra, capsys, tmp_path, monkeypatch):
    """A model whose runtime is not installed: the error names the pip extra (nothing is auto-installed)."""
    d = Path(files["d"])
    meta = json.loads(Path(files["onnx"] + ".meta.json").read_text())
    for name, fmt in (("m.tflite", "tflite"), ("m.engine", "tensorrt"), ("m.mlpackage", "coreml")):
        if fmt == "coreml":
            (d / name).mkdir(exist_ok=True)
        else:
            (d / name).write_bytes(b"x" * 64)
        sigs = {"signatures": {"s32x32": {"size": [32, 32]}}} if fmt == "tflite" else {}
        (d / f"{name}.meta.json").write_text(json.dumps({**meta, "format": fmt, "artifact_format": fmt, **sigs}))
    for name in [m for m in list(sys.modules) if m == module or m.startswith(module + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    if module == "tensorrt":
        monkeypatch.setitem(sys.modules, "tensorrt_lean", None)
    err = _check("runtimes.restore", LEVEL_CLIS["runtimes.restore"], {**files, "L": "25",
                 "ckpt": model.format(**files)} | {"onnx": files["onnx"]}, capsys, tmp_path)
    assert f"levelres[{extra}" in err or (module == "coremltools" and "macOS" in err), err


def test_odd_images(files, capsys, tmp_path):
    """CMYK, 1x1 and a 3840x2160 frame restore (level 0 returns the input; level 25 tiles under --max-memory)."""
    from PIL import Image

    rng = np.random.default_rng(5)
    cmyk = Image.fromarray((rng.random((20, 30, 4)) * 255).astype(np.uint8), mode="CMYK")
    cmyk.save(tmp_path / "cmyk.jpg", quality=95)
    with Image.open(tmp_path / "cmyk.jpg") as im:
        expected = np.asarray(im.convert("RGB"))
    restore = ["{img}", "--model", "{ckpt}", "--level", "{L}", "-o", "{O}"]
    subs = {**files, "img": str(tmp_path / "cmyk.jpg"), "L": "0", "O": str(tmp_path / "cmyk_out.png")}
    assert _run("runtimes.restore", restore, subs, capsys)[0] == 0
    with Image.open(tmp_path / "cmyk_out.png") as out:
        assert out.mode == "RGB" and np.abs(np.asarray(out).astype(int) - expected).max() <= 1
    _png(tmp_path / "one.png", np.array([[[10, 200, 30]]], np.uint8))
    subs = {**files, "img": str(tmp_path / "one.png"), "L": "25", "O": str(tmp_path / "one_out.png")}
    assert _run("runtimes.restore", restore, subs, capsys)[0] == 0
    big = (rng.random((2160, 3840, 3)) * 255).astype(np.uint8)
    _png(tmp_path / "big.png", big)
    subs = {**files, "img": str(tmp_path / "big.png"), "L": "0", "O": str(tmp_path / "big0.png")}
    assert _run("runtimes.restore", restore, subs, capsys)[0] == 0
    with Image.open(tmp_path / "big0.png") as out:
        np.testing.assert_array_equal(np.asarray(out), big)
    subs = {**files, "img": str(tmp_path / "big.png"), "L": "25", "O": str(tmp_path / "big25.png")}
    code, err = _run("runtimes.restore", [*restore, "--max-memory", "1200"], subs, capsys)
    assert code == 0, err
    with Image.open(tmp_path / "big25.png") as out:
        assert out.size == (3840, 2160)


TORCH_CLIS = {
    "train": ["--task", "denoise", "--data", ".", "--out", "run"],
    "train.ship": ["run", "--name", "x"],
    "train.qat": ["--weights", "w", "--data", ".", "--out", "run"],
    "train.throughput": ["--preset", "tiny"],
    "train.evaluate": ["--weights", "w", "--set", ".", "--levels", "25"],
    "export.onnx": ["--weights", "w", "-o", "out"],
    "export.all": ["--weights", "w", "-o", "out"],
}


@pytest.mark.parametrize("module", list(TORCH_CLIS))
def test_commands_without_torch_name_the_extra(module, tmp_path):
    """Run as `python -m` where torch is not installed: the install hint on one line, exit 2, no traceback."""
    hide = ("import runpy, sys; sys.modules['torch'] = None; "
            f"sys.argv = [{module!r}] + {TORCH_CLIS[module]!r}; runpy.run_module({module!r}, run_name='__main__')")
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.run([sys.executable, "-c", hide], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    err = proc.stderr.strip()
    assert proc.returncode == 2, (proc.returncode, err)
    assert err == "error: torch is not installed: pip install 'levelres[train]'", err
    assert list(tmp_path.iterdir()) == []


FOLDER_OUTPUT_CLIS = {  # {O}/x.json (and its report siblings) exist as folders
    "train.evaluate": ["--weights", "{ckpt}", "--set", "{imgs}", "--levels", "25", "--json", "{O}/x.json"],
    "runtimes.bench": ["{onnx}", "--set", "{imgs}", "--levels", "25", "--sizes", "32x32", "--json", "{O}/x.json",
                       "--no-plots", "--no-progress", "--runs", "1"],
    "train.throughput": ["--preset", "tiny", "--device", "cpu", "--steps", "1", "--warmup", "0", "--batch", "1",
                         "--patch", "16", "--json", "{O}/x.json"],
}


@pytest.mark.parametrize("report", ["x.json", "x.csv"])
@pytest.mark.parametrize("module", list(FOLDER_OUTPUT_CLIS))
def test_output_file_that_is_a_folder(files, module, report, capsys, tmp_path):
    """An output file path that names an existing folder: refused before the work, nothing written."""
    if module != "runtimes.bench" and report != "x.json":
        pytest.skip("only the benchmark writes sibling reports")
    _require_stack(module)
    err = _check(module, FOLDER_OUTPUT_CLIS[module], files, capsys, tmp_path, lambda out: (out / report).mkdir())
    assert "is a folder" in err


BAD_VALUE_CASES = [
    ("runtimes.bench", ["{onnx}", "--set", "{imgs}", "--levels", "25", "--sizes", "32x32", "--json", "{O}/b.csv",
                        "--no-plots", "--no-progress"], "must end in .json"),
    ("runtimes.bench", ["{onnx}", "--set", "{imgs}", "--levels", "25", "--sizes", "32x32", "--json", "{O}/b.json",
                        "--no-plots", "--no-progress", "--threads", "100000"], "--threads"),
    ("runtimes.bench", ["{onnx}", "--set", "{imgs}", "--levels", "25", "--sizes", "32x32", "--json", "{O}/b.json",
                        "--no-plots", "--no-progress", "--runs", "0"], "--runs"),
    ("runtimes.bench", ["{onnx}", "--set", "{imgs}", "--levels", "25", "--sizes", "32x32", "--json", "{O}/b.json",
                        "--no-plots", "--no-progress", "--min-time", "nan"], "--min-time"),
    ("runtimes.restore", ["{img}", "--model", "{ckpt}", "--level", "25", "-o", "{O}/r.png", "--threads", "100000"],
     "--threads"),
    ("runtimes.restore", ["{img}", "--model", "{ckpt}", "--level", "25", "-o", "{O}/r.png", "--max-memory", "1e308"],
     "--max-memory"),
    ("train.throughput", ["--preset", "tiny", "--device", "cpu", "--patch", "100000"], "--patch"),
    ("train.throughput", ["--preset", "tiny", "--device", "cpu", "--batch", "0"], "--batch"),
    ("runtimes.autolevel_eval", ["--datasets", "{d}", "--limit", "0"], "--limit"),
    ("runtimes.autolevel_eval", ["--datasets", "{d}", "--only", "noise", "--sigmas", "nan"], "--sigmas"),
    ("runtimes.autolevel_eval", ["--datasets", "{d}", "--only", "jpeg", "--qualities", "101"], "--qualities"),
]


@pytest.mark.parametrize("module,template,expect", BAD_VALUE_CASES)
def test_bad_option_values(files, module, template, expect, capsys, tmp_path):
    """Out-of-range option values: one line naming the option, before any work or output."""
    _require_stack(module)
    err = _check(module, template, files, capsys, tmp_path)
    assert expect in err, err


def test_device_report_path_must_end_in_json(files, capsys, tmp_path):
    pytest.importorskip("onnxruntime")
    template = ["--onnx", "{onnx}", "--local", "--set", "{imgs}", "--levels", "25", "--sizes", "32x32", "--runs", "1",
                "--json", "{O}/j.md"]
    assert "must end in .json" in _check("devices.jetson", template, files, capsys, tmp_path)
