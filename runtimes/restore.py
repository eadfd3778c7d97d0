"""`python -m runtimes.restore`, kept at its published path: the code is `runtimes.apps.restore`."""

from __future__ import annotations

from runtimes.apps.restore import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
