"""runtimes/ must import and work where torch is absent (device hosts): every module; the torch reference runner
(train.reference) names the extra to install."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import BLOCK_TORCH

REPO = Path(__file__).resolve().parents[2]

SCRIPT = BLOCK_TORCH + textwrap.dedent("""
    import runtimes
    names = sorted(m.name for m in pkgutil.walk_packages(runtimes.__path__, "runtimes."))
    for name in names:
        importlib.import_module(name)
    assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules), "torch got imported"

    import numpy as np
    from runtimes.apps.tiling import TileConfig, tile_image
    img = np.random.default_rng(0).random((3, 70, 90), dtype=np.float32)
    np.testing.assert_allclose(tile_image(lambda x: x + 1, img, TileConfig((32, 32), 8)), img + 1, atol=1e-6)
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("torch import was not blocked")
    print("ok", len(names))
""")


def test_runtimes_import_without_torch():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("ok"), proc.stdout
    assert int(proc.stdout.split()[1]) >= 30  # every runtime module was imported


def test_torch_runner_says_which_extra_without_torch(tmp_path):
    script = SCRIPT.split("import runtimes")[0] + textwrap.dedent("""
        from runtimes.core.errors import UserError
        from train.reference import TorchRunner
        try:
            TorchRunner("w.safetensors").__enter__()
        except UserError as exc:
            print(exc)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "levelres[train]" in proc.stdout
