"""The import graph is one-way (docs/architecture.md): runtimes.core <- runtimes.runners <- runtimes.apps <- train
<- export, devices -> runtimes only, and the `levelres` package (the command and the public API) -> runtimes only,
reaching train, export and devices by name at run time.

Two checks: every import statement of every module, including those inside functions (the lazy ones an import
test never reaches), against its layer's rule; and each layer imported in a clean subprocess, where no module
of a higher layer may end up in `sys.modules`.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OURS = ("runtimes", "train", "export", "devices", "levelres")

# layer -> the layers its modules may import (a module's layer is the longest prefix that matches)
ALLOWED = {
    "runtimes.core": ("runtimes.core",),
    "runtimes.runners": ("runtimes.core", "runtimes.runners"),
    "runtimes.apps": ("runtimes.core", "runtimes.runners", "runtimes.apps"),
    "runtimes": ("runtimes",),  # the package and its command forwarders (runtimes.bench, runtimes.restore, ...)
    "train": ("runtimes", "train"),
    "export": ("runtimes", "train", "export"),
    "devices": ("runtimes", "devices"),
    "levelres": ("runtimes", "levelres"),
}
# the only upward references, made by name at run time: command entry points kept at their published paths,
# and the torch reference runner the factory loads for a checkpoint
BY_NAME = {
    ("runtimes.bench", "export.job"): "python -m runtimes.bench with no artifacts runs the main job",
    ("devices.bundle", "export.bundle"): "python -m devices.bundle exports, on a workstation",
}
# the format table names every format's exporter and runner (and the torch reference runner) by design
TABLE = "runtimes.core.formats"
# the `levelres` command runs every tool by module name (as `python -m` does), and the API's `export` imports the
# exporters by name, inside the function: their references may point anywhere
FORWARDERS = {"levelres.cli": "the levelres command runs each tool as python -m <module>",
              "levelres.api": "levelres.export imports export.base by name when called"}


def _modules() -> dict[str, Path]:
    out = {}
    for top in OURS:
        for path in sorted((REPO / top).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _layer(module: str) -> str:
    return max((k for k in ALLOWED if module == k or module.startswith(k + ".")), key=len)


def _ok(layer: str, target: str) -> bool:
    return any(target == a or target.startswith(a + ".") for a in ALLOWED[layer])


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return {n for n in names if n.split(".")[0] in OURS}


def _named(path: Path) -> set[str]:
    """Project modules named in string constants ("pkg.mod" or "pkg.mod:Class"): the by-name references."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and " " not in node.value:
            name = node.value.split(":")[0]
            if name.split(".")[0] in OURS and "." in name and name.replace(".", "").replace("_", "").isalnum():
                names.add(name)
    return names


def test_every_import_statement_follows_the_layers():
    bad = [f"{mod} imports {target}" for mod, path in _modules().items() for target in sorted(_imports(path))
           if not _ok(_layer(mod), target)]
    assert not bad, "back edges (see docs/architecture.md):\n" + "\n".join(bad)


def test_upward_references_by_name_are_the_known_ones():
    modules = _modules()
    found = {(mod, name) for mod, path in modules.items() for name in _named(path)
             if mod != TABLE and mod not in FORWARDERS and name in modules and not _ok(_layer(mod), name)}
    assert found == set(BY_NAME), found ^ set(BY_NAME)


SCRIPT = textwrap.dedent("""
    import importlib, json, sys
    for name in sys.argv[2:]:
        importlib.import_module(name)
    ours = {{m: getattr(sys.modules[m], "__file__", None) for m in sys.modules if m.split(".")[0] in {ours!r}}}
    print(json.dumps(ours))
""").format(ours=set(OURS))


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_each_layer_imports_cleanly_without_a_back_edge(layer):
    names = [m for m in _modules() if _layer(m) == layer]
    proc = subprocess.run([sys.executable, "-c", SCRIPT, layer, *names], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    bad = [m for m in loaded if m not in OURS and not _ok(layer, m)]
    assert not bad, f"importing {layer} loaded {bad}"
    elsewhere = [f for f in loaded.values() if f and REPO not in Path(f).resolve().parents]
    assert not elsewhere, f"modules loaded from outside this tree (a stale install?): {elsewhere}"


def test_the_api_reaches_above_the_runtimes_only_for_export():
    modules = _modules()
    upward = {name for name in _named(modules["levelres.api"]) if name in modules and not _ok("levelres", name)}
    assert upward == {"export.base"}, upward
