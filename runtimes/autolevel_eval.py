"""`python -m runtimes.autolevel_eval`, kept at its published path: the code is `runtimes.apps.autolevel_eval`."""

from __future__ import annotations

from runtimes.apps.autolevel_eval import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
