"""The torch reference runner: a checkpoint run eagerly in PyTorch, behind the same Runner interface.

The one runner that uses torch (imported lazily, on `__enter__`); every other runner is compared against it. It
lives in train/, above the runtimes, because it rebuilds the model from a checkpoint; the runner factory
(`runtimes.runners.factory.reference_runner`) reaches it by name. Inputs as for every artifact: `image` float32
(N, 3, H, W) in [0, 1], `level` float32 (1,) in the checkpoint's unit; output `restored`.

Usage:
    with TorchRunner("train/pretrained/denoise-mobile.safetensors", threads=2) as r:
        out = r.run({"image": x, "level": np.array([25], np.float32)})["restored"]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runtimes.core.artifact import TensorSpec
from runtimes.core.errors import UserError, require
from runtimes.runners.base import Runner


class TorchRunner(Runner):
    """Run a checkpoint (path or shipped name, e.g. 'denoise-mobile') in PyTorch eager mode.

    Args:
        weights: a `.safetensors` checkpoint written by the trainer, or a shipped weight-set name.
        threads: intra-op threads for torch (None keeps torch's default).
        device: torch device string ("cpu", "cuda").
    """

    def __init__(self, weights: str | Path, threads: int | None = None, device: str = "cpu"):
        if threads is not None and threads < 1:
            raise UserError(f"threads must be >= 1, got {threads}")
        super().__init__({}, f"torch-eager-{device}")
        self.weights, self.threads, self.device = weights, threads, device
        self._model = None
        self._torch = None

    def activate_impl(self) -> None:
        torch = require("torch", "train")
        from train.checkpoint import load_checkpoint

        if self.threads is not None:
            torch.set_num_threads(self.threads)
        self._torch = torch
        self._model, ckpt = load_checkpoint(self.weights, device=self.device)
        self.meta = reference_meta(ckpt, str(self.weights))

    def deactivate_impl(self) -> None:
        self._model = None

    def input_specs(self) -> list[TensorSpec]:
        return [TensorSpec("image", (None, 3, None, None), "float32"), TensorSpec("level", (1,), "float32")]

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Restore the checked feeds' image at their level; returns {"restored": (N, 3, H, W) float32}."""
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(feeds["image"]).to(self.device)
            lv = torch.from_numpy(feeds["level"]).to(self.device)
            y = self._model(x, lv)
        return {"restored": y.float().cpu().numpy()}


def reference_meta(ckpt: dict, weights: str) -> dict:
    """Artifact-style metadata for the reference, so benchmarks treat it like any exported model."""
    return {
        "format": "torch", "task": ckpt["task"], "level_map": ckpt["level_map"], "level_mode": "runtime",
        "precision": "fp32", "layout": "NCHW", "sizes": None, "inputs": ["image", "level"], "outputs": ["restored"],
        "arch": ckpt.get("arch"), "weights": weights,
    }
