"""Measure `--level auto` on the real benchmark sets; prints markdown tables (the ones in docs/autolevel.md).

JPEG: every LIVE1_color image recompressed by OpenCV (`runtimes.core.degrade.jpeg` protocol) at each quality,
the quality recovered from the file's quantisation tables. Noise: every CBSD68 image degraded with
`runtimes.core.degrade.degrade(..., seed=image_seed(name))`, then either kept as float ("float") or clipped
and rounded to uint8 the way a user's file stores it ("uint8"), and sigma estimated on the 0-255 scale.

Usage:
    python -m runtimes.autolevel_eval --datasets ../shared/datasets
    python -m runtimes.autolevel_eval --only noise --sigmas 15 50 --methods immerkaer mad
"""

from __future__ import annotations

import argparse
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtimes.apps.autolevel import SIGMA_METHODS, estimate_sigma, jpeg_quality
from runtimes.core.degrade import degrade, image_seed
from runtimes.core.errors import CliParser, UserError, run_cli
from runtimes.core.images import list_images, read_uint8

DEFAULT_DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"


@dataclass(frozen=True)
class EvalConfig:
    """What to measure.

    Attributes:
        datasets: the folder holding test/LIVE1_color and test/CBSD68.
        qualities: JPEG qualities to recompress at.
        sigmas: noise levels (0-255 scale).
        methods: noise estimators to compare.
        only: "jpeg", "noise" or None for both.
        limit: use only the first `limit` images of each set (None: all).
    """

    datasets: Path = DEFAULT_DATASETS
    qualities: tuple[int, ...] = (10, 20, 30, 40, 50, 60, 70, 80, 90)
    sigmas: tuple[float, ...] = (5, 15, 25, 50, 75)
    methods: tuple[str, ...] = SIGMA_METHODS
    only: str | None = None
    limit: int | None = None


def opencv_jpeg_bytes(rgb_u8: np.ndarray, quality: int) -> bytes:
    """The JPEG file OpenCV writes at `quality` (colour 4:2:0), as bytes."""
    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb_u8, cv2.COLOR_RGB2BGR), [int(cv2.IMWRITE_JPEG_QUALITY), quality])
    if not ok:  # pragma: no cover - OpenCV failure
        raise RuntimeError("OpenCV failed to encode JPEG")
    return buf.tobytes()


def eval_jpeg(files: list[Path], qualities: tuple[int, ...]) -> list[dict]:
    """Per quality: images, fraction recovered exactly, max abs error."""
    from PIL import Image

    rows = []
    clean = [read_uint8(f) for f in files]
    for q in qualities:
        errs = []
        for img in clean:
            with Image.open(io.BytesIO(opencv_jpeg_bytes(img, q))) as im:
                errs.append(abs(jpeg_quality(im).quality - q))
        errs = np.asarray(errs)
        rows.append({"quality": q, "images": len(errs), "exact": float(np.mean(errs == 0)), "max_err": int(errs.max())})
    return rows


def noisy_versions(clean: np.ndarray, sigma: float, seed: int) -> dict[str, np.ndarray]:
    """The degraded image on the 0-255 scale: unclipped float, and clipped + rounded uint8."""
    noisy = degrade(clean, "denoise", sigma, seed=seed)
    return {"float": noisy * 255.0, "uint8": np.round(np.clip(noisy, 0, 1) * 255.0)}


def eval_noise(files: list[Path], sigmas: tuple[float, ...], methods: tuple[str, ...]) -> list[dict]:
    """Per (method, storage, sigma): mean and max absolute sigma error, mean signed error."""
    errs: dict[tuple, list[float]] = {}
    for f in files:
        clean = read_uint8(f)
        for sigma in sigmas:
            for storage, img in noisy_versions(clean, sigma, image_seed(f.name)).items():
                for m in methods:
                    errs.setdefault((m, storage, sigma), []).append(estimate_sigma(img, m) - sigma)
    rows = []
    for (m, storage, sigma), e in errs.items():
        e = np.asarray(e)
        rows.append({"method": m, "storage": storage, "sigma": sigma, "images": len(e),
                     "mean_abs": float(np.abs(e).mean()), "max_abs": float(np.abs(e).max()), "bias": float(e.mean())})
    return sorted(rows, key=lambda r: (r["method"], r["storage"], r["sigma"]))


def _folder(cfg: EvalConfig, name: str) -> list[Path]:
    folder = Path(cfg.datasets) / "test" / name
    if not folder.is_dir():
        raise UserError(f"{folder} not found; pass --datasets (the folder holding test/{name})")
    return list_images(folder)[: cfg.limit]


def jpeg_table(rows: list[dict]) -> str:
    lines = ["| quality | images | exact | max abs error |", "|---:|---:|---:|---:|"]
    lines += [f"| {r['quality']} | {r['images']} | {r['exact']:.0%} | {r['max_err']} |" for r in rows]
    return "\n".join(lines)


def noise_table(rows: list[dict]) -> str:
    lines = ["| estimator | stored as | sigma | images | mean abs error | max abs error | mean signed error |",
             "|---|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['method']} | {r['storage']} | {r['sigma']:g} | {r['images']} | {r['mean_abs']:.2f} | "
              f"{r['max_abs']:.2f} | {r['bias']:+.2f} |" for r in rows]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = CliParser(prog="python -m runtimes.autolevel_eval", description=__doc__.split("\n")[0])
    p.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS,
                   help="folder holding test/LIVE1_color and test/CBSD68 (default: shared/datasets beside the "
                        "project)")
    p.add_argument("--qualities", type=int, nargs="+", default=EvalConfig.qualities, help="JPEG qualities to recover")
    p.add_argument("--sigmas", type=float, nargs="+", default=EvalConfig.sigmas,
                   help="noise sigmas to estimate (0-255)")
    p.add_argument("--methods", nargs="+", choices=SIGMA_METHODS, default=SIGMA_METHODS, help="sigma estimators")
    p.add_argument("--only", choices=("jpeg", "noise"), help="run one of the two tables (default: both)")
    p.add_argument("--limit", type=int, help="use only the first N images of each set (default: all)")
    return p


def parse_args(argv: list[str] | None) -> EvalConfig:
    a = build_parser().parse_args(argv)
    if a.limit is not None and a.limit < 1:
        raise UserError(f"--limit must be >= 1 image, got {a.limit}")
    bad_q = [q for q in a.qualities if not 1 <= q <= 100]
    if bad_q:
        raise UserError(f"--qualities must be JPEG qualities 1..100, got {' '.join(map(str, bad_q))}")
    bad_s = [s for s in a.sigmas if not 0 <= s <= 255]  # nan fails too
    if bad_s:
        raise UserError(f"--sigmas must be noise levels 0..255 on the 0-255 scale, got {' '.join(map(str, bad_s))}")
    return EvalConfig(a.datasets, tuple(a.qualities), tuple(a.sigmas), tuple(a.methods), a.only, a.limit)


def main(argv: list[str] | None = None) -> int:
    def body(args):
        cfg = parse_args(args)
        if cfg.only in (None, "jpeg"):
            print("JPEG quality (LIVE1_color, OpenCV 4:2:0)\n")
            print(jpeg_table(eval_jpeg(_folder(cfg, "LIVE1_color"), cfg.qualities)) + "\n")
        if cfg.only in (None, "noise"):
            print("Noise sigma (CBSD68, runtimes.core.degrade noise, 0-255 scale)\n")
            print(noise_table(eval_noise(_folder(cfg, "CBSD68"), cfg.sigmas, cfg.methods)))
        return 0

    return run_cli(body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
