import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from runtimes.core.levels import make_level_map  # noqa: E402
from train.model import PRESETS, LevelConv2d, build_model, count_macs, count_params, preset  # noqa: E402


def test_folding_identity():
    """conv(x, l*W) + l*b == l*(conv(x, W) + b), per sample."""
    torch.manual_seed(0)
    conv = LevelConv2d(5, 7, "linear").double()
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(3, 5, 11, 13, dtype=torch.float64)
    s = torch.tensor([0.0, 0.37, 1.9], dtype=torch.float64)
    folded = conv(x, s)
    literal = torch.cat([F.conv2d(x[i : i + 1], s[i] * conv.weight, s[i] * conv.bias, padding=1) for i in range(3)])
    torch.testing.assert_close(folded, literal, rtol=0, atol=1e-12)


def test_affine_algebra():
    """Affine: conv(x, l*A + B) + l*a + b == l*conv(x, A, a) + conv(x, B, b)."""
    torch.manual_seed(1)
    conv = LevelConv2d(4, 6, "affine").double()
    with torch.no_grad():
        conv.bias.normal_()
        conv.bias_b.normal_()
    x = torch.randn(2, 4, 9, 9, dtype=torch.float64)
    for lv in (0.0, 0.5, 1.3):
        s = torch.tensor([lv, lv], dtype=torch.float64)
        w = lv * conv.weight + conv.weight_b
        b = lv * conv.bias + conv.bias_b
        torch.testing.assert_close(conv(x, s), F.conv2d(x, w, b, padding=1), rtol=0, atol=1e-12)


@pytest.mark.parametrize("form", ["linear", "affine"])
@pytest.mark.parametrize("task", ["denoise", "dejpeg", "sr"])
def test_level_zero_is_identity(form, task):
    torch.manual_seed(2)
    lmap = make_level_map(task)
    model = build_model(preset("tiny", form=form), lmap).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()  # not just the small initial tail: every weight random
    x = torch.rand(2, 3, 17, 22)
    y = model(x, torch.tensor([lmap.neutral]))
    assert torch.equal(y, x)
    assert not torch.allclose(model(x, torch.tensor([lmap.train_levels[-1]])), x)


def test_odd_sizes_and_batch_levels():
    model = build_model(PRESETS["tiny"], make_level_map("denoise")).eval()
    x = torch.rand(3, 3, 15, 21)
    lv = torch.tensor([0.0, 25.0, 75.0])
    y = model(x, lv)
    assert y.shape == x.shape
    for i in range(3):
        torch.testing.assert_close(y[i : i + 1], model(x[i : i + 1], lv[i : i + 1]), rtol=1e-5, atol=1e-6)


def test_preset_budgets():
    mobile, paper = PRESETS["mobile"], PRESETS["paper"]
    assert count_params(mobile) <= 200_000
    assert count_macs(mobile, 1080, 1920) <= 100e9
    assert 1.3e6 <= count_params(paper) <= 1.5e6
    model = build_model(paper, make_level_map("denoise"))
    assert sum(p.numel() for p in model.parameters()) == count_params(paper)


def test_macs_match_a_hook_count():
    model = build_model(PRESETS["tiny"], make_level_map("sr"))
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        w = mod.weight
        total += out.shape[-2] * out.shape[-1] * w.shape[0] * w[0].numel()

    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, LevelConv2d)):
            m.register_forward_hook(hook)
    model(torch.rand(1, 3, 40, 60), torch.tensor([3.0]))
    assert total == count_macs(PRESETS["tiny"], 40, 60)


def test_levels_past_training_run_at_the_top_strength():
    torch.manual_seed(0)
    model = build_model(preset("tiny"), make_level_map("sr", (2, 3, 4)))
    x = torch.rand(1, 3, 20, 24)
    with torch.no_grad():
        top, past = model(x, torch.tensor([4.0])), model(x, torch.tensor([6.0]))
        assert torch.equal(top, past)
        model.level_map = model.level_map.extrapolating()
        assert not torch.allclose(model(x, torch.tensor([6.0])), top)
