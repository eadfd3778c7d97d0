"""Benchmark the project's ONNX on a Jetson: build the TensorRT engine there, measure accuracy and latency through
runtimes/, and record the power mode, clocks and tegrastats power/temperature. Report: the runtimes.apps.bench schema.

Usage:
    python -m devices.jetson --model dn.onnx --precision fp16 --set images/ --levels 0 25 50
    python -m devices.jetson --model dn.onnx --trtexec --dry-run      # print the commands
    python -m devices.jetson --model dn.onnx --local                  # onnxruntime stand-in on any host
"""

from __future__ import annotations

import argparse
from pathlib import Path

from devices.common import add_bench_args, bench_options, print_report
from devices.jetson.run import JetsonConfig, run_jetson
from runtimes.core.cli import positive_int
from runtimes.core.errors import CliParser, doc_summary, run_cli
from runtimes.runners.trt_precision import PRECISIONS


def build_parser() -> argparse.ArgumentParser:
    p = CliParser(prog="python -m devices.jetson", description=doc_summary(__doc__))
    p.add_argument("--model", "--onnx", type=Path, required=True, help="the project's .onnx (with its .meta.json)")
    p.add_argument("--precision", default="fp16", choices=PRECISIONS, help="engine precision (default fp16)")
    p.add_argument("--trtexec", action="store_true", help="build (and also time) the engine with trtexec")
    p.add_argument("--trtexec-path", default=None, help="trtexec executable (default: PATH, /usr/src/tensorrt/bin)")
    p.add_argument("--engine", type=Path, default=None, help="benchmark this prebuilt engine instead of building")
    p.add_argument("--profile", default=None, help="device profile key (default: detected from the board)")
    p.add_argument("--tegrastats-ms", type=positive_int, default=100, help="tegrastats interval in ms (default 100)")
    p.add_argument("--workspace-mib", type=positive_int, default=2048, help="builder workspace (default 2048 MiB)")
    add_bench_args(p, "out/jetson/bench.json")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = JetsonConfig(onnx=args.model, precision=args.precision, bench=bench_options(args), trtexec=args.trtexec,
                       trtexec_path=args.trtexec_path, engine=args.engine, profile=args.profile,
                       tegrastats_ms=args.tegrastats_ms, workspace_mib=args.workspace_mib)
    print_report(run_jetson(cfg))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
