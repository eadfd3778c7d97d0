"""One vocabulary across the command lines (docs/cli.md): every command's parser is built here and checked for
help texts, canonical spellings from the vocabulary table, `--plots/--no-plots`, and the old spellings.

    python -m tests.test_cli_vocabulary      # print the inventory: command, option, default, help
"""

from __future__ import annotations

import argparse
import importlib
import re
from pathlib import Path

import pytest

from runtimes.core.cli import OnOffAction, SizesAction
from runtimes.core.errors import CliHelpFormatter, CliParser, UserError

ROOT = Path(__file__).resolve().parents[1]

# command -> module holding its `build_parser()`
COMMANDS = {
    "python -m train": "train.__main__",
    "python -m train.qat": "train.qat",
    "python -m train.evaluate": "train.evaluate",
    "python -m train.calibrate": "train.calibrate",
    "python -m train.compare": "train.compare",
    "python -m train.curve": "train.curve",
    "python -m train.ship": "train.ship",
    "python -m train.cards": "train.cards",
    "python -m train.throughput": "train.throughput",
    "python -m export.onnx": "export.onnx",
    "python -m export.tflite": "export.tflite",
    "python -m export.coreml": "export.coreml",
    "python -m export.tensorrt": "export.tensorrt",
    "python -m export.all": "export.all",
    "python -m export.bench_cpu": "export.bench_cpu",
    "python -m export.bench_modes": "export.bench_modes",
    "python -m devices.bundle": "export.bundle",
    "python -m runtimes.restore": "runtimes.apps.restore",
    "python -m runtimes.bench": "runtimes.apps.bench",
    "python -m runtimes.golden": "runtimes.apps.golden",
    "python -m runtimes.autolevel_eval": "runtimes.apps.autolevel_eval",
    "python -m devices.jetson": "devices.jetson.__main__",
    "python -m devices.android": "devices.android.__main__",
    "python -m devices.ios": "devices.ios.__main__",
}

# words that make an option name a model, size or plots concept
CONCEPT_WORDS = {"model", "models", "weights", "checkpoint", "ckpt", "artifact", "onnx", "tflite", "mlpackage",
                 "engine", "size", "sizes", "shape", "shapes", "enumerated", "plot", "plots"}


def is_concept(name: str) -> bool:
    return bool(CONCEPT_WORDS & set(name.lstrip("-").split("-")))


def parser_of(module: str) -> argparse.ArgumentParser:
    return importlib.import_module(module).build_parser()


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]


def canonical(action: argparse.Action) -> str:
    """The name `--help` shows: the first long spelling (a positional: its dest)."""
    longs = [s for s in action.option_strings if s.startswith("--")]
    return longs[0] if longs else (action.option_strings[0] if action.option_strings else action.dest)


def vocabulary() -> tuple[dict[str, set[str]], set[str]]:
    """docs/cli.md's table: canonical spelling -> its old spellings, and every old spelling."""
    rows: dict[str, set[str]] = {}
    table = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8").split("## Vocabulary", 1)[1].split("\n## ")[0]
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[1].startswith("`--"):
            continue
        names = re.findall(r"`(--[a-z0-9-]+)", cells[1])
        old = set(re.findall(r"`(--[a-z0-9-]+)", cells[2]))
        for name in names:
            rows.setdefault(name, set()).update(old)
    return rows, {o for olds in rows.values() for o in olds} - set(rows)  # --size: one size, or old --sizes


def test_every_command_is_listed():
    """A module that builds a CliParser is a command and belongs in COMMANDS (and so in these checks)."""
    found = set()
    packages = ("train", "export", "runtimes", "devices", "levelres")  # the project's packages, not build output
    for path in (p for pkg in packages for p in (ROOT / pkg).rglob("*.py")):
        rel = path.relative_to(ROOT)
        if "CliParser(" in path.read_text(encoding="utf-8") and rel != Path("runtimes/core/errors.py"):
            found.add(".".join(rel.with_suffix("").parts))
    assert found == set(COMMANDS.values())


@pytest.mark.parametrize("command", COMMANDS)
def test_parser_uses_the_project_formatter(command):
    parser = parser_of(COMMANDS[command])
    assert isinstance(parser, CliParser) and parser.formatter_class is CliHelpFormatter
    assert parser.prog == command
    parser.format_help()  # every help string formats (no stray %)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_has_help(command):
    missing = [canonical(a) for a in options(parser_of(COMMANDS[command])) if not (a.help or "").strip()]
    assert not missing, f"{command}: options without help: {', '.join(missing)}"


@pytest.mark.parametrize("command", COMMANDS)
def test_concepts_use_the_vocabulary(command):
    """An option naming a model, size or plots concept is spelled as in docs/cli.md, and an old spelling is never
    an option's canonical name."""
    rows, old = vocabulary()
    for action in options(parser_of(COMMANDS[command])):
        name = canonical(action)
        assert name not in old, f"{command}: {name} is an old spelling; name the option {_new_for(name, rows)}"
        if action.option_strings and is_concept(name):
            assert name in rows, f"{command}: {name} is not in docs/cli.md's vocabulary table"
        for alias in action.option_strings:
            if alias.startswith("--") and alias != name and not alias.startswith("--no-"):
                assert alias in rows.get(name, set()), f"{command}: alias {alias} of {name} is not in docs/cli.md"


def _new_for(name: str, rows: dict[str, set[str]]) -> str:
    return next((new for new, olds in rows.items() if name in olds), "as docs/cli.md says")


@pytest.mark.parametrize("command", COMMANDS)
def test_sizes_and_plots_have_one_form(command):
    """`--size` is one HxW, `--sizes` several (SizesAction), plots are `--plots/--no-plots`."""
    for action in options(parser_of(COMMANDS[command])):
        name = canonical(action)
        if name == "--sizes":
            assert isinstance(action, SizesAction), f"{command}: --sizes must use SizesAction"
        if name == "--size":
            assert action.nargs is None and not isinstance(action, SizesAction), f"{command}: --size is one size"
        if "plot" in name:
            assert isinstance(action, OnOffAction) and name == "--plots", f"{command}: plots are --plots/--no-plots"


PLOTS = {"python -m runtimes.bench": ([], True), "python -m devices.jetson": (["--model", "a.onnx"], False),
         "python -m devices.android": (["--model", "a.tflite"], False),
         "python -m devices.ios": (["--model", "a.mlpackage"], False)}


@pytest.mark.parametrize("command", PLOTS)
def test_plots_both_ways(command):
    base, default = PLOTS[command]
    parser = parser_of(COMMANDS[command])
    assert parser.parse_args(base).plots is default  # each command keeps its default
    assert parser.parse_args([*base, "--plots"]).plots is True
    assert parser.parse_args([*base, "--no-plots"]).plots is False


@pytest.mark.parametrize("command, argv, dest, value", [
    ("python -m devices.jetson", ["--onnx", "a.onnx"], "model", Path("a.onnx")),
    ("python -m devices.android", ["--tflite", "a.tflite"], "model", Path("a.tflite")),
    ("python -m devices.ios", ["--mlpackage", "a.mlpackage"], "model", Path("a.mlpackage")),
    ("python -m devices.jetson", ["--model", "a.onnx"], "model", Path("a.onnx")),
    ("python -m devices.bundle", ["--weights", "w", "--tflite-sizes", "32x32", "48x64"], "sizes",
     ((32, 32), (48, 64))),
    ("python -m devices.bundle", ["--weights", "w", "--sizes", "32x32,48x64"], "sizes", ((32, 32), (48, 64))),
    ("python -m export.tflite", ["--weights", "w", "--size", "32x32", "--size", "48x64,32x32"], "sizes",
     ((32, 32), (48, 64), (32, 32))),
    ("python -m export.coreml", ["--weights", "w", "--enumerated", "32x32,48x64"], "sizes", ((32, 32), (48, 64))),
    ("python -m export.all", ["--weights", "w", "--size", "32x32,48x64"], "sizes", ((32, 32), (48, 64))),
    ("python -m export.all", ["--weights", "w"], "sizes", ((720, 1280),)),
    ("python -m runtimes.bench", ["--sizes", "32x32", "48x64"], "sizes", ((32, 32), (48, 64))),
    ("python -m runtimes.bench", ["--sizes", "32x32,48x64"], "sizes", ((32, 32), (48, 64))),
    ("python -m export.tensorrt", ["--weights", "w", "--target-version", "10"], "trt_version", "10"),
])
def test_old_and_new_spellings_parse(command, argv, dest, value):
    assert getattr(parser_of(COMMANDS[command]).parse_args(argv), dest) == value


def test_a_repeated_sizes_is_refused_where_it_was():
    with pytest.raises(UserError, match="given twice"):
        parser_of("runtimes.apps.bench").parse_args(["--sizes", "32x32", "--sizes", "48x48"])


def test_help_shows_canonical_names_and_defaults():
    text = parser_of("devices.jetson.__main__").format_help()
    assert "--model MODEL" in text and "--onnx" not in text.replace("--onnx dn.onnx", "")
    assert "--plots, --no-plots" in text
    bench = " ".join(parser_of("runtimes.apps.bench").format_help().split())
    assert "(default: out/artifacts)" in bench  # appended by the formatter
    assert "(default: on)" in bench  # --plots
    assert "(default: None)" not in bench and "(default: False)" not in bench
    assert "--no-plots skips them)" in bench
    sizes = " ".join(parser_of("export.all").format_help().split())
    assert "--sizes SIZES [SIZES ...]" in sizes and "(default: 720x1280)" in sizes and "--size " not in sizes


def test_the_checks_can_fail():
    """A parser with an option lacking help, an old canonical spelling and an unlisted size option fails."""
    p = CliParser(prog="bad")
    p.add_argument("--onnx", help="x")
    p.add_argument("--tile-size", help="")
    rows, old = vocabulary()
    assert "--onnx" in old and is_concept("--tile-size") and "--tile-size" not in rows
    assert not is_concept("--weight-floor") and not is_concept("--level-weighting")
    assert [canonical(a) for a in options(p) if not (a.help or "").strip()] == ["--tile-size"]


if __name__ == "__main__":
    for command, module in COMMANDS.items():
        for action in options(parser_of(module)):
            default = "" if action.default in (None, False, argparse.SUPPRESS) else f" = {action.default!r}"
            print(f"{command:36} {'/'.join(action.option_strings) or action.dest}{default}: {action.help or '-'}")
