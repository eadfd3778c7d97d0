"""Validate an exported artifact against the PyTorch reference on a real image at several levels.

Levels: the neutral level (sigma 0 / quality 100 / scale 1), a training level and the maximum
training level (fixed-mode artifacts: their baked level). The image: the first of the repo's
runtimes/samples/, else the first CBSD68 test image under ../shared/datasets, else a synthetic image; the
result records which. Tolerances per precision:
    fp32          max|diff| <= 1e-4
    fp16          PSNR vs reference >= 45 dB
    int8*         PSNR vs reference >= 35 dB and <= 0.3 dB loss of restoration PSNR (degraded levels)

Usage:
    result = validate_artifact(model, run_fn, precision="fp32", sizes=[(256, 256)])
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from runtimes.core.images import IMAGE_SUFFIXES, SAMPLES_DIR, read_image
from runtimes.core.metrics import psnr

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DIRS = (SAMPLES_DIR, REPO.parent / "shared" / "datasets" / "test" / "CBSD68")
TOLERANCES = {
    "fp32": {"max_abs_diff": 1e-4},
    "fp16": {"min_psnr_vs_reference": 45.0},
    "int8-dynamic": {"min_psnr_vs_reference": 35.0, "max_restoration_loss_db": 0.3},
    "int8": {"min_psnr_vs_reference": 35.0, "max_restoration_loss_db": 0.3},
    "a16w8": {"min_psnr_vs_reference": 35.0, "max_restoration_loss_db": 0.3},  # int8 weights set the error
}
DEFAULT_SIZE = (256, 256)


def not_validated(reason: str) -> dict:
    """A validation record for an artifact that could not be run here (never 'passed')."""
    return {"status": f"not validated: {reason}"}


def failed(result: dict) -> bool:
    return result.get("status") == "failed"


def describe(result: dict) -> str:
    """A short human summary of a validation record."""
    status = result.get("status", "not validated")
    if status not in ("passed", "failed"):
        return status
    if "error" in result:
        return f"validation {status} ({result['error']})"
    parts = [f"{len(result['checks'])} checks at levels {', '.join(f'{x:g}' for x in result['levels'])}"]
    if "max_abs_diff" in result:
        parts.append(f"max|diff| {result['max_abs_diff']:.2e}")
    parts.append(f"min PSNR vs reference {result['min_psnr_vs_reference']:.1f} dB")
    if result.get("max_restoration_loss_db") is not None:
        parts.append(f"restoration loss {result['max_restoration_loss_db']:.2f} dB")
    return f"validation {status} ({'; '.join(parts)})"


def validation_levels(level_map, fixed_level: float | None = None) -> list[float]:
    """Neutral, a middle training level and the strongest training level (or the baked level)."""
    if fixed_level is not None:
        return [float(fixed_level)]
    trained = sorted(level_map.train_levels, key=level_map.strength)
    middle = trained[(len(trained) - 1) // 2] if len(trained) > 1 else trained[0]
    levels = [level_map.neutral, middle, trained[-1]]
    return list(dict.fromkeys(float(x) for x in levels))


def reference_image() -> tuple[np.ndarray, str]:
    """The validation image (H, W, 3) float32 and where it came from."""
    for folder in SAMPLE_DIRS:
        if folder.is_dir():
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if files:
                return read_image(files[0], quiet=True), os.path.relpath(files[0], REPO)
    return synthetic_image(321, 481), "synthetic (gradients and edges; no sample image found)"


def synthetic_image(h: int, w: int) -> np.ndarray:
    """A deterministic image with smooth gradients, edges and texture."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 0.5 + 0.4 * np.sin(xx / 17.0) * np.cos(yy / 23.0)
    g = (xx + yy) / (h + w)
    b = ((xx // 32 + yy // 32) % 2).astype(np.float32) * 0.6 + 0.2
    return np.clip(np.stack([r, g, b], axis=2), 0, 1).astype(np.float32)


def fit(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Centre-crop, or mirror-pad, an image to (h, w)."""
    ih, iw = img.shape[:2]
    if ih < h or iw < w:
        ph, pw = max(0, h - ih), max(0, w - iw)
        img = np.pad(img, ((0, ph), (0, pw), (0, 0)), mode="symmetric")
        ih, iw = img.shape[:2]
    top, left = (ih - h) // 2, (iw - w) // 2
    return np.ascontiguousarray(img[top:top + h, left:left + w])


def reference_outputs(model, degraded: np.ndarray, level: float) -> np.ndarray:
    """The PyTorch reference restoration (H, W, 3) of one degraded image."""
    import torch

    with torch.no_grad():
        x = torch.from_numpy(degraded.transpose(2, 0, 1)[None].copy())
        return model(x, torch.tensor([float(level)])).numpy()[0].transpose(1, 2, 0)


def validate_artifact(model, run: Callable[[np.ndarray, float, tuple[int, int]], np.ndarray], precision: str,
                      sizes: list[tuple[int, int]] | None = None, fixed_level: float | None = None,
                      io: str = "float") -> dict:
    """Compare an artifact with the reference.

    Args:
        model: the loaded `LevelNet` (reference).
        run: `run(image_hwc, level, size) -> restored_hwc`, running the artifact in its runtime.
        precision: the artifact's precision (selects the tolerance).
        sizes: image sizes to check (one per TFLite signature); None checks one 256x256 crop.
        fixed_level: the baked level of a fixed-mode artifact.
        io: "uint8" for 0-255 artifacts: the degraded input is rounded to 8 bits for both (what a camera
            gives), and fp32 allows one code value of difference (rounding the output).
    Returns:
        The validation record (status passed/failed, per-check numbers, image source).
    """
    from runtimes.core.degrade import degrade, image_seed

    clean_full, source = reference_image()
    levels = validation_levels(model.level_map, fixed_level)
    tol = dict(TOLERANCES[precision])
    if io == "uint8" and "max_abs_diff" in tol:
        tol["max_abs_diff"] = 1.0 / 255.0 + tol["max_abs_diff"]
    checks = []
    for h, w in sizes or [DEFAULT_SIZE]:
        clean = fit(clean_full, h, w)
        for level in levels:
            degraded = degrade(clean, model.level_map.task, level, seed=image_seed(source)).astype(np.float32)
            if io == "uint8":
                degraded = np.clip(np.rint(degraded * 255.0), 0, 255).astype(np.float32) / 255.0
            ref = reference_outputs(model, degraded, level)
            if io == "uint8":  # what the reference gives as bytes: clamped and rounded
                ref = np.clip(np.rint(ref * 255.0), 0, 255).astype(np.float32) / 255.0
            out = np.asarray(run(degraded, level, (h, w)), dtype=np.float32)
            checks.append(_check(clean, ref, out, level, (h, w), model.level_map.strength(level) > 0))
    return _summarise(checks, levels, precision, tol, source)


def _check(clean, ref, out, level, size, degraded: bool) -> dict:
    diff = float(np.max(np.abs(out - ref))) if np.all(np.isfinite(out)) else float("inf")
    row = {"level": level, "size": list(size), "max_abs_diff": diff, "psnr_vs_reference": psnr(out, ref)}
    if degraded:
        ref_p, out_p = psnr(ref, clean), psnr(out, clean)
        row.update(restoration_psnr_reference=ref_p, restoration_psnr_artifact=out_p, restoration_loss_db=ref_p - out_p)
    return row


def _summarise(checks: list[dict], levels: list[float], precision: str, tol: dict, source: str) -> dict:
    worst_diff = max(c["max_abs_diff"] for c in checks)
    worst_psnr = min(c["psnr_vs_reference"] for c in checks)
    losses = [c["restoration_loss_db"] for c in checks if "restoration_loss_db" in c]
    worst_loss = max(losses) if losses else None
    ok = True
    if "max_abs_diff" in tol:
        ok &= worst_diff <= tol["max_abs_diff"]
    if "min_psnr_vs_reference" in tol:
        ok &= worst_psnr >= tol["min_psnr_vs_reference"]
    if "max_restoration_loss_db" in tol and worst_loss is not None:
        ok &= worst_loss <= tol["max_restoration_loss_db"]
    return {"status": "passed" if ok else "failed", "precision": precision, "tolerance": tol, "image": source,
            "levels": levels, "max_abs_diff": worst_diff, "min_psnr_vs_reference": worst_psnr,
            "max_restoration_loss_db": worst_loss, "checks": checks}


def validate_with(runner, model, meta: dict, sizes: list[tuple[int, int]] | None = None) -> dict:
    """Enter a (not yet entered) runner and validate through it; a runtime that cannot load or run the
    artifact is a failed validation with the runtime's first error line, not a crash."""
    from runtimes.core.errors import UserError

    try:
        with runner:
            return validate_runner(model, runner, meta, sizes)
    except UserError:
        raise
    except Exception as exc:  # each runtime raises its own types for graphs it cannot prepare
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1].strip()
        return {"status": "failed", "error": f"{getattr(runner, 'name', 'the runtime')} cannot run it: {first}",
                "precision": meta.get("precision")}


def validate_runner(model, runner, meta: dict, sizes: list[tuple[int, int]] | None = None) -> dict:
    """Validate through an entered `runtimes` Runner (image layout and level handling per the metadata)."""
    from runtimes.core.artifact import decode_output, encode_image

    def run(img: np.ndarray, level: float, size) -> np.ndarray:
        x = encode_image(meta, img.transpose(2, 0, 1)[None])
        out = runner.run({"image": x, "level": np.array([level], np.float32)})["restored"]
        return decode_output(meta, out)[0].transpose(1, 2, 0)

    result = validate_artifact(model, run, meta["precision"], sizes=sizes, fixed_level=meta.get("fixed_level"),
                               io=meta.get("io", "float"))
    result["runtime"] = runner.name
    return result
