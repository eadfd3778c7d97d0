"""The `levelres` command: its listing, forwarding to the tools' own CLIs, and the console-script entry."""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys
import tomllib

import pytest

from levelres import cli
from tests.runtimes.conftest import REPO


def _levelres(*args: str, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "levelres", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_help_lists_every_command_on_one_line_each():
    proc = _levelres("--help")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for name in cli.COMMANDS:
        (line,) = [x for x in lines if re.match(rf"  {name}  +\S", x)]
        assert len(line.split()) > 2, line  # the name and a description
    assert "export FORMAT: all, onnx, tflite, coreml, tensorrt" in proc.stdout


def test_no_command_prints_the_listing_and_fails():
    proc = _levelres()
    assert proc.returncode == 2 and "commands:" in proc.stdout


def test_subcommand_help_is_the_tools_own():
    got = _levelres("restore", "--help")
    want = subprocess.run([sys.executable, "-m", "runtimes.restore", "--help"], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert got.returncode == want.returncode == 0, got.stderr
    assert got.stdout == want.stdout


def test_forwarding_keeps_the_tools_exit_status_and_one_line_errors(tmp_path):
    proc = _levelres("restore", str(tmp_path / "missing.png"), "--model", str(tmp_path / "m.onnx"), "--level", "25",
                     "-o", str(tmp_path / "out.png"))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("error: "), proc.stderr


def test_forwarding_runs_the_tool(tiny_onnx, tmp_path):
    import numpy as np

    from runtimes.core.images import write_image

    src = tmp_path / "in.png"
    write_image(src, np.full((24, 20, 3), 0.5, np.float32))
    proc = _levelres("restore", str(src), "--model", str(tiny_onnx), "--level", "25", "-o", str(tmp_path / "o.png"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "o.png").is_file() and "restored at sigma 25" in proc.stderr


@pytest.mark.parametrize("argv, message", [
    (["frobnicate"], "unknown command 'frobnicate'"),
    (["export"], "FORMAT is one of all, onnx"),
    (["export", "jpeg"], "unknown export format 'jpeg'"),
    (["devices", "toaster"], "unknown devices target 'toaster'"),
])
def test_usage_errors_are_one_line(argv, message):
    proc = _levelres(*argv)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr


def test_second_words_resolve_to_modules():
    assert cli.resolve(["export", "onnx", "--weights", "w"]) == ("export.onnx", ["--weights", "w"])
    assert cli.resolve(["export", "all"]) == ("export.all", [])
    assert cli.resolve(["devices", "jetson", "--local"]) == ("devices.jetson", ["--local"])
    assert cli.resolve(["bench", "a.onnx"]) == ("runtimes.bench", ["a.onnx"])


def _modules_named() -> set[str]:
    names = {module for module, _ in cli.COMMANDS.values()} - {"devices"}
    names |= {f"export.{k}" for k in cli.EXPORT_FORMATS} | set(cli.DEVICE_TARGETS.values())
    return names


@pytest.mark.parametrize("module", sorted(_modules_named()))
def test_every_named_tool_is_a_runnable_module(module):
    """Each forwarded module exists in this tree and runs a `main` under `python -m` (read, not imported: some
    need torch)."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin, module
    path = spec.submodule_search_locations and spec.origin.replace("__init__.py", "__main__.py") or spec.origin
    tree = ast.parse(open(path).read())
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    defined |= {a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom) for a in n.names}
    assert "main" in defined, path
    assert "__main__" in open(path).read(), path


def test_the_format_keys_are_the_format_tables():
    from runtimes.core.formats import FORMATS

    assert set(cli.EXPORT_FORMATS) == set(FORMATS)


def test_console_script_and_package_are_declared():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["levelres"] == "levelres.cli:main"
    assert "levelres*" in project["tool"]["setuptools"]["packages"]["find"]["include"]


def test_command_starts_without_torch():
    code = "import sys, levelres, levelres.cli; print(sorted(m for m in sys.modules if m.split('.')[0] in " \
           "('torch', 'train', 'export', 'onnxruntime')))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr
