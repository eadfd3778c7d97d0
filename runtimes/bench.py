"""`python -m runtimes.bench`: the benchmark command, kept at its published path.

Given artifacts it runs `runtimes.apps.bench` (torch-free, as on a device host); given none, the project's main
job, `export.job`, which exports first and so lives above the runtimes (reached by name, only then).

Usage:
    python -m runtimes.bench out/dn.onnx --set IMAGE_DIR --levels 0 25
    python -m runtimes.bench                 # the main job
"""

from __future__ import annotations

import importlib

from runtimes.apps import bench
from runtimes.core.errors import run_cli


def main(argv: list[str] | None = None) -> int:
    if bench.build_parser().parse_args(argv).artifacts:
        return bench.main(argv)
    return importlib.import_module("export.job").main(argv)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
