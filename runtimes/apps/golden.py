"""Golden vectors: a small input, its level(s) and the expected output, written beside every artifact, so that an
app can prove its integration of the model byte by byte (numpy-only).

`<artifact>.golden/` holds:
    golden.json       what the files are (dtype, shape, layout, byte order, sha256), the level of each case, the
                      tolerance for the artifact's precision, and the pre- and post-processing in words
    input.bin         the image exactly as the artifact takes it (raw C-order array, little-endian)
    input.png         the same image as an 8-bit RGB PNG (float inputs are its bytes / 255, exactly)
    expected_<i>.bin  the artifact's output for case i (a case whose output equals the input names input.bin)

Usage:
    python -m runtimes.golden out/dn-folded-fp32.tflite          # run the artifact's own runner on its goldens
    python -m runtimes.golden out/dn.golden --model out/dn.engine  # another file of the same model (an engine)
    report = check_runner(runner, load_golden("out/dn-folded-fp32.tflite"))
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtimes.core.errors import UserError

FORMAT = "levelres-golden"
FORMAT_VERSION = 1
SUFFIX = ".golden"
SPEC_FILE = "golden.json"
# per precision: the largest |output - expected| (float units, or code values for uint8 I/O) and/or the lowest PSNR
# (dB, on the 0-1 scale); a CPU run of the same file normally matches far closer
TOLERANCES = {
    "fp32": {"max_abs_diff": 1e-4},
    "fp16": {"min_psnr_db": 45.0},
    "int8-dynamic": {"min_psnr_db": 35.0},
    "int8": {"min_psnr_db": 35.0},
    "a16w8": {"min_psnr_db": 35.0},
}


def golden_dir(path: str | Path) -> Path:
    """The golden folder of an artifact (`<artifact>.golden`); a golden folder itself is returned as it is."""
    path = Path(path)
    return path if path.name.endswith(SUFFIX) else path.with_name(path.name + SUFFIX)


def tolerance_for(precision: str, io: str) -> dict:
    """The comparison tolerance for an artifact of this precision and image type (uint8: code values)."""
    if precision not in TOLERANCES:
        raise UserError(f"no golden tolerance for precision {precision!r}; choose one of {', '.join(TOLERANCES)}")
    tol = dict(TOLERANCES[precision])
    if io == "uint8" and "max_abs_diff" in tol:
        tol["max_abs_diff"] = 1.0  # one code value: rounding x*255 may land either side of .5
    return tol


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def array_bytes(arr: np.ndarray) -> bytes:
    """The raw C-order, little-endian bytes of an array."""
    return np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()


@dataclass(frozen=True)
class Golden:
    """A loaded golden folder."""

    folder: Path
    spec: dict
    image: np.ndarray
    expected: tuple[np.ndarray, ...]

    @property
    def cases(self) -> list[dict]:
        return self.spec["cases"]

    @property
    def tolerance(self) -> dict:
        return self.spec["tolerance"]


def _read_array(folder: Path, entry: dict) -> np.ndarray:
    path = folder / entry["file"]
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read golden file {path}: {exc.strerror or exc}") from None
    if sha256(data) != entry["sha256"]:
        raise UserError(f"{path} does not match the sha256 in {SPEC_FILE}: the file is damaged; re-export the model")
    dtype = np.dtype(entry["dtype"]).newbyteorder("<")
    count = int(np.prod(entry["shape"]))
    if len(data) != count * dtype.itemsize:
        raise UserError(f"{path} holds {len(data)} bytes, not {entry['shape']} {entry['dtype']}; re-export the model")
    return np.frombuffer(data, dtype=dtype).reshape(entry["shape"]).astype(dtype.newbyteorder("="))


def load_golden(path: str | Path) -> Golden:
    """Read an artifact's golden folder (or the folder itself); a one-line error when it is absent or damaged."""
    folder = golden_dir(path)
    spec_path = folder / SPEC_FILE
    if not spec_path.is_file():
        raise UserError(f"no golden vectors at {folder} (exported before 0.2.0, or with --no-golden); re-export "
                        "the model")
    try:
        spec = json.loads(spec_path.read_text())
        if spec.get("format") != FORMAT:
            raise ValueError(f"format is {spec.get('format')!r}, not {FORMAT!r}")
        image = _read_array(folder, spec["input"])
        expected = tuple(_read_array(folder, case["expected"]) for case in spec["cases"])
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{spec_path} is malformed ({exc}); re-export the model") from None
    return Golden(folder, spec, image, expected)


def compare(got: np.ndarray, expected: np.ndarray, tolerance: dict, io: str) -> dict:
    """{max_abs_diff, psnr_db, passed} of one output against its expected array."""
    got = np.asarray(got)
    if got.shape != expected.shape:
        return {"passed": False, "error": f"output shape {list(got.shape)} != expected {list(expected.shape)}"}
    if got.dtype != expected.dtype:
        return {"passed": False, "error": f"output dtype {got.dtype} != expected {expected.dtype}"}
    a, b = got.astype(np.float64), expected.astype(np.float64)
    if not np.all(np.isfinite(a)):
        return {"passed": False, "error": "output holds NaN or inf"}
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    scale = 255.0 if io == "uint8" else 1.0
    mse = float(np.mean(((a - b) / scale) ** 2)) if a.size else 0.0
    psnr = float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))
    ok = diff <= tolerance.get("max_abs_diff", float("inf")) and psnr >= tolerance.get("min_psnr_db", -float("inf"))
    return {"passed": bool(ok), "max_abs_diff": diff, "psnr_db": psnr}


def check_golden(run: Callable[[np.ndarray, float | None], np.ndarray], golden: Golden) -> dict:
    """Run every case and compare with its expected output.

    Args:
        run: `run(image, level_or_None) -> restored`, with arrays in the artifact's layout and type.
        golden: the loaded golden folder.
    Returns:
        {"passed", "cases": [{"level", "passed", "max_abs_diff", "psnr_db"}], "tolerance"}.
    """
    io = golden.spec["io"]
    rows = []
    for case, want in zip(golden.cases, golden.expected):  # noqa: B905 (device code runs on Python 3.8)
        got = run(golden.image.copy(), case["level"] if case["feed_level"] else None)
        rows.append({"level": case["level"], **compare(got, want, golden.tolerance, io)})
    return {"passed": all(r["passed"] for r in rows), "cases": rows, "tolerance": golden.tolerance}


def check_runner(runner, golden: Golden) -> dict:
    """Check an entered artifact runner (its `run` takes the artifact's arrays by name)."""
    def run(image, level):
        feed = {"image": image} if level is None else {"image": image, "level": np.array([level], np.float32)}
        return runner.run(feed)["restored"]

    return {**check_golden(run, golden), "runtime": getattr(runner, "name", type(runner).__name__)}


def check_reference(runner, golden: Golden) -> dict:
    """Check an entered float NCHW reference runner (train.reference) against an artifact's goldens: the input is
    decoded to float32 NCHW [0, 1], and the output encoded back to the artifact's layout and type."""
    from runtimes.core.artifact import decode_output, encode_image

    meta = {"layout": golden.spec["layout"], "io": golden.spec["io"]}

    def run(image, level):
        x = decode_output(meta, image)
        level = golden.cases[0]["level"] if level is None else level  # a fixed artifact's baked level
        out = runner.run({"image": x, "level": np.array([level], np.float32)})["restored"]
        return encode_image(meta, out)

    return {**check_golden(run, golden), "runtime": getattr(runner, "name", type(runner).__name__)}


def describe(report: dict) -> str:
    """One line per check: passed/failed with the worst numbers."""
    worst = max((c.get("max_abs_diff", float("inf")) for c in report["cases"]), default=0.0)
    low = min((c.get("psnr_db", -float("inf")) for c in report["cases"]), default=float("inf"))
    errors = [c["error"] for c in report["cases"] if "error" in c]
    status = "passed" if report["passed"] else "FAILED"
    detail = errors[0] if errors else f"max|diff| {worst:.3g}, min PSNR {low:.1f} dB"
    return f"golden {status}: {len(report['cases'])} cases on {report.get('runtime', '?')} ({detail}; " \
           f"tolerance {report['tolerance']})"


def build_parser() -> argparse.ArgumentParser:
    from runtimes.core.cli import thread_count
    from runtimes.core.errors import CliParser, doc_summary

    p = CliParser(prog="python -m runtimes.golden", description=doc_summary(__doc__))
    p.add_argument("artifact", type=Path, help="the artifact (its .golden folder beside it), or the .golden folder")
    p.add_argument("--model", type=Path, default=None,
                   help="run this file instead (e.g. the engine built from a TensorRT ONNX); default: the artifact")
    p.add_argument("--threads", type=thread_count, default=2, help="runtime threads (default 2)")
    return p


def main(argv: list[str] | None = None) -> int:
    from runtimes.runners.factory import enter_runner, load_runner

    args = build_parser().parse_args(argv)
    golden = load_golden(args.artifact)
    model = args.model or golden.folder.with_name(golden.spec["artifact"])
    runner = enter_runner(load_runner(model, threads=args.threads)[0], model)
    try:
        report = check_runner(runner, golden)
    finally:
        runner.__exit__(None, None, None)
    print(describe(report))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    from runtimes.core.errors import run_cli

    raise SystemExit(run_cli(main))
