"""Export every format this machine can make and print a table: made / validated / skipped-and-why.

`--nhwc --io uint8` makes the camera artifacts (docs/embedding.md): bytes in and out, (N, H, W, 3), for ONNX,
TensorRT and TFLite; Core ML takes camera frames as images instead, so it gets `--image-io` (NCHW arrays are
not used there).

Usage:
    python -m export.all --weights denoise-mobile -o out/
    python -m export.all --weights W.safetensors --formats onnx,tflite --sizes 256x256
    python -m export.all --weights denoise-mobile -o out/ --nhwc --io uint8 --sizes 512x512  # camera artifacts
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path

from export.base import ExportConfig, export_format, human_size, size_of
from runtimes.core.errors import CliParser, UserError, run_cli
from runtimes.core.formats import FORMATS


@dataclass(frozen=True)
class AllConfig:
    """Options for exporting every format.

    Attributes:
        common: shared options (the precision is each format's `default_precision` in the format table).
        formats: format keys to try.
        tflite_sizes: TFLite signature sizes.
    """

    common: ExportConfig
    formats: tuple[str, ...] = tuple(FORMATS)
    tflite_sizes: tuple[tuple[int, int], ...] = ((720, 1280),)


@dataclass(frozen=True)
class Row:
    fmt: str
    made: str
    validated: str
    note: str


def export_one(fmt: str, cfg: AllConfig):
    """Run one exporter with its default precision; returns its `ExportResult`."""
    row = FORMATS[fmt]
    common = replace(cfg.common, precision=row.default_precision)
    return export_format(row, common, cfg.tflite_sizes if row.fixed_size else None)


def export_all(cfg: AllConfig) -> list[Row]:
    """Try every format; never stops at the first failure."""
    rows = []
    for fmt in cfg.formats:
        absent = FORMATS[fmt].missing()
        if absent:
            rows.append(Row(fmt, "skipped", "-", f"missing {', '.join(absent)}: pip install "
                                                   f"'levelres[{FORMATS[fmt].extra}]'"))
            continue
        try:
            result = export_one(fmt, cfg)
        except UserError as exc:
            rows.append(Row(fmt, "failed", "-", str(exc)))
            continue
        status = result.validation.get("status", "not validated")
        if fmt == "tensorrt" and status in ("passed", "failed"):
            status += " (ONNX)"
        note = f"{result.path} ({human_size(size_of(result.path))})"
        if result.notes:
            note += "; " + "; ".join(result.notes)
        rows.append(Row(fmt, "made", status, note))
    return rows


def check_inputs(cfg: AllConfig) -> None:
    """Problems common to every format fail once, before any export: the checkpoint, the level options and the
    output folder."""
    from export.base import check_levels
    from runtimes.core.images import ensure_writable_dir
    from train.checkpoint import load_checkpoint

    model, _ = load_checkpoint(cfg.common.weights)
    check_levels(cfg.common, model.level_map.extrapolating() if cfg.common.extrapolate else model.level_map)
    ensure_writable_dir(cfg.common.out_dir)


def format_table(rows: list[Row]) -> str:
    """A plain-text table of the rows."""
    head = Row("format", "made", "validated", "artifact / reason")
    width = [max(len(getattr(r, f)) for r in [head, *rows]) for f in ("fmt", "made", "validated")]
    lines = []
    for r in [head, *rows]:
        lines.append(f"{r.fmt:<{width[0]}}  {r.made:<{width[1]}}  {r.validated:<{width[2]}}  {r.note}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    from export.tflite import parse_sizes
    from runtimes.core.cli import SizesAction
    from runtimes.core.levels import parse_level

    parser = CliParser(prog="python -m export.all", description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True, help="checkpoint (.safetensors) or shipped weight-set name")
    parser.add_argument("-o", "--out", default="out", help="output folder")
    parser.add_argument("--formats", default=",".join(FORMATS), help=f"comma-separated subset of {', '.join(FORMATS)}")
    parser.add_argument("--level-mode", default="folded", choices=("folded", "weights", "fixed"),
                        help="how the level enters the graph (see python -m export.onnx --help)")
    parser.add_argument("--level", type=parse_level, default=None, help="level for --level-mode fixed (user's unit)")
    parser.add_argument("--sizes", "--size", action=SizesAction, type=parse_sizes, default=((720, 1280),),
                        help="TFLite signature sizes HxW,HxW")
    parser.add_argument("--nhwc", action="store_true", help="image input/output in (N, H, W, 3) layout")
    parser.add_argument("--io", default="float", choices=("float", "uint8"),
                        help="image type: float32 in [0, 1] (default) or uint8 0-255 (camera bytes; Core ML gets "
                             "--image-io)")
    parser.add_argument("--no-golden", action="store_true", help="do not write the golden vectors")
    parser.add_argument("--allow-mismatch", action="store_true", help="keep an artifact that fails validation")
    return parser


def main(argv: list[str] | None = None) -> int:
    from export.base import common_config

    args = build_parser().parse_args(argv)
    formats = tuple(dict.fromkeys(f.strip() for f in args.formats.split(",") if f.strip()))  # in order, once each
    if not formats:
        raise UserError(f"--formats is empty; give a comma-separated subset of {', '.join(FORMATS)} "
                        "(or leave it out for all)")
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise UserError(f"unknown format {unknown[0]!r}; choose from {', '.join(FORMATS)}")
    args.precision, args.name, args.no_validate, args.calibration = "fp32", None, False, None
    cfg = AllConfig(common_config(args, out_dir=Path(args.out)), formats=formats,
                    tflite_sizes=tuple(dict.fromkeys(args.sizes)))
    check_inputs(cfg)
    rows = export_all(cfg)
    print(format_table(rows))
    return 1 if any(r.made == "failed" for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
