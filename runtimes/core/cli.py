"""argparse types the commands of every layer share (sizes, counts, thread counts); levels parse in
`runtimes.core.levels.parse_level`.

Usage:
    p.add_argument("--sizes", nargs="+", type=parse_size)
    p.add_argument("--threads", type=thread_count)
"""

from __future__ import annotations

import argparse

from runtimes.core.errors import UserError

MAX_THREADS = 256  # far above any CPU this runs on; huge counts crash or hang the runtimes' thread pools


def parse_size(text: str) -> tuple[int, int]:
    """argparse type: 'HxW' -> (H, W)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UserError(f"malformed size {text!r}; use HxW, e.g. 720x1280") from None
    if not (1 <= h <= 16384 and 1 <= w <= 16384):
        raise UserError(f"size {text!r} out of range; height and width must be 1..16384")
    return h, w


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (argparse names the option in the error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def thread_count(text: str) -> int:
    """argparse type: a runtime thread count, 1..MAX_THREADS."""
    value = positive_int(text)
    if value > MAX_THREADS:
        raise argparse.ArgumentTypeError(f"{value} threads is too many; use 1..{MAX_THREADS}")
    return value
