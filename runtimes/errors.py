"""Typed user-facing errors shared by every command-line tool of the project.

A `UserError` is a problem the user can fix (a bad path, a bad level, a missing extra); the CLIs
print its message on one line and exit with status 2, with no traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable


class UserError(Exception):
    """A problem with the user's input; the message says how to fix it."""


class MissingDependency(UserError):
    """An optional dependency is not installed."""

    def __init__(self, module: str, extra: str):
        super().__init__(f"{module} is not installed: pip install 'levelres[{extra}]'")


# The pip extra that provides each optional top-level module (`run_cli` names it when an import fails).
EXTRAS = {
    "torch": "train",
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "onnxscript": "onnx",
    "litert_torch": "tflite",
    "ai_edge_quantizer": "tflite",
    "ai_edge_litert": "litert",
    "coremltools": "coreml",
    "tensorrt": "tensorrt",
    "cuda": "tensorrt",
    "matplotlib": "plots",
}


def require(module: str, extra: str):
    """Import an optional module or raise `MissingDependency` naming the pip extra.

    Args:
        module: dotted module name.
        extra: the project's pip extra that provides it.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependency(module, extra) from exc


def exit_unless_installed(module: str, extra: str, name: str) -> None:
    """At the top of a command-line module whose imports need `module`: when run as a script
    (`name == "__main__"`) and the module is missing, print the install hint and exit 2."""
    import importlib

    if name != "__main__":
        return
    try:
        importlib.import_module(module)
    except ImportError:
        print(f"error: {MissingDependency(module, extra)}", file=sys.stderr)
        raise SystemExit(2) from None


def doc_summary(doc: str) -> str:
    """A module docstring's first paragraph on one line: a command's `--help` description."""
    return " ".join(doc.split("\n\n")[0].split())


class CliParser(argparse.ArgumentParser):
    """argparse with usage errors raised as `UserError`: one line naming the problem and `--help`."""

    def error(self, message: str):
        raise UserError(f"{message} (see {self.prog} --help)")


def run_cli(fn: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> int:
    """Run a CLI body, turning `UserError` into one line on stderr and exit status 2."""
    try:
        code = fn(argv)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:  # an optional stack imported outside `require`
        top = (exc.name or "").split(".")[0]
        if top not in EXTRAS:
            raise
        print(f"error: {MissingDependency(top, EXTRAS[top])}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(code or 0)
