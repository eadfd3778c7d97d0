"""Shared exporter plumbing: the common config and CLI flags, model loading, metadata, atomic output.

Every exporter follows one flow (`run_export`): load the checkpoint, build the export graph, write
the artifact under a temporary name in the output folder, validate it, write metadata, rename it
into place, and print one line (path, size, validation result).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from runtimes.core.errors import UserError
from runtimes.core.formats import Format, meta_path

ARTIFACT_FORMAT = "levelres-artifact"
FULL_INTEGER = ("int8", "a16w8")  # calibrated precisions: int8 weights, int8 or int16 activations
LICENSE = "MIT"


@contextlib.contextmanager
def quiet():
    """Silence the converter's progress output, native logs and warnings (errors still propagate)."""
    logging.getLogger("absl").setLevel(logging.ERROR)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    saved = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in (1, 2):
            os.dup2(null, fd)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for fd, copy_fd in zip((1, 2), saved, strict=True):
            os.dup2(copy_fd, fd)
            os.close(copy_fd)
        os.close(null)


@dataclass(frozen=True)
class ExportConfig:
    """Options every exporter shares.

    Attributes:
        weights: checkpoint path or shipped weight-set name.
        out_dir: output folder (created when missing).
        level_mode: folded, weights or fixed.
        level: the baked level (fixed mode), in the user's unit.
        precision: fp32, fp16, int8-dynamic, int8 or a16w8 (what the format supports).
        nhwc: image input/output as (N, H, W, 3).
        io: image input/output type: "float" (float32 in [0, 1]) or "uint8" (0-255, camera bytes).
        calibration: folder of calibration images (int8).
        validate: run the artifact against the PyTorch reference after export.
        allow_mismatch: keep an artifact that fails validation (recorded as failed).
        name: artifact file stem; None derives it from the checkpoint, mode and precision.
        extrapolate: levels past the largest training level scale the weights further instead of
            running at its strength (the graph's level map then has no upper clamp).
        golden: write golden vectors beside the artifact (`<artifact>.golden/`, runtimes.golden).
    """

    weights: str
    out_dir: Path = Path("out")
    level_mode: str = "folded"
    level: float | None = None
    precision: str = "fp32"
    nhwc: bool = False
    io: str = "float"
    calibration: Path | None = None
    validate: bool = True
    allow_mismatch: bool = False
    name: str | None = None
    extrapolate: bool = False
    golden: bool = True

    def __post_init__(self):
        if self.name is not None:
            check_stem(self.name)


def stem_problem(name: str) -> str | None:
    """Why `name` is not a plain file stem (a name inside the output folder), or None when it is one."""
    if not name.strip():
        return "is empty"
    if "/" in name or "\\" in name or (os.altsep and os.altsep in name):
        return "holds a path separator"
    if name in (".", ".."):
        return "names a folder"
    if "\0" in name:
        return "holds a NUL character"
    return None


STEM_HINT = "give a plain file name such as dn-mobile (the folder goes in -o)"


def check_stem(name: str) -> str:
    """`name` when it is a plain file stem; otherwise a `UserError` naming --name."""
    problem = stem_problem(name)
    if problem:
        raise UserError(f"--name {name!r} {problem}; {STEM_HINT}")
    return name


def file_stem(text: str) -> str:
    """argparse type for --name: a plain file stem (argparse names the option in the error)."""
    problem = stem_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(f"{text!r} {problem}; {STEM_HINT}")
    return text


def check_levels(cfg: ExportConfig, level_map) -> None:
    """The level options against each other and the model's level map (before any export work)."""
    if cfg.level is not None:
        level_map.check(cfg.level)
    if cfg.level_mode == "fixed" and cfg.level is None:
        raise UserError("--level-mode fixed needs --level L in the model's unit "
                        f"({level_map.unit}, e.g. {level_map.trained_range[1]:g})")
    if cfg.level is not None and cfg.level_mode != "fixed":
        raise UserError("--level is only used with --level-mode fixed; drop it or add --level-mode fixed")


def check_calibration(folder: Path | None, option: str = "--calibration") -> None:
    """A `UserError` naming the option unless `folder` is None or a folder holding images."""
    if folder is None:
        return
    from runtimes.core.images import list_images

    try:
        list_images(folder)
    except UserError as exc:
        raise UserError(f"{option}: {exc} (give a folder of representative images)") from None


@dataclass
class ExportResult:
    """What an export produced."""

    path: Path
    meta: dict
    extra_files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def validation(self) -> dict:
        return self.meta.get("validation", {})


def add_common_args(parser: argparse.ArgumentParser, precisions: tuple[str, ...],
                    default_precision: str = "fp32", calibration: bool = True) -> None:
    """The flags shared by every exporter's command line (`calibration`: offer --calibration, for formats with a
    calibrated precision)."""
    from runtimes.core.levels import parse_level

    parser.add_argument("--weights", required=True, help="checkpoint (.safetensors) or shipped weight-set name")
    parser.add_argument("-o", "--out", default="out", help="output folder (default: out)")
    parser.add_argument("--level-mode", default="folded", choices=("folded", "weights", "fixed"),
                        help="folded: constant weights, conv outputs x strength (default); weights: runtime "
                             "Mul(strength, W); fixed: level baked into constants (needs --level)")
    parser.add_argument("--level", type=parse_level, default=None, help="level for --level-mode fixed (user's unit)")
    parser.add_argument("--precision", default=default_precision, choices=precisions,
                        help=f"one of {', '.join(precisions)} (default {default_precision})")
    if calibration:
        parser.add_argument("--calibration", default=None, help="folder of calibration images (int8)")
    parser.add_argument("--nhwc", action="store_true", help="image input/output in (N, H, W, 3) layout")
    parser.add_argument("--io", default="float", choices=("float", "uint8"),
                        help="image input/output type: float32 in [0, 1] (default) or uint8 0-255 (camera bytes)")
    parser.add_argument("--name", type=file_stem, default=None,
                        help="artifact file stem, a plain name in -o (default: <weights>-<mode>-<precision>)")
    parser.add_argument("--no-validate", action="store_true", help="skip validation (recorded as not validated)")
    parser.add_argument("--allow-mismatch", action="store_true", help="keep an artifact that fails validation")
    parser.add_argument("--no-golden", action="store_true",
                        help="do not write <artifact>.golden/ (input, levels and expected outputs for app tests)")
    parser.add_argument("--extrapolate", action="store_true",
                        help="levels past the largest training level scale the weights further (default: they "
                             "run at its strength, which measures far better)")


def common_config(args: argparse.Namespace, **overrides) -> ExportConfig:
    """An `ExportConfig` from parsed common flags."""
    values = dict(weights=args.weights, out_dir=Path(args.out), level_mode=args.level_mode, level=args.level,
                  precision=args.precision, nhwc=args.nhwc, io=getattr(args, "io", "float"),
                  name=args.name, validate=not args.no_validate,
                  calibration=Path(args.calibration) if getattr(args, "calibration", None) else None,
                  allow_mismatch=args.allow_mismatch, extrapolate=getattr(args, "extrapolate", False),
                  golden=not getattr(args, "no_golden", False))
    values.update(overrides)
    return ExportConfig(**values)


def load_model(cfg: ExportConfig):
    """Load the checkpoint and check the level options against its level map; returns (model, meta)."""
    from train.checkpoint import load_checkpoint

    model, ckpt = load_checkpoint(cfg.weights)
    if cfg.extrapolate:
        model.level_map = model.level_map.extrapolating()
    check_levels(cfg, model.level_map)
    if cfg.precision in FULL_INTEGER and cfg.calibration is None:
        raise UserError(f"--precision {cfg.precision} needs --calibration IMAGE_DIR "
                        "(a folder of representative images)")
    if cfg.calibration is not None:
        from runtimes.core.images import list_images

        list_images(cfg.calibration)
    return model, ckpt


def graph_spec(cfg: ExportConfig, shuffle: str = "pixel"):
    """The `GraphSpec` for a config."""
    from export.graph import GraphSpec

    fold = "conv" if cfg.precision in FULL_INTEGER else "block"  # see GraphSpec.fold
    return GraphSpec(mode=cfg.level_mode, level=cfg.level, nhwc=cfg.nhwc, shuffle=shuffle, io=cfg.io, fold=fold)


def artifact_stem(cfg: ExportConfig) -> str:
    """Default file stem: <weights stem>-<mode>[<level>]-<precision>[-nhwc][-u8]."""
    if cfg.name:
        return cfg.name
    mode = f"fixed{cfg.level:g}" if cfg.level_mode == "fixed" else cfg.level_mode
    return (f"{Path(cfg.weights).stem}-{mode}-{cfg.precision}" + ("-nhwc" if cfg.nhwc else "")
            + ("-u8" if cfg.io == "uint8" else ""))


def base_meta(model, ckpt: dict, cfg: ExportConfig, fmt: Format) -> dict:
    """The metadata every artifact carries (level map, I/O, modes); exporters add their fields."""
    from train.checkpoint import code_version

    lm = model.level_map
    layout = "NHWC" if cfg.nhwc else "NCHW"
    image_shape = ["N", "H", "W", 3] if cfg.nhwc else ["N", 3, "H", "W"]
    dtype, value_range = ("uint8", [0, 255]) if cfg.io == "uint8" else ("float32", [0, 1])
    inputs = [{"name": "image", "shape": image_shape, "dtype": dtype, "range": value_range}]
    if cfg.level_mode != "fixed":
        inputs.append({"name": "level", "shape": [1], "dtype": "float32", "unit": lm.unit,
                       "range": [lm.lo, lm.hi]})
    return {
        "format": ARTIFACT_FORMAT, "artifact_format": fmt.key, "levelres_version": package_version(),
        "task": lm.task, "level_map": lm.to_dict(),
        "level_unit": lm.unit, "level_range": [lm.lo, lm.hi], "train_levels": list(lm.train_levels),
        "arch": model.cfg.to_dict(), "level_mode": cfg.level_mode, "fixed_level": cfg.level,
        "precision": cfg.precision, "layout": layout, "io": cfg.io, "inputs": inputs,
        "outputs": [{"name": "restored", "shape": image_shape, "dtype": dtype, "range": value_range}],
        "source": {"weights": Path(cfg.weights).name, "trained": {k: ckpt[k] for k in ("step", "run") if k in ckpt},
                   "code_version": code_version()},
        "license": LICENSE,
        "description": f"{lm.task} restoration; level input in {lm.unit} units ({cfg.level_mode} mode)",
    }


def package_version() -> str:
    """This project's version: pyproject.toml's in a checkout (an editable install's metadata can be stale), else
    the installed distribution's."""
    import tomllib
    from importlib import metadata

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    try:
        return tomllib.loads(pyproject.read_text())["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        pass
    try:
        return metadata.version("levelres")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def versions(*dists: str) -> dict[str, str]:
    """Installed versions of the given distributions (absent ones are left out)."""
    from importlib import metadata

    found = {}
    for dist in dists:
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return found


def write_meta(artifact: Path, meta: dict) -> Path:
    """Write `<artifact>.meta.json`."""
    path = meta_path(artifact)
    path.write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return path


def prepare_out_dir(out_dir: Path) -> Path:
    """Create the output folder; a clear error when it cannot be written."""
    from runtimes.core.images import ensure_writable_dir

    ensure_writable_dir(out_dir)
    return out_dir


def temp_path(out_dir: Path, final: Path) -> Path:
    """A fresh temporary name in the output folder with the artifact's suffix (tools check suffixes)."""
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{final.stem}.", suffix=".tmp", dir=out_dir))
    return tmp_dir / final.name


def remove(path: Path) -> None:
    """Delete a file or folder if present."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def finalize(tmp: Path, final: Path, extra: list[Path] = ()) -> list[Path]:
    """Move the artifact, its sidecar and extra files from the temporary folder into place."""
    moved = []
    for src in [tmp, meta_path(tmp), *extra]:
        dst = final.parent / src.name
        remove(dst)
        os.replace(src, dst)
        moved.append(dst)
    remove(tmp.parent)
    return moved


def size_of(path: Path) -> int:
    """Bytes of a file or a folder (mlpackage)."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def human_size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def summary_line(result: ExportResult) -> str:
    """One line: path, size, validation result."""
    from export.validate import describe

    return f"{result.path}  {human_size(size_of(result.path))}  {describe(result.validation)}"


def run_export(cfg: ExportConfig, fmt: Format, build: Callable, validate: Callable | None,
               embed: Callable | None = None, stem: str | None = None, runner: Callable | None = None) -> ExportResult:
    """The common flow around a format's `build`, `validate` and `embed` (metadata) steps.

    Args:
        cfg: the shared options.
        fmt: the format row.
        build: `build(model, tmp_path, meta) -> list of extra files` writes the artifact (meta may be updated).
        validate: `validate(model, tmp_path, meta) -> validation dict`, or None when the runtime is absent.
        embed: `embed(tmp_path, meta)` writes the metadata into the artifact where the format has it.
        stem: file stem (default `artifact_stem(cfg)`).
        runner: `runner(tmp_path) -> a runtimes Runner (not entered)` that runs the artifact here, for the
            golden vectors' expected outputs; None (or a None result) takes them from the PyTorch export graph.
    Returns:
        The result, with the artifact renamed into place.
    """
    import errno

    from runtimes.core.images import removed_if_left_empty, write_error

    with removed_if_left_empty(cfg.out_dir):  # a failed export leaves no empty output folder behind
        try:
            return _run_export(cfg, fmt, build, validate, embed, stem, runner)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise write_error(cfg.out_dir, exc) from None
            raise


def _run_export(cfg: ExportConfig, fmt: Format, build: Callable, validate: Callable | None,
                embed: Callable | None, stem: str | None, runner: Callable | None) -> ExportResult:
    from export.validate import failed, not_validated

    model, ckpt = load_model(cfg)
    out_dir = prepare_out_dir(cfg.out_dir)
    final = out_dir / f"{stem or artifact_stem(cfg)}{fmt.suffix}"
    tmp = temp_path(out_dir, final)
    try:
        meta = base_meta(model, ckpt, cfg, fmt)
        extra = build(model, tmp, meta) or []
        write_meta(tmp, meta)
        if not cfg.validate:
            meta["validation"] = not_validated("disabled with --no-validate")
        elif validate is None:
            meta["validation"] = meta.get("validation") or not_validated("runtime not available")
        else:
            meta["validation"] = validate(model, tmp, meta)
        if failed(meta["validation"]) and not cfg.allow_mismatch:
            from export.validate import describe

            raise UserError(f"validation failed for {final.name}: {describe(meta['validation'])} "
                            "(artifact not written; --allow-mismatch keeps it)")
        if cfg.golden:
            from export.golden import write_golden

            extra = [*extra, write_golden(model, tmp, meta, cfg, runner(tmp) if runner else None)]
        if embed is not None:
            embed(tmp, meta)
        write_meta(tmp, meta)
        moved = finalize(tmp, final, extra)
    finally:
        remove(tmp.parent)
    return ExportResult(final, meta, extra_files=moved[2:])


def export_format(fmt: Format, common: ExportConfig, sizes=None, **options) -> ExportResult:
    """Export with the exporter the format table names (its `export_with`): the one dispatch over formats."""
    import importlib

    return importlib.import_module(fmt.exporter).export_with(common, sizes, **options)
