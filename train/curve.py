"""What more training buys: PSNR against the training budget, from finished runs of one recipe.

Each run folder is one whole schedule (its own cosine decay) at one step budget; everything else is the same
recipe (task, preset, architecture, training levels, batch, crop size, data, seed). The points inside one
schedule are not a budget curve: the learning rate is still high there, so they under-read what that many
steps buy. Reads each run's `best.json` and `eval-<SET>.json` like `train.compare` and evaluates nothing.

For every evaluated level it prints PSNR against the steps, the gain per doubling of steps between
successive budgets and, from the last two gains, the ratio by which each doubling's gain shrinks. With that
ratio held (a geometric series; an extrapolation of the measured curve, said as such) it prints the ceiling
the series converges to and, for each `--target LEVEL=PSNR`, the steps that reach it or that the
series never does.

Usage:
    python -m train.curve runs/curve/dn25-s2250-b16 runs/curve/dn25-s4500-b16 runs/dn25 runs/curve/dn25-s18000-b16 \
        --set CBSD68 --target 25=29.3
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from runtimes.core.errors import CliParser, UserError, run_cli
from runtimes.core.images import atomic_write_bytes, check_output_file, json_bytes
from runtimes.core.levels import parse_level
from train.compare import _read_json, load_run

# Fields of a run's training config that must match along one curve (the budget, `steps`, is what varies).
SAME = ("task", "preset", "form", "channels", "blocks", "block_levels", "out_gate", "biases", "head", "levels",
        "baseline_level", "batch", "patch", "lr", "lr_min_ratio", "schedule", "warmup", "level_jitter", "level_exact",
        "level_weighting", "level_sampling", "weight_floor", "strength_offset", "seed", "exclude", "init", "clip_grad")
# what a field absent from an older run's config meant (the option did not exist yet)
ABSENT = {"warmup": 0, "clip_grad": None}
MAX_DOUBLINGS = 40  # a target further than 2^40 times the last budget is reported as not reached


def load_curve_run(folder: str | Path, set_name: str) -> dict:
    """A run of `train.compare.load_run` with its training config and its budget: the schedule's length (`--steps`;
    under `--minutes`, the steps the finished run took). A run stopped before its schedule ended is refused."""
    run = load_run(folder, set_name)
    cfg = _read_json(Path(folder) / "best.json", "checkpoint metadata (best.json)").get("train_config")
    if not isinstance(cfg, dict):
        raise UserError(f"{folder}: best.json has no training config; the curve needs runs of this trainer")
    last = Path(folder) / "last.json"
    ran = int(_read_json(last, "last checkpoint metadata")["steps"]) if last.is_file() else run["steps"]
    budget = cfg["steps"] if isinstance(cfg.get("steps"), int) else ran
    if ran < budget:
        raise UserError(f"{folder}: stopped at step {ran} of its {budget}-step schedule; finish it (--resume) "
                        "first: a curve needs whole schedules")
    return dict(run, config=cfg, budget=budget)


def _check_same_recipe(runs: list[dict]) -> None:
    first = runs[0]
    for r in runs[1:]:
        for key in (*SAME, "data"):
            a, b = (run["config"].get(key, ABSENT.get(key)) for run in (first, r))
            if key == "data":  # the same training set may live under another root on another machine
                a, b = (None if v is None else Path(v).name for v in (a, b))
            if a != b:
                raise UserError(f"{r['name']} differs from {first['name']} in {key} ({b!r} vs {a!r}); "
                                "a curve compares budgets of one recipe")
    seen: dict[int, str] = {}
    for r in runs:
        if r["budget"] in seen:
            raise UserError(f"{seen[r['budget']]} and {r['name']} both ran {r['budget']} steps; "
                            "give one run per budget")
        seen[r["budget"]] = r["name"]


def extrapolate(points: list[tuple[int, float]], target: float | None = None) -> dict:
    """Gains per doubling of steps, their shrink ratio, the ceiling and the steps to `target`.

    points: (steps, psnr) sorted by steps. The gain of an interval is its PSNR gain divided by its length in
    doublings; the ratio compares the last two gains per doubling of their interval midpoints' distance.
    """
    gains = []
    for (s0, p0), (s1, p1) in zip(points, points[1:], strict=False):
        d = math.log2(s1 / s0)
        gains.append({"from": s0, "to": s1, "doublings": d, "gain_per_doubling": (p1 - p0) / d})
    out = {"gains": gains, "ratio": None, "ceiling": None, "target": target, "steps_to_target": None,
           "reached": None}
    last_steps, last_psnr = points[-1]
    if target is not None and last_psnr >= target:
        out.update(reached=True, steps_to_target=min(s for s, p in points if p >= target))
    if len(gains) < 2:
        if target is not None and not out["reached"]:
            out["reached"] = False
        return out
    g_prev, g_last = gains[-2]["gain_per_doubling"], gains[-1]["gain_per_doubling"]
    mid = [math.log2(g["from"]) + g["doublings"] / 2 for g in gains[-2:]]
    if g_last <= 0:
        out.update(ratio=0.0, ceiling=last_psnr)
    elif g_prev > 0 and g_last < g_prev:
        out["ratio"] = (g_last / g_prev) ** (1 / (mid[1] - mid[0]))
    if out["ratio"] is not None and out["ratio"] > 0:
        r = out["ratio"]
        # the next doubling gains g_last * r^(distance from the last interval's midpoint), and so on
        first = g_last * r ** (math.log2(last_steps) + 1 - mid[1] - 0.5)
        out["ceiling"] = last_psnr + first / (1 - r)
    if target is None or out["reached"]:
        return out
    psnr, gain, k = last_psnr, None, 0
    while k < MAX_DOUBLINGS:
        k += 1
        if out["ratio"] is None:  # gains not shrinking: hold the last gain (no ceiling)
            gain = g_last
        else:
            gain = g_last * out["ratio"] ** (k - 0.5 + math.log2(last_steps) - mid[1])
        if gain <= 1e-6:
            break
        if psnr + gain >= target:
            frac = (target - psnr) / gain
            out.update(reached=False, steps_to_target=int(round(last_steps * 2 ** (k - 1 + frac))))
            return out
        psnr += gain
    out["reached"] = False
    return out


def build_curve(runs: list[dict], targets: dict[float, float]) -> dict:
    if len(runs) < 2:
        raise UserError("a curve needs at least two runs (budgets) of one recipe")
    _check_same_recipe(runs)
    runs = sorted(runs, key=lambda r: r["budget"])
    levels = sorted(set.intersection(*(set(r["rows"]) for r in runs)))
    if not levels:
        raise UserError("the runs share no evaluated level; evaluate them at the same levels")
    for lv in targets:
        if lv not in levels:
            raise UserError(f"--target level {lv:g} is not evaluated in every run; evaluated: "
                            + ", ".join(f"{x:g}" for x in levels))
    cfg = runs[0]["config"]
    per_level = []
    for lv in levels:
        pts = [(r["budget"], r["rows"][lv][0]) for r in runs]
        per_level.append({"level": lv, "input": runs[0]["rows"][lv][1], "points": pts,
                          **extrapolate(pts, targets.get(lv))})
    n_levels = len(cfg.get("levels") or [cfg.get("baseline_level")])
    return {"task": runs[0]["task"], "unit": runs[0]["unit"], "preset": runs[0]["preset"],
            "batch": cfg.get("batch"), "patch": cfg.get("patch"), "levels_per_step": n_levels,
            "runs": [{"name": r["name"], "steps": r["budget"], "seconds": r["seconds"], "device": r["device"]}
                     for r in runs],
            "curve": per_level}


def markdown(c: dict) -> str:
    unit = c["unit"]
    steps = [r["steps"] for r in c["runs"]]
    spans = [f"gain/doubling {g}→{h}" for g, h in zip(steps, steps[1:], strict=False)]
    head = [unit, "input", *(f"{s} steps" for s in steps), *spans, "shrink ratio", "ceiling"]
    lines = [f"{c['preset']}, {c['batch']} crops of {c['patch']}² per level per step, "
             f"{c['levels_per_step']} level(s) per step", "",
             "| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for row in c["curve"]:
        cells = [f"{row['level']:g}", f"{row['input']:.2f}", *(f"{p:.2f}" for _, p in row["points"]),
                 *(f"{g['gain_per_doubling']:+.3f}" for g in row["gains"]),
                 "" if row["ratio"] is None else f"{row['ratio']:.2f}",
                 "" if row["ceiling"] is None else f"{row['ceiling']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| run | steps | minutes | device |", "|---|---:|---:|---|"]
    lines += [f"| {r['name']} | {r['steps']} | {r['seconds'] / 60:.1f} | {r['device']} |" for r in c["runs"]]
    for row in c["curve"]:
        if row["target"] is None:
            continue
        t = f"{unit} {row['level']:g}: target {row['target']:.2f} dB"
        if row["reached"]:
            lines.append(f"{t}: reached at {row['steps_to_target']} steps (measured)")
        elif row["steps_to_target"] is not None:
            lines.append(f"{t}: about {row['steps_to_target']} steps, "
                         f"{row['steps_to_target'] / steps[-1]:.1f}× the largest budget (extrapolated)")
        else:
            why = (f"the series converges to {row['ceiling']:.2f} dB" if row["ceiling"] is not None
                   else "three budgets are needed to extrapolate" if len(row["gains"]) < 2
                   else "the measured gains do not reach it")
            lines.append(f"{t}: not reached by more steps of this recipe ({why}; extrapolated)")
    return "\n".join(lines)


def _parse_target(text: str) -> tuple[float, float]:
    level, sep, psnr = text.partition("=")
    try:
        if not sep:
            raise ValueError
        return parse_level(level), float(psnr)
    except (ValueError, UserError):
        raise UserError(f"--target {text!r}: expected LEVEL=PSNR, e.g. 25=29.3") from None


def build_parser() -> argparse.ArgumentParser:
    p = CliParser(prog="python -m train.curve", description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", help="run folders of one recipe at different --steps (best.json and "
                                          "eval-<SET>.json inside)")
    p.add_argument("--set", required=True, dest="set_name", help="evaluation set name, e.g. CBSD68")
    p.add_argument("--target", action="append", default=[], metavar="LEVEL=PSNR",
                   help="a PSNR to reach at a level (repeatable): prints the steps it takes on this curve")
    p.add_argument("--json", help="write the curve as JSON here")
    return p


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    targets = dict(_parse_target(t) for t in a.target)
    if a.json:
        check_output_file(a.json, "--json")
    curve = build_curve([load_curve_run(r, a.set_name) for r in a.runs], targets)
    print(markdown(curve))
    if a.json:
        atomic_write_bytes(a.json, json_bytes(dict(curve, set=a.set_name), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
