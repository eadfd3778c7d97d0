"""`python -m devices.bundle`: the bundling command at its published path.

Bundling exports (torch, export/), so it runs on a workstation and its code is `export.bundle`; this module only
forwards to it by name, so that devices/ itself never imports export/ or torch.

Usage:
    python -m devices.bundle --weights denoise-mobile -o bundle/ --target jetson
"""

from __future__ import annotations

import importlib


def main(argv: list[str] | None = None) -> int:
    return importlib.import_module("export.bundle").main(argv)


if __name__ == "__main__":
    from runtimes.core.errors import run_cli

    raise SystemExit(run_cli(main))
