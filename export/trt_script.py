"""The `trtexec` recipe written beside a TensorRT-ready ONNX: `<stem>.build_engine.sh`, one per export target.

The script finds trtexec (PATH, else JetPack's /usr/src/tensorrt/bin; TRTEXEC=... overrides), stops in
one line unless trtexec reports the TensorRT version the ONNX was made for, then builds the engine with
the image's optimization profile, the precision flags (or --stronglyTyped), a timing cache, and trtexec's
timing JSON: `<stem>.times.json` (--exportTimes, one record per inference) and `<stem>.profile.json`
(--exportProfile, per layer, from a separate profiling run), which devices.jetson reads.

Usage:
    cmd = trtexec_command("m.onnx", "m.engine", shapes, plan)
    text = build_script(cmd, plan, resolve_target("8.5"))
"""

from __future__ import annotations

import shlex
from pathlib import Path

from runtimes.runners.trt_precision import PrecisionPlan
from runtimes.runners.trt_targets import TrtTarget

TRTEXEC_LOOKUP = 'TRTEXEC="${TRTEXEC:-$(command -v trtexec || echo /usr/src/tensorrt/bin/trtexec)}"'


def _dims(shape) -> str:
    return "x".join(str(d) for d in shape)


def report_names(engine_name: str) -> tuple[str, str]:
    """The --exportTimes and --exportProfile file names for an engine."""
    stem = Path(engine_name).stem
    return f"{stem}.times.json", f"{stem}.profile.json"


def trtexec_command(onnx_name: str, engine_name: str, shapes, plan: PrecisionPlan, refit: bool = False,
                    workspace_mib: int = 2048, calib_cache: str | None = None) -> list[str]:
    """The exact trtexec command line (level has the static shape [1] in the ONNX).

    The workspace is given without a unit suffix (MiB in trtexec 8.5 through 10), so one spelling serves
    every target.
    """
    lo, opt, hi = shapes
    times, profile = report_names(engine_name)
    cmd = ["trtexec", f"--onnx={onnx_name}", f"--saveEngine={engine_name}",
           f"--minShapes=image:{_dims(lo)}", f"--optShapes=image:{_dims(opt)}", f"--maxShapes=image:{_dims(hi)}",
           *plan.trtexec_flags, f"--memPoolSize=workspace:{workspace_mib}",
           f"--timingCacheFile={Path(engine_name).stem}.timing.cache",
           f"--exportTimes={times}", f"--exportProfile={profile}", "--separateProfileRun"]
    if plan.calibrator and calib_cache:
        cmd.append(f"--calib={calib_cache}")
    if refit:
        cmd.append("--refit")
    return cmd


def build_script(cmd: list[str], plan: PrecisionPlan, target: TrtTarget) -> str:
    """A shell script that checks the installed TensorRT and builds the engine on the target with trtexec."""
    jetpack = f" (JetPack {target.jetpack})" if target.jetpack else ""
    how = "strongly typed: precision from the ONNX" if plan.strongly_typed else \
        f"builder flags {' '.join(plan.trtexec_flags) or 'none (fp32)'}"
    times, profile = report_names(next(c for c in cmd if c.startswith("--saveEngine=")).split("=", 1)[1])
    return "\n".join([
        "#!/bin/sh",
        "# Build the TensorRT engine ON THE TARGET (engines are tied to the GPU model and TensorRT version).",
        f"# Made for TensorRT {target.label}{jetpack}: ONNX opset {target.opset}, precision in the ONNX "
        f"{plan.onnx_precision}, {how}.",
        "# The level input has the static shape [1]; only the image needs an optimization profile.",
        f"# Timing JSON for python -m devices.jetson: {times} (per inference), {profile} (per layer).",
        "set -e",
        'cd "$(dirname "$0")"',
        TRTEXEC_LOOKUP,
        target.version_check_line(),
        " ".join(['"$TRTEXEC"', *(shlex.quote(c) for c in cmd[1:])]),
        "",
    ])
