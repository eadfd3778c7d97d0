"""train.ship: a finished run becomes packaged weights, with its evaluations and a portable record."""

import json

import pytest

pytest.importorskip("torch")

import torch  # noqa: E402

from runtimes.core.errors import run_cli  # noqa: E402
from runtimes.core.levels import make_level_map  # noqa: E402
from train.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from train.model import build_model, preset  # noqa: E402
from train.ship import main  # noqa: E402

SET5 = {1.0: (100.0, 100.0), 2.0: (33.0, 31.0), 6.0: (24.0, 23.5)}
SET14 = {1.0: (100.0, 100.0), 2.0: (30.0, 28.5)}


def _eval(folder, name, rows, task="sr"):
    payload = {"task": task, "set": name, "rows": [{"level": lv, "psnr": p, "input_psnr": i}
                                                    for lv, (p, i) in rows.items()]}
    (folder / f"eval-{name}.json").write_text(json.dumps(payload))


@pytest.fixture
def run(tmp_path):
    folder = tmp_path / "runs" / "sr-tiny-linear"
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    model = build_model(preset("tiny"), make_level_map("sr", (2, 3, 4, 5)))
    cfg = {"data": "/somewhere/data/datasets/train/CBSD432", "val": "/elsewhere/datasets/test/CBSD68",
           "out": str(folder), "amp": True, "compile": None}
    save_checkpoint(folder / "best.safetensors", model, {"steps": 3000, "train_seconds": 1500.0, "device": "cpu",
                                                         "train_config": cfg, "preset": "tiny"})
    _eval(folder, "Set14", SET14)
    _eval(folder, "Set5", SET5)
    return folder


def _ship(*args, capsys):
    code = run_cli(main, [str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_ship_writes_loadable_weights_with_their_record(run, tmp_path, capsys):
    dest = tmp_path / "pretrained"
    dest.mkdir()
    code, out, err = _ship(run, "--name", "sr-tiny", "-o", dest, "--hardware", "2-core test CPU", capsys=capsys)
    assert code == 0 and err == "" and "sr-tiny.safetensors" in out
    meta = json.loads((dest / "sr-tiny.json").read_text())
    assert meta["evaluation"]["set"] == "Set5" and [e["set"] for e in meta["evaluation_more"]] == ["Set14"]
    assert meta["hardware"] == "2-core test CPU; 3000 steps in 25 min (2.0 steps/s), fp32 eager"
    cfg = meta["train_config"]
    assert cfg["data"] == "datasets/train/CBSD432" and cfg["val"] == "datasets/test/CBSD68"
    assert cfg["out"] == "runs/sr-tiny-linear"
    shipped, smeta = load_checkpoint(dest / "sr-tiny.safetensors")
    original, _ = load_checkpoint(run / "best.safetensors")
    a, b = shipped.state_dict(), original.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert smeta["task"] == "sr" and smeta["level_map"]["unit"] == original.level_map.to_dict()["unit"]
    assert "worse_than_input" not in meta


def test_worse_than_input_is_refused_unless_allowed(run, tmp_path, capsys):
    _eval(run, "Set5", {**SET5, 6.0: (23.0, 23.5)})
    dest = tmp_path / "pretrained"
    dest.mkdir()
    code, _, err = _ship(run, "--name", "sr-tiny", "-o", dest, capsys=capsys)
    assert code == 2 and "Set5 level 6: 23.00 dB restored <= 23.50 dB input" in err
    assert len(err.strip().splitlines()) == 1 and not any(dest.iterdir())
    code, _, err = _ship(run, "--name", "sr-tiny", "-o", dest, "--allow-worse", capsys=capsys)
    assert code == 0 and "warning: worse than its input: Set5 level 6" in err
    assert json.loads((dest / "sr-tiny.json").read_text())["worse_than_input"] == [
        "Set5 level 6: 23.00 dB restored <= 23.50 dB input"]


def test_neutral_level_must_return_its_input(run, tmp_path, capsys):
    _eval(run, "Set14", {**SET14, 1.0: (60.0, 100.0)})
    code, _, err = _ship(run, "--name", "sr-tiny", "-o", tmp_path, capsys=capsys)
    assert code == 2 and "Set14 level 1 (neutral): 60.00 dB, not its input" in err


@pytest.mark.parametrize("case", ["no_eval", "bad_eval", "other_task", "not_run", "bad_name", "exists", "no_dest",
                                  "no_budget"])
def test_bad_input_is_a_one_line_error(case, run, tmp_path, capsys):
    dest = tmp_path / "pretrained"
    dest.mkdir()
    args = [run, "--name", "sr-tiny", "-o", dest]
    if case == "no_eval":
        for f in run.glob("eval-*.json"):
            f.unlink()
    elif case == "bad_eval":
        (run / "eval-Set5.json").write_text("{not json")
    elif case == "other_task":
        _eval(run, "Set5", SET5, task="denoise")
    elif case == "not_run":
        args[0] = tmp_path
    elif case == "bad_name":
        args[2] = "../escape"
    elif case == "exists":
        (dest / "sr-tiny.safetensors").write_bytes(b"keep me")
    elif case == "no_dest":
        args[-1] = tmp_path / "missing"
    elif case == "no_budget":  # a checkpoint saved by hand, not by the trainer
        model, _ = load_checkpoint(run / "best.safetensors")
        save_checkpoint(run / "best.safetensors", model, {})
    before = sorted(p.name for p in dest.iterdir())
    code, out, err = _ship(*args, capsys=capsys)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert sorted(p.name for p in dest.iterdir()) == before
    if case == "exists":
        assert (dest / "sr-tiny.safetensors").read_bytes() == b"keep me"


def test_ship_refuses_a_name_of_another_task(run, tmp_path, capsys):
    code, _, err = _ship(run, "--name", "denoise-tiny", "-o", tmp_path, capsys=capsys)
    assert code == 2 and "must start with the run's task: sr-" in err
    assert not list(tmp_path.glob("denoise-tiny*"))


def test_ship_refuses_non_finite_weights(run, tmp_path, capsys):
    model, meta = load_checkpoint(run / "best.safetensors")
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    save_checkpoint(run / "best.safetensors", model, meta)
    code, _, err = _ship(run, "--name", "sr-tiny", "-o", tmp_path, capsys=capsys)
    assert code == 2 and "non-finite weights" in err and "--lr" in err
    assert not list(tmp_path.glob("sr-tiny*"))


def test_ship_refuses_a_destination_that_is_a_folder(run, tmp_path, capsys):
    (tmp_path / "sr-tiny.json").mkdir()
    code, _, err = _ship(run, "--name", "sr-tiny", "-o", tmp_path, "--force", capsys=capsys)
    assert code == 2 and "is a folder" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "sr-tiny.safetensors").exists()  # checked before anything is written


def test_hardware_line_names_the_compile_mode():
    from train.ship import hardware_line

    meta = {"steps": 20000, "train_seconds": 360.0, "device": "NVIDIA H100", "train_config": {"amp": True}}
    assert hardware_line(meta, None) == "NVIDIA H100; 20000 steps in 6 min (55.6 steps/s), bf16 autocast, torch.compile"
    meta["compile_mode"] = "reduce-overhead"
    assert hardware_line(meta, "one H100").endswith("bf16 autocast, torch.compile (reduce-overhead)")
    assert hardware_line({**meta, "device": "cpu: x", "compile_mode": None}, None).endswith("fp32 eager")
    assert hardware_line({**meta, "device": "cpu: x", "compile_mode": "default"}, None).endswith(
        "fp32, torch.compile (default)")


def test_weights_trained_on_from_earlier_runs_ship_with_the_whole_budget(run, tmp_path, capsys):
    """A run started from another run's weights (--init): the shipped record lists the earlier run, the hardware
    line and the model card count every step; a link not on record is said to be so."""
    from train.cards import _steps
    from train.ship import hardware_line

    model, meta = load_checkpoint(run / "best.safetensors")
    earlier = {"run": "lr2e-3", "steps": 2000, "train_seconds": 1500.0, "lr": 2e-3}
    save_checkpoint(run / "best.safetensors", model, {**meta, "lineage": [earlier]})
    dest = tmp_path / "pretrained"
    dest.mkdir()
    code, _, err = _ship(run, "--name", "sr-tiny", "-o", dest, "--hardware", "2-core test CPU", capsys=capsys)
    assert code == 0, err
    shipped = json.loads((dest / "sr-tiny.json").read_text())
    assert shipped["lineage"] == [earlier]
    assert shipped["hardware"] == ("2-core test CPU; 3000 steps in 25 min (2.0 steps/s), fp32 eager; started from "
                                   "the weights of 1 earlier run (2000 steps in 25 min): 5000 steps in 50 min in all")
    _, smeta = load_checkpoint(dest / "sr-tiny.safetensors")
    assert _steps(smeta) == "5,000 steps in all (3,000 in the last run, started from the weights of 1 before it)"
    unknown = [{"run": "gone/best.safetensors", "steps": None}, earlier]
    assert hardware_line({**meta, "lineage": unknown}, "cpu").endswith(
        "started from the weights of 2 earlier runs, not all on record (at least 2000 steps more)")
    assert _steps({**smeta, "lineage": unknown}).startswith("at least 5,000 steps (3,000 in the last run")
    assert _steps({"steps": 3000}) == "3,000 steps"
