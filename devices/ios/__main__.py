"""Benchmark the project's CoreML package on a Mac with coremltools, once per compute unit (accuracy + latency in
the runtimes.apps.bench schema). An iPhone is profiled with Xcode's performance report (docs/devices.md).

Usage:
    python -m devices.ios --model dn.mlpackage --compute-units all cpu_only cpu_and_gpu cpu_and_ne
    python -m devices.ios --model dn.mlpackage --dry-run
"""

from __future__ import annotations

import argparse
from pathlib import Path

from devices.common import add_bench_args, bench_options, print_report
from devices.ios.run import IosConfig, run_ios
from runtimes.core.errors import CliParser, doc_summary, run_cli
from runtimes.runners.coreml import COMPUTE_UNITS


def build_parser() -> argparse.ArgumentParser:
    p = CliParser(prog="python -m devices.ios", description=doc_summary(__doc__))
    p.add_argument("--model", "--mlpackage", type=Path, required=True,
                   help="the project's .mlpackage (with its .meta.json)")
    p.add_argument("--compute-units", nargs="+", choices=tuple(COMPUTE_UNITS), default=list(COMPUTE_UNITS),
                   help="compute units to benchmark (default: all four)")
    p.add_argument("--profile", default=None, help="device profile key (default: detected from the chip)")
    add_bench_args(p, "out/ios/bench.json")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = IosConfig(mlpackage=args.model, compute_units=tuple(args.compute_units), bench=bench_options(args),
                    profile=args.profile)
    print_report(run_ios(cfg))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
