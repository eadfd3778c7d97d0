"""The side-by-side training-throughput benchmark runs end to end (rates are not asserted: machines are noisy)."""

import pytest

pytest.importorskip("torch")

from runtimes.core.errors import UserError  # noqa: E402
from train.throughput import ThroughputConfig, main, measure_throughput  # noqa: E402


def test_both_loops_run_and_are_reported(tmp_path, capsys):
    rec = measure_throughput(ThroughputConfig("tiny", "denoise", steps=2, warmup=1, batch=2, patch=32, device="cpu"))
    assert rec["reference_steps_per_s"] > 0 and rec["trainer_steps_per_s"] > 0
    assert rec["ratio"] == pytest.approx(rec["trainer_steps_per_s"] / rec["reference_steps_per_s"])
    assert rec["batch"] == "4 levels x 2 crops of 32x32"
    assert rec["compile_mode"] == "eager" and list(rec["modes"]) == ["eager"]  # a CPU trains eagerly
    assert main(["--preset", "tiny", "--task", "dejpeg", "--steps", "1", "--warmup", "0", "--batch", "1", "--patch",
                 "16", "--device", "cpu", "--json", str(tmp_path / "t.json")]) == 0
    assert (tmp_path / "t.json").is_file() and "ratio" in capsys.readouterr().out
    with pytest.raises(UserError, match="unknown preset"):
        measure_throughput(ThroughputConfig("huge"))
    with pytest.raises(UserError, match="--compile-modes"):
        measure_throughput(ThroughputConfig("tiny", compile_modes=("fastest",)))


def test_compile_mode_defaults_and_checks(tmp_path, tiny_image_dir):
    from train.trainer import TrainConfig, Trainer, _compile_mode

    base = dict(task="denoise", data=str(tiny_image_dir), preset="tiny", steps=1, batch=1, patch=16, device="cpu",
                workers=0, progress=False)
    # compiled: CUDA graphs by default on one GPU, the default mode under DDP and on a CPU (torch.compile is lazy,
    # nothing compiles here)
    assert _compile_mode(TrainConfig(out=str(tmp_path / "x"), **base, compile=True), "cuda", 1) == "reduce-overhead"
    assert _compile_mode(TrainConfig(out=str(tmp_path / "x"), **base, compile=True), "cuda", 2) == "default"
    # on by default on CUDA
    assert _compile_mode(TrainConfig(out=str(tmp_path / "x"), **base), "cuda", 1) == "reduce-overhead"
    assert Trainer(TrainConfig(out=str(tmp_path / "a"), compile=True, **base)).compile_mode == "default"
    # a CPU compiles the multi-scale topology by default (measured faster there) and trains the others eagerly
    assert Trainer(TrainConfig(out=str(tmp_path / "u"), **{**base, "preset": "unet-tiny"})).compile_mode == "default"
    assert Trainer(TrainConfig(out=str(tmp_path / "v"), compile=False, **{**base, "preset": "unet-tiny"})
                   ).compile_mode is None
    assert Trainer(TrainConfig(out=str(tmp_path / "b"), compile=True, compile_mode="default", **base)).compile_mode \
        == "default"
    assert Trainer(TrainConfig(out=str(tmp_path / "c"), **base)).compile_mode is None  # a CPU trains eagerly
    with pytest.raises(UserError, match="--compile-mode must be one of"):
        TrainConfig(out=str(tmp_path / "d"), compile_mode="fastest", **base).check()


def test_cpu_variants_side_by_side(tmp_path, capsys, monkeypatch):
    """Each CPU speed-up is timed alone against the plain loop (the torch.compile variants left out here: they
    compile for a minute; the command runs them)."""
    import train.throughput as tp

    monkeypatch.setattr(tp, "CPU_VARIANTS", {k: v for k, v in tp.CPU_VARIANTS.items() if "compile" not in k})
    assert main(["--preset", "tiny", "--cpu-variants", "--steps", "1", "--warmup", "0", "--batch", "1", "--patch",
                 "16", "--json", str(tmp_path / "v.json")]) == 0
    import json

    rec = json.loads((tmp_path / "v.json").read_text())
    assert list(rec["variants"]) == ["fp32", "channels_last", "bf16 autocast"] and rec["device"] == "cpu"
    assert rec["variants"]["fp32"]["ratio"] == 1.0 and all(v["steps_per_s"] > 0 for v in rec["variants"].values())
    assert "bf16 autocast" in capsys.readouterr().out
