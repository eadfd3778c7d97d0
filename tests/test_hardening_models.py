"""Hostile model metadata, unusable export sizes, full disks, Ctrl-C and strict command lines.

Covers: a sidecar that disagrees with its graph (ONNX and TFLite), level maps and architecture sizes that no
trainer writes (refused wherever a checkpoint or artifact is loaded), TFLite sizes off the pixel grid or under
the receptive field, ENOSPC in restore and train, SIGINT during training (the state saved, `--resume`
bit-exact), and the small command-line cases (precise level messages, "1_5", repeated options, warnings on
one line, codec messages on stderr).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest

from tests.test_hardening import _check, _run, files  # noqa: F401 - `files` is a fixture

torch = pytest.importorskip("torch")

RESTORE = ["{img}", "--model", "{M}", "--level", "25", "-o", "{O}/r.png"]


def _sidecar(files, tmp_path: Path, name: str, **changes) -> str:  # noqa: F811
    """A copy of the tiny ONNX artifact whose sidecar has `changes` applied."""
    src = Path(files["onnx"])
    dst = tmp_path / f"{name}.onnx"
    shutil.copy(src, dst)
    meta = {**json.loads(src.with_name(src.name + ".meta.json").read_text()), **changes}
    dst.with_name(dst.name + ".meta.json").write_text(json.dumps(meta))
    return str(dst)


@pytest.mark.parametrize("changes,words", [
    ({"layout": "NHWC"}, "layout NHWC"), ({"io": "uint8"}, "uint8"),
    ({"level_mode": "fixed", "fixed_level": 25.0}, "inputs"),
])
def test_onnx_sidecar_that_disagrees_with_its_graph(files, changes, words, capsys, tmp_path):  # noqa: F811
    pytest.importorskip("onnxruntime")
    model = _sidecar(files, tmp_path, "lying", **changes)
    err = _check("runtimes.restore", RESTORE, {**files, "M": model}, capsys, tmp_path)
    assert words in err and "do not belong together" in err, err


def test_onnx_runtime_errors_are_one_line(files, monkeypatch):  # noqa: F811
    pytest.importorskip("onnxruntime")
    from runtimes.core.errors import UserError
    from runtimes.runners.onnxruntime import OnnxRunner

    with OnnxRunner(files["onnx"], provider="cpu") as r:
        def fail(*a, **k):
            raise RuntimeError("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : bad\nsecond line")

        monkeypatch.setattr(r._session, "run", fail, raising=False)
        with pytest.raises(UserError, match="onnxruntime failed to run") as exc:
            r.run({"image": np.zeros((1, 3, 8, 8), np.float32), "level": np.array([25.0], np.float32)})
    assert "\n" not in str(exc.value)


@pytest.fixture(scope="module")
def tflite_artifact(files, tmp_path_factory) -> Path:  # noqa: F811
    pytest.importorskip("litert_torch")
    pytest.importorskip("ai_edge_litert")
    from export.base import ExportConfig
    from export.tflite import TFLiteConfig, export_tflite

    out = tmp_path_factory.mktemp("tfl")
    return export_tflite(TFLiteConfig(ExportConfig(files["ckpt"], out, name="tiny"), sizes=((32, 32),))).path


def _tflite_case(case: str, meta: dict) -> dict:
    sig = meta["signatures"]["s32x32"]
    if case == "names":
        return {**meta, "signatures": {"s32x32": {**sig, "inputs": {"image": "x", "level": "y"}}}}
    if case == "string-entry":
        return {**meta, "signatures": {"s32x32": "s32x32"}}
    if case == "nhwc":
        return {**meta, "layout": "NHWC"}
    if case == "uint8":
        return {**meta, "io": "uint8"}
    return {**meta, "signatures": {"s64x64": {**sig, "size": [64, 64]}}}  # "missing-signature"


@pytest.mark.parametrize("case", ["names", "string-entry", "nhwc", "uint8", "missing-signature"])
def test_tflite_sidecar_that_disagrees_with_its_graph(files, tflite_artifact, case, capsys, tmp_path):  # noqa: F811
    dst = tmp_path / "lying.tflite"
    shutil.copy(tflite_artifact, dst)
    meta = json.loads(tflite_artifact.with_name(tflite_artifact.name + ".meta.json").read_text())
    dst.with_name(dst.name + ".meta.json").write_text(json.dumps(_tflite_case(case, meta)))
    err = _check("runtimes.restore", RESTORE, {**files, "M": str(dst)}, capsys, tmp_path)
    assert "lying.tflite" in err and "re-export" in err, err


BAD_MAPS = {
    "a=0": {"a": 0.0}, "a<0": {"a": -1 / 75}, "a=1e308": {"a": 1e308}, "a=nan": {"a": float("nan")},
    "b-not-neutral": {"b": 0.5}, "max_strength=-1": {"max_strength": -1.0}, "max_strength=1e9": {"max_strength": 1e9},
    "knot-not-rising": {"knots": [[0.5, 0.5], [0.4, 1.0]]}, "lo>hi": {"lo": 300.0}, "task": {"task": "deblur"},
}


def _bad_checkpoint(files, tmp_path: Path, level_map: dict | None = None, arch: dict | None = None) -> str:  # noqa: F811
    from safetensors.numpy import load_file, save_file

    from train.checkpoint import read_meta

    meta = read_meta(files["ckpt"])
    meta["level_map"] = {**meta["level_map"], **(level_map or {})}
    meta["arch"] = {**meta["arch"], **(arch or {})}
    header = {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in meta.items()}
    path = tmp_path / "bad.safetensors"
    save_file(load_file(files["ckpt"]), path, metadata={"levelres": json.dumps(meta), **header})
    return str(path)


@pytest.mark.parametrize("case", list(BAD_MAPS))
def test_level_map_refused_on_load(files, case, capsys, tmp_path):  # noqa: F811
    """A checkpoint (restore, export, evaluate) and an artifact's sidecar (restore) with an unusable level map."""
    pytest.importorskip("onnxruntime")
    ckpt = _bad_checkpoint(files, tmp_path, level_map=BAD_MAPS[case])
    for module, template in (("runtimes.restore", RESTORE), ("export.onnx", ["--weights", "{M}", "-o", "{O}"]),
                             ("train.evaluate", ["--weights", "{M}", "--set", "{imgs}", "--levels", "25"])):
        (tmp_path / module).mkdir()
        err = _check(module, template, {**files, "M": ckpt}, capsys, tmp_path / module)
        assert "level map" in err or "calibration knot" in err, (module, err)
    src = json.loads(Path(files["onnx"] + ".meta.json").read_text())
    model = _sidecar(files, tmp_path, "badmap", level_map={**src["level_map"], **BAD_MAPS[case]})
    (tmp_path / "artifact").mkdir()
    assert "level map" in _check("runtimes.restore", RESTORE, {**files, "M": model}, capsys, tmp_path / "artifact")


def test_valid_level_maps_pass():
    from runtimes.core.errors import UserError
    from runtimes.core.levels import LevelMap, make_level_map

    for task, levels in (("denoise", (15, 75)), ("dejpeg", (10, 80)), ("sr", (2, 4)), ("sr", (1.5,))):
        m = make_level_map(task, levels)
        offset = [m.with_offset(0.3)] if abs(m.a) < 1 else []  # the offset's first knot lies one unit up
        for variant in (m, m.extrapolating(), *offset, m.calibrated(((0.5, 0.6), (1.05, 1.03)))):
            assert LevelMap.from_dict(variant.to_dict()) == variant
    with pytest.raises(UserError, match="more than one unit"):
        make_level_map("sr", (2,)).with_offset(0.3)


@pytest.mark.parametrize("arch", [{"channels": 200_000}, {"blocks": 10_000}, {"tail_channels": -1},
                                  {"scale": 64}, {"channels": "8"}])
def test_architecture_sizes_bounded_on_load(files, arch, capsys, tmp_path):  # noqa: F811
    ckpt = _bad_checkpoint(files, tmp_path, arch=arch)
    for module, template in (("export.onnx", ["--weights", "{M}", "-o", "{O}"]), ("runtimes.restore", RESTORE)):
        (tmp_path / module).mkdir()
        err = _check(module, template, {**files, "M": ckpt}, capsys, tmp_path / module)
        assert "architecture" in err and next(iter(arch)) in err, err


@pytest.mark.parametrize("size,words", [("63x61", "grid"), ("4x4", "receptive field"), ("20x24", "receptive")])
def test_tflite_sizes_the_runtime_cannot_use(files, size, words, capsys, tmp_path):  # noqa: F811
    """Refused at export, and a failed export into a new folder leaves no empty folder behind."""
    pytest.importorskip("litert_torch")
    capsys.readouterr()  # the import's own log lines are not the command's
    err = _check("export.tflite", ["--weights", "{ckpt}", "-o", "{O}/new/sub", "--size", size], files, capsys,
                 tmp_path)
    assert words in err, err


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_in_restore(files, capsys, tmp_path, monkeypatch):  # noqa: F811
    from runtimes.core import images

    monkeypatch.setattr(images, "_write_fd", _disk_full)
    err = _check("runtimes.restore", ["{img}", "--model", "{ckpt}", "--level", "25", "-o", "{O}/r.png"], files,
                 capsys, tmp_path)
    assert "No space left" in err and "r.png" in err, err


def test_disk_full_in_train(files, capsys, tmp_path, monkeypatch):  # noqa: F811
    """A new run: one line and no run folder; an existing run: its old files intact."""
    from runtimes.core import images

    train = ["--task", "denoise", "--data", "{imgs}", "--out", "{O}/run", "--steps", "2", "--no-progress",
             "--patch", "16", "--batch", "2", "--preset", "tiny", "--device", "cpu", "--workers", "0"]
    assert _run("train", train, {**files, "O": str(tmp_path / "old")}, capsys)[0] == 0
    old = {p.name: p.read_bytes() for p in (tmp_path / "old" / "run").iterdir()}
    monkeypatch.setattr(images, "_write_fd", _disk_full)
    err = _check("train", train, files, capsys, tmp_path)
    assert "No space left" in err, err
    code, err = _run("train", train, {**files, "O": str(tmp_path / "old")}, capsys)
    assert code == 2 and "No space left" in err
    assert {p.name: p.read_bytes() for p in (tmp_path / "old" / "run").iterdir()} == old


def test_sigint_saves_the_resumable_state(tiny_image_dir, tmp_path, monkeypatch):
    """Ctrl-C at step 7 of 12 (saves every 100): the state of step 7 is saved, and --resume reaches the
    uninterrupted run's weights bit for bit."""
    from safetensors.torch import load_file

    from train.checkpoint import load_train_state
    from train.trainer import TrainConfig, Trainer, train

    before = signal.getsignal(signal.SIGINT)
    cfg = dict(task="denoise", data=str(tiny_image_dir), preset="tiny", levels=(15.0, 45.0), steps=12, batch=2,
               patch=32, workers=0, device="cpu", compile=False, progress=False, save_every=100, val_every=1000)
    train(TrainConfig(**cfg, out=str(tmp_path / "full")))
    step = Trainer.train_step

    def interrupted_step(self, batch):
        loss = step(self, batch)
        if self.step == 6:  # the 7th step: Ctrl-C while it runs
            os.kill(os.getpid(), signal.SIGINT)
        return loss

    monkeypatch.setattr(Trainer, "train_step", interrupted_step)
    with pytest.raises(KeyboardInterrupt, match="step 7"):
        train(TrainConfig(**cfg, out=str(tmp_path / "cut")))
    assert load_train_state(tmp_path / "cut" / "last.state.safetensors")[0]["step"] == 7
    monkeypatch.setattr(Trainer, "train_step", step)
    train(TrainConfig(**cfg, out=str(tmp_path / "cut")), resume=True)
    a, b = (load_file(str(tmp_path / d / "last.safetensors")) for d in ("full", "cut"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert signal.getsignal(signal.SIGINT) is before  # the handler is restored after training


@pytest.mark.parametrize("module,template", [
    ("runtimes.restore", ["{img}", "--model", "{ckpt}", "--level", "{L}", "-o", "{O}/r.png"]),
    ("train.evaluate", ["--weights", "{ckpt}", "--set", "{imgs}", "--levels", "{L}"]),
    ("runtimes.bench", ["{onnx}", "--set", "{imgs}", "--levels", "{L}", "--sizes", "32x32", "--json", "{O}/b.json",
                        "--no-plots", "--no-progress"]),
])
@pytest.mark.parametrize("level", ["1_5", "\u0661\u0665", "0x1p4", "256.0000001"])
def test_levels_are_plain_numbers(files, module, template, level, capsys, tmp_path):  # noqa: F811
    pytest.importorskip("onnxruntime")
    err = _check(module, template, {**files, "L": level}, capsys, tmp_path)
    assert level in err or "not a number" in err or "number" in err, err


def test_level_message_keeps_its_digits(files, capsys, tmp_path):  # noqa: F811
    template = ["{img}", "--model", "{ckpt}", "--level", "255.0000001", "-o", "{O}/r.png"]
    err = _check("runtimes.restore", template, files, capsys, tmp_path)
    assert "255.0000001" in err and "outside" in err, err


@pytest.mark.parametrize("module,template", [
    ("runtimes.restore", ["{img}", "--model", "{ckpt}", "--level", "25", "--level", "50", "-o", "{O}/r.png"]),
    ("runtimes.restore", ["{img}", "--model", "{ckpt}", "-l", "25", "--level=50", "-o", "{O}/r.png"]),
    ("train.evaluate", ["--weights", "{ckpt}", "--set", "{imgs}", "--levels", "25", "--levels", "50"]),
])
def test_repeated_options_are_refused(files, module, template, capsys, tmp_path):  # noqa: F811
    assert "given twice" in _check(module, template, files, capsys, tmp_path)


def test_warnings_and_codec_messages_stay_on_one_line(capfd):
    import warnings

    from runtimes.core.decoding import quiet_decoders
    from runtimes.core.errors import run_cli

    def body(argv):
        warnings.warn("first line\nsecond line", UserWarning, stacklevel=1)
        with quiet_decoders():
            os.write(2, b"libpng warning: iCCP: known incorrect sRGB profile\n")
        return 0

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = lambda m, c, f, n, file=None, line=None: os.write(
            2, warnings.formatwarning(m, c, f, n, line).encode())
        assert run_cli(body, []) == 0
    err = capfd.readouterr().err
    assert err == "warning: first line second line\n", err
