"""Core ML export: converts in every supported mode and passes the structural checks (prediction needs macOS)."""

from __future__ import annotations

import platform

import pytest

pytest.importorskip("coremltools", reason="coremltools not installed (pip install 'levelres[coreml]')")

from export.base import ExportConfig  # noqa: E402
from export.coreml import CoreMLConfig, check_structure, export_coreml  # noqa: E402
from runtimes.core.errors import UserError  # noqa: E402

CASES = {
    "folded-fp16": (dict(), dict()),
    "weights-ios17": (dict(level_mode="weights"), dict(target="iOS17")),
    "fixed-fp32-enumerated-image": (dict(level_mode="fixed", level=35.0, precision="fp32"),
                                    dict(enumerated=((32, 32), (48, 64)), image_io=True)),
}


@pytest.fixture(scope="module")
def exported(affine_ckpt, tmp_path_factory):
    out = tmp_path_factory.mktemp("coreml")
    results = {}
    for key, (common, extra) in CASES.items():
        common = {"precision": "fp16", **common}
        results[key] = export_coreml(CoreMLConfig(ExportConfig(str(affine_ckpt), out, **common), **extra))
    return results


@pytest.mark.parametrize("key", list(CASES))
def test_structure(exported, key):
    result = exported[key]
    meta = result.meta
    info = meta["structure"]
    assert result.path.is_dir() and result.path.suffix == ".mlpackage"
    assert check_structure(info, meta["level_mode"]) == []
    assert info["outputs"] == ["restored"]
    sources = set(info["conv_weight_sources"].values())
    if meta["level_mode"] == "weights":
        assert sources - {"const"}, "weights mode computes conv weights at run time"
        assert meta["target"] == "iOS17"
    else:
        assert sources == {"const"}
    if platform.system() != "Darwin":
        assert meta["validation"]["status"].startswith("not validated")


def test_metadata(exported):
    import coremltools as ct

    ml = ct.models.MLModel(str(exported["folded-fp16"].path), skip_model_load=True)
    assert ml.user_defined_metadata["level_unit"] == "sigma"
    assert "denoise" in ml.short_description and ml.license == "MIT"
    assert [i.name for i in ml.get_spec().description.input] == ["image", "level"]
    img = ml.get_spec().description.input
    assert img[0].type.WhichOneof("Type") == "multiArrayType"
    fixed = exported["fixed-fp32-enumerated-image"].meta["structure"]
    assert fixed["inputs"] == ["image"] and fixed["input_types"]["image"] == "imageType"


def test_weights_mode_refused_below_ios17(affine_ckpt, tmp_path):
    cfg = CoreMLConfig(ExportConfig(str(affine_ckpt), tmp_path, level_mode="weights", precision="fp16"),
                       target="iOS16")
    with pytest.raises(UserError, match="iOS17"):
        export_coreml(cfg)
    assert list(tmp_path.iterdir()) == []


def test_descriptions_version_and_author(exported):
    """Xcode shows a description for every input and output, the version and the author."""
    import coremltools as ct

    ml = ct.models.MLModel(str(exported["folded-fp16"].path), skip_model_load=True)
    assert ml.version == exported["folded-fp16"].meta["levelres_version"] == "0.2.0"
    assert ml.author == "the levelres authors" and ml.license == "MIT"
    assert "float32 (1, 3, H, W) in [0, 1]" in ml.input_description["image"]
    assert "sigma" in ml.input_description["level"] and "0-255" in ml.input_description["level"]
    assert "not clamped" in ml.output_description["restored"]
    image = ct.models.MLModel(str(exported["fixed-fp32-enumerated-image"].path), skip_model_load=True)
    assert "CVPixelBuffer" in image.input_description["image"] and "RGB image" in image.output_description["restored"]
    assert [i.name for i in image.get_spec().description.input] == ["image"]
    assert image.get_spec().description.metadata.versionString == "0.2.0"
