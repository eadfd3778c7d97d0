"""OnnxRunner(bind_level=True): one session per level with the level as a constant, equal outputs."""

from __future__ import annotations

import numpy as np
import pytest

from runtimes.core.errors import UserError


def _x(shape, seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


@pytest.fixture(scope="module")
def tiny_modes(tiny_ckpt, tmp_path_factory):
    """The tiny checkpoint as weights-mode and fixed-mode (σ 35) ONNX artifacts."""
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install 'levelres[onnx]')")
    from export.base import ExportConfig
    from export.onnx import OnnxConfig, export_onnx

    out = tmp_path_factory.mktemp("modes")
    weights = export_onnx(OnnxConfig(ExportConfig(str(tiny_ckpt), out, level_mode="weights", name="w"))).path
    fixed = export_onnx(OnnxConfig(ExportConfig(str(tiny_ckpt), out, level_mode="fixed", level=35.0, name="f"))).path
    return {"weights": weights, "fixed": fixed}


@pytest.mark.parametrize("mode", ["folded", "weights"])
def test_bound_equals_unbound(mode, tiny_onnx, tiny_modes):
    from runtimes.runners.onnxruntime import OnnxRunner

    path = tiny_onnx if mode == "folded" else tiny_modes["weights"]
    x = _x((2, 3, 21, 30))
    with OnnxRunner(path, provider="cpu") as free, OnnxRunner(path, provider="cpu", bind_level=True) as bound:
        assert bound.name == "onnxruntime-cpu-bound" and len(bound.bind_ms) == 1  # one session built on entry
        for level in (0.0, 15.0, 35.0, 47.5, 75.0):
            feed = {"image": x, "level": np.array([level], np.float32)}
            got = bound.run(feed)["restored"]
            np.testing.assert_allclose(got, free.run(feed)["restored"], rtol=0, atol=1e-5)
            if level == 0.0:
                np.testing.assert_array_equal(got, x)  # still the identity
        with pytest.raises(UserError, match="outside"):
            bound.run({"image": x, "level": np.array([900.0], np.float32)})
        with pytest.raises(UserError, match="required"):
            bound.run({"image": x})


def test_bound_weights_graph_matches_fixed(tiny_modes):
    from runtimes.runners.onnxruntime import OnnxRunner

    x = _x((1, 3, 24, 24), seed=2)
    level = np.array([35.0], np.float32)
    with OnnxRunner(tiny_modes["weights"], provider="cpu", bind_level=True) as bound, \
            OnnxRunner(tiny_modes["fixed"], provider="cpu") as fixed:
        np.testing.assert_allclose(bound.run({"image": x, "level": level})["restored"],
                                   fixed.run({"image": x})["restored"], rtol=0, atol=1e-5)


def test_cache_keeps_the_most_recent_levels(tiny_modes):
    from runtimes.runners.onnxruntime import OnnxRunner

    x = _x((1, 3, 16, 16))
    with OnnxRunner(tiny_modes["weights"], provider="cpu", bind_level=True, cache_size=2) as r:
        built = len(r.bind_ms)
        for level in (15.0, 25.0, 15.0):  # 15 is cached the second time
            r.run({"image": x, "level": np.array([level], np.float32)})
        assert len(r.bind_ms) == built + 2
        r.run({"image": x, "level": np.array([35.0], np.float32)})  # evicts the least recent (25)
        assert sorted(r._bound) == [15.0, 35.0]
        r.run({"image": x, "level": np.array([25.0], np.float32)})
        assert len(r.bind_ms) == built + 4


def test_binding_a_fixed_graph_is_a_no_op(tiny_modes):
    from runtimes.runners.onnxruntime import OnnxRunner

    x = _x((1, 3, 16, 16))
    with OnnxRunner(tiny_modes["fixed"], provider="cpu", bind_level=True) as r:
        assert not r.bind_level and r.name == "onnxruntime-cpu" and r.bind_ms == []
        assert r.run({"image": x})["restored"].shape == x.shape


def test_bind_level_errors(tiny_modes, monkeypatch):
    import runtimes.runners.onnxruntime as ortr

    with pytest.raises(UserError, match="cache_size must be >= 1"):
        ortr.OnnxRunner(tiny_modes["weights"], provider="cpu", bind_level=True, cache_size=0)
    monkeypatch.setattr(ortr, "available_providers", lambda: ["tensorrt", "cpu"])
    with pytest.raises(UserError, match="each would build an engine"):
        ortr.OnnxRunner(tiny_modes["weights"], provider="tensorrt", bind_level=True)
    assert ortr.OnnxRunner(tiny_modes["weights"], provider="auto", bind_level=True).provider == "cpu"
    assert ortr.OnnxRunner(tiny_modes["weights"], provider="auto").provider == "tensorrt"


def test_bench_modes_reports_the_bound_variant(tiny_ckpt):
    from export.bench_modes import BenchConfig, bench_modes

    text = bench_modes(BenchConfig(str(tiny_ckpt), size=(32, 32), repeats=2, warmup=0, threads=1,
                                   runtimes=("onnxruntime",)))
    assert "folded/fixed" in text
    line = next(ln for ln in text.splitlines() if "level bound per session" in ln)
    assert "bound/fixed" in line and "median of 5 session builds" in line


def _optimized_ops(model, tmp_path, name) -> list[str]:
    import collections

    import onnx
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.optimized_model_filepath = str(tmp_path / f"{name}.opt.onnx")
    ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    ops = collections.Counter(n.op_type for n in onnx.load(opts.optimized_model_filepath).graph.node)
    return sorted(ops.items())


def test_bound_folded_graph_optimises_to_the_fixed_graph(tiny_onnx, tiny_modes, tmp_path):
    """The folded graph's per-channel factors, bias and residual order let onnxruntime fuse them into the
    convs once the level is a constant: no elementwise pass is left that the fixed graph does not have."""
    import onnx

    from runtimes.runners.onnxruntime import bound_model

    bound = _optimized_ops(bound_model(onnx.load(str(tiny_onnx)), 35.0), tmp_path, "bound")
    fixed = _optimized_ops(str(tiny_modes["fixed"]), tmp_path, "fixed")
    free = _optimized_ops(str(tiny_onnx), tmp_path, "free")
    assert bound == fixed
    assert dict(free).get("Mul", 0) > dict(fixed).get("Mul", 0)  # unbound, the strength is a runtime multiply
