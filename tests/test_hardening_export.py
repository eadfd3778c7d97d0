"""Bad option values of the exporters (export/) and the device tools (devices/): one line on stderr, exit 2, no
traceback, nothing left in the output folder, and (where the check needs no model) before any expensive work.

Each case runs a CLI's `main` in-process through `run_cli` (what `python -m ...` does), as tests/test_hardening.py.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest

from runtimes.core.errors import UserError, run_cli

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """A tiny random checkpoint, a folder of two images, an empty folder and a plain file."""
    from PIL import Image

    from tests.runtimes.conftest import save_random_checkpoint

    d = tmp_path_factory.mktemp("hard_export")
    rng = np.random.default_rng(0)
    imgs = d / "imgs"
    imgs.mkdir()
    for i in range(2):
        Image.fromarray((rng.random((36, 40, 3)) * 255).astype(np.uint8)).save(imgs / f"g{i}.png")
    (d / "empty_imgs").mkdir()
    (d / "file").write_text("a file where a folder is expected")
    ckpt = save_random_checkpoint(d / "tiny.safetensors")
    return {"d": str(d), "ckpt": str(ckpt), "imgs": str(imgs), "empty": str(d / "empty_imgs"),
            "file": str(d / "file"), "nope": str(d / "nope")}


def _listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def _run(module: str, argv: list[str], capsys) -> tuple[int, str, str]:
    mod = importlib.import_module(module)
    main = getattr(mod, "main", None) or importlib.import_module(module + ".__main__").main
    code = run_cli(main, argv)
    captured = capsys.readouterr()
    return code, captured.err.strip(), captured.out


def _check(module: str, template: list[str], subs: dict[str, str], capsys, tmp_path: Path) -> str:
    """One bad case: a one-line error, exit 2, and nothing new in `tmp_path` (the output folder {O} and beside it)."""
    out = tmp_path / "out"
    out.mkdir()
    before = _listing(tmp_path)
    argv = [a.format(**{**subs, "O": str(out)}) for a in template]
    code, err, _ = _run(module, argv, capsys)
    assert code == 2, f"{module} exit {code}: {err}"
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    after = _listing(tmp_path)
    assert after == before, f"{module} left {sorted(set(after) ^ set(before))} behind"
    return err


# 1. --name is a plain file stem -------------------------------------------------------------------------------

NAMED_EXPORTERS = {
    "export.onnx": ["--weights", "{ckpt}", "-o", "{O}"],
    "export.tflite": ["--weights", "{ckpt}", "-o", "{O}", "--size", "32x32"],
    "export.coreml": ["--weights", "{ckpt}", "-o", "{O}"],
    "export.tensorrt": ["--weights", "{ckpt}", "-o", "{O}"],
}


@pytest.mark.parametrize("name", ["a/b", "../x", "..", "", "a\\b", " "])
@pytest.mark.parametrize("module", list(NAMED_EXPORTERS))
def test_name_must_be_a_plain_stem(files, module, name, capsys, tmp_path):
    err = _check(module, [*NAMED_EXPORTERS[module], "--name", name], files, capsys, tmp_path)
    assert "--name" in err and "-o" in err, err


def test_name_is_checked_for_library_calls_too():
    from export.base import ExportConfig

    for name in ("a/b", "../x", ""):
        with pytest.raises(UserError, match="--name"):
            ExportConfig("w", Path("o"), name=name)
    assert ExportConfig("w", Path("o"), name="dn-mobile.v2").name == "dn-mobile.v2"


# 2. --opset in the range the exporter writes -----------------------------------------------------------------

@pytest.mark.parametrize("opset", ["99", "0", "-1", "17"])
def test_opset_out_of_range(files, opset, capsys, tmp_path):
    pytest.importorskip("onnx")
    err = _check("export.onnx", ["--weights", "{ckpt}", "-o", "{O}", "--opset", opset], files, capsys, tmp_path)
    assert f"--opset {opset}" in err and "18.." in err, err


def test_opset_recorded_is_the_one_written(files, capsys, tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    code, err, _ = _run("export.onnx", ["--weights", files["ckpt"], "-o", str(tmp_path), "--opset", "19", "--name",
                                        "o19", "--no-validate"], capsys)
    assert code == 0, err
    proto = onnx.load(str(tmp_path / "o19.onnx"))
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [19]
    assert json.loads((tmp_path / "o19.onnx.meta.json").read_text())["opset"] == 19


# 3. sizes and intervals are positive -------------------------------------------------------------------------

@pytest.mark.parametrize("module,argv,option", [
    ("export.tensorrt", ["--weights", "{ckpt}", "-o", "{O}", "--workspace-mib", "-1"], "--workspace-mib"),
    ("export.tensorrt", ["--weights", "{ckpt}", "-o", "{O}", "--workspace-mib", "0"], "--workspace-mib"),
    ("devices.jetson", ["--onnx", "{d}/m.onnx", "--dry-run", "--tegrastats-ms", "-5", "--json", "{O}/j.json"],
     "--tegrastats-ms"),
    ("devices.jetson", ["--onnx", "{d}/m.onnx", "--local", "--workspace-mib", "0", "--json", "{O}/j.json"],
     "--workspace-mib"),
])
def test_non_positive_sizes(files, module, argv, option, capsys, tmp_path):
    err = _check(module, argv, files, capsys, tmp_path)
    assert f"argument {option}" in err, err


def test_non_positive_sizes_for_library_calls():
    from devices.common import BenchOptions
    from devices.jetson.run import JetsonConfig, run_jetson
    from export.base import ExportConfig
    from export.tensorrt import TensorRTConfig, export_tensorrt

    with pytest.raises(UserError, match="--workspace-mib"):
        export_tensorrt(TensorRTConfig(ExportConfig("w", Path("o")), workspace_mib=0))
    with pytest.raises(UserError, match="--tegrastats-ms"):
        run_jetson(JetsonConfig(Path("m.onnx"), bench=BenchOptions(dry_run=True), tegrastats_ms=-5))


# 4. export.all checks the level options before exporting ------------------------------------------------------

@pytest.mark.parametrize("argv,needle", [
    (["--level", "25"], "--level-mode fixed"),
    (["--level-mode", "fixed"], "needs --level"),
    (["--level-mode", "fixed", "--level", "1e9"], "1e+09"),
])
def test_all_checks_level_options_up_front(files, argv, needle, capsys, tmp_path, monkeypatch):
    import export.all as export_all_mod

    def no_export(*args, **kwargs):
        raise AssertionError("export_all ran although the options are wrong")

    monkeypatch.setattr(export_all_mod, "export_all", no_export)
    err = _check("export.all", ["--weights", "{ckpt}", "-o", "{O}/x", "--formats", "onnx", *argv], files, capsys,
                 tmp_path)
    assert needle in err, err


# 5. export.all --formats: not empty, each format once ---------------------------------------------------------

@pytest.mark.parametrize("formats", ["", " , ", ","])
def test_all_empty_formats(files, formats, capsys, tmp_path):
    err = _check("export.all", ["--weights", "{ckpt}", "-o", "{O}/x", "--formats", formats], files, capsys, tmp_path)
    assert "--formats" in err, err


def test_all_duplicate_formats_export_once(files, capsys, tmp_path, monkeypatch):
    import export.all as export_all_mod

    seen = []
    monkeypatch.setattr(export_all_mod, "export_all", lambda cfg: seen.append(cfg.formats) or [])
    code, err, _ = _run("export.all", ["--weights", files["ckpt"], "-o", str(tmp_path), "--formats",
                                       "onnx,tflite,onnx, tflite"], capsys)
    assert code == 0, err
    assert seen == [("onnx", "tflite")]


# 6. export.bundle --calibration for the calibrated precisions -------------------------------------------------

def _fake_exporter(monkeypatch, module: str, function: str) -> list:
    """Replace an exporter by one that records its config and stops with a UserError (nothing is exported)."""
    mod = importlib.import_module(module)
    calls = []

    def fake(cfg):
        calls.append(cfg)
        raise UserError("stopped by the test")

    monkeypatch.setattr(mod, function, fake)
    return calls


@pytest.mark.parametrize("target,module,function", [
    ("jetson", "export.tensorrt", "export_tensorrt"), ("android", "export.tflite", "export_tflite")])
def test_bundle_passes_calibration_to_the_exporter(files, target, module, function, capsys, tmp_path, monkeypatch):
    calls = _fake_exporter(monkeypatch, module, function)
    err = _check("export.bundle", ["--weights", "{ckpt}", "-o", "{O}/b", "--target", target, "--precision", "int8",
                                    "--calibration", "{imgs}"], files, capsys, tmp_path)
    assert err == "error: stopped by the test"
    (cfg,) = calls
    assert cfg.common.precision == "int8" and cfg.common.calibration == Path(files["imgs"])


@pytest.mark.parametrize("argv,needle", [
    (["--target", "jetson", "--precision", "int8"], "needs --calibration"),
    (["--target", "android", "--precision", "a16w8"], "needs --calibration"),
    (["--target", "jetson", "--precision", "int8", "--calibration", "{nope}"], "--calibration: "),
    (["--target", "android", "--precision", "int8", "--calibration", "{empty}"], "--calibration: "),
    (["--target", "android", "--precision", "int8", "--calibration", "{file}"], "--calibration: "),
    (["--precision", "int8", "--calibration", "{imgs}"], "not available for ios"),
    (["--target", "ios", "--precision", "int8", "--calibration", "{imgs}"], "not available for ios"),
    (["--target", "jetson", "--precision", "bogus"], "not available for jetson"),
])
def test_bundle_refuses_bad_precision_or_calibration_up_front(files, argv, needle, capsys, tmp_path, monkeypatch):
    calls = [*_fake_exporter(monkeypatch, "export.tensorrt", "export_tensorrt"),
             *_fake_exporter(monkeypatch, "export.tflite", "export_tflite")]
    err = _check("export.bundle", ["--weights", "{ckpt}", "-o", "{O}/b", *argv], files, capsys, tmp_path)
    assert needle in err and "stopped by the test" not in err, err
    assert calls == []


# 7. export.bench_cpu checks --calibration before exporting ----------------------------------------------------

@pytest.mark.parametrize("folder", ["nope", "empty", "file"])
def test_bench_cpu_checks_calibration_up_front(files, folder, capsys, tmp_path):
    err = _check("export.bench_cpu", ["{ckpt}", "--size", "32x32", "--json", "{O}/c.json", "--out-dir", "{O}/a",
                                      "--calibration", "{" + folder + "}"], files, capsys, tmp_path)
    assert "--calibration" in err, err


# 8. --threads >= 1 before the export --------------------------------------------------------------------------

@pytest.mark.parametrize("threads", ["-3", "0"])
@pytest.mark.parametrize("module,argv", [
    ("export.tflite", ["--weights", "{ckpt}", "-o", "{O}", "--size", "32x32"]),
    ("export.bench_modes", ["--weights", "{ckpt}", "--size", "32x32", "-o", "{O}/m"]),
    ("export.bench_cpu", ["{ckpt}", "--size", "32x32", "--json", "{O}/c.json", "--out-dir", "{O}/a"]),
    ("devices.android", ["--tflite", "{d}/m.tflite", "--local", "--json", "{O}/a.json"]),
    ("devices.jetson", ["--onnx", "{d}/m.onnx", "--local", "--json", "{O}/j.json"]),
])
def test_threads_must_be_positive(files, module, argv, threads, capsys, tmp_path):
    err = _check(module, [*argv, "--threads", threads], files, capsys, tmp_path)
    assert "argument --threads" in err and "temp" not in err, err


def test_tflite_threads_for_library_calls():
    from export.base import ExportConfig
    from export.tflite import TFLiteConfig, export_tflite

    with pytest.raises(UserError, match="--threads"):
        export_tflite(TFLiteConfig(ExportConfig("w", Path("o")), sizes=((32, 32),), threads=0))


# 9. export.coreml --enumerated needs two different sizes ------------------------------------------------------

@pytest.mark.parametrize("sizes", ["32x32", "32x32,32x32"])
def test_coreml_enumerated_needs_two_sizes(files, sizes, capsys, tmp_path, monkeypatch):
    import export.base

    def no_export(*args, **kwargs):
        raise AssertionError("the export ran although --enumerated is wrong")

    monkeypatch.setattr(export.base, "load_model", no_export)
    err = _check("export.coreml", ["--weights", "{ckpt}", "-o", "{O}", "--enumerated", sizes], files, capsys,
                 tmp_path)
    assert "--enumerated" in err and "two different sizes" in err, err


# 10. number options name themselves in the error --------------------------------------------------------------

@pytest.mark.parametrize("module,argv,option", [
    ("export.bench_cpu", ["{ckpt}", "--size", "32x32", "--json", "{O}/c.json", "--runs", "0"], "--runs"),
    ("export.bench_cpu", ["{ckpt}", "--size", "32x32", "--json", "{O}/c.json", "--calib-images", "0"],
     "--calib-images"),
    ("export.bench_modes", ["--weights", "{ckpt}", "--size", "32x32", "--repeats", "0"], "--repeats"),
    ("devices.jetson", ["--onnx", "{d}/m.onnx", "--local", "--runs", "0", "--json", "{O}/j.json"], "--runs"),
    ("devices.android", ["--tflite", "{d}/m.tflite", "--local", "--max-images", "0", "--json", "{O}/a.json"],
     "--max-images"),
    ("devices.ios", ["--mlpackage", "{d}/m.mlpackage", "--local", "--runs", "x", "--json", "{O}/i.json"], "--runs"),
])
def test_number_errors_name_the_option(files, module, argv, option, capsys, tmp_path):
    err = _check(module, argv, files, capsys, tmp_path)
    assert f"argument {option}" in err, err
