"""Fixtures for the runtime tests: a tiny random-weight checkpoint, its ONNX export, the real-image sets."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the project root (not a package folder), for runs without an install
    sys.path.insert(0, str(REPO))

DATASETS = REPO.parent / "shared" / "datasets"
CBSD68 = DATASETS / "test" / "CBSD68"


def save_random_checkpoint(path: Path, preset: str = "tiny", seed: int = 0, out_gain: float | None = None,
                           task: str = "denoise", **overrides) -> Path:
    """A random-weight checkpoint (denoise unless `task` says otherwise) of a preset (with field overrides).

    `out_gain` re-initialises the last level conv with that gain (1.0 makes the residual as large as the
    body's, so the output differs clearly from the input; the default init keeps it small).
    """
    torch = pytest.importorskip("torch")
    from runtimes.core.levels import make_level_map
    from train.checkpoint import save_checkpoint
    from train.model import build_model
    from train.model import preset as make_preset

    torch.manual_seed(seed)
    model = build_model(make_preset(preset, **overrides), make_level_map(task))
    if out_gain is not None:
        model.conv_out.reset_parameters(gain=out_gain)
    return save_checkpoint(path, model, {"note": "random weights for tests"})


@pytest.fixture(scope="session")
def random_ckpt():
    """`save_random_checkpoint(path, preset="tiny", seed=0, **overrides)` as a fixture."""
    return save_random_checkpoint


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory) -> Path:
    """A tiny random-weight denoise checkpoint."""
    return save_random_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")


@pytest.fixture(scope="session")
def tiny_onnx(tiny_ckpt, tmp_path_factory) -> Path:
    """The tiny checkpoint exported to ONNX (skipped while the ONNX exporter is absent)."""
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install 'levelres[onnx]')")
    try:
        from export.base import ExportConfig
        from export.onnx import OnnxConfig, export_onnx
    except ImportError as exc:
        pytest.skip(f"export.onnx is not importable: {exc}")
    out = tmp_path_factory.mktemp("onnx")
    return export_onnx(OnnxConfig(ExportConfig(weights=str(tiny_ckpt), out_dir=out, name="tiny"))).path


@pytest.fixture(scope="session")
def cbsd68() -> Path:
    """The CBSD68 test images; skipped where the datasets folder is absent."""
    if not CBSD68.is_dir():
        pytest.skip(f"real images not found: {CBSD68.relative_to(REPO.parent)} is absent")
    return CBSD68
