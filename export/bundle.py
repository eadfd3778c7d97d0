"""Make a self-contained folder per target: the artifacts (exported here), their metadata, the sample images, the
runtimes/ and devices/ Python files the on-device script imports, and a run.sh. Copy the folder to the device
(or, for Android, keep it on the workstation next to adb) and run `sh run.sh`.

Bundling runs on a workstation with torch: the exporters (export/) are imported inside `make_bundle` only, so
devices/ itself never imports torch.

Usage:
    python -m devices.bundle --weights denoise-mobile -o bundle/ --target jetson
    python -m devices.bundle --weights W.safetensors -o bundle/          # every target, one subfolder each
"""

from __future__ import annotations

import argparse
import ast
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from runtimes.core.cli import SizesAction
from runtimes.core.errors import CliParser, UserError, doc_summary, run_cli
from runtimes.core.formats import FORMATS
from runtimes.core.images import ensure_writable_dir
from runtimes.runners.trt_targets import JETPACK, resolve_target

REPO = Path(__file__).resolve().parents[1]
FORMAT = {"jetson": FORMATS["tensorrt"], "android": FORMATS["tflite"], "ios": FORMATS["coreml"]}  # target -> format
TARGETS = tuple(FORMAT)
DEFAULT_PRECISION = {target: fmt.default_precision for target, fmt in FORMAT.items()}
# the runner modules each target's script uses: its format's, and onnxruntime for the Jetson's --local stand-in
RUNNERS = {target: (fmt.runner.split(":")[0],) for target, fmt in FORMAT.items()}
RUNNERS["jetson"] += (FORMATS["onnx"].runner.split(":")[0],)
NEVER_SHIPPED = ("train.reference",)
# shipped to every target: `python3 -m runtimes.golden models/<artifact>`
TOOLS = ("runtimes.golden", "runtimes.apps.golden")
# Python 3.8 or newer (JetPack 5's system Python); every module the bundled code imports is here, or is
# named in tests/devices/test_bundle.py as one the device scripts never reach.
_COMMON = ("numpy\npillow\nopencv-python-headless  # JPEG/SR degradations, 16-bit colour images\n"
           "tqdm  # progress bars\n# matplotlib  # only with --plots\n")
REQUIREMENTS = {
    "jetson": _COMMON + "cuda-python  # engine buffers; TensorRT itself comes with JetPack (python3-libnvinfer)\n"
                        "onnxruntime  # only for --local\n",
    "android": _COMMON + "ai-edge-litert  # host accuracy and --local (or tflite-runtime, with numpy<2)\n",
    "ios": _COMMON + "coremltools\n",
}


@dataclass(frozen=True)
class BundleConfig:
    """What to bundle.

    Attributes:
        weights: checkpoint or shipped weight-set name.
        out_dir: the bundle folder (one subfolder per target when `target` is None).
        target: jetson, android, ios, or None for all three.
        precision: artifact precision; None: fp16 for jetson and ios, fp32 for android.
        tflite_sizes: the TFLite signatures (fixed sizes) for android.
        validate: validate each export against the PyTorch reference.
        calibration: folder of calibration images for the calibrated precisions (int8, and a16w8 for android).
        trt_version: the Jetson's TensorRT (8.5, 8.6, 10, 11); None: from `jetpack`, else 10.
        jetpack: the Jetson's JetPack release (5, 6.0, 6.1, 6.2), an alternative to trt_version.
    """

    weights: str
    out_dir: Path
    target: str | None = None
    precision: str | None = None
    tflite_sizes: tuple[tuple[int, int], ...] = ((256, 256), (720, 1280))
    validate: bool = True
    calibration: Path | None = None
    trt_version: str | None = None
    jetpack: str | None = None


def module_file(name: str) -> Path:
    """The source file of a project module ('runtimes.apps.bench' -> runtimes/apps/bench.py; a package ->
    its __init__.py)."""
    base = REPO.joinpath(*name.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def imported_project_modules(path: Path) -> set[str]:
    """runtimes.* and devices.* modules a file imports anywhere (module level or inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return {n for n in names if n.split(".")[0] in ("runtimes", "devices") and module_file(n).is_file()}


def code_closure(target: str) -> list[str]:
    """Every project module the target's script needs on the device (its runners included), sorted."""
    todo = [f"devices.{target}.__main__", f"devices.{target}.profiles", *RUNNERS[target], *TOOLS]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or name in NEVER_SHIPPED:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # the parent packages
        todo += sorted(imported_project_modules(module_file(name)))
    return sorted(seen)


def copy_code(target: str, dest: Path) -> list[str]:
    """Copy the target's modules into `dest`, keeping the package layout; returns the relative paths."""
    rels = []
    for name in code_closure(target):
        rel = module_file(name).relative_to(REPO)
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, dest / rel)
        rels.append(str(rel))
    return rels


def copy_samples(dest: Path) -> list[str]:
    from runtimes.core.images import IMAGE_SUFFIXES, SAMPLES_DIR

    src = SAMPLES_DIR
    (dest / "samples").mkdir(parents=True, exist_ok=True)
    files = [p for p in sorted(src.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES or p.name == "README.md"]
    for p in files:
        shutil.copy2(p, dest / "samples" / p.name)
    return [f"samples/{p.name}" for p in files]


def export_artifact(target: str, cfg: BundleConfig, models: Path):
    """Export the target's artifact with the exporters' library functions (imports export/ and torch here).

    Android gets the camera artifact that docs/embedding.md tells apps to ship: uint8 0-255 in and out, (N, H, W, 3).
    """
    from export.base import ExportConfig, export_format

    camera = {"nhwc": True, "io": "uint8"} if target == "android" else {}
    common = ExportConfig(weights=cfg.weights, out_dir=models, precision=cfg.precision or DEFAULT_PRECISION[target],
                          validate=cfg.validate, calibration=Path(cfg.calibration) if cfg.calibration else None,
                          **camera)
    options = {"target_version": cfg.trt_version, "jetpack": cfg.jetpack} if target == "jetson" else {}
    fmt = FORMAT[target]
    return export_format(fmt, common, cfg.tflite_sizes if fmt.fixed_size else None, **options)


def run_script(target: str, artifact: str, precision: str) -> str:
    """run.sh: the target's command with the bundle's artifact and samples (extra arguments pass through)."""
    cmd = {
        "jetson": f'python3 -m devices.jetson --model "models/{artifact}" --precision {precision} --set samples '
                  '--json results/bench.json "$@"',
        "android": f'python3 -m devices.android --model "models/{artifact}" '
                   '--benchmark-binary "${BENCHMARK_MODEL:-./benchmark_model}" --delegates cpu xnnpack gpu nnapi '
                   '--threads 4 --set samples --json results/bench.json "$@"',
        "ios": f'python3 -m devices.ios --model "models/{artifact}" --compute-units all cpu_only cpu_and_gpu '
               'cpu_and_ne --set samples --json results/bench.json "$@"',
    }[target]
    where = {"jetson": "on the Jetson", "android": "on the workstation the phone is plugged into (adb)",
             "ios": "on a Mac"}[target]
    return "\n".join(["#!/bin/sh", f"# Run {where}; add --dry-run to print the commands, --local for the stand-in.",
                      "set -e", 'cd "$(dirname "$0")"', "mkdir -p results", f"exec {cmd}", ""])


def golden_command(target: str, artifact: str, precision: str) -> str:
    """The command that checks the artifact's golden vectors on the device (Jetson: on the engine run.sh builds)."""
    if target == "jetson":
        stem = artifact.rsplit(".", 1)[0]
        return f"python3 -m runtimes.golden models/{artifact} --model results/{stem}-{precision}.engine"
    return f"python3 -m runtimes.golden models/{artifact}"


def make_target(target: str, cfg: BundleConfig, dest: Path) -> dict:
    """One target's bundle in `dest`; returns its manifest."""
    dest.mkdir(parents=True, exist_ok=True)
    result = export_artifact(target, cfg, dest / "models")
    artifact = result.path.name
    files = [str(p.relative_to(dest)) for p in sorted((dest / "models").rglob("*")) if p.is_file()]
    precision = cfg.precision or DEFAULT_PRECISION[target]
    (dest / "run.sh").write_text(run_script(target, artifact, precision))
    (dest / "run.sh").chmod(0o755)
    (dest / "requirements.txt").write_text(REQUIREMENTS[target])
    manifest = {"target": target, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "weights": Path(cfg.weights).name,
                "artifact": f"models/{artifact}", "precision": precision,
                "validation": result.validation.get("status"), "notes": result.notes, "models": files,
                "code": copy_code(target, dest), "samples": copy_samples(dest), "run": "sh run.sh",
                "golden": golden_command(target, artifact, precision),
                "docs": "docs/devices.md of the project"}
    (dest / "bundle.json").write_text(json.dumps(manifest, indent=1, default=str) + "\n")
    return manifest


def target_precisions(target: str) -> tuple[str, ...]:
    """The precisions the target's exporter makes (the format table's row)."""
    return FORMAT[target].precisions


def check_options(cfg: BundleConfig, targets: tuple[str, ...]) -> None:
    """Precision and calibration against every target, before anything is exported or written."""
    from export.base import FULL_INTEGER, check_calibration

    for target in targets:
        precision = cfg.precision or DEFAULT_PRECISION[target]
        allowed = target_precisions(target)
        if precision not in allowed:
            others = [t for t in TARGETS if precision in target_precisions(t)]
            hint = f"; or bundle only --target {' or --target '.join(others)}" if others and len(targets) > 1 else ""
            raise UserError(f"--precision {precision} is not available for {target}: choose one of "
                            f"{', '.join(allowed)}{hint}")
    if cfg.precision in FULL_INTEGER and cfg.calibration is None:
        raise UserError(f"--precision {cfg.precision} needs --calibration IMAGE_DIR (a folder of representative "
                        "images)")
    check_calibration(Path(cfg.calibration) if cfg.calibration else None)


def make_bundle(cfg: BundleConfig) -> list[dict]:
    """Bundle one target into `out_dir`, or every target into `out_dir/<target>`."""
    if cfg.target is not None and cfg.target not in TARGETS:
        raise UserError(f"unknown target {cfg.target!r}; choose one of {', '.join(TARGETS)}")
    targets = (cfg.target,) if cfg.target else TARGETS
    check_options(cfg, targets)
    ensure_writable_dir(cfg.out_dir.parent)
    out = []
    for target in targets:
        dest = cfg.out_dir if cfg.target else cfg.out_dir / target
        out.append(_build_then_move(target, cfg, dest))
    return out


def _build_then_move(target: str, cfg: BundleConfig, dest: Path) -> dict:
    """Build the bundle in a hidden sibling folder, then move its entries into `dest`.

    A failed export leaves `dest` as it was; a rebuilt bundle replaces its own files and keeps the
    rest of the folder (the device's `results/`).
    """
    ensure_writable_dir(dest.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        manifest = make_target(target, cfg, tmp)
        dest.mkdir(exist_ok=True)
        for item in sorted(tmp.iterdir()):
            old = dest / item.name
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old)
            elif old.exists() or old.is_symlink():
                old.unlink()
            item.rename(old)
        return manifest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def build_parser() -> argparse.ArgumentParser:
    p = CliParser(prog="python -m devices.bundle", description=doc_summary(__doc__))
    p.add_argument("--weights", required=True, help="checkpoint (.safetensors) or shipped weight-set name")
    p.add_argument("-o", "--out", type=Path, default=Path("bundle"), help="bundle folder (default bundle/)")
    p.add_argument("--target", choices=TARGETS, default=None, help="one target (default: all, one subfolder each)")
    p.add_argument("--precision", default=None, help="artifact precision (default fp16 jetson/ios, fp32 android)")
    p.add_argument("--sizes", "--tflite-sizes", action=SizesAction, default=None,
                   help="android: TFLite signature sizes HxW,HxW (default 256x256,720x1280)")
    p.add_argument("--calibration", type=Path, default=None,
                   help="folder of calibration images for --precision int8 (jetson, android) or a16w8 (android)")
    p.add_argument("--no-validate", action="store_true", help="skip validating the exports")
    p.add_argument("--trt-version", default=None, help="jetson: the board's TensorRT (8.5, 8.6, 10, 11; default 10)")
    p.add_argument("--jetpack", default=None, choices=tuple(JETPACK), help="jetson: the JetPack release instead")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    resolve_target(args.trt_version, args.jetpack)  # a bad target fails before any export
    cfg = BundleConfig(weights=args.weights, out_dir=args.out, target=args.target, precision=args.precision,
                       tflite_sizes=tuple(args.sizes) if args.sizes else BundleConfig.tflite_sizes,
                       validate=not args.no_validate, calibration=args.calibration, trt_version=args.trt_version,
                       jetpack=args.jetpack)
    for m in make_bundle(cfg):
        status = str(m["validation"])
        status = status if status.startswith("not validated") else f"validation {status}"
        print(f"{m['target']}: {m['artifact']} ({m['precision']}, {status}), "
              f"{len(m['code'])} code files, {len(m['samples'])} samples; run: sh run.sh")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
