"""Benchmark reports: the flat table (markdown, CSV), the JSON document, and matplotlib plots.

Usage:
    rows = flat_rows(records)
    print(markdown_table(rows))
    write_reports(doc, Path("out/bench.json"), plots=True)
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from runtimes.core.errors import UserError
from runtimes.core.images import atomic_write_bytes, check_output_file, json_bytes

SCHEMA = "levelres-bench/1"
COLUMNS = [  # (key in a flat row, markdown header, format)
    ("name", "model", "{}"), ("format", "format", "{}"), ("precision", "precision", "{}"),
    ("runner", "runner", "{}"), ("level", "level", "{:g}"), ("protocol", "input", "{}"), ("size", "size", "{}"),
    ("psnr", "PSNR dB", "{:.2f}"), ("ssim", "SSIM", "{:.4f}"), ("input_psnr", "input PSNR", "{:.2f}"),
    ("parity_psnr", "parity dB", "{:.2f}"), ("p50_ms", "p50 ms", "{:.1f}"), ("p90_ms", "p90 ms", "{:.1f}"),
    ("p99_ms", "p99 ms", "{:.1f}"), ("mean_ms", "mean ms", "{:.1f}"), ("throughput_mps", "MP/s", "{:.2f}"),
    ("init_ms", "init ms", "{:.1f}"), ("first_ms", "first ms", "{:.1f}"), ("peak_memory_mb", "peak RSS MB", "{:.0f}"),
    ("timed", "timed", "{}"),
]


def flat_rows(records: list[dict]) -> list[dict]:
    """One row per (artifact, level, latency size): the accuracy at that level beside the latency."""
    rows = []
    for rec in records:
        base = {k: rec[k] for k in ("name", "format", "precision", "runner", "init_ms", "peak_memory_mb")}
        for acc in rec["accuracy"]:
            lats = [lat for lat in rec["latency"] if lat["level"] == acc["level"]] or [None]
            for lat in lats:
                row = {**base, "level": acc["level"], "protocol": acc.get("protocol", "float"),
                       "channels": acc["channels"], "psnr": acc["psnr"],
                       "ssim": acc["ssim"], "input_psnr": acc["input_psnr"], "parity_psnr": acc["parity_psnr"]}
                if lat is not None:
                    h, w = lat["size"]
                    row.update({"size": f"{h}x{w}" + (" tiled" if lat["tiled"] else ""), "timed": lat["timed"]})
                    row.update({k: lat[k] for k in ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "throughput_mps",
                                                    "first_ms", "n")})
                rows.append(row)
    return rows


def _cell(value, fmt: str) -> str:
    if value is None:
        return "n/a"
    return fmt.format(value)


def markdown_table(rows: list[dict]) -> str:
    """The benchmark as one markdown table (missing values shown as n/a)."""
    lines = ["| " + " | ".join(h for _, h, _ in COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(k), f) for k, _, f in COLUMNS) + " |")
    return "\n".join(lines)


def markdown_report(doc: dict) -> str:
    """The table with a short header: machine, threads, what was timed, how memory was measured."""
    m = doc["machine"]
    methods = sorted({r["memory_method"] for r in doc["results"]})
    lines = [
        f"# Benchmark ({doc['created']})", "",
        f"- machine: {m['cpu']}, {m['usable_cores']} usable cores, {m['os']}, Python {m['python']}",
        f"- threads: {m['threads'] if m['threads'] is not None else 'runtime defaults'}; "
        f"libraries: {', '.join(f'{k} {v}' for k, v in m['libraries'].items())}",
        f"- images: {doc['config']['images']} ({doc['config']['n_images']} images); metrics per the datasets' "
        "protocol (RGB for denoise, Y for sr/dejpeg)",
        "- latency: warm-up excluded, time.perf_counter; 'compute' = the runner's run() on prepared inputs, "
        "'end-to-end' = tiling and blending included (fixed-size artifacts on other sizes)",
        "- input: 'float' = the datasets' protocol (noise added in float, not clipped); 'clipped' = camera-realistic "
        "(noise added, clipped to 0-255, rounded to 8 bits; the same pixels as float for JPEG and SR)",
        f"- peak memory: {'; '.join(methods) or 'n/a'}",
        f"- parity: PSNR vs the torch reference ({doc['config']['reference'] or 'not given: n/a'})", "",
        markdown_table(flat_rows(doc["results"])), "",
    ]
    return "\n".join(lines)


def csv_text(rows: list[dict]) -> str:
    """The flat rows as CSV (every column, raw numbers)."""
    keys = [k for k, _, _ in COLUMNS] + ["channels", "n"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k) for k in keys})
    return buf.getvalue()


def report_paths(json_path: Path) -> dict[str, Path]:
    """Where each report goes, beside the JSON: <stem>.csv, <stem>.md, <stem>_psnr.png, <stem>_latency.png."""
    stem = json_path.with_suffix("")
    return {"json": json_path, "csv": stem.with_suffix(".csv"), "md": stem.with_suffix(".md"),
            "psnr_png": stem.with_name(stem.name + "_psnr.png"),
            "latency_png": stem.with_name(stem.name + "_latency.png")}


def check_report_paths(json_path: Path) -> None:
    """Refuse, before any work, a report path not ending in .json (its CSV or markdown sibling would overwrite it)
    and report paths that are folders."""
    if json_path.suffix.lower() != ".json":
        raise UserError(f"--json {json_path}: the report path must end in .json (the CSV, markdown and plots "
                        "are written beside it under the same stem)")
    for what, path in report_paths(json_path).items():
        check_output_file(path, f"{what} report")


def write_reports(doc: dict, json_path: Path, plots: bool = True) -> dict[str, Path]:
    """Write JSON, CSV, markdown and (optionally) the two PNG plots; returns the paths written."""
    paths = report_paths(json_path)
    rows = flat_rows(doc["results"])
    atomic_write_bytes(paths["json"], json_bytes(doc))
    atomic_write_bytes(paths["csv"], csv_text(rows).encode())
    atomic_write_bytes(paths["md"], markdown_report(doc).encode())
    if not plots:
        return {k: paths[k] for k in ("json", "csv", "md")}
    atomic_write_bytes(paths["psnr_png"], plot_psnr(doc["results"]))
    atomic_write_bytes(paths["latency_png"], plot_latency(doc["results"]))
    return paths


def _pyplot():
    from runtimes.core.errors import require

    mpl = require("matplotlib", "plots")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def _by_protocol(rec: dict) -> dict[str, list[dict]]:
    """A record's accuracy rows per input protocol, each sorted by level."""
    out: dict[str, list[dict]] = {}
    for acc in sorted(rec["accuracy"], key=lambda a: a["level"]):
        out.setdefault(acc.get("protocol", "float"), []).append(acc)
    return out


def plot_psnr(records: list[dict]) -> bytes:
    """PSNR vs level, one line per artifact and input protocol, and the degraded input (grey, dashed, x markers:
    visible with a single level too)."""
    from runtimes.core.metrics import PSNR_CAP

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    shown = lambda v: float("nan") if v is None or v >= PSNR_CAP else v  # noqa: E731  (identical images)
    protocols = {p for rec in records for p in _by_protocol(rec)}
    tag = (lambda p: f" ({p} input)") if len(protocols) > 1 else (lambda p: "")
    styles = {"float": "-", "clipped": ":"}
    for rec in records:
        for protocol, acc in _by_protocol(rec).items():
            ax.plot([a["level"] for a in acc], [shown(a["psnr"]) for a in acc], marker="o",
                    ls=styles.get(protocol, "-"), label=rec["name"] + tag(protocol))
    if records:
        for protocol, acc in _by_protocol(records[0]).items():
            ax.plot([a["level"] for a in acc], [shown(a["input_psnr"]) for a in acc], ls="--", marker="x",
                    c="grey" if protocol == "float" else "black", label="degraded input" + tag(protocol))
        ax.set_xlabel(f"level ({records[0]['unit']})")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(f"Restoration PSNR vs level (exact {PSNR_CAP:g} dB points omitted)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def _median_of(lats: list[dict], key: str, default: float = float("nan")) -> float:
    """Median of a latency field over records, ignoring missing values (some tools report only a mean)."""
    import numpy as np

    vals = [lat[key] for lat in lats if lat.get(key) is not None]
    return float(np.median(vals)) if vals else default


def plot_latency(records: list[dict]) -> bytes:
    """Median latency (p50, bars; p90 as the error bar) per artifact and frame size, on a linear axis with each
    bar's p50 written on it; hatched bars are tiled end-to-end timings (tiling and blending included), plain bars
    the runner's compute alone."""
    import numpy as np
    from matplotlib.patches import Patch

    plt = _pyplot()
    sizes = sorted({tuple(lat["size"]) for rec in records for lat in rec["latency"]}, key=lambda s: s[0] * s[1])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    width = 0.8 / max(1, len(records))
    for i, rec in enumerate(records):
        p50, p90, e2e = [], [], []
        for size in sizes:
            lats = [lat for lat in rec["latency"] if tuple(lat["size"]) == size]
            p50.append(_median_of(lats, "p50_ms"))
            p90.append(_median_of(lats, "p90_ms", default=p50[-1]))  # tools that report no p90: no error bar
            e2e.append(any(lat.get("timed") == "end-to-end" for lat in lats))
        x = np.arange(len(sizes)) + i * width
        err = np.clip(np.nan_to_num(np.subtract(p90, p50)), 0, None)
        bars = ax.bar(x, p50, width, yerr=[np.zeros(len(p50)), err], capsize=3, label=rec["name"],
                      edgecolor="white")
        for bar, tiled in zip(bars, e2e):
            bar.set_hatch("//" if tiled else "")
        ax.bar_label(bars, labels=["" if np.isnan(v) else f"{v:.1f}" for v in p50], fontsize=7, padding=2)
    ax.set_xticks(np.arange(len(sizes)) + width * (len(records) - 1) / 2, [f"{h}x{w}" for h, w in sizes])
    ax.set_ylim(bottom=0)
    ax.set_ylabel("latency p50 (ms), bar to p90")
    ax.set_title("Latency per format and frame size")
    ax.grid(alpha=0.3, axis="y")
    handles, _ = ax.get_legend_handles_labels()
    handles += [Patch(facecolor="white", edgecolor="grey", label="compute only (runner.run)"),
                Patch(facecolor="white", edgecolor="grey", hatch="//", label="end-to-end, tiled")]
    ax.legend(handles=handles, fontsize=8)
    return _png(fig)
