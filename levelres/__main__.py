"""`python -m levelres`: the `levelres` command."""

from __future__ import annotations

from levelres.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
