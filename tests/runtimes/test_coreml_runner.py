"""CoreML runner: option checking and the clear error off macOS (predictions need macOS)."""

from __future__ import annotations

import json
import sys

import pytest

from runtimes.core.errors import UserError
from runtimes.runners.coreml import CoreMLRunner


@pytest.fixture
def fake_package(tmp_path):
    pkg = tmp_path / "dn.mlpackage"
    pkg.mkdir()
    meta = {"format": "coreml", "task": "denoise", "layout": "NCHW",
            "level_map": {"task": "denoise", "unit": "sigma", "a": 1 / 75, "b": 0, "lo": 0, "hi": 255}}
    (tmp_path / "dn.mlpackage.meta.json").write_text(json.dumps(meta))
    return pkg


def test_compute_units_checked(fake_package):
    with pytest.raises(UserError, match="compute_units"):
        CoreMLRunner(fake_package, compute_units="gpu_only")
    assert CoreMLRunner(fake_package, compute_units="cpu_and_ne").name == "coreml-cpu-and-ne"


@pytest.mark.skipif(sys.platform == "darwin", reason="checks the error raised off macOS")
def test_needs_macos(fake_package):
    with pytest.raises(UserError, match="macOS"):
        with CoreMLRunner(fake_package):
            pass


def test_missing_metadata(tmp_path):
    pkg = tmp_path / "x.mlpackage"
    pkg.mkdir()
    with pytest.raises(UserError, match="meta.json"):
        CoreMLRunner(pkg)
