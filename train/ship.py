"""Ship a finished run as packaged weights: `<name>.safetensors` + `<name>.json` in train/pretrained.

Takes the run's best checkpoint and adds what the shipped tables are built from: every evaluation in
the run folder (`eval-<SET>.json`; the task's main set first: CBSD68, LIVE1_color, Set5), a hardware
line with the budget (steps, minutes, steps/s, precision), and portable paths in its train_config.

A run is refused when its evaluation shows a test level worse than its degraded input, or a neutral
level (σ 0, quality 100, scale 1) that does not return its input exactly; `--allow-worse` ships it
anyway and lists the levels in the metadata (`worse_than_input`).

Usage:
    python -m train.ship runs/sr-fast-linear --name sr-fast
    python -m train.ship runs/dn-paper-linear --name denoise-paper --hardware "1x NVIDIA H100 80GB"
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

from runtimes.core.errors import CliParser, UserError, exit_unless_installed, run_cli
from runtimes.core.images import check_output_file

exit_unless_installed("torch", "train", __name__)

from train.checkpoint import PRETRAINED_DIR, lineage, load_checkpoint, save_checkpoint
from train.lineage import lineage_budget

MAIN_SET = {"denoise": "CBSD68", "dejpeg": "LIVE1_color", "sr": "Set5"}
NAME = re.compile(r"^[a-z0-9][a-z0-9.-]*$")


def read_evaluations(run: Path, task: str) -> list[dict]:
    """Every eval-<SET>.json of the run, the task's main set first; each checked against the task."""
    evals = []
    for path in sorted(run.glob("eval-*.json")):
        try:
            ev = json.loads(path.read_text())
            rows = [(float(r["level"]), float(r["psnr"]), float(r["input_psnr"])) for r in ev["rows"]]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise UserError(f"{path}: unreadable evaluation ({e.__class__.__name__}); rerun python -m train.evaluate "
                            "with --json") from None
        if ev.get("task", task) != task:
            raise UserError(f"{path}: an evaluation for task {ev['task']}, the checkpoint is {task}; rerun it")
        if not rows:
            raise UserError(f"{path}: an evaluation with no levels; rerun python -m train.evaluate with --levels")
        ev.setdefault("set", path.stem[len("eval-"):])
        evals.append(ev)
    if not evals:
        raise UserError(f"{run}: no evaluation (eval-<SET>.json) to ship with; run python -m train.evaluate "
                        f"--weights {run / 'best.safetensors'} --set datasets/test/{MAIN_SET.get(task, 'SET')} "
                        "--json ...")
    evals.sort(key=lambda ev: (ev["set"] != MAIN_SET.get(task), ev["set"]))
    return evals


def worse_than_input(evals: list[dict], neutral: float) -> list[str]:
    """The (set, level) pairs that break the shipping rule, as readable lines."""
    bad = []
    for ev in evals:
        for r in ev["rows"]:
            level, psnr, inp = float(r["level"]), float(r["psnr"]), float(r["input_psnr"])
            if math.isclose(level, neutral, abs_tol=1e-9):
                if psnr != inp:
                    bad.append(f"{ev['set']} level {level:g} (neutral): {psnr:.2f} dB, not its input")
            elif not psnr > inp:
                bad.append(f"{ev['set']} level {level:g}: {psnr:.2f} dB restored <= {inp:.2f} dB input")
    return bad


def portable_config(cfg: dict, run: Path) -> dict:
    """train_config with machine paths cut to the datasets README's layout (datasets/...) and runs/<name>."""
    cfg = dict(cfg)
    for key in ("data", "val"):
        value = cfg.get(key)
        if isinstance(value, str) and "datasets/" in value:
            cfg[key] = "datasets/" + value.rsplit("datasets/", 1)[1]
    if cfg.get("out"):
        cfg["out"] = f"runs/{run.name}"
    init = cfg.get("init")
    if isinstance(init, str) and Path(init).is_absolute():
        cfg["init"] = "/".join(Path(init).parts[-2:])
    return cfg


def hardware_line(meta: dict, hardware: str | None) -> str:
    try:
        steps, seconds = int(meta["steps"]), float(meta["train_seconds"])
    except (KeyError, TypeError, ValueError):
        raise UserError("the checkpoint records no training budget (steps, train_seconds); ship a run folder "
                        "written by python -m train") from None
    cfg = meta.get("train_config", {})
    device = str(meta.get("device", "cpu"))
    if device.startswith("cpu"):
        precision = f"fp32, torch.compile ({meta['compile_mode']})" if meta.get("compile_mode") else "fp32 eager"
    else:
        precision = ("bf16 autocast" if cfg.get("amp", True) else "fp32") + \
            (", torch.compile" if cfg.get("compile") in (None, "on", True) else "") + \
            (f" ({meta['compile_mode']})" if meta.get("compile_mode") else "")
    rate = f" ({steps / seconds:.1f} steps/s)" if seconds > 0 else ""
    line = f"{hardware or device}; {steps} steps in {seconds / 60:.0f} min{rate}, {precision}"
    chain = meta.get("lineage") or []
    if chain:
        before, before_s, complete = lineage_budget(chain)
        runs = f"{len(chain)} earlier run{'s' if len(chain) > 1 else ''}"
        if complete:
            line += (f"; started from the weights of {runs} ({before} steps in {before_s / 60:.0f} min): "
                     f"{steps + before} steps in {(seconds + before_s) / 60:.0f} min in all")
        else:
            line += f"; started from the weights of {runs}, not all on record (at least {before} steps more)"
    return line


def ship(run: str | Path, name: str, out_dir: str | Path = PRETRAINED_DIR, hardware: str | None = None,
         allow_worse: bool = False, force: bool = False) -> Path:
    run, out_dir = Path(run), Path(out_dir)
    if not NAME.match(name):
        raise UserError(f"--name {name!r}: use lower-case letters, digits, '.' and '-' (e.g. sr-fast)")
    best = run / "best.safetensors"
    if not run.is_dir() or not best.is_file():
        raise UserError(f"{run}: not a finished run folder (no best.safetensors); train it first with python -m train")
    model, meta = load_checkpoint(best)
    if name.split("-")[0] != meta["task"]:
        raise UserError(f"--name {name!r} must start with the run's task: {meta['task']}-<preset> "
                        f"(e.g. {meta['task']}-{meta.get('preset') or 'mobile'})")
    if not all(bool(p.isfinite().all()) for p in model.state_dict().values()):
        raise UserError(f"{best} holds non-finite weights (the run diverged); retrain it with a lower --lr")
    evals = read_evaluations(run, meta["task"])
    bad = worse_than_input(evals, model.level_map.neutral)
    if bad and not allow_worse:
        raise UserError(f"{run} is worse than its input at {'; '.join(bad)}; retrain it, or ship with --allow-worse")
    target = out_dir / f"{name}.safetensors"
    if target.exists() and not force:
        raise UserError(f"{target} exists; pass --force to replace it")
    if not out_dir.is_dir():
        raise UserError(f"{out_dir}: not a folder; create it or pick another --out")
    for path in (target, target.with_suffix(".json")):
        check_output_file(path)
    for key in ("format", "format_version", "arch", "level_map", "task"):
        meta.pop(key, None)  # rewritten from the model itself
    meta["train_config"] = portable_config(meta.get("train_config", {}), run)
    chain = lineage(meta)
    if chain:
        meta["lineage"] = chain
    meta["hardware"] = hardware_line(meta, hardware)
    meta["evaluation"], meta["evaluation_more"] = evals[0], evals[1:]
    if bad:
        meta["worse_than_input"] = bad
    save_checkpoint(target, model, meta)
    return target


def build_parser() -> argparse.ArgumentParser:
    p = CliParser(prog="python -m train.ship", description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="run folder holding best.safetensors and eval-<SET>.json files")
    p.add_argument("--name", required=True, help="shipped name, task-preset (e.g. sr-fast, denoise-paper)")
    p.add_argument("-o", "--out", default=str(PRETRAINED_DIR), help="destination folder (default: the package's)")
    p.add_argument("--hardware", help="what it trained on (default: the device recorded in the checkpoint)")
    p.add_argument("--allow-worse", action="store_true",
                   help="ship even where a test level is worse than its degraded input (listed in the metadata)")
    p.add_argument("--force", action="store_true", help="replace weights of the same name")
    return p


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    path = ship(a.run, a.name, a.out, a.hardware, a.allow_worse, a.force)
    meta = json.loads(path.with_suffix(".json").read_text())
    sets = ", ".join(ev["set"] for ev in [meta["evaluation"], *meta["evaluation_more"]])
    print(f"{path}: {path.stat().st_size / 1e6:.2f} MB, {meta['hardware']}; evaluated on {sets}")
    for line in meta.get("worse_than_input", []):
        print(f"warning: worse than its input: {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
