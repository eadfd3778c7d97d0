"""`python -m runtimes.golden`, kept at its published path: the code is `runtimes.apps.golden`."""

from __future__ import annotations

from runtimes.apps.golden import main
from runtimes.core.errors import run_cli

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(run_cli(main))
