"""Export to Core ML (mlprogram .mlpackage) from torch.export, with the level as a model input.

Folded and fixed modes need iOS16+, weights mode iOS17+ (computed conv weights and non-constant
biases). Flexible H/W by default (RangeDim) or `--sizes HxW,...` (enumerated); `--image-io` makes the image
input and the restored output Core ML images (RGB, 0-255). Prediction runs only on macOS: on other
systems the structure is checked (inputs, outputs, op types, constant conv weights in folded and
fixed modes) and the numbers are recorded as not validated.

Usage:
    python -m export.coreml --weights denoise-mobile --precision fp16 -o out/
    python -m export.coreml --weights W.safetensors --sizes 720x1280,1080x1920 --image-io
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from export.base import (
    ExportConfig,
    ExportResult,
    add_common_args,
    common_config,
    graph_spec,
    quiet,
    remove,
    run_export,
    summary_line,
    versions,
)
from export.tflite import parse_sizes
from runtimes.apps.tiling import check_fixed_sizes
from runtimes.core.cli import SizesAction
from runtimes.core.errors import CliParser, UserError, require, run_cli
from runtimes.core.formats import get_format

PRECISIONS = ("fp16", "fp32")
TARGETS = ("iOS16", "iOS17", "iOS18")
RANGE = (8, 4096)


@dataclass(frozen=True)
class CoreMLConfig:
    """Core ML export options.

    Attributes:
        common: the shared exporter options (precision fp16 or fp32).
        target: minimum deployment target; None picks iOS16 (folded/fixed) or iOS17 (weights).
        enumerated: fixed (H, W) sizes instead of a flexible range.
        image_io: Core ML ImageType input and output instead of float arrays.
    """

    common: ExportConfig
    target: str | None = None
    enumerated: tuple[tuple[int, int], ...] = ()
    image_io: bool = False


def deployment_target(cfg: CoreMLConfig) -> str:
    """The target, refusing weights mode below iOS17."""
    target = cfg.target or ("iOS17" if cfg.common.level_mode == "weights" else "iOS16")
    if target not in TARGETS:
        raise UserError(f"unknown deployment target {target!r}; choose one of {', '.join(TARGETS)}")
    if cfg.common.level_mode == "weights" and target == "iOS16":
        raise UserError("--level-mode weights needs --target iOS17 or newer (iOS16 requires constant conv biases); "
                        "use the default folded mode for iOS16")
    return target


def check_enumerated(sizes: tuple[tuple[int, int], ...]) -> None:
    """Enumerated shapes need at least two different sizes (Core ML refuses one); a one-line `UserError`."""
    distinct = list(dict.fromkeys(tuple(s) for s in sizes))
    if sizes and len(distinct) < 2:
        h, w = distinct[0]
        raise UserError(f"--sizes (enumerated) needs at least two different sizes HxW,HxW, got only {h}x{w}; leave "
                        f"--sizes/--enumerated out for the flexible range ({RANGE[0]}..{RANGE[1]} pixels per side)")


class ImageIOGraph:
    """Factory for a wrapper that maps the graph's [0, 1] output to a 0-255 image."""

    @staticmethod
    def wrap(graph):
        import torch

        class _Wrapped(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, image, level=None):
                out = self.inner(image) if level is None else self.inner(image, level)
                return torch.clamp(out, 0.0, 1.0) * 255.0

        return _Wrapped(graph)


def _input_types(ct, cfg: CoreMLConfig):
    c = cfg.common
    if cfg.enumerated:
        shapes = [(1, 3, h, w) for h, w in dict.fromkeys(tuple(s) for s in cfg.enumerated)]
        shape = ct.EnumeratedShapes(shapes=shapes, default=shapes[0])
    else:
        dim = lambda: ct.RangeDim(*RANGE, default=256)  # noqa: E731
        shape = ct.Shape((1, 3, dim(), dim()))
    if cfg.image_io:
        image = ct.ImageType(name="image", shape=shape, scale=1 / 255.0, color_layout=ct.colorlayout.RGB)
    else:
        image = ct.TensorType(name="image", shape=shape, dtype=np.float32)
    if c.level_mode == "fixed":
        return [image]
    return [image, ct.TensorType(name="level", shape=(1,), dtype=np.float32)]


def convert(model, cfg: CoreMLConfig):
    """The converted `MLModel` (not yet saved)."""
    import torch

    from export.graph import build_graph, sample_inputs

    with quiet():
        ct = require("coremltools", "coreml")
    c = cfg.common
    if c.nhwc:
        raise UserError("--nhwc is not used for Core ML (images are NCHW arrays or Core ML images); drop it")
    if c.io != "float":
        raise UserError("--io uint8 is not used for Core ML: use --image-io for camera pixel buffers (8-bit images)")
    spec = graph_spec(c)
    graph = build_graph(copy.deepcopy(model), spec)
    if cfg.image_io:
        graph = ImageIOGraph.wrap(graph).eval()
    h, w = cfg.enumerated[0] if cfg.enumerated else (64, 64)
    args = sample_inputs(spec, 1, h, w)
    d = torch.export.Dim.DYNAMIC
    dyn = {"image": {2: d, 3: d}} if spec.mode == "fixed" else {"image": {2: d, 3: d}, "level": None}
    precision = ct.precision.FLOAT16 if c.precision == "fp16" else ct.precision.FLOAT32
    output = ct.ImageType(name="restored", color_layout=ct.colorlayout.RGB) if cfg.image_io else \
        ct.TensorType(name="restored")
    with quiet(), torch.no_grad():
        program = torch.export.export(graph, args, dynamic_shapes=dyn).run_decompositions({})
        try:
            return ct.convert(program, inputs=_input_types(ct, cfg), outputs=[output], convert_to="mlprogram",
                              minimum_deployment_target=getattr(ct.target, deployment_target(cfg)),
                              compute_precision=precision)
        except Exception as exc:  # coremltools raises many types
            raise UserError(f"coremltools could not convert the model: {str(exc).splitlines()[0][:300]}") from None


def structure(mlmodel) -> dict:
    """Inputs, outputs, op types and where each conv's weight comes from."""
    desc = mlmodel.get_spec().description
    ops = list(mlmodel._mil_program.functions["main"].operations)
    convs = {op.name: (op.weight.op.op_type if op.weight.op is not None else "input") for op in ops
             if op.op_type == "conv"}
    return {"inputs": [i.name for i in desc.input], "outputs": [o.name for o in desc.output],
            "input_types": {i.name: i.type.WhichOneof("Type") for i in desc.input},
            "op_types": sorted({op.op_type for op in ops}), "conv_weight_sources": convs}


def check_structure(info: dict, level_mode: str) -> list[str]:
    """Problems with the converted structure (empty when it is as expected)."""
    problems = []
    want_inputs = ["image"] if level_mode == "fixed" else ["image", "level"]
    if info["inputs"] != want_inputs:
        problems.append(f"inputs {info['inputs']} != {want_inputs}")
    if info["outputs"] != ["restored"]:
        problems.append(f"outputs {info['outputs']} != ['restored']")
    sources = set(info["conv_weight_sources"].values())
    if not info["conv_weight_sources"]:
        problems.append("no conv ops")
    if level_mode in ("folded", "fixed") and not sources <= {"const", "constexpr_blockwise_shift_scale"}:
        problems.append(f"{level_mode} mode expects constant conv weights, found {sorted(sources)}")
    if level_mode == "weights" and sources <= {"const"}:
        problems.append("weights mode expects computed conv weights, all are constant")
    return problems


def validate_coreml(model, path: Path, meta: dict) -> dict:
    """Predict-based validation on macOS; elsewhere 'not validated' (structure already checked)."""
    from export.validate import not_validated, validate_artifact

    if platform.system() != "Darwin":
        return not_validated("Core ML prediction needs macOS (structure checked here)")
    import coremltools as ct
    from PIL import Image

    ml = ct.models.MLModel(str(path))
    image_io = meta.get("image_io", False)

    def run(img: np.ndarray, level: float, size) -> np.ndarray:
        x = Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)) if image_io else \
            img.transpose(2, 0, 1)[None].astype(np.float32)
        feed = {"image": x} if meta["level_mode"] == "fixed" else {"image": x, "level": np.array([level], np.float32)}
        out = ml.predict(feed)["restored"]
        return np.asarray(out, np.float32) / 255.0 if image_io else out[0].transpose(1, 2, 0)

    sizes = [tuple(s) for s in meta.get("enumerated", [])] or None
    return validate_artifact(model, run, meta["precision"], sizes=sizes, fixed_level=meta.get("fixed_level"))


def export_coreml(cfg: CoreMLConfig) -> ExportResult:
    """Convert, check, (on macOS) validate and write an .mlpackage."""
    c = cfg.common
    if c.precision not in PRECISIONS:
        raise UserError(f"Core ML precision {c.precision!r} is not supported; choose fp16 or fp32")
    deployment_target(cfg)
    check_enumerated(cfg.enumerated)

    def build(model, tmp: Path, meta: dict) -> list[Path]:
        check_fixed_sizes(cfg.enumerated or (), model.cfg.to_dict())
        meta["toolchain"] = versions("torch", "coremltools")
        ml = convert(model, cfg)
        info = structure(ml)
        problems = check_structure(info, c.level_mode)
        if problems:
            raise UserError("Core ML structure check failed: " + "; ".join(problems))
        meta.update(target=deployment_target(cfg), image_io=cfg.image_io, structure=info,
                    enumerated=[list(s) for s in cfg.enumerated], flexible_range=None if cfg.enumerated else RANGE)
        ml.save(str(tmp))
        return []

    return run_export(c, get_format("coreml"), build, validate_coreml, embed_metadata)


def io_descriptions(meta: dict) -> dict[str, str]:
    """What Xcode shows for each input and output."""
    if meta.get("image_io"):
        image = "RGB image (a camera CVPixelBuffer works; Core ML converts it and scales by 1/255)"
        restored = "restored RGB image, the size of the input"
    else:
        image = "sRGB photo as float32 (1, 3, H, W) in [0, 1], R, G, B (bytes / 255)"
        restored = "restored photo as float32 (1, 3, H, W), not clamped: clamp to [0, 1], then x 255 for bytes"
    out = {"image": image, "restored": restored}
    if meta.get("level_mode") != "fixed":
        lo, hi = meta["level_range"]
        trained = ", ".join(f"{x:g}" for x in meta["train_levels"])
        out["level"] = (f"restoration level in {meta['level_unit']} units, float32 [1], {lo:g}-{hi:g} (trained at "
                        f"{trained}); the neutral level returns the input")
    return out


def embed_metadata(path: Path, meta: dict) -> None:
    """Short description, license, level unit/range and validation in the model's metadata."""
    import coremltools as ct

    ml = ct.models.MLModel(str(path), skip_model_load=True)
    ml.short_description = meta["description"]
    ml.license = meta["license"]
    ml.author = "the levelres authors"
    ml.version = str(meta.get("levelres_version") or "")
    ud = ml.user_defined_metadata
    ud.update({"task": meta["task"], "level_unit": meta["level_unit"], "level_range": json.dumps(meta["level_range"]),
               "train_levels": json.dumps(meta["train_levels"]), "level_mode": meta["level_mode"],
               "level_map": json.dumps(meta["level_map"]), "validation": meta["validation"]["status"]})
    for name, text in io_descriptions(meta).items():
        if name in ml.input_description:
            ml.input_description[name] = text
        elif name in ml.output_description:
            ml.output_description[name] = text
    staged = path.with_name("staged-" + path.name)
    ml.save(str(staged))  # saving over the package it was loaded from would delete its weights first
    remove(path)
    staged.rename(path)


def export_with(common: ExportConfig, sizes=None, **options) -> ExportResult:
    """The format table's entry (`runtimes.core.formats`): an NCHW package (Core ML takes planar images; `sizes`
    is unused, the package is dynamic-size unless `enumerated` is given). The camera artifact (uint8 I/O) is Core
    ML's image I/O: pixel buffers, not uint8 arrays."""
    if common.io == "uint8":
        options = {**options, "image_io": True}
    return export_coreml(CoreMLConfig(replace(common, nhwc=False, io="float"), **options))


def build_parser() -> argparse.ArgumentParser:
    parser = CliParser(prog="python -m export.coreml", description=__doc__.splitlines()[0])
    add_common_args(parser, PRECISIONS, default_precision="fp16", calibration=False)  # fp16 and fp32 only
    parser.add_argument("--target", choices=TARGETS, default=None, help="minimum deployment target")
    parser.add_argument("--sizes", "--enumerated", action=SizesAction, type=parse_sizes, default=None,
                        help="fixed (enumerated) sizes HxW,HxW instead of a flexible range (default: the range)")
    parser.add_argument("--image-io", action="store_true", help="Core ML image input/output (RGB, 0-255)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = CoreMLConfig(common_config(args), target=args.target, image_io=args.image_io,
                       enumerated=args.sizes or ())
    result = export_coreml(cfg)
    print(summary_line(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
