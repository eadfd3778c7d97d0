"""The Runner base class: every runner derives from it, and activation and input checks fail the same way."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from runtimes.core.errors import UserError
from runtimes.core.formats import FORMATS, REFERENCE_RUNNER
from runtimes.runners.base import Runner

LEVEL_MAP = {"task": "denoise", "unit": "sigma", "a": 1 / 75, "b": 0.0, "lo": 0.0, "hi": 255.0,
             "train_levels": [15.0, 75.0], "max_strength": 1.0}


def _cls(spec: str):
    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("spec", [f.runner for f in FORMATS.values()] + [REFERENCE_RUNNER])
def test_every_runner_derives_from_the_base(spec):
    assert issubclass(_cls(spec), Runner)


class Echo(Runner):
    def activate_impl(self):
        self.fed = []

    def infer_impl(self, feeds):
        self.fed.append(feeds)
        return {"restored": feeds["image"]}


def _image():
    return np.zeros((1, 3, 4, 4), np.float32)


def test_run_before_enter_is_a_user_error():
    with pytest.raises(UserError, match="must be entered"):
        Echo({"task": "denoise", "level_map": LEVEL_MAP}).run({"image": _image()})


def test_the_base_checks_the_level_range_and_presence():
    with Echo({"task": "denoise", "level_map": LEVEL_MAP, "level_mode": "folded"}) as r:
        with pytest.raises(UserError, match="outside"):
            r.run({"image": _image(), "level": np.array([300], np.float32)})
        with pytest.raises(UserError, match="missing input.*required"):
            r.run({"image": _image()})
        r.run({"image": _image(), "level": np.array([25], np.float32)})
        assert set(r.fed[-1]) == {"image", "level"}


def test_a_fixed_level_artifact_takes_no_level():
    meta = {"task": "denoise", "level_map": LEVEL_MAP, "level_mode": "fixed", "fixed_level": 25.0}
    with Echo(meta) as r:
        r.run({"image": _image()})
        assert set(r.fed[-1]) == {"image"}
        r.run({"image": _image(), "level": np.array([25], np.float32)})  # its own level is accepted
        with pytest.raises(UserError, match="fixed at"):
            r.run({"image": _image(), "level": np.array([15], np.float32)})
    assert not r.is_active


@pytest.mark.parametrize("key", sorted(FORMATS))
def test_the_format_table_states_each_exporters_precisions(key):
    """The table's precisions are the exporter's own (the bundles and export.all read the table)."""
    pytest.importorskip("torch")
    exporter = importlib.import_module(FORMATS[key].exporter)
    assert FORMATS[key].precisions == tuple(exporter.PRECISIONS)
    assert FORMATS[key].default_precision in exporter.PRECISIONS and callable(exporter.export_with)


def test_artifact_meta_is_the_one_level_check():
    from runtimes.core.meta import ArtifactMeta

    info = ArtifactMeta.from_dict({"task": "denoise", "level_map": LEVEL_MAP})
    assert info.takes_level and info.levels() == [0.0, 15.0, 75.0] and info.level_map.unit == "sigma"
    with pytest.raises(UserError, match="outside the model's sigma range"):
        info.check_level(300.0, "--level")
    fixed = ArtifactMeta.from_dict({"level_map": LEVEL_MAP, "level_mode": "fixed", "fixed_level": 25})
    assert not fixed.takes_level and fixed.levels((0.0, 50.0)) == [25.0]
    with pytest.raises(UserError, match="fixed at sigma 25"):
        fixed.check_level(15.0)
