"""The seed's table from finished runs: one weight set (linear, affine) vs dedicated models per level.

Reads each run folder's checkpoint JSON (`best.json`) and its evaluation (`eval-<SET>.json`, written by
`scripts/train_shipped.sh` or `python -m train.evaluate --json`); evaluates nothing itself. A run with a
`baseline_level` is the dedicated model of that level; the others are one weight set each, named by form.
Prints the PSNR table (levels x {input, dedicated, ours-linear, ours-affine}, the gap of each weight set
to the dedicated model, and the mean over the levels that have a dedicated model) and the budget of
every run (steps, minutes, steps/s, device).

Usage:
    python -m train.compare runs/dn-fast-linear runs/dn*-fast-dedicated --set CBSD68
    python -m train.compare runs/dj-mobile-* --set LIVE1_color --json table.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from runtimes.core.errors import CliParser, UserError, run_cli
from runtimes.core.images import atomic_write_bytes, check_output_file, json_bytes

TOL = 1e-6


def _read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: no {what}; train and evaluate this run first (scripts/train_shipped.sh)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: unreadable {what} ({e.__class__.__name__}); rerun its evaluation") from None


def load_run(folder: str | Path, set_name: str) -> dict:
    """One run: its role ("dedicated" or the form), level, budget and per-level PSNR on `set_name`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: not a run folder (expected best.json and eval-{set_name}.json inside)")
    meta = _read_json(folder / "best.json", "checkpoint metadata (best.json)")
    ev = _read_json(folder / f"eval-{set_name}.json", f"evaluation on {set_name}")
    try:
        rows = {float(r["level"]): (float(r["psnr"]), float(r["input_psnr"])) for r in ev["rows"]}
        task, baseline = meta["task"], meta.get("baseline_level")
        form = "dedicated" if baseline is not None else meta["arch"]["form"]
        steps, seconds = int(meta["steps"]), float(meta["train_seconds"])
        unit = meta["level_map"]["unit"]
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"{folder}: run files lack field {e}; rerun its training and evaluation") from None
    if ev.get("task", task) != task:
        raise UserError(f"{folder}: evaluation is for task {ev['task']}, checkpoint for {task}; rerun the evaluation")
    return {"name": folder.name, "task": task, "unit": unit, "role": form, "baseline": baseline, "rows": rows,
            "steps": steps, "seconds": seconds, "device": meta.get("device", "?"), "preset": meta.get("preset")}


def build_table(runs: list[dict]) -> dict:
    """Rows per level: input, dedicated (the run trained at that level), each form, and the gaps."""
    if not runs:
        raise UserError("no runs given")
    tasks = {r["task"] for r in runs}
    if len(tasks) > 1:
        raise UserError(f"runs are for different tasks ({', '.join(sorted(tasks))}); compare one task")
    ours = {}
    for r in runs:
        if r["role"] != "dedicated":
            if r["role"] in ours:
                raise UserError(f"two {r['role']} runs ({ours[r['role']]['name']}, {r['name']}); give one per form")
            ours[r["role"]] = r
    if not ours:
        raise UserError("no one-weight-set run among the runs; add the linear or affine run folder")
    dedicated = {}
    for r in runs:
        if r["role"] == "dedicated":
            lv = float(r["baseline"])
            if lv in dedicated:
                raise UserError(f"two dedicated runs at level {lv:g} ({dedicated[lv]['name']}, {r['name']})")
            if lv not in r["rows"]:
                raise UserError(f"{r['name']}: not evaluated at its own level {lv:g}; rerun its evaluation")
            dedicated[lv] = r
    forms = [f for f in ("linear", "affine") if f in ours] + sorted(set(ours) - {"linear", "affine"})
    levels = sorted(set().union(*(set(r["rows"]) for r in ours.values())))
    rows = []
    for lv in levels:
        inputs = [r["rows"][lv][1] for r in ours.values() if lv in r["rows"]]
        row = {"level": lv, "input": inputs[0], "dedicated": None}
        if max(inputs) - min(inputs) > TOL:
            raise UserError(f"the runs' degraded inputs differ at level {lv:g}; evaluate all on the same set")
        if lv in dedicated:
            row["dedicated"] = dedicated[lv]["rows"][lv][0]
        for f in forms:
            row[f] = ours[f]["rows"][lv][0] if lv in ours[f]["rows"] else None
            both = row[f] is not None and row["dedicated"] is not None
            row[f"{f}_gap"] = row[f] - row["dedicated"] if both else None
        rows.append(row)
    scored = [r for r in rows if r["dedicated"] is not None and all(r[f] is not None for f in forms)]
    mean = None
    if scored:
        mean = {k: float(np.mean([r[k] for r in scored])) for k in ("input", "dedicated", *forms)}
        mean.update({f"{f}_gap": mean[f] - mean["dedicated"] for f in forms})
    budget = [{k: r[k] for k in ("name", "role", "baseline", "steps", "seconds", "device", "preset")}
              for r in [*ours.values(), *sorted(dedicated.values(), key=lambda r: r["baseline"])]]
    return {"task": runs[0]["task"], "unit": runs[0]["unit"], "forms": forms, "rows": rows, "mean": mean,
            "mean_levels": [r["level"] for r in scored], "runs": budget}


def _cell(v, fmt: str) -> str:
    return "" if v is None else format(v, fmt)


def markdown(table: dict) -> str:
    forms = table["forms"]
    head = [table["unit"], "degraded input", "dedicated", *(f"ours-{f}" for f in forms),
            *(f"{f} − dedicated" for f in forms)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for r in [*table["rows"], *([dict(table["mean"], level="mean")] if table["mean"] else [])]:
        lv = r["level"] if isinstance(r["level"], str) else f"{r['level']:g}"
        cells = [lv, _cell(r["input"], ".2f"), _cell(r["dedicated"], ".2f"), *(_cell(r[f], ".2f") for f in forms),
                 *(_cell(r[f"{f}_gap"], "+.2f") for f in forms)]
        lines.append("| " + " | ".join(cells) + " |")
    if table["mean"]:
        levels = ", ".join(f"{x:g}" for x in table["mean_levels"])
        lines.append(f"\nMean over the levels with a dedicated model: {levels}.")
    lines += ["", "| run | trained at | steps | minutes | steps/s | device |", "|---|---|---:|---:|---:|---|"]
    for b in table["runs"]:
        at = f"{b['baseline']:g} only" if b["baseline"] is not None else f"all ({b['role']})"
        rate = b["steps"] / b["seconds"] if b["seconds"] > 0 else float("nan")
        lines.append(f"| {b['name']} | {at} | {b['steps']} | {b['seconds'] / 60:.1f} | {rate:.2f} | {b['device']} |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = CliParser(prog="python -m train.compare", description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", help="run folders (best.json and eval-<SET>.json inside)")
    p.add_argument("--set", required=True, dest="set_name", help="evaluation set name, e.g. CBSD68, LIVE1_color, Set5")
    p.add_argument("--json", help="write the table as JSON here")
    return p


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    if a.json:
        check_output_file(a.json, "--json")
    table = build_table([load_run(r, a.set_name) for r in a.runs])
    print(markdown(table))
    if a.json:
        atomic_write_bytes(a.json, json_bytes(dict(table, set=a.set_name), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
