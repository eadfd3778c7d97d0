"""Typed user-facing errors shared by every command-line tool of the project.

A `UserError` is a problem the user can fix (a bad path, a bad level, a missing extra); the CLIs
print its message on one line and exit with status 2, with no traceback.
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
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
    "cv2": "opencv",
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


_FLOAT = re.compile(r"[+-]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)", re.ASCII | re.IGNORECASE)
_INT = re.compile(r"[+-]?\d+", re.ASCII)


def strict_float(text: str) -> float:
    """`float(text)` for plain ASCII decimal text only ("1_5", "١٥", " 15 " and "0x1p4" raise ValueError)."""
    if not isinstance(text, str) or not _FLOAT.fullmatch(text):
        raise ValueError(f"not a plain decimal number: {text!r}")
    return float(text)


def strict_int(text: str) -> int:
    """`int(text)` for plain ASCII digits only ("1_5" and non-ASCII digits raise ValueError)."""
    if not isinstance(text, str) or not _INT.fullmatch(text):
        raise ValueError(f"not a plain whole number: {text!r}")
    return int(text)


def number_text(x: float) -> str:
    """A number as `:g` writes it, unless that rounds it (100.0000001 stays itself, not "100")."""
    short = f"{x:g}"
    return short if float(short) == x else repr(float(x))


def default_text(value) -> str:
    """A default as `--help` shows it: sizes as HxW, lists space-separated, True as "on"."""
    if value is True:
        return "on"
    if isinstance(value, (list, tuple)):
        if len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return f"{value[0]}x{value[1]}"
        return " ".join(default_text(v) for v in value)
    if isinstance(value, float):
        return number_text(value)
    return str(value)


class CliHelpFormatter(argparse.HelpFormatter):
    """The project's `--help` layout.

    - An option's first long spelling is its name; further long spellings are old names kept working and are
      not listed (`add_argument("--model", "--onnx")` shows `--model`; short forms such as `-o` stay, and so
      does the `--no-` form of an `OnOffAction`).
    - "(default: X)" is appended where the default is not None, False or empty and the help does not already
      say what the default is.
    """

    def _format_action_invocation(self, action):
        if action.option_strings:
            longs = [s for s in action.option_strings if s.startswith("--")]
            shown = [s for s in action.option_strings
                     if not s.startswith("--") or s == longs[0] or getattr(action, "negatable", False)]
            action = argparse.Action(shown, action.dest, nargs=action.nargs, metavar=action.metavar,
                                     choices=action.choices)
        return super()._format_action_invocation(action)

    def _get_help_string(self, action):
        help_text = (action.help or "").replace(" (default: %(default)s)", "")  # BooleanOptionalAction's own
        default = action.default
        if (default is None or default is False or default is argparse.SUPPRESS or default == () or default == []
                or "default" in help_text.lower() or isinstance(action, argparse._HelpAction)
                or (not action.option_strings and action.nargs not in (argparse.OPTIONAL, argparse.ZERO_OR_MORE))):
            return help_text
        return f"{help_text} (default: {default_text(default).replace('%', '%%')})"


class CliParser(argparse.ArgumentParser):
    """argparse with usage errors raised as `UserError`: one line naming the problem and `--help`.

    Numbers given to `type=float` / `type=int` options are parsed strictly (`strict_float`), and an option
    that takes one value may be given once: a repeated `--level` is an error, not "the last one wins" (an
    action with `repeatable = True`, such as `SizesAction(repeatable=True)`, may be repeated).
    `last_wins=True` keeps argparse's rule instead, for commands that scripts call with defaults followed by
    overrides (`python -m train`). `--help` uses `CliHelpFormatter`.
    """

    def __init__(self, *args, last_wins: bool = False, **kwargs):
        kwargs.setdefault("formatter_class", CliHelpFormatter)
        super().__init__(*args, **kwargs)
        self.last_wins = last_wins

    def error(self, message: str):
        raise UserError(f"{message} (see {self.prog} --help)")

    def _get_value(self, action, arg_string):
        strict = {float: strict_float, int: strict_int}.get(action.type)
        if strict is None:
            return super()._get_value(action, arg_string)
        try:
            return strict(arg_string)
        except ValueError:
            self.error(f"argument {'/'.join(action.option_strings) or action.dest}: invalid {action.type.__name__} "
                       f"value: {arg_string!r}")

    def parse_known_args(self, args=None, namespace=None):
        if not self.last_wins:
            self._refuse_repeats(sys.argv[1:] if args is None else list(args))
        return super().parse_known_args(args, namespace)

    def _refuse_repeats(self, args: list[str]) -> None:
        """A `UserError` when an option that stores one value appears twice."""
        seen: dict[int, str] = {}
        for arg in args:
            if arg == "--":
                break
            action = self._option_string_actions.get(arg.split("=", 1)[0]) if arg.startswith("-") else None
            if not isinstance(action, argparse._StoreAction) or getattr(action, "repeatable", False):
                continue
            if id(action) in seen:
                self.error(f"{seen[id(action)]} is given twice; give it once")
            seen[id(action)] = "/".join(action.option_strings)


def one_line_warning(message, category, filename, lineno, line=None) -> str:
    """`warnings.formatwarning` for the command lines: "warning: <message>" on one line, no source line."""
    text = " ".join(str(message).split())
    return f"warning: {text}\n"


def run_cli(fn: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> int:
    """Run a CLI body, turning `UserError` into one line on stderr and exit status 2.

    Warnings are printed on one line each meanwhile (`one_line_warning`); a `KeyboardInterrupt` exits 130
    with its message (e.g. where the interrupted work was saved).
    """
    saved_format, warnings.formatwarning = warnings.formatwarning, one_line_warning
    try:
        return _run(fn, argv)
    finally:
        warnings.formatwarning = saved_format


def _run(fn: Callable[[list[str] | None], int | None], argv: list[str] | None) -> int:
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
    except KeyboardInterrupt as exc:
        print(f"interrupted{': ' + str(exc) if str(exc) else ''}", file=sys.stderr)
        return 130
    return int(code or 0)
