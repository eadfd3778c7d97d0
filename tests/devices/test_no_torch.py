"""devices/ must import where torch is absent (Jetson, phone host): every module, torch blocked."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.devices.conftest import REPO

SCRIPT = textwrap.dedent("""
    import importlib, pkgutil, sys

    class BlockTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("torch is blocked for this test")

    sys.meta_path.insert(0, BlockTorch())
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
