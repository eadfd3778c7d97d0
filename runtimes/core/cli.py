"""argparse types the commands of every layer share (sizes, counts, thread counts); levels parse in
`runtimes.core.levels.parse_level`.

Usage:
    p.add_argument("--size", type=parse_size)            # one frame size
    p.add_argument("--sizes", action=SizesAction)        # several: HxW,HxW or HxW HxW
    p.add_argument("--plots", action=OnOffAction, default=True)  # --plots / --no-plots
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


def parse_sizes(text: str) -> tuple[tuple[int, int], ...]:
    """argparse type: 'HxW' or 'HxW,HxW' -> ((H, W), ...), in the order given."""
    return tuple(parse_size(part.strip()) for part in text.split(","))


class SizesAction(argparse._StoreAction):
    """`--sizes`: one or more frame sizes HxW, comma- or space-separated (`--sizes 256x256,720x1280` or
    `--sizes 256x256 720x1280`); the value is a tuple of (H, W) in the order given.

    `type` parses one argument into a tuple of sizes (default `parse_sizes`); `repeatable=True` lets the option
    be given again to add sizes (otherwise `CliParser` refuses a repeat).
    """

    def __init__(self, option_strings, dest, nargs="+", type=parse_sizes, repeatable: bool = False, **kwargs):
        super().__init__(option_strings, dest, nargs="+", type=type, **kwargs)
        self.repeatable = repeatable

    def __call__(self, parser, namespace, values, option_string=None):
        current = getattr(namespace, self.dest, None)
        before = () if current is None or current is self.default else tuple(current)
        setattr(namespace, self.dest, before + tuple(size for sizes in values for size in sizes))


class OnOffAction(argparse.Action):
    """`--plots/--no-plots`: a flag with its negation (argparse.BooleanOptionalAction, which Python 3.8 lacks)."""

    negatable = True  # CliHelpFormatter lists both spellings

    def __init__(self, option_strings, dest, default=None, required=False, help=None):
        strings = []
        for option in option_strings:
            strings.append(option)
            if option.startswith("--"):
                strings.append("--no-" + option[2:])
        super().__init__(strings, dest, nargs=0, default=default, required=required, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, not option_string.startswith("--no-"))

    def format_usage(self) -> str:
        return " | ".join(self.option_strings)


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
