import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from runtimes.core.errors import UserError  # noqa: E402
from runtimes.core.levels import make_level_map  # noqa: E402
from train.checkpoint import load_checkpoint, read_meta, save_checkpoint  # noqa: E402
from train.model import build_model, preset  # noqa: E402
from train.trainer import TrainConfig, lr_at, train  # noqa: E402

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = build_model(preset("tiny", form="affine"), make_level_map("dejpeg", (20, 60)))
    path = save_checkpoint(tmp_path / "m.safetensors", model, {"steps": 7})
    loaded, meta = load_checkpoint(path)
    assert meta["steps"] == 7 and meta["level_map"]["train_levels"] == [20.0, 60.0]
    assert json.loads((tmp_path / "m.json").read_text())["arch"]["form"] == "affine"
    x = torch.rand(1, 3, 16, 16)
    lv = torch.tensor([40.0])
    torch.testing.assert_close(loaded(x, lv), model.eval()(x, lv), rtol=0, atol=0)
    assert not list(tmp_path.glob("*.tmp"))


def test_foreign_and_corrupt_checkpoints(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(UserError, match="no levelres metadata"):
        read_meta(tmp_path / "foreign.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(UserError, match="not a readable"):
        read_meta(tmp_path / "bad.safetensors")
    model = build_model(preset("tiny"), make_level_map("denoise"))
    good = save_checkpoint(tmp_path / "good.safetensors", model, {})
    blob = good.read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(blob[: len(blob) - 100])
    with pytest.raises(UserError):
        load_checkpoint(tmp_path / "trunc.safetensors")


def _cfg(data, out, **kw):
    base = dict(task="denoise", data=str(data), out=str(out), preset="tiny", levels=(15.0, 45.0), steps=12, batch=2,
                patch=32, workers=0, device="cpu", compile=False, progress=False, save_every=3, val_every=1000)
    return TrainConfig(**{**base, **kw})


@pytest.mark.parametrize("task", ["denoise", "dejpeg"])
def test_resume_equals_uninterrupted(tmp_path, tiny_image_dir, task):
    levels = (15.0, 45.0) if task == "denoise" else (20.0, 60.0)
    full = train(_cfg(tiny_image_dir, tmp_path / "full", task=task, levels=levels))
    part = _cfg(tiny_image_dir, tmp_path / "part", task=task, levels=levels, stop_at=5)
    train(part)
    resumed = train(_cfg(tiny_image_dir, tmp_path / "part", task=task, levels=levels), resume=True)
    a, _ = load_checkpoint(full.parent / "last.safetensors")
    b, meta = load_checkpoint(resumed.parent / "last.safetensors")
    assert meta["steps"] == 12
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k


def _saved_step(state) -> int:
    """The step recorded in a training-state file, read with one open(): safe_open(framework="pt") maps the
    path a second time through torch, and a save renamed over it in between pairs one file's header with
    the other's size."""
    try:
        blob = Path(state).read_bytes()
    except OSError:
        return -1
    n = int.from_bytes(blob[:8], "little")
    return json.loads(json.loads(blob[8:8 + n])["__metadata__"]["info"])["step"]


def test_killed_run_resumes_to_the_same_weights(tmp_path, tiny_image_dir):
    """SIGKILL a training process mid-run, resume it, and compare with an uninterrupted run bit for bit."""
    import time

    from safetensors.torch import load_file

    args = [sys.executable, "-m", "train", "--task", "denoise", "--data", str(tiny_image_dir), "--preset", "tiny",
            "--levels", "15", "45", "--steps", "400", "--batch", "2", "--patch", "32", "--workers", "0",
            "--device", "cpu", "--compile", "off", "--save-every", "4", "--no-progress", "--seed", "3"]
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    run = lambda *extra: subprocess.run([*args, *extra], cwd=ROOT, env=env, capture_output=True, text=True,  # noqa: E731
                                        timeout=600)
    full = run("--out", str(tmp_path / "full"))
    assert full.returncode == 0, full.stderr
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*args, "--out", str(killed)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline and _saved_step(killed / "last.state.safetensors") < 20:
        time.sleep(0.002)
    proc.kill()
    proc.wait()
    at = _saved_step(killed / "last.state.safetensors")
    assert 0 < at < 400, f"the run was not killed mid-way (saved step {at})"
    resumed = run("--out", str(killed), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    a, b = load_file(str(tmp_path / "full" / "last.safetensors")), load_file(str(killed / "last.safetensors"))
    assert read_meta(killed / "last.safetensors")["steps"] == 400
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_baseline_is_plain_single_level(tmp_path, tiny_image_dir):
    best = train(_cfg(tiny_image_dir, tmp_path / "b", levels=None, baseline_level=25.0, steps=3))
    meta = read_meta(best)
    assert meta["arch"]["form"] == "plain" and meta["train_levels"] == [25.0] and meta["baseline_level"] == 25.0


def test_validation_history_and_schedule(tmp_path, tiny_image_dir):
    best = train(_cfg(tiny_image_dir, tmp_path / "v", val=str(tiny_image_dir), val_crop=48, val_every=4, steps=8))
    hist = json.loads((best.parent / "history.json").read_text())
    assert read_meta(best.parent / "last.safetensors")["validation"] == hist
    assert [h["step"] for h in hist][:2] == [4, 8] and set(hist[0]) >= {"15", "45", "mean"}
    watched = train(_cfg(tiny_image_dir, tmp_path / "w", val=str(tiny_image_dir), val_crop=48, val_every=4, steps=4,
                         val_levels=(5.0, 45.0)))
    row = read_meta(watched)["validation"][0]
    assert set(row) == {"step", "5", "45", "mean"}
    assert row["mean"] == pytest.approx((row["5"] + row["45"]) / 2, abs=2e-3)
    assert read_meta(watched)["train_config"]["val_levels"] == [5.0, 45.0]
    cfg = _cfg(tiny_image_dir, tmp_path)
    assert lr_at(cfg, 0, 100) == pytest.approx(cfg.lr)
    assert lr_at(cfg, 100, 100) == pytest.approx(cfg.lr * cfg.lr_min_ratio)
    warm = replace(cfg, warmup=10)
    assert lr_at(warm, 0, 100) == pytest.approx(lr_at(cfg, 0, 100) / 10)
    assert lr_at(warm, 4, 100) == pytest.approx(lr_at(cfg, 4, 100) / 2)
    assert [lr_at(warm, s, 100) for s in (9, 50, 100)] == [pytest.approx(lr_at(cfg, s, 100)) for s in (9, 50, 100)]
    assert lr_at(replace(warm, schedule="step"), 4, 100) == pytest.approx(cfg.lr / 2)


def _cli(*args):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args", [
    ["-m", "train", "--task", "deblur", "--data", ".", "--out", "x", "--steps", "1"],
    ["-m", "train", "--task", "denoise", "--data", "no/such/dir", "--out", "x", "--steps", "1", "--preset", "tiny"],
    ["-m", "train", "--task", "denoise", "--data", ".", "--out", "x", "--steps", "1", "--levels", "nan"],
    ["-m", "train", "--task", "denoise", "--data", ".", "--out", "x", "--steps", "1", "--levels", "-5"],
    ["-m", "train", "--task", "denoise", "--data", "samples", "--out", "x", "--steps", "1", "--save-every", "0"],
    ["-m", "train", "--task", "denoise", "--data", "samples", "--out", "x", "--steps", "1", "--lr", "nan"],
    ["-m", "train.evaluate", "--weights", "missing.safetensors", "--set", ".", "--levels", "25"],
    ["-m", "train", "--task", "denoise", "--data", "samples", "--out", "/proc/levelres-out", "--steps", "1"],
    ["-m", "train", "--task", "denoise", "--data", "samples", "--out", "x", "--steps", "1", "--preset", "fast",
     "--init", "denoise-mobile"],  # another architecture
    ["-m", "train", "--task", "dejpeg", "--data", "samples", "--out", "x", "--steps", "1", "--init", "denoise-mobile"],
    ["-m", "train", "--task", "denoise", "--data", "samples", "--out", "x", "--steps", "1", "--preset", "fast",
     "--init", "denoise-fast-cal"],  # a calibrated map
    ["-m", "train", "--task", "denoise", "--data", "samples", "--out", "x", "--steps", "1", "--init", "no-such-set"],
    ["-m", "train", "--task", "denoise", "--data", "samples", "--out", "x", "--steps", "1", "--lr", "inf"],
    ["-m", "train", "--task", "denoise", "--data", "samples", "--out", "x", "--steps", "1", "--lr", "1e38"],
    ["-m", "train", "--task", "denoise", "--data", "samples", "--out", "x", "--steps", "1", "--workers", "-1"],
    ["-m", "train", "--task", "denoise", "--data", "samples", "--out", "x", "--steps", "1", "--seed", "-1"],
    ["-m", "train", "--task", "denoise", "--data", "samples", "--out", "x", "--steps", "10", "--warmup", "-1"],
    ["-m", "train", "--task", "denoise", "--data", "samples", "--out", "x", "--steps", "10", "--warmup", "10"],
    ["-m", "train", "--task", "denoise", "--data", "samples", "--out", "x", "--steps", "1", "--levels", "25", "25"],
    ["-m", "train", "--task", "denoise", "--data", "samples", "--out", "x", "--steps", "1", "--val-levels", "5"],
    ["-m", "train", "--task", "denoise", "--data", "samples", "--out", "x", "--steps", "1", "--val", "samples",
     "--val-levels", "5", "5"],
    ["-m", "train", "--task", "denoise", "--data", "samples", "--out", "x", "--steps", "1", "--val", "samples",
     "--val-levels", "0"],
    ["-m", "train", "--task", "denoise", "--data", "samples", "--out", "x", "--steps", "1", "--val", "samples",
     "--val-levels", "300"],
    ["-m", "train", "--task", "denoise", "--data", "samples", "--out", "x", "--steps", "1", "--level-exact", "0.5"],
    ["-m", "train", "--task", "denoise", "--data", "samples", "--out", "x", "--steps", "1", "--level-weighting", "log",
     "--weight-floor", "5"],  # the floor acts on the strength weighting only
    ["-m", "train", "--task", "denoise", "--data", "samples", "--out", "x", "--steps", "1", "--baseline-level", "25",
     "--weight-floor", "5"],
    ["-m", "train", "--task", "denoise", "--data", "samples", "--out", "x", "--steps", "1", "--preset", "bogus"],
    ["-m", "train", "--task", "denoise", "--data", "samples", "--out", "x", "--steps", "1", "--channels", "0"],
    ["-m", "train", "--task", "denoise", "--data", "samples", "--out", "x", "--steps", "1", "--biases", "level"],
    ["-m", "train", "--task", "denoise", "--data", "samples", "--out", "x", "--steps", "1", "--form", "shift",
     "--biases", "level", "--head", "affine"],
    ["-m", "train", "--task", "denoise", "--data", "samples", "--out", "x", "--steps", "1", "--baseline-level", "25",
     "--head", "affine"],  # a dedicated model has no level to move the head
])
def test_cli_user_errors_are_one_line(args, tmp_path):
    r = _cli(*args)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().startswith("error:") and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (ROOT / "x").exists()  # a refused run leaves no run folder behind


def test_a_diverged_run_saves_nothing(tmp_path, tiny_image_dir):
    """Non-finite weights are never written: the save is refused with a one-line error naming --lr, and the
    run's last good checkpoint stays as it was."""
    from train.trainer import Trainer

    trainer = Trainer(_cfg(tiny_image_dir, tmp_path / "d", steps=2))
    trainer.save(best=True)
    good = (tmp_path / "d" / "last.safetensors").read_bytes()
    with torch.no_grad():
        next(trainer.model.parameters()).fill_(float("nan"))
    with pytest.raises(UserError, match="diverged.*--lr"):
        trainer.save()
    assert (tmp_path / "d" / "last.safetensors").read_bytes() == good


def test_psnr_of_a_non_finite_output_is_nan():
    import numpy as np

    from runtimes.core.metrics import psnr

    clean = np.full((8, 8, 3), 0.5, np.float32)
    out = clean.copy()
    out[0, 0, 0] = np.nan
    assert np.isnan(psnr(out, clean)) and psnr(clean, clean) == 100.0


def test_cli_init_starts_from_the_checkpoint(tmp_path, tiny_image_dir):
    """--init: the run starts from the given weights (one step at a tiny learning rate stays next to them)."""
    start = train(_cfg(tiny_image_dir, tmp_path / "a", steps=2))
    out = tmp_path / "b"
    r = _cli("-m", "train", "--task", "denoise", "--preset", "tiny", "--data", str(tiny_image_dir), "--out", str(out),
             "--levels", "15", "45", "--steps", "1", "--lr", "1e-9", "--batch", "2", "--patch", "32", "--workers", "0",
             "--init", str(start), "--no-progress")
    assert r.returncode == 0, r.stderr
    a, b = load_checkpoint(start)[0].state_dict(), load_checkpoint(out / "last.safetensors")[0].state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert read_meta(out / "last.safetensors")["train_config"]["init"] == str(start)


def test_init_may_add_levels_inside_the_range_but_not_move_its_top(tmp_path, tiny_image_dir):
    """A fine-tune may train at more levels than the run it starts from (sigma 5 under 15 45): the weights mean the
    same at every level. A different largest level changes what every level means, and is refused."""
    start = train(_cfg(tiny_image_dir, tmp_path / "a", steps=1))  # levels 15 45
    more = train(_cfg(tiny_image_dir, tmp_path / "b", steps=1, levels=(5, 15, 45), init=str(start)))
    assert read_meta(more)["level_map"]["train_levels"] == [5.0, 15.0, 45.0]
    with pytest.raises(UserError, match="keep the largest training level"):
        train(_cfg(tiny_image_dir, tmp_path / "c", steps=1, levels=(15, 30), init=str(start)))
    assert not (tmp_path / "c").exists()


def test_cli_empty_folder(tmp_path):
    r = _cli("-m", "train", "--task", "denoise", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--steps", "1")
    assert r.returncode == 2 and "no image files" in r.stderr and "Traceback" not in r.stderr


def test_level_jitter_stays_between_neighbours():
    import numpy as np

    from train.data import LevelBatches

    img = np.zeros((64, 64, 3), np.uint8)
    ds = LevelBatches([img], "dejpeg", (80.0, 10.0, 50.0), batch=50, patch=32, jitter=0.5)
    lv = ds.sample_levels(np.random.default_rng(0)).reshape(3, 50)
    assert lv[0].min() >= 65 and lv[0].max() <= 80  # 80: the top end, halfway down to 50
    assert lv[1].min() >= 10 and lv[1].max() <= 30
    assert lv[2].min() >= 30 and lv[2].max() <= 65 and lv[2].std() > 1
    exact = LevelBatches([img], "dejpeg", (80.0, 10.0), batch=4, patch=32).sample_levels(np.random.default_rng(0))
    assert exact.tolist() == [80.0] * 4 + [10.0] * 4
    _, deg, levels = ds[3]
    assert deg.shape == (150, 3, 32, 32) and levels.shape == (150,)
    mixed = LevelBatches([img], "dejpeg", (80.0, 10.0, 50.0), batch=50, patch=32, jitter=0.5, exact=0.3)
    lm = mixed.sample_levels(np.random.default_rng(0)).reshape(3, 50)
    assert lm[:, :15].tolist() == [[80.0] * 15, [10.0] * 15, [50.0] * 15]  # 30 % of each level exact
    np.testing.assert_array_equal(lm[:, 15:], lv[:, 15:])  # the rest drawn as without it


def test_level_exact_travels_with_the_run(tmp_path, tiny_image_dir):
    best = train(_cfg(tiny_image_dir, tmp_path / "e", steps=2, level_jitter=0.5, level_exact=0.5))
    assert read_meta(best)["train_config"]["level_exact"] == 0.5
    r = _cli("-m", "train", "--task", "denoise", "--data", "samples", "--out", "x", "--steps", "1",
             "--level-jitter", "0.5", "--level-exact", "1.5")
    assert r.returncode == 2 and "--level-exact" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_evaluate_restore_at_a_mis_set_level(tmp_path, tiny_image_dir):
    """--restore-at runs every degraded image at one level: its own level reproduces the default rows, the
    neutral level returns the degraded input, and the CLI writes the level into the JSON."""
    from train.evaluate import evaluate_model, load_eval_set

    torch.manual_seed(0)
    model = build_model(preset("tiny"), make_level_map("denoise")).eval()
    images = load_eval_set(tiny_image_dir)
    own = evaluate_model(model, images, [35.0], with_ssim=False)
    same = evaluate_model(model, images, [35.0], with_ssim=False, restore_at=35.0)
    assert [(r["psnr"], r["input_psnr"]) for r in same["rows"]] == [(r["psnr"], r["input_psnr"]) for r in own["rows"]]
    assert same["restored_at"] == 35.0 and "restored_at" not in own
    neutral = evaluate_model(model, images, [15.0, 55.0], with_ssim=False, restore_at=0.0)
    assert all(r["psnr"] == r["input_psnr"] for r in neutral["rows"])
    other = evaluate_model(model, images, [55.0], with_ssim=False, restore_at=15.0)
    assert other["rows"][0]["psnr"] != evaluate_model(model, images, [55.0], with_ssim=False)["rows"][0]["psnr"]

    ckpt = save_checkpoint(tmp_path / "m.safetensors", model, {"steps": 1})
    out = tmp_path / "e.json"
    proc = subprocess.run([sys.executable, "-m", "train.evaluate", "--weights", str(ckpt), "--set", str(tiny_image_dir),
                           "--levels", "55", "--restore-at", "15", "--json", str(out), "--device", "cpu"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "restored at sigma 15" in proc.stdout and json.loads(out.read_text())["restored_at"] == 15.0
    bad = subprocess.run([sys.executable, "-m", "train.evaluate", "--weights", str(ckpt), "--set", str(tiny_image_dir),
                          "--levels", "55", "--restore-at", "-3"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_level_weightings_pull_as_documented(tmp_path, tiny_image_dir):
    """The three weightings on the same errors: "none" is the plain mean; "strength" divides each level's L1 by
    its strength; "log" is the mean log L1, whose gradient weighs each sample by 1 / (its L1 + eps), so a level
    restored ten times better pulls (almost) ten times harder than under "none"."""
    from train.trainer import LOG_EPS, Trainer

    levels = torch.tensor([15.0, 45.0])
    target = torch.zeros(2, 3, 4, 4)
    err = torch.tensor([0.01, 0.1]).reshape(2, 1, 1, 1)
    pulls = {}
    for w in ("none", "strength", "log"):
        trainer = Trainer(_cfg(tiny_image_dir, tmp_path / w, steps=1, level_weighting=w))
        out = (target + err.expand(2, 3, 4, 4)).clone().requires_grad_(True)
        loss = trainer.loss(out, target, levels)
        loss.backward()
        pulls[w] = out.grad.reshape(2, -1)[:, 0]
        if w == "none":
            assert loss.item() == pytest.approx(0.055)
        if w == "log":
            assert loss.item() == pytest.approx(float(torch.log(torch.tensor([0.01, 0.1]) + LOG_EPS).mean()))
    assert pulls["none"][0] == pytest.approx(pulls["none"][1])
    assert float(pulls["strength"][0] / pulls["strength"][1]) == pytest.approx(3.0)  # strengths 1/3 and 1
    assert float(pulls["log"][0] / pulls["log"][1]) == pytest.approx(0.101 / 0.011)
    r = _cli("-m", "train", "--task", "denoise", "--data", "samples", "--out", "x", "--steps", "1",
             "--level-weighting", "psnr")
    assert r.returncode == 2 and "--level-weighting" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_evaluate_counts_images_below_their_input(tmp_path, tiny_image_dir):
    """Each row counts the images restored worse than their own input and names the worst; the CLI prints a line
    for such a level. Restored at the neutral level every image equals its input: none is below it."""
    from train.evaluate import below_input_lines, evaluate_model, load_eval_set

    torch.manual_seed(0)
    model = build_model(preset("tiny"), make_level_map("denoise")).eval()
    with torch.no_grad():  # a model that adds noise of its own: every image ends below its input
        model.conv_out.bias.fill_(0.3)
    images = load_eval_set(tiny_image_dir)
    bad = evaluate_model(model, images, [15.0], with_ssim=False)["rows"][0]
    assert bad["below_input"] == len(images) and bad["worst_gain"] < 0
    assert bad["worst_image"] in {im.name for im in images}
    neutral = evaluate_model(model, images, [15.0], with_ssim=False, restore_at=0.0)
    assert neutral["rows"][0]["below_input"] == 0 and neutral["rows"][0]["worst_gain"] == 0.0
    lines = below_input_lines(["m"], [{"images": len(images), "rows": [bad]}], "sigma")
    assert lines == [f"m: {len(images)} of {len(images)} images below their input at sigma 15 "
                     f"(worst: {bad['worst_image']}, {bad['worst_gain']:+.2f} dB)"]
    ckpt = save_checkpoint(tmp_path / "m.safetensors", model, {"steps": 1})
    proc = subprocess.run([sys.executable, "-m", "train.evaluate", "--weights", str(ckpt), "--set", str(tiny_image_dir),
                           "--levels", "15", "--device", "cpu"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert f"m: {len(images)} of {len(images)} images below their input at sigma 15" in proc.stdout


def test_init_chain_is_recorded_and_survives_its_files(tmp_path, tiny_image_dir):
    """Weights trained on from earlier runs (--init, twice) record those runs, oldest first, so the whole budget is
    known after the earlier files are gone; a resumed run keeps the record."""
    from train.checkpoint import lineage
    from train.lineage import lineage_budget
    from train.trainer import Trainer

    a = train(_cfg(tiny_image_dir, tmp_path / "a", steps=2))
    b = train(_cfg(tiny_image_dir, tmp_path / "b", steps=3, init=str(a), lr=1e-4))
    c = train(_cfg(tiny_image_dir, tmp_path / "c", steps=1, init=str(b)))
    chain = read_meta(c)["lineage"]
    assert [(r["run"], r["steps"], r["lr"]) for r in chain] == [("a", 2, 2e-4), ("b", 3, 1e-4)]
    assert "lineage" not in read_meta(a) and read_meta(b)["lineage"] == chain[:1]
    steps, seconds, complete = lineage_budget(chain)
    assert steps == 5 and complete and seconds == pytest.approx(
        read_meta(a)["train_seconds"] + read_meta(b)["train_seconds"])
    for run in ("a", "b"):
        for f in (tmp_path / run).iterdir():
            f.unlink()
    assert lineage(read_meta(c)) == chain
    assert Trainer(_cfg(tiny_image_dir, tmp_path / "c", steps=1, init=str(b)), resume=True).lineage == chain


def test_lineage_of_an_older_checkpoint_follows_its_init_files(tmp_path):
    """A checkpoint written before lineage was recorded: the chain is read through train_config.init while those
    files exist; a missing one ends it with a link of unknown length."""
    from train.checkpoint import lineage
    from train.lineage import lineage_budget

    model = build_model(preset("tiny"), make_level_map("denoise", (15, 45)))
    first = save_checkpoint(tmp_path / "r1" / "best.safetensors", model, {
        "steps": 100, "train_seconds": 60.0, "train_config": {"out": str(tmp_path / "r1"), "lr": 2e-3, "steps": 300,
                                                              "init": str(tmp_path / "gone" / "best.safetensors")}})
    second = save_checkpoint(tmp_path / "r2" / "best.safetensors", model, {
        "steps": 50, "train_seconds": 30.0, "train_config": {"out": str(tmp_path / "r2"), "init": str(first)}})
    chain = lineage(read_meta(second))
    assert chain[0] == {"run": "gone/best.safetensors", "steps": None}
    assert (chain[1]["run"], chain[1]["steps"], chain[1]["schedule_steps"], chain[1]["lr"]) == ("r1", 100, 300, 2e-3)
    assert lineage_budget(chain) == (100, 60.0, False)
    assert lineage(read_meta(first)) == chain[:1]
    assert lineage({"train_config": {}}) == []


def test_clip_grad_bounds_the_step_and_is_checked(tmp_path, tiny_image_dir):
    """--clip-grad clips the gradients' global norm before Adam's step: clipped to almost nothing, the update falls
    under Adam's epsilon and the weights stay put; unclipped, the same step moves them. A bad norm is refused."""
    start = train(_cfg(tiny_image_dir, tmp_path / "a", steps=1))
    moved = {}
    for name, clip in (("free", None), ("clipped", 1e-12)):
        out = train(_cfg(tiny_image_dir, tmp_path / name, steps=1, lr=1e-2, init=str(start), clip_grad=clip))
        a, b = load_checkpoint(start)[0].state_dict(), load_checkpoint(out)[0].state_dict()
        moved[name] = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert moved["free"] > 1e-3 and moved["clipped"] < 1e-6
    assert read_meta(tmp_path / "clipped" / "last.safetensors")["train_config"]["clip_grad"] == 1e-12
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(UserError, match="--clip-grad must be a positive"):
            train(_cfg(tiny_image_dir, tmp_path / "bad", steps=1, clip_grad=bad))
    r = _cli("-m", "train", "--task", "denoise", "--data", str(tiny_image_dir), "--out", str(tmp_path / "c"),
             "--steps", "1", "--clip-grad", "0")
    assert r.returncode == 2 and "--clip-grad must be a positive" in r.stderr and "Traceback" not in r.stderr
