"""The low-strength fixes: the shift form, one level conv per block, the strength offset and strata sampling."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from runtimes.core.errors import UserError  # noqa: E402
from runtimes.core.levels import make_level_map  # noqa: E402
from train.data import LevelBatches  # noqa: E402
from train.model import LevelConv2d, ResBlock, build_model, preset  # noqa: E402


def test_shift_algebra():
    """Shift: conv(x, W, b + s*c) == conv(x, W, b) + s*c, per sample."""
    torch.manual_seed(0)
    conv = LevelConv2d(4, 6, "shift").double()
    with torch.no_grad():
        conv.bias.normal_()
        conv.bias_level.normal_()
    x = torch.randn(3, 4, 9, 11, dtype=torch.float64)
    s = torch.tensor([0.0, 0.4, 1.0], dtype=torch.float64)
    want = torch.cat([F.conv2d(x[i : i + 1], conv.weight, conv.bias + s[i] * conv.bias_level, padding=1)
                      for i in range(3)])
    torch.testing.assert_close(conv(x, s), want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("levels,power", [(2, 2), (1, 1)])
def test_block_branch_scales_as_a_power_of_the_strength(levels, power):
    """Without biases a linear block's branch is s^2 * g(x) with both convs level-scaled, s * g(x) with one."""
    torch.manual_seed(1)
    block = ResBlock(5, "linear", levels).double()
    x = torch.randn(1, 5, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        for p in block.parameters():
            p.normal_() if p.dim() > 1 else p.zero_()
        one = block(x, torch.tensor([1.0], dtype=torch.float64)) - x
        small = block(x, torch.tensor([0.1], dtype=torch.float64)) - x
    torch.testing.assert_close(small, one * 0.1**power, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("form,block_levels,gate", [("shift", 2, "unit"), ("shift", 1, "strength"),
                                                   ("linear", 1, "strength"), ("affine", 1, "unit")])
@pytest.mark.parametrize("task", ["denoise", "dejpeg", "sr"])
def test_level_zero_is_identity(form, block_levels, gate, task):
    torch.manual_seed(2)
    lmap = make_level_map(task)
    cfg = preset("tiny", form=form, block_levels=block_levels, out_gate=gate)
    model = build_model(cfg, lmap.with_offset(0.3)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
    x = torch.rand(2, 3, 17, 22)
    assert torch.equal(model(x, torch.tensor([lmap.neutral])), x)
    assert not torch.allclose(model(x, torch.tensor([lmap.train_levels[-1]])), x)


@pytest.mark.parametrize("name", ["tiny", "unet-tiny"])
def test_level_biases_make_the_network_homogeneous(name):
    """Every bias s*c and the unit gate: the residual at (grey + k*(image - grey), k*s) is k times the one at
    (image, s), for s at or above one unit (grey 0.5); with constant biases it is not. Level 0 stays exact and no
    constant bias is trained."""
    torch.manual_seed(5)
    lmap = make_level_map("denoise")
    outs = {}
    for biases in ("level", "constant"):
        model = build_model(preset(name, form="shift", out_gate="unit", biases=biases), lmap).double().eval()
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0.0, 0.3 if p.dim() > 1 else 0.5)
            x = torch.rand(1, 3, 24, 32, dtype=torch.float64)

            def res(img, s, model=model):
                return model.forward_strength(img, torch.tensor([s], dtype=torch.float64)) - img

            outs[biases] = (res(0.5 + 3 * (x - 0.5), 0.6), 3 * res(x, 0.2))
            assert torch.equal(model(x, torch.tensor([0.0])), x)
        if biases == "level":
            assert not any(n.endswith(".bias") for n, _ in model.named_parameters())
            assert all(not b.any() for n, b in model.named_buffers() if n.endswith("bias"))
    torch.testing.assert_close(*outs["level"], rtol=1e-9, atol=1e-9)
    assert not torch.allclose(*outs["constant"], rtol=1e-3, atol=1e-3)


def test_affine_head_starts_exact_from_a_plain_head():
    """An affine head (s*A + B) converted from a plain one (A = 0, B = W) is the same network at every level;
    trained, its A term makes the head's output depend on the level."""
    from train.model import convert_weights

    torch.manual_seed(6)
    lmap = make_level_map("denoise")
    src = build_model(preset("unet-tiny", form="shift"), lmap).eval()
    cfg = preset("unet-tiny", form="shift", head="affine")
    dst = build_model(cfg, lmap).eval()
    dst.load_state_dict(convert_weights(src, cfg))
    x = torch.rand(1, 3, 24, 32)
    with torch.no_grad():
        for level in (0.0, 5.0, 40.0, 75.0):
            torch.testing.assert_close(dst(x, torch.tensor([level])), src(x, torch.tensor([level])))
        dst.head.weight.normal_()
        assert not torch.allclose(dst(x, torch.tensor([40.0])), src(x, torch.tensor([40.0])))
        assert torch.equal(dst(x, torch.tensor([0.0])), x)
    with pytest.raises(UserError, match="head must be plain or affine"):
        preset("tiny", head="shift")
    with pytest.raises(UserError, match="no level; drop --head affine"):
        preset("tiny", form="plain", head="affine")
    with pytest.raises(UserError, match="plain-head network from an affine-head checkpoint"):
        convert_weights(dst, preset("unet-tiny", form="shift"))


def test_level_biases_need_the_shift_form():
    with pytest.raises(UserError, match="biases=level .* needs the shift form"):
        preset("tiny", form="linear", biases="level")
    with pytest.raises(UserError, match="biases must be constant or level"):
        preset("tiny", form="shift", biases="none")


def test_bad_block_levels_refused():
    with pytest.raises(UserError, match="block_levels must be 1 or 2"):
        preset("tiny", block_levels=3)
    with pytest.raises(UserError, match="out_gate must be"):
        preset("tiny", out_gate="sigmoid")


@pytest.mark.parametrize("task,levels,want", [("denoise", (0.0, 0.25, 1.0, 5.0, 75.0, 90.0), (0, 0.25, 1, 1, 1, 1)),
                                              ("dejpeg", (100.0, 99.5, 99.0, 50.0), (0, 0.5, 1, 1)),
                                              ("sr", (1.0, 1.5, 2.0, 4.0), (0, 0.5, 1, 1))])
def test_unit_gate(task, levels, want):
    """The unit gate ramps from 0 at the neutral level to 1 one unit away, then stays at 1."""
    lmap = make_level_map(task)
    model = build_model(preset("tiny", out_gate="unit"), lmap)
    got = model.out_scale(model.strength(torch.tensor(levels))).tolist()
    assert got == pytest.approx(list(want), abs=1e-5)


def test_strength_offset_map():
    lmap = make_level_map("denoise").with_offset(0.5)
    assert lmap.strength(0.0) == 0.0
    assert lmap.strength(5.0) == pytest.approx(0.5 + 0.5 * 5 / 75)
    assert lmap.strength(75.0) == pytest.approx(1.0)
    assert lmap.strength(90.0) == pytest.approx(1.0)  # still saturated at the top training level
    assert 0.0 < lmap.strength(0.5) < lmap.strength(1.0)  # a steep ramp over the first unit, not a jump
    assert lmap.level(lmap.strength(40.0)) == pytest.approx(40.0)
    q = make_level_map("dejpeg").with_offset(0.5)
    assert q.strength(100.0) == 0.0 and q.strength(99.0) > 0.5 and q.strength(10.0) == pytest.approx(1.0)
    for bad in (0.0, 1.0, -0.2):
        with pytest.raises(UserError, match="strength offset"):
            make_level_map("denoise").with_offset(bad)


def test_model_strength_matches_the_offset_map():
    lmap = make_level_map("denoise").with_offset(0.4)
    model = build_model(preset("tiny"), lmap)
    levels = [0.0, 0.3, 1.0, 5.0, 25.0, 75.0, 90.0]
    got = model.strength(torch.tensor(levels)).tolist()
    assert got == pytest.approx([lmap.strength(v) for v in levels], abs=1e-6)


@pytest.mark.parametrize("task,levels,neutral,strata", [
    ("denoise", (15, 35, 55, 75), 0.0, [(0, 15), (15, 35), (35, 55), (55, 75)]),
    ("denoise", (75, 15), 0.0, [(15, 75), (0, 15)]),
    ("dejpeg", (10, 30, 50, 80), 100.0, [(10, 30), (30, 50), (50, 80), (80, 100)]),
])
def test_strata_cover_the_range(task, levels, neutral, strata):
    img = np.zeros((40, 40, 3), np.uint8)
    ds = LevelBatches([img], task, levels, batch=200, patch=8, strata=True, neutral=neutral)
    drawn = ds.sample_levels(np.random.default_rng(0)).reshape(len(levels), 200)
    for row, (lo, hi) in zip(drawn, strata, strict=True):
        assert row.min() >= lo and row.max() <= hi
        assert row.max() - row.min() > 0.8 * (hi - lo)  # spread over the stratum, not a point
    again = ds.sample_levels(np.random.default_rng(0)).reshape(len(levels), 200)
    assert np.array_equal(drawn, again)


def test_strata_and_jitter_are_exclusive(tmp_path):
    from train.trainer import TrainConfig

    with pytest.raises(UserError, match="strata already cover"):
        TrainConfig(task="denoise", data="x", out=str(tmp_path), level_sampling="strata", level_jitter=0.5).check()
    with pytest.raises(UserError, match="strength-offset"):
        TrainConfig(task="denoise", data="x", out=str(tmp_path), strength_offset=1.5).check()


@pytest.mark.parametrize("form,block_levels,exact_at", [
    ("affine", 2, (0.0, 5.0, 40.0, 75.0)), ("shift", 2, (0.0, 75.0)), ("linear", 1, (0.0, 75.0)),
    ("shift", 1, (0.0, 75.0))])
def test_convert_weights_from_linear(form, block_levels, exact_at):
    """Linear -> affine is the same network at every level; -> shift or one level conv per block at the top one."""
    from train.model import convert_weights

    torch.manual_seed(3)
    lmap = make_level_map("denoise")
    src = build_model(preset("tiny"), lmap).eval()
    with torch.no_grad():
        for p in src.parameters():
            p.normal_(0.0, 0.3)
    cfg = preset("tiny", form=form, block_levels=block_levels)
    dst = build_model(cfg, lmap).eval()
    dst.load_state_dict(convert_weights(src, cfg))
    x = torch.rand(1, 3, 16, 20)
    with torch.no_grad():
        for lv in exact_at:
            torch.testing.assert_close(dst(x, torch.tensor([lv])), src(x, torch.tensor([lv])), rtol=0, atol=1e-6)
    with pytest.raises(UserError, match="only the form"):
        convert_weights(src, preset("tiny", form=form, tail_channels=16))
    with pytest.raises(UserError, match="can only grow"):
        convert_weights(src, preset("tiny", form=form, channels=4))
    if form == "affine":  # linear -> affine stays exact while the network also grows
        grown = preset("tiny", form=form, channels=12, blocks=src.cfg.blocks + 1)
        dst = build_model(grown, lmap).eval()
        dst.load_state_dict(convert_weights(src, grown))
        with torch.no_grad():
            for lv in exact_at:
                torch.testing.assert_close(dst(x, torch.tensor([lv])), src(x, torch.tensor([lv])), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name,form,biases", [("unet-tiny", "shift", "constant"), ("unet-tiny", "shift", "level"),
                                              ("tiny", "linear", "constant"), ("unet-tiny", "affine", "constant")])
def test_grown_network_is_the_same_function(name, form, biases):
    """A wider and deeper network grown from a trained one (`--init` with more --channels or --blocks) computes
    the same output at every level; training reaches its new channels (their outgoing weights get gradients)."""
    from train.model import convert_weights

    torch.manual_seed(11)
    lmap = make_level_map("denoise")
    src = build_model(preset(name, form=form, biases=biases), lmap).eval()
    with torch.no_grad():
        for p in src.parameters():
            p.normal_(0.0, 0.2)
    c, b = src.cfg.channels, src.cfg.blocks
    cfg = preset(name, form=form, biases=biases, channels=c + c // 2, blocks=b + 1)
    dst = build_model(cfg, lmap).eval()
    dst.load_state_dict(convert_weights(src, cfg))
    x = torch.rand(2, 3, 32, 48)
    with torch.no_grad():
        for lv in (0.0, 5.0, 33.0, 75.0):
            torch.testing.assert_close(dst(x, torch.tensor([lv])), src(x, torch.tensor([lv])), rtol=0, atol=1e-5)
    dst.train()
    (dst(x, torch.tensor([25.0])) - x * 0.9).abs().mean().backward()
    body = dst.body[0].conv1 if name == "tiny" else dst.up_blocks[0][0].conv1
    assert body.weight.grad[:c, c:].abs().sum() > 0  # the new inputs' (zero) weights move
    assert dst.conv_body.weight.grad[:c, c:].abs().sum() > 0
    assert dst.body[-1].conv2.weight.grad.abs().sum() > 0  # the new block's zero branch moves


def test_strata_pin_a_fraction_at_each_level():
    img = np.zeros((40, 40, 3), np.uint8)
    ds = LevelBatches([img], "denoise", (15, 35, 55, 75), batch=8, patch=8, strata=True, exact=0.25)
    drawn = ds.sample_levels(np.random.default_rng(0)).reshape(4, 8)
    assert drawn[:, :2].tolist() == [[15, 15], [35, 35], [55, 55], [75, 75]]
    assert all(len(set(row[2:].tolist())) == 6 for row in drawn)  # the rest spread over the stratum
