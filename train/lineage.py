"""The budget of weights trained on from earlier runs' weights (`python -m train --init`), without torch.

A checkpoint records the runs its training started from, oldest first (`lineage` in its metadata, written by
`train.checkpoint.lineage` and the trainer); `train.ship` and `train.cards` report the whole chain's steps.
"""

from __future__ import annotations

from pathlib import Path


def run_summary(meta: dict) -> dict:
    """One training run's budget as a later run started from its weights records it (`lineage`)."""
    cfg = meta.get("train_config") or {}
    out = cfg.get("out")
    return {"run": Path(out).name if isinstance(out, str) and out else None, "preset": meta.get("preset"),
            "steps": meta.get("steps"), "train_seconds": meta.get("train_seconds"), "device": meta.get("device"),
            "schedule_steps": cfg.get("steps"), "lr": cfg.get("lr"), "schedule": cfg.get("schedule"),
            "code_version": meta.get("code_version")}


def lineage_budget(chain: list[dict]) -> tuple[int, float, bool]:
    """(steps, seconds, complete) summed over a lineage; complete is False when a link is unknown."""
    steps, seconds, complete = 0, 0.0, True
    for run in chain:
        if not isinstance(run.get("steps"), int) or not isinstance(run.get("train_seconds"), (int, float)):
            complete = False
            continue
        steps, seconds = steps + run["steps"], seconds + float(run["train_seconds"])
    return steps, seconds, complete
