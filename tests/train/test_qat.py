import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from runtimes.core.errors import UserError  # noqa: E402
from runtimes.core.levels import make_level_map  # noqa: E402
from train.checkpoint import load_checkpoint, read_meta, save_checkpoint  # noqa: E402
from train.model import build_model, preset  # noqa: E402
from train.qat import QuantSim, fake_quant, fake_quant_weight, qat_config  # noqa: E402
from train.trainer import train  # noqa: E402

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def _model(form="linear", tail=8, scale=2):
    torch.manual_seed(0)
    cfg = preset("tiny", form=form, channels=8, blocks=2, tail_channels=tail, scale=scale)
    return build_model(cfg, make_level_map("denoise", (15, 45))).eval()


def _batches(n=2, levels=(15.0, 45.0)):
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        clean = torch.rand(3, 3, 32, 32, generator=g)
        lv = torch.tensor(levels).repeat_interleave(3)
        noise = torch.randn(6, 3, 32, 32, generator=g) * (lv / 255).reshape(-1, 1, 1, 1)
        deg = clean.repeat(len(levels), 1, 1, 1) + noise
        out.append((deg, lv))
    return out


def test_fake_quant_grids():
    w = torch.randn(4, 3, 3, 3)
    q = fake_quant_weight(w)
    scale = w.abs().reshape(4, -1).amax(1) / 127
    steps = q / scale.reshape(-1, 1, 1, 1)
    assert torch.allclose(steps, steps.round(), atol=1e-4) and steps.abs().max() <= 127 + 1e-4
    assert (q - w).abs().max() <= scale.max() / 2 + 1e-6
    x = torch.linspace(-1, 3, 1000, requires_grad=True)
    y = fake_quant(x, -0.5, 2.0)
    assert y.min() >= -0.5 - 1e-6 and y.max() <= 2.0 + 1e-6 and len(torch.unique(y)) <= 256
    assert fake_quant(torch.zeros(1), -0.5, 2.0).item() == 0.0  # 0 is on the grid
    y.sum().backward()  # straight through inside the range, zero outside
    assert x.grad[(x > -0.45) & (x < 1.95)].eq(1).all() and x.grad[x > 2.05].eq(0).all()


@pytest.mark.parametrize("form,tail,scale", [("linear", 8, 2), ("affine", 8, 2), ("linear", 0, 4), ("plain", 8, 2)])
def test_sim_is_close_to_float_and_exact_at_level_zero(form, tail, scale):
    model = _model(form, tail, scale)
    sim = QuantSim(model)
    x = torch.rand(1, 3, 32, 32)
    lv = torch.tensor([45.0])
    with torch.no_grad():  # weights already on the int8 grid, no ranges yet: the sim computes the network
        for p in model.parameters():
            if p.ndim == 4:
                p.copy_(fake_quant_weight(p))
        torch.testing.assert_close(sim(x, lv), model(x, lv), rtol=0, atol=1e-5)
    ranges = sim.calibrate(_batches())
    assert "image" in ranges and "head" in ranges and all(lo <= 0 <= hi for lo, hi in ranges.values())
    with torch.no_grad():
        y, ref = sim(x, lv), model(x, lv)
        psnr = 10 * torch.log10(1 / ((y - ref) ** 2).mean())
        assert 25 < psnr < 200 and not torch.equal(y, ref)
        if form != "plain":  # level 0: every level-scaled branch is 0, the input returns exactly
            assert torch.equal(sim(x, torch.tensor([0.0])), x)


def test_qat_config_follows_the_checkpoint(tmp_path, tiny_image_dir):
    meta = {"preset": "tiny", "train_levels": [15.0, 45.0], "train_config": {"level_jitter": 0.25}}
    base = save_checkpoint(tmp_path / "base.safetensors", _model("linear", 8, 2), meta)
    cfg = qat_config(str(base), data=str(tiny_image_dir), out=str(tmp_path / "q"))
    assert cfg.qat and cfg.init == str(base) and cfg.level_jitter == 0.25 and cfg.levels == (15.0, 45.0)
    assert (cfg.channels, cfg.blocks, cfg.preset) == (8, 2, "tiny")
    odd = save_checkpoint(tmp_path / "odd.safetensors", _model("linear", 0, 4), meta)  # not the tiny preset's shape
    with pytest.raises(UserError, match="architecture"):
        train(qat_config(str(odd), data=str(tiny_image_dir), out=str(tmp_path / "bad"), batch=2, patch=32,
                         workers=0, device="cpu", steps=1, progress=False))
    assert not (tmp_path / "bad").exists()
    # a floor stored beside the log weighting (accepted by older trainers, where it did nothing) is not carried over
    logged = save_checkpoint(tmp_path / "log.safetensors", _model("linear", 8, 2),
                             meta | {"train_config": {"level_weighting": "log", "weight_floor": 5.0}})
    assert qat_config(str(logged), data=".", out="q").weight_floor is None
    floored = save_checkpoint(tmp_path / "floor.safetensors", _model("linear", 8, 2),
                              meta | {"train_config": {"weight_floor": 5.0}})
    assert qat_config(str(floored), data=".", out="q").weight_floor == 5.0
    bare = save_checkpoint(tmp_path / "bare.safetensors", _model("linear", 8, 2), {"train_levels": [15.0, 45.0]})
    assert qat_config(str(bare), data=".", out="q").preset == "tiny"  # no preset recorded: found from the shape
    bare_fast = save_checkpoint(tmp_path / "bare_fast.safetensors", _model("linear", 0, 4), {"train_levels": [15.0]})
    assert qat_config(str(bare_fast), data=".", out="q").preset == "fast"
    odd_bare = save_checkpoint(tmp_path / "odd_bare.safetensors", _model("linear", 5, 2), {"train_levels": [15.0]})
    with pytest.raises(UserError, match="matches no preset"):
        qat_config(str(odd_bare), data=".", out="q")


def test_qat_fine_tunes_from_the_checkpoint(tmp_path, tiny_image_dir):
    torch.manual_seed(0)
    model = build_model(preset("tiny"), make_level_map("denoise", (15, 45)))
    base = save_checkpoint(tmp_path / "base.safetensors", model, {"preset": "tiny", "train_levels": [15.0, 45.0]})
    common = dict(data=str(tiny_image_dir), batch=2, patch=32, workers=0, device="cpu", compile=False,
                  progress=False, save_every=2, val_every=1000, steps=6, lr=1e-3)
    full = train(qat_config(str(base), out=str(tmp_path / "full"), **common))
    meta = read_meta(full.parent / "last.safetensors")
    assert meta["train_config"]["qat"] and meta["train_config"]["init"] == str(base) and meta["steps"] == 6
    tuned, _ = load_checkpoint(full.parent / "last.safetensors")
    pairs = list(zip(tuned.state_dict().values(), model.state_dict().values(), strict=True))
    assert all(not torch.equal(a, b) for a, b in pairs)  # fine-tuned from the start weights ...
    assert max(float((a - b).abs().max()) for a, b in pairs) < 0.1  # ... not re-initialised
    train(qat_config(str(base), out=str(tmp_path / "part"), stop_at=3, **common))
    resumed = train(qat_config(str(base), out=str(tmp_path / "part"), **common), resume=True)
    b, _ = load_checkpoint(resumed.parent / "last.safetensors")
    for (k, va), vb in zip(tuned.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k  # the ranges travel with the training state: resume is exact


def test_qat_start_levels_must_match(tmp_path, tiny_image_dir):
    from train.trainer import TrainConfig

    model = build_model(preset("tiny"), make_level_map("denoise", (15, 45)))
    base = save_checkpoint(tmp_path / "base.safetensors", model, {})
    cfg = TrainConfig(task="denoise", data=str(tiny_image_dir), out=str(tmp_path / "o"), preset="tiny",
                      levels=(15.0, 55.0), steps=1, batch=2, patch=32, workers=0, device="cpu", compile=False,
                      progress=False, init=str(base), qat=True)
    with pytest.raises(UserError, match="levels"):
        train(cfg)


@pytest.mark.parametrize("args,msg", [
    (["--weights", "missing.safetensors", "--data", ".", "--out", "x"], "checkpoint not found"),
    (["--weights", "denoise-fast", "--data", ".", "--out", "x", "--steps", "0"], "--steps must be positive"),
    (["--weights", "denoise-fast", "--data", ".", "--out", "x", "--lr", "nan"], "--lr must be positive"),
    (["--weights", "denoise-fast", "--data", ".", "--out", "x", "--val-every", "0"], "--val-every must be positive"),
    (["--weights", "denoise-paper", "--data", "no/such/dir", "--out", "x", "--steps", "1"], "no/such/dir"),
])
def test_cli_user_errors_are_one_line(args, msg, tmp_path):
    r = subprocess.run([sys.executable, "-m", "train.qat", *args], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and msg in r.stderr, r.stderr
    assert not (ROOT / "x").exists()


def test_calibration_matches_the_exporter_rule():
    from export.tflite_quant import level_union_range

    model = _model()
    sim = QuantSim(model)
    batches = _batches(1)
    ranges = sim.calibrate(batches)
    deg, lv = batches[0]
    per_level = [deg[lv == v].reshape(-1).numpy() for v in (15.0, 45.0)]
    assert np.allclose(ranges["image"], level_union_range(per_level))
