"""Benchmark the project's .tflite on an Android phone over adb with LiteRT's benchmark_model, once per delegate;
accuracy scored on the host. Report: the runtimes.apps.bench schema.

Usage:
    python -m devices.android --model dn.tflite --benchmark-binary ./benchmark_model \\
        --delegates cpu xnnpack gpu nnapi --threads 4
    python -m devices.android --model dn.tflite --dry-run           # print the adb commands
    python -m devices.android --model dn.tflite --local             # LiteRT on this host stands in
"""

from __future__ import annotations

import argparse
from pathlib import Path

from devices.android.benchmark_model import DELEGATES
from devices.android.run import AndroidConfig, run_android
from devices.common import add_bench_args, bench_options, print_report
from runtimes.core.errors import CliParser, doc_summary, run_cli


def build_parser() -> argparse.ArgumentParser:
    p = CliParser(prog="python -m devices.android", description=doc_summary(__doc__))
    p.add_argument("--model", "--tflite", type=Path, required=True, help="the project's .tflite (with its .meta.json)")
    p.add_argument("--benchmark-binary", type=Path, default=None,
                   help="LiteRT benchmark_model for android_arm64 (needed unless --dry-run or --local)")
    p.add_argument("--delegates", nargs="+", choices=DELEGATES, default=list(DELEGATES),
                   help="delegates to time (default: all)")
    p.add_argument("--serial", default=None, help="adb device serial (default: the only device)")
    p.add_argument("--op-profiling", action="store_true", help="add --enable_op_profiling=true")
    p.add_argument("--remote-dir", default="/data/local/tmp/levelres", help="working folder on the phone")
    p.add_argument("--profile", default=None, help="device profile key (default: detected from the SoC)")
    add_bench_args(p, "out/android/bench.json")
    p.set_defaults(threads=4)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    opts = bench_options(args)
    cfg = AndroidConfig(tflite=args.model, benchmark_binary=args.benchmark_binary, delegates=tuple(args.delegates),
                        threads=args.threads, bench=opts, serial=args.serial, op_profiling=args.op_profiling,
                        remote_dir=args.remote_dir, profile=args.profile)
    print_report(run_android(cfg))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
