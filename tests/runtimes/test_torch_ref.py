"""The torch reference runner against the model called directly."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from runtimes.core.errors import UserError  # noqa: E402
from runtimes.runners.base import Runner  # noqa: E402
from train.reference import TorchRunner  # noqa: E402


def test_matches_direct_model(tiny_ckpt):
    from train.checkpoint import load_checkpoint

    model, _ = load_checkpoint(tiny_ckpt)
    x = np.random.default_rng(0).random((2, 3, 33, 46), dtype=np.float32)
    for level in (0.0, 25.0, 75.0):
        with torch.no_grad():
            want = model(torch.from_numpy(x), torch.tensor([level])).numpy()
        with TorchRunner(tiny_ckpt, threads=1) as r:
            got = r.run({"image": x, "level": np.array([level], np.float32)})["restored"]
        assert got.shape == x.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_level_zero_returns_input(tiny_ckpt):
    x = np.random.default_rng(1).random((1, 3, 16, 16), dtype=np.float32)
    with TorchRunner(tiny_ckpt) as r:
        out = r.run({"image": x, "level": np.array([0.0], np.float32)})["restored"]
    np.testing.assert_allclose(out, x, atol=1e-6)


def test_protocol_and_meta(tiny_ckpt):
    r = TorchRunner(tiny_ckpt)
    assert isinstance(r, Runner)
    with r:
        assert r.meta["task"] == "denoise" and r.meta["layout"] == "NCHW" and r.meta["sizes"] is None
        assert {"a", "b", "lo", "hi", "train_levels"} <= set(r.meta["level_map"])
        assert [s.name for s in r.input_specs()] == ["image", "level"]


def test_bad_inputs(tiny_ckpt, tmp_path):
    with TorchRunner(tiny_ckpt) as r:
        with pytest.raises(UserError, match="missing input"):
            r.run({"image": np.zeros((1, 3, 8, 8), np.float32)})
        with pytest.raises(UserError, match=r"\(N, 3, H, W\)"):
            r.run({"image": np.zeros((8, 8, 3), np.float32), "level": np.array([1.0], np.float32)})
    with pytest.raises(UserError, match="not found"):
        TorchRunner(tmp_path / "missing.safetensors").__enter__()
    with pytest.raises(UserError, match="threads"):
        TorchRunner(tiny_ckpt, threads=0)
