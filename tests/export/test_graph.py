"""Export graph variants equal the reference network (folded, weights, fixed; linear, affine and shift)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from export.graph import GraphSpec, build_graph  # noqa: E402
from runtimes.core.errors import UserError  # noqa: E402
from train.checkpoint import load_checkpoint  # noqa: E402


@pytest.mark.parametrize("ckpt_name", ["tiny_ckpt", "affine_ckpt", "shift_ckpt", "unet_ckpt"])
@pytest.mark.parametrize("level", [0.0, 0.5, 5.0, 35.0, 75.0])
def test_modes_match_reference(request, ckpt_name, level):
    model, _ = load_checkpoint(request.getfixturevalue(ckpt_name))
    x = torch.rand(2, 3, 21, 34)
    with torch.no_grad():
        want = model(x, torch.tensor([level]))
        for spec in (GraphSpec(), GraphSpec(mode="weights"), GraphSpec(mode="fixed", level=level),
                     GraphSpec(shuffle="deconv"), GraphSpec(nhwc=True), GraphSpec(fold="conv")):
            graph = build_graph(model, spec)
            xi = x.permute(0, 2, 3, 1) if spec.nhwc else x
            got = graph(xi) if spec.mode == "fixed" else graph(xi, torch.tensor([level]))
            got = got.permute(0, 3, 1, 2) if spec.nhwc else got
            torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    if level == 0.0:
        torch.testing.assert_close(want, x, rtol=0, atol=0)


def test_spec_checks():
    with pytest.raises(UserError, match="needs --level"):
        GraphSpec(mode="fixed")
    with pytest.raises(UserError, match="only valid with fixed"):
        GraphSpec(level=3.0)
    with pytest.raises(UserError, match="unknown level mode"):
        GraphSpec(mode="dynamic")
    with pytest.raises(UserError, match="unknown fold"):
        GraphSpec(fold="layer")


def test_int8_exports_fold_per_conv():
    """Quantized graphs keep one strength factor per conv (the block form quantizes the unscaled branch)."""
    from export.base import ExportConfig, graph_spec

    assert graph_spec(ExportConfig("w", "o", precision="int8", calibration="c")).fold == "conv"
    assert graph_spec(ExportConfig("w", "o", precision="int8-dynamic")).fold == "block"
    assert graph_spec(ExportConfig("w", "o")).fold == "block"
