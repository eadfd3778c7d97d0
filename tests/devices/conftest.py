"""Fixtures for the device-script tests: the tiny checkpoint and its ONNX/TFLite exports, a few small images."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the project root (not a package folder), for runs without an install
    sys.path.insert(0, str(REPO))

from tests.runtimes import conftest as _runtime_fixtures  # noqa: E402  (shared fixtures)

tiny_ckpt = _runtime_fixtures.tiny_ckpt
tiny_onnx = _runtime_fixtures.tiny_onnx


@pytest.fixture(scope="session")
def small_images(tmp_path_factory) -> Path:
    """Two small synthetic photos for fast accuracy runs."""
    from runtimes.core.images import write_image

    folder = tmp_path_factory.mktemp("imgs")
    yy, xx = np.mgrid[0:40, 0:48] / 48.0
    for i in range(2):
        img = np.stack([np.sin(3 * xx + i), np.cos(4 * yy - i), xx * yy], axis=2) * 0.4 + 0.5
        write_image(folder / f"img{i}.png", img.astype(np.float32))
    return folder


@pytest.fixture(scope="session")
def tiny_tflite(tiny_ckpt, tmp_path_factory) -> Path:
    """The tiny checkpoint as a one-signature TFLite (skipped where the converter or LiteRT is absent)."""
    pytest.importorskip("litert_torch", reason="litert-torch not installed (pip install 'levelres[tflite]')")
    pytest.importorskip("ai_edge_litert", reason="ai-edge-litert not installed (pip install 'levelres[tflite]')")
    from export.base import ExportConfig
    from export.tflite import TFLiteConfig, export_tflite

    out = tmp_path_factory.mktemp("tflite")
    return export_tflite(TFLiteConfig(ExportConfig(str(tiny_ckpt), out, name="tiny", validate=False),
                                      sizes=((32, 32),))).path
