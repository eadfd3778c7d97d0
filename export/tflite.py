"""Export to TFLite / LiteRT through litert-torch at fixed sizes (one named signature per size).

Dynamic H/W does not convert (PixelShuffle), so the graph uses the exact transposed-conv
replacement and each `--size` becomes a signature `s<H>x<W>` whose inputs are named `image` and `level`
and whose output is named `restored`, as in the ONNX graph (fixed-level graphs: `image` -> `restored`).
Precisions: fp32, fp16 (fp16 weights), int8-dynamic (int8 weights, dynamic-range activations), int8
(full integer, calibrated on --calibration images) and a16w8 (the same with int16 activations, for NPUs that run it);
quantization by ai-edge-quantizer on the float model.

Usage:
    python -m export.tflite --weights denoise-mobile --sizes 720x1280 -o out/
    python -m export.tflite --weights W.safetensors --sizes 256x256,720x1280 --precision int8 --calibration imgs/
"""

from __future__ import annotations

import argparse
import copy
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export.base import (
    FULL_INTEGER,
    ExportConfig,
    ExportResult,
    add_common_args,
    common_config,
    graph_spec,
    quiet,
    run_export,
    summary_line,
    versions,
)
from export.tflite_quant import RANGE_TEXT, RANGES, quantize
from runtimes.apps.tiling import check_fixed_sizes
from runtimes.core.errors import CliParser, UserError, require, run_cli
from runtimes.core.formats import get_format

PRECISIONS = ("fp32", "fp16", "int8-dynamic", "int8", "a16w8")
DEFAULT_SIZES = ((720, 1280),)
INPUT_NAMES = ("image", "level")  # the signature's input names (fixed-level graphs: image only), as in ONNX
OUTPUT_NAME = "restored"


@dataclass(frozen=True)
class TFLiteConfig:
    """TFLite export options.

    Attributes:
        common: the shared exporter options.
        sizes: (H, W) per signature.
        threads: interpreter threads for validation.
        ranges: full-integer activation ranges: "mse" (least int8 error at every calibration level, the
            default) or "minmax" (export.tflite_quant).
    """

    common: ExportConfig
    sizes: tuple[tuple[int, int], ...] = DEFAULT_SIZES
    threads: int = 2
    ranges: str = "mse"


def parse_sizes(text: str) -> tuple[tuple[int, int], ...]:
    """'720x1280' or '256x256,720x1280' -> ((720, 1280), ...)."""
    sizes = []
    for part in text.split(","):
        try:
            h, w = (int(v) for v in part.lower().strip().split("x"))
        except ValueError:
            raise UserError(f"malformed size {part!r}; use HxW, e.g. 720x1280 (comma-separated for several)") from None
        if h < 2 or w < 2 or h > 16384 or w > 16384:
            raise UserError(f"size {part!r} out of range; height and width must be 2..16384")
        sizes.append((h, w))
    return tuple(dict.fromkeys(sizes))


def signature_name(size: tuple[int, int]) -> str:
    return f"s{size[0]}x{size[1]}"


def convert_float(model, spec, sizes) -> bytes:
    """The float32 TFLite flatbuffer with one signature per size."""
    import torch

    from export.graph import build_graph, sample_inputs

    litert_torch = require("litert_torch", "tflite")
    graph = named_io(build_graph(copy.deepcopy(model), spec))
    converter = litert_torch.Converter()
    for size in sizes:  # keyword samples and a dict output name the signature's tensors image, level -> restored
        sample = dict(zip(INPUT_NAMES, sample_inputs(spec, 1, *size), strict=False))
        converter.signature(signature_name(size), graph, sample_kwargs=sample)
    with quiet(), torch.no_grad():
        try:
            return bytes(converter.convert().model_content())
        except Exception as exc:  # the converter raises many internal types
            raise UserError(f"litert-torch could not convert the model: {str(exc).splitlines()[0][:300]}") from None


def named_io(graph):
    """The export graph as `forward(image, level=None) -> {"restored": ...}`, so that the converted signature's
    inputs are named `image` and `level` (from the keyword samples) and its output `restored` (from the dict key),
    as in the ONNX graph. Positional samples would give `args_0`, `args_1` -> `output_0`."""
    import torch

    class NamedIO(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, image, level=None):
            return {OUTPUT_NAME: self.inner(image) if level is None else self.inner(image, level)}

    return NamedIO(graph).eval()


def signature_io(flatbuffer: bytes) -> dict:
    """Signature name -> {"inputs": {"image", "level"}: tensor name, "outputs": {"restored": name}}.

    The names are the roles themselves; a signature that lacks them (the converter did not keep the keyword
    names) is refused rather than written with positional names apps cannot guess.
    """
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=flatbuffer)
    out = {}
    for name, sig in interp.get_signature_list().items():
        inputs = [n for n in INPUT_NAMES if n in sig["inputs"]]
        if len(inputs) != len(sig["inputs"]) or OUTPUT_NAME not in sig["outputs"]:
            raise UserError(f"litert-torch named signature {name!r} {sig['inputs']} -> {sig['outputs']}, not "
                            f"{list(INPUT_NAMES)} -> ['{OUTPUT_NAME}']; install a litert-torch that keeps keyword "
                            "input names (pip install 'levelres[tflite]')")
        out[name] = {"inputs": {n: n for n in inputs}, "outputs": {OUTPUT_NAME: OUTPUT_NAME}}
    return out


def runner_inputs(flatbuffer: bytes, sig_io: dict) -> dict:
    """Signature name -> its subgraph's inputs in order: [{"role", "tensor", "shape"}].

    LiteRT's benchmark_model feeds `--input_layer` / `--input_layer_shape` / `--input_layer_value_files`
    to the subgraph's inputs by position, so the device script needs this order and the tensor names.
    """
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(flatbuffer, 0))
    out = {}
    for sd in model.signatureDefs or []:
        key = sd.signatureKey.decode() if isinstance(sd.signatureKey, bytes) else sd.signatureKey
        roles = {v: k for k, v in sig_io[key]["inputs"].items()}
        sg = model.subgraphs[sd.subgraphIndex]
        keys = {tm.tensorIndex: (tm.name.decode() if isinstance(tm.name, bytes) else tm.name) for tm in sd.inputs}
        out[key] = [{"role": roles[keys[i]], "tensor": sg.tensors[i].name.decode(),
                     "shape": [int(d) for d in sg.tensors[i].shape]} for i in sg.inputs]
    return out


def calibration_feeds(cfg: ExportConfig, model, sizes, sig_io: dict) -> dict:
    """Calibration feeds per signature (images from --calibration at the neutral and every training level)."""
    from export.calibration import calibration_samples, to_layout

    data = {}
    for size in sizes:
        names = sig_io[signature_name(size)]["inputs"]
        feeds = []
        for img, level in calibration_samples(cfg.calibration, model.level_map, size):
            feed = {names["image"]: to_layout(img, cfg.nhwc, cfg.io)}
            if "level" in names:
                feed[names["level"]] = np.array([level], np.float32)
            feeds.append(feed)
        data[signature_name(size)] = feeds
    return data


def embed_metadata(path: Path, meta: dict) -> None:
    """Store the project's metadata (JSON) in the flatbuffer's metadata table as 'levelres', and the standard TFLite
    model metadata (export.tflite_metadata) as 'TFLITE_METADATA'."""
    from ai_edge_litert.tools import flatbuffer_utils as fbu

    from export.tflite_metadata import NAME, model_metadata_buffer

    model = fbu.read_model_from_bytearray(bytearray(path.read_bytes()))
    standard = model_metadata_buffer(meta, subgraph_roles(model, meta))
    _set_metadata(model, "levelres", json.dumps(meta, default=str).encode())
    _set_metadata(model, NAME, standard)
    path.write_bytes(bytes(fbu.convert_object_to_bytearray(model)))


def _set_metadata(model, name: str, data: bytes) -> None:
    from ai_edge_litert import schema_py_generated as schema

    buf = schema.BufferT()
    buf.data = np.frombuffer(data, dtype=np.uint8)
    model.buffers.append(buf)
    entry = schema.MetadataT()
    entry.name, entry.buffer = name, len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if _text(m.name) != name] + [entry]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def subgraph_roles(model, meta: dict) -> list[dict]:
    """Per subgraph, in subgraph order: its signature, size, and the roles of its inputs and outputs in order."""
    out = {}
    for sd in model.signatureDefs or []:
        key = _text(sd.signatureKey)
        roles = {**{v: k for k, v in meta["signatures"][key]["inputs"].items()},
                 **{v: k for k, v in meta["signatures"][key]["outputs"].items()}}
        by_index = {tm.tensorIndex: roles[_text(tm.name)] for tm in [*sd.inputs, *sd.outputs]}
        sg = model.subgraphs[sd.subgraphIndex]
        out[sd.subgraphIndex] = {"name": key, "size": tuple(meta["signatures"][key]["size"]),
                                 "inputs": [by_index[i] for i in sg.inputs],
                                 "outputs": [by_index[i] for i in sg.outputs]}
    return [out[i] for i in sorted(out)]


def validate_tflite(model, path: Path, meta: dict, threads: int = 2) -> dict:
    """Run every signature with ai-edge-litert (XNNPACK) against the reference."""
    from export.validate import validate_with
    from runtimes.runners.tflite import TFLiteRunner

    sizes = [tuple(s["size"]) for s in meta["signatures"].values()]
    with quiet():
        return validate_with(TFLiteRunner(path, threads=threads), model, meta, sizes=sizes)


def export_tflite(cfg: TFLiteConfig) -> ExportResult:
    """Convert, quantize, validate and write a TFLite artifact."""
    c = cfg.common
    if c.precision not in PRECISIONS:
        raise UserError(f"TFLite precision {c.precision!r} is not supported; choose one of {', '.join(PRECISIONS)}")
    if not cfg.sizes:
        raise UserError("give at least one --size HxW")
    if cfg.threads < 1:
        raise UserError(f"--threads must be >= 1, got {cfg.threads}")
    if cfg.ranges not in RANGES:
        raise UserError(f"unknown --ranges {cfg.ranges!r}; choose one of {', '.join(RANGES)}")
    if c.precision in FULL_INTEGER and c.level_mode == "weights":
        raise UserError(f"--precision {c.precision} needs constant conv weights, but --level-mode weights computes "
                        "them at run time; use --level-mode folded (the default) or fixed")

    ranges = "minmax" if c.precision == "a16w8" else cfg.ranges  # 16-bit grids need no clipping search

    def build(model, tmp: Path, meta: dict) -> list[Path]:
        check_fixed_sizes(cfg.sizes, model.cfg.to_dict())
        meta["toolchain"] = versions("torch", "litert-torch", "ai-edge-quantizer", "ai-edge-litert")
        flat = convert_float(model, graph_spec(c, shuffle="deconv"), cfg.sizes)
        sig_io = signature_io(flat)
        calib = calibration_feeds(c, model, cfg.sizes, sig_io) if c.precision in FULL_INTEGER else None
        final = quantize(flat, c.precision, calib, ranges)
        tmp.write_bytes(final)
        order = runner_inputs(final, sig_io)
        shape = lambda h, w: [1, h, w, 3] if c.nhwc else [1, 3, h, w]  # noqa: E731
        meta["signatures"] = {signature_name(s): {"size": list(s), "image_shape": shape(*s),
                                                  **sig_io[signature_name(s)],
                                                  "runner_inputs": order[signature_name(s)]} for s in cfg.sizes}
        meta["pixel_shuffle"] = "stride-2 transposed conv with a one-hot kernel (exact)"
        if c.precision in FULL_INTEGER:
            from export.calibration import calibration_images, calibration_levels

            meta["calibration"] = {"folder": str(c.calibration), "images": len(calibration_images(c.calibration)),
                                   "samples": len(next(iter(calib.values()))),
                                   "levels": calibration_levels(model.level_map),
                                   "activations": "int16" if c.precision == "a16w8" else "int8",
                                   "ranges": RANGE_TEXT[ranges], "bias_correction": True,
                                   "float_ops": "level-to-strength scalars; residual scale and add after the last conv"}
        return []

    def validate(model, tmp: Path, meta: dict) -> dict:
        return validate_tflite(model, tmp, meta, cfg.threads)

    def runner(tmp: Path):
        from runtimes.runners.tflite import TFLiteRunner

        return TFLiteRunner(tmp, threads=cfg.threads)

    return run_export(c, get_format("tflite"), build, validate, embed_metadata, runner=runner)


def export_with(common: ExportConfig, sizes=None, **options) -> ExportResult:
    """The format table's entry (`runtimes.core.formats`): one signature per size in `sizes` (None: the
    default sizes)."""
    return export_tflite(TFLiteConfig(common, sizes=tuple(sizes) if sizes else DEFAULT_SIZES, **options))


def build_parser() -> argparse.ArgumentParser:
    from runtimes.core.cli import SizesAction, thread_count

    parser = CliParser(prog="python -m export.tflite", description=__doc__.splitlines()[0])
    add_common_args(parser, PRECISIONS)
    parser.add_argument("--sizes", "--size", action=SizesAction, type=parse_sizes, repeatable=True, default=None,
                        help="signature sizes HxW,HxW, one signature each (default 720x1280)")
    parser.add_argument("--threads", type=thread_count, default=2, help="interpreter threads for validation")
    parser.add_argument("--ranges", choices=RANGES, default=None,
                        help="int8 activation ranges: mse (least error at every calibration level; default) or "
                             "minmax (the full observed range); a16w8 always uses minmax")
    return parser


def main(argv: list[str] | None = None) -> int:

    args = build_parser().parse_args(argv)
    if args.ranges and args.precision != "int8":
        raise UserError(f"--ranges sets int8 activation ranges: it needs --precision int8, not {args.precision}")
    sizes = args.sizes or DEFAULT_SIZES
    result = export_tflite(TFLiteConfig(common_config(args), sizes=tuple(dict.fromkeys(sizes)), threads=args.threads,
                                          ranges=args.ranges or "mse"))
    print(summary_line(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
