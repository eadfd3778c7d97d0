"""The benchmark: reports from a tiny ONNX model, the torch-runner paths, the default job, bad input."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from runtimes.apps import bench
from runtimes.apps.bench import main
from runtimes.apps.bench_eval import EvalConfig, ReferenceOutputs, evaluate_accuracy, load_images
from runtimes.core.errors import run_cli
from runtimes.core.images import write_image
from runtimes.core.latency import LatencyConfig

REPO = Path(__file__).resolve().parents[2]
FAST = ["--sizes", "32x48", "--runs", "2", "--warmup", "1", "--no-progress"]


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory) -> Path:
    """Two small synthetic ground-truth images (one with odd sides)."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for name, (h, w) in {"a.png": (40, 56), "b.png": (37, 51)}.items():
        yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
        img = np.stack([yy, xx, 0.5 + 0.3 * np.sin(8 * xx)], axis=2) + 0.05 * rng.random((h, w, 3))
        write_image(folder / name, np.clip(img, 0, 1))
    return folder


def _fake_artifact(folder: Path, suffix: str = ".onnx", body: bytes = b"not a model") -> Path:
    path = folder / f"broken{suffix}"
    path.write_bytes(body)
    meta = {"format": "levelres-artifact", "artifact_format": "onnx", "task": "denoise", "layout": "NCHW",
            "level_mode": "folded", "precision": "fp32",
            "level_map": {"task": "denoise", "unit": "sigma", "a": 1 / 75, "b": 0.0, "lo": 0, "hi": 255,
                          "train_levels": [15, 75]}}
    path.with_name(path.name + ".meta.json").write_text(json.dumps(meta))
    return path


def test_bench_writes_json_csv_markdown_and_plots(tiny_onnx, tiny_ckpt, image_dir, tmp_path, capsys):
    out = tmp_path / "rep" / "bench.json"
    code = run_cli(main, [str(tiny_onnx), "--set", str(image_dir), "--levels", "0", "25", "--json", str(out),
                          "--threads", "1", "--reference", str(tiny_ckpt), *FAST])
    assert code == 0, capsys.readouterr().err
    table = capsys.readouterr().out
    assert table.startswith("| model | format | precision |") and len(table.strip().splitlines()) == 4
    doc = json.loads(out.read_text())
    assert doc["schema"] == "levelres-bench/1" and doc["config"]["n_images"] == 2
    rec = doc["results"][0]
    assert rec["format"] == "onnx" and rec["precision"] == "fp32" and rec["init_ms"] > 0
    assert rec["peak_memory_mb"] is not None and rec["memory_method"]
    acc = {a["level"]: a for a in rec["accuracy"]}
    assert acc[0.0]["psnr"] == pytest.approx(acc[0.0]["input_psnr"], abs=0.05)  # level 0 returns the input
    assert acc[25.0]["parity_psnr"] > 60 and acc[25.0]["channels"] == "RGB"
    lat = rec["latency"][0]
    assert lat["timed"] == "compute" and lat["n"] == 2 and lat["p50_ms"] > 0 and lat["throughput_mps"] > 0
    rows = list(csv.DictReader((out.parent / "bench.csv").open()))
    assert len(rows) == 2 and rows[0]["format"] == "onnx"
    assert "| model |" in (out.parent / "bench.md").read_text()
    for name in ("bench_psnr.png", "bench_latency.png"):
        assert (out.parent / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_parity_is_na_without_reference(tiny_onnx, image_dir, tmp_path, capsys):
    out = tmp_path / "b.json"
    assert run_cli(main, [str(tiny_onnx), "--set", str(image_dir), "--levels", "15", "--json", str(out),
                          "--no-plots", "--max-images", "1", *FAST]) == 0
    assert "| n/a |" in capsys.readouterr().out
    assert json.loads(out.read_text())["results"][0]["accuracy"][0]["parity_psnr"] is None


def test_bind_level_rows_are_named_and_equal(tiny_onnx, tiny_ckpt, image_dir, tmp_path, capsys):
    """--bind-level runs onnxruntime with the level bound per session: same accuracy, a '-bound' runner."""
    docs = {}
    for extra in ([], ["--bind-level"]):
        out = tmp_path / f"b{len(extra)}.json"
        assert run_cli(main, [str(tiny_onnx), "--set", str(image_dir), "--levels", "0", "15", "40", "--json", str(out),
                              "--threads", "1", "--reference", str(tiny_ckpt), "--no-plots", *FAST, *extra]) == 0
        docs[bool(extra)] = json.loads(out.read_text())["results"][0]
    capsys.readouterr()
    assert docs[False]["runner"] == "onnxruntime-cpu" and docs[True]["runner"] == "onnxruntime-cpu-bound"
    for free, bound in zip(docs[False]["accuracy"], docs[True]["accuracy"], strict=True):
        assert bound["level"] == free["level"] and bound["psnr"] == pytest.approx(free["psnr"], abs=1e-3)
        assert bound["parity_psnr"] > 60
    assert len(docs[True]["latency"]) == len(docs[False]["latency"])


class FixedTorch:
    """The torch reference presented as a fixed-size NHWC artifact (exercises tiling in the accuracy path)."""

    def __init__(self, inner):
        self.inner, self.name = inner, "fixed-torch"
        self.meta = {**inner.meta, "layout": "NHWC", "sizes": [[16, 16]]}

    def run(self, inputs):
        assert inputs["image"].shape[1:3] == (16, 16)
        x = inputs["image"].transpose(0, 3, 1, 2)
        return {"restored": self.inner.run({**inputs, "image": x})["restored"].transpose(0, 2, 3, 1)}


def test_accuracy_with_torch_runner_and_tiling(tiny_ckpt, image_dir):
    pytest.importorskip("torch")
    from train.reference import TorchRunner

    images = load_images(image_dir)
    refs = ReferenceOutputs(tiny_ckpt, threads=1)
    refs.compute(images, [25.0])
    with TorchRunner(tiny_ckpt, threads=1) as r:
        whole = evaluate_accuracy(r, images, [25.0], "denoise", refs)[0]
        tiled = evaluate_accuracy(FixedTorch(r), images, [25.0], "denoise", refs)[0]
    assert whole["parity_psnr"] == 100.0 and not whole["tiled"]
    assert tiled["tiled"] and tiled["parity_psnr"] > 35 and abs(tiled["psnr"] - whole["psnr"]) < 0.1


def test_default_job_exports_and_benchmarks(tiny_ckpt, random_ckpt, image_dir, tmp_path, monkeypatch):
    """Each shipped weight set is exported and benchmarked against its own torch reference."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("export.onnx", reason="export.onnx is not importable yet")
    other = random_ckpt(tmp_path / "other.safetensors", seed=7, out_gain=1.0)
    from export import job

    monkeypatch.setattr(job, "DEFAULT_WEIGHTS", (str(tiny_ckpt), str(other)))
    monkeypatch.setattr(job, "runnable_formats", lambda: ["onnx"])
    ev = EvalConfig(levels=(25.0,), sizes=((32, 32),), latency=LatencyConfig(warmup=0, runs=1), threads=1)
    cfg = bench.BenchConfig(image_dir=image_dir, eval=ev, json_path=tmp_path / "b.json", max_images=1,
                            plots=False, export_dir=tmp_path / "art", progress=False)
    doc = job.run_main_job(cfg)
    assert [r["name"] for r in doc["results"]] == ["tiny.onnx", "other.onnx"]
    assert (tmp_path / "art" / "tiny.onnx.meta.json").is_file()
    assert doc["config"]["reference"] == [str(tiny_ckpt), str(other)]
    assert all(r["accuracy"][0]["parity_psnr"] > 60 for r in doc["results"])  # each against its own weights


@pytest.mark.parametrize("case,pattern", [
    ("missing", "model file not found"),
    ("no_meta", "has no"),
    ("corrupt", "cannot load"),
    ("bad_image", "cannot read image"),
    ("level_text", "is not a number"),
    ("level_range", "outside"),
    ("bad_size", "malformed size"),
])
def test_bad_input_is_one_line(case, pattern, image_dir, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    images, model = image_dir, _fake_artifact(tmp_path)
    args = {"levels": ["25"], "sizes": ["32x32"]}
    if case == "missing":
        model = tmp_path / "nope.onnx"
    elif case == "no_meta":
        model = tmp_path / "plain.onnx"
        model.write_bytes(b"x")
    elif case == "bad_image":
        images = tmp_path / "imgs"
        images.mkdir()
        (images / "bad.png").write_bytes(b"not a png")
    elif case == "level_text":
        args["levels"] = ["abc"]
    elif case == "level_range":
        args["levels"] = ["300"]
    elif case == "bad_size":
        args["sizes"] = ["32by32"]
    code = run_cli(main, [str(model), "--set", str(images), "--levels", *args["levels"], "--sizes", *args["sizes"],
                          "--json", str(tmp_path / "o.json"), "--no-plots", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and pattern in err and "\n" not in err, err


def test_cli_exit_status_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "runtimes.bench", str(tmp_path / "missing.onnx"), "--no-plots"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [f"error: model file not found: {tmp_path / 'missing.onnx'}"]


def test_artifact_levels():
    from runtimes.apps.bench_eval import artifact_levels
    from runtimes.core.errors import UserError

    lm = {"task": "denoise", "unit": "sigma", "a": 1 / 75, "b": 0.0, "lo": 0, "hi": 255, "train_levels": [15, 75]}
    assert artifact_levels({"level_map": lm}, None) == [0.0, 15.0, 75.0]
    assert artifact_levels({"level_map": lm}, (25.0, 25.0, 50.0)) == [25.0, 50.0]
    assert artifact_levels({"level_map": lm, "level_mode": "fixed", "fixed_level": 25}, (0.0, 50.0)) == [25.0]
    jpeg = {"task": "dejpeg", "unit": "quality", "a": -1 / 90, "b": 100 / 90, "lo": 1, "hi": 100,
            "train_levels": [10, 50]}
    assert artifact_levels({"level_map": jpeg}, None)[0] == pytest.approx(100.0)
    with pytest.raises(UserError, match="outside"):
        artifact_levels({"level_map": lm}, (-1.0,))


def test_latency_plot_tolerates_missing_percentiles():
    pytest.importorskip("matplotlib")
    from runtimes.apps.bench_report import plot_latency

    records = [{"name": "a", "latency": [{"size": [64, 64], "p50_ms": 3.0, "p90_ms": None}]},
               {"name": "b", "latency": [{"size": [64, 64], "p50_ms": None, "p90_ms": None},
                                         {"size": [32, 32], "p50_ms": 1.0, "p90_ms": 1.5}]}]
    assert plot_latency(records)[:8] == b"\x89PNG\r\n\x1a\n"


def test_reports_are_strict_json():
    """An undefined metric (nan, inf) is written as null, so any JSON reader accepts the report."""
    import json

    from runtimes.core.images import json_bytes

    text = json_bytes({"rows": [{"psnr": 31.5, "ssim": float("nan"), "p": [float("inf"), 1]}], "n": 2}).decode()
    assert json.loads(text) == {"rows": [{"psnr": 31.5, "ssim": None, "p": [None, 1]}], "n": 2}
    assert "NaN" not in text and "Infinity" not in text


def test_clipped_8bit_protocol_is_a_second_labelled_set_of_rows(tiny_onnx, tiny_ckpt, image_dir, tmp_path, capsys):
    """--protocol both scores the datasets' float noise and the camera-realistic clipped 8-bit input side by side."""
    out = tmp_path / "p.json"
    assert run_cli(main, [str(tiny_onnx), "--set", str(image_dir), "--levels", "0", "50", "--json", str(out),
                          "--threads", "1", "--reference", str(tiny_ckpt), "--protocol", "both", *FAST]) == 0
    table = capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert doc["config"]["protocols"] == ["float", "clipped"]
    acc = {(a["protocol"], a["level"]): a for a in doc["results"][0]["accuracy"]}
    assert set(acc) == {("float", 0.0), ("float", 50.0), ("clipped", 0.0), ("clipped", 50.0)}
    # the metrics score the input on the 8-bit grid either way; the model sees different pixels
    assert acc[("clipped", 50.0)]["input_psnr"] == pytest.approx(acc[("float", 50.0)]["input_psnr"])
    assert abs(acc[("clipped", 50.0)]["psnr"] - acc[("float", 50.0)]["psnr"]) > 1e-4
    assert acc[("clipped", 0.0)]["psnr"] == acc[("float", 0.0)]["psnr"]
    assert acc[("clipped", 50.0)]["parity_psnr"] > 60  # the reference ran on the same clipped inputs
    assert "| input |" in table.splitlines()[0] and "| clipped |" in table and "| float |" in table
    assert "'clipped' = camera-realistic" in (tmp_path / "p.md").read_text()
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert sorted({r["protocol"] for r in rows}) == ["clipped", "float"]


def test_clipped_degradation_is_the_float_one_clipped_and_rounded():
    from runtimes.core.degrade import degrade
    from runtimes.core.errors import UserError

    clean = (np.random.default_rng(1).random((16, 20, 3)) * 255).astype(np.uint8)
    fl = degrade(clean, "denoise", 50, seed=3)
    cl = degrade(clean, "denoise", 50, seed=3, protocol="clipped")
    assert fl.min() < 0 and fl.max() > 1
    np.testing.assert_array_equal(cl, (np.round(np.clip(fl, 0, 1) * 255) / 255).astype(np.float32))
    np.testing.assert_array_equal(np.round(cl * 255) / 255, cl)
    with pytest.raises(UserError, match="unknown degradation protocol 'camera'"):
        degrade(clean, "denoise", 5, protocol="camera")


def _record(name, levels, latency):
    acc = [{"level": lv, "protocol": "float", "psnr": 30.0 + lv / 10, "input_psnr": 20.0, "ssim": 0.9,
            "parity_psnr": None, "channels": "RGB"} for lv in levels]
    return {"name": name, "unit": "sigma", "accuracy": acc, "latency": latency}


def test_latency_plot_is_linear_with_plain_numbers_and_labels_the_timing(monkeypatch):
    """No log axis (its 2.4x10^1-style ticks), each bar's p50 as a plain number, tiled end-to-end bars hatched."""
    pytest.importorskip("matplotlib")
    from runtimes.apps import bench_report

    figs = []
    monkeypatch.setattr(bench_report, "_png", lambda fig: figs.append(fig) or b"")
    lat = [{"size": [32, 32], "level": 25, "p50_ms": 24.0, "p90_ms": 26.0, "timed": "compute"},
           {"size": [720, 1280], "level": 25, "p50_ms": 480.5, "p90_ms": 500.0, "timed": "end-to-end"}]
    bench_report.plot_latency([_record("a.onnx", [25], lat)])
    ax = figs[0].axes[0]
    assert ax.get_yscale() == "linear"
    texts = [t.get_text() for t in ax.texts]
    assert "24.0" in texts and "480.5" in texts
    assert [p.get_hatch() or "" for p in ax.patches] == ["", "//"]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "compute only (runner.run)" in legend and "end-to-end, tiled" in legend


def test_psnr_plot_marks_the_degraded_input_with_one_level(monkeypatch):
    pytest.importorskip("matplotlib")
    from runtimes.apps import bench_report

    figs = []
    monkeypatch.setattr(bench_report, "_png", lambda fig: figs.append(fig) or b"")
    bench_report.plot_psnr([_record("a.onnx", [25], [])])
    line = {ln.get_label(): ln for ln in figs[0].axes[0].lines}["degraded input"]
    assert line.get_marker() not in (None, "None", "") and list(line.get_ydata()) == [20.0]
