"""The README stays a short guide: its length, its two commands, the modules and files it names.

The measurements live in docs/results.md; the README only points there.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_LINES = 300

SETUP = 'python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 && pip install -e ".[all]"'
COMMANDS = (f"{SETUP} && python -m runtimes.bench", f"{SETUP} && python -m pytest")

# links to documents that are written separately: checked once the file exists
PENDING = {"docs/api.md"}


def readme() -> str:
    return README.read_text(encoding="utf-8")


def test_readme_is_short():
    n = len(readme().splitlines())
    assert n <= MAX_LINES, f"README.md has {n} lines; move detail to docs/ (the limit is {MAX_LINES})"


@pytest.mark.parametrize("command", COMMANDS)
def test_two_commands_unchanged(command):
    assert f"    {command}\n" in readme(), f"the README must show this command verbatim: {command}"


def named_modules() -> list[str]:
    mods = set(re.findall(r"python -m ([A-Za-z_][\w.]*)", readme()))
    return sorted(m for m in mods if m != "pytest")


def test_readme_names_modules():
    assert {"train", "train.evaluate", "export.onnx", "runtimes.restore", "runtimes.bench"} <= set(named_modules())


@pytest.mark.parametrize("module", named_modules())
def test_named_module_exists(module):
    assert importlib.util.find_spec(module) is not None, f"the README names `python -m {module}`, which does not exist"


def test_links_resolve():
    links = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", readme())
    assert links
    missing = [ln for ln in links if not (ROOT / ln).exists() and ln not in PENDING]
    assert not missing, f"README links to missing files: {missing}"


def test_docs_links_resolve():
    missing = []
    for doc in sorted((ROOT / "docs").glob("*.md")):
        for ln in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", doc.read_text(encoding="utf-8")):
            if not (doc.parent / ln).exists() and f"docs/{ln}" not in PENDING:
                missing.append(f"{doc.name} -> {ln}")
    assert not missing, f"docs link to missing files: {missing}"
