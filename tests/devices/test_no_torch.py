"""devices/ must import where torch is absent (Jetson, phone host): every module, torch blocked."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import BLOCK_TORCH
from tests.devices.conftest import REPO

SCRIPT = BLOCK_TORCH + textwrap.dedent("""
    import devices
    names = [m.name for m in pkgutil.walk_packages(devices.__path__, "devices.")]
    for name in names:
        importlib.import_module(name)
    bad = [m for m in sys.modules if m == "torch" or m.startswith(("torch.", "export", "train"))]
    assert not bad, bad
    print("ok", len(names))
""")


def test_devices_import_without_torch():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout.split()[1]) >= 18, proc.stdout
