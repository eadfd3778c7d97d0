"""The torch reference runner: a checkpoint run eagerly in PyTorch, behind the same Runner interface.

This is the one runtime module that uses torch (imported lazily, on `__enter__`); every other
runner is compared against it. Inputs as for every artifact: `image` float32 (N, 3, H, W) in
[0, 1], `level` float32 (1,) in the checkpoint's unit; output `restored`.

Usage:
    with TorchRunner("train/pretrained/denoise-mobile.safetensors", threads=2) as r:
        out = r.run({"image": x, "level": np.array([25], np.float32)})["restored"]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runtimes.core.artifact import TensorSpec
from runtimes.core.errors import UserError, require


class TorchRunner:
    """Run a checkpoint (path or shipped name, e.g. 'denoise-mobile') in PyTorch eager mode.

    Args:
        weights: a `.safetensors` checkpoint written by the trainer, or a shipped weight-set name.
        threads: intra-op threads for torch (None keeps torch's default).
        device: torch device string ("cpu", "cuda").
    """

    def __init__(self, weights: str | Path, threads: int | None = None, device: str = "cpu"):
        if threads is not None and threads < 1:
            raise UserError(f"threads must be >= 1, got {threads}")
        self.weights, self.threads, self.device = weights, threads, device
        self.name = f"torch-eager-{device}"
        self.meta: dict = {}
        self._model = None
        self._torch = None

    def __enter__(self) -> TorchRunner:
        torch = require("torch", "train")
        from train.checkpoint import load_checkpoint

        if self.threads is not None:
            torch.set_num_threads(self.threads)
        self._torch = torch
        self._model, ckpt = load_checkpoint(self.weights, device=self.device)
        self.meta = reference_meta(ckpt, str(self.weights))
        return self

    def __exit__(self, *exc) -> None:
        self._model = None

    def input_specs(self) -> list[TensorSpec]:
        return [TensorSpec("image", (None, 3, None, None), "float32"), TensorSpec("level", (1,), "float32")]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Restore `inputs["image"]` at `inputs["level"]`; returns {"restored": (N, 3, H, W) float32}."""
        if self._model is None:
            raise RuntimeError("TorchRunner.run called outside its `with` block")
        image, level = _check_inputs(inputs)
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(image).to(self.device)
            lv = torch.from_numpy(level).to(self.device)
            y = self._model(x, lv)
        return {"restored": y.float().cpu().numpy()}


def _check_inputs(inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    missing = {"image", "level"} - set(inputs)
    if missing:
        raise UserError(f"missing input(s) {', '.join(sorted(missing))}; give 'image' and 'level'")
    image = np.ascontiguousarray(inputs["image"], dtype=np.float32)
    if image.ndim != 4 or image.shape[1] != 3:
        raise UserError(f"image must be (N, 3, H, W), got shape {image.shape}")
    level = np.asarray(inputs["level"], dtype=np.float32).reshape(-1)
    if level.size != 1:
        raise UserError(f"level must hold one value, got shape {np.shape(inputs['level'])}")
    return image, level


def reference_meta(ckpt: dict, weights: str) -> dict:
    """Artifact-style metadata for the reference, so benchmarks treat it like any exported model."""
    return {
        "format": "torch", "task": ckpt["task"], "level_map": ckpt["level_map"], "level_mode": "runtime",
        "precision": "fp32", "layout": "NCHW", "sizes": None, "inputs": ["image", "level"], "outputs": ["restored"],
        "arch": ckpt.get("arch"), "weights": weights,
    }
