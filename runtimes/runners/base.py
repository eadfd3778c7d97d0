"""The Runner base class: one interface over every runtime, with activation, input checks and errors owned here.

A runner is a context manager that acquires its session/engine on `__enter__`, reports its input specs, and maps
named numpy arrays to named numpy arrays. Inputs of every artifact: `image` float32 (N, 3, H, W) in [0, 1]
(NHWC, or uint8 0-255, where the artifact's metadata says so) and `level` float32 (1,) in the user's unit (sigma,
JPEG quality, SR scale), absent for fixed-level artifacts; output `restored`.

As in Polygraphy's `BaseRunner`, subclasses implement only `activate_impl`, `deactivate_impl` and `infer_impl`;
the base checks that the runner is active, that the inputs are those the artifact takes (a missing level, a level
outside the model's range, a level given to a fixed artifact other than its own: one `UserError` each), so every
runtime fails the same way.

Usage:
    with OnnxRunner("dn.onnx") as r:
        out = r.run({"image": x, "level": np.array([25], np.float32)})["restored"]
"""

from __future__ import annotations

import numpy as np

from runtimes.core import artifact
from runtimes.core.artifact import TensorSpec
from runtimes.core.errors import UserError


class Runner:
    """Base of every runtime adapter.

    Attributes:
        name: e.g. "onnxruntime-cpu", "tflite-xnnpack" (may gain the runtime's version on enter).
        meta: the artifact's metadata (`<artifact>.meta.json`); a reference runner fills it on enter.
        is_active: True between `__enter__` and `__exit__`.
    """

    name: str = "runner"

    def __init__(self, meta: dict | None = None, name: str | None = None):
        self.meta: dict = meta if meta is not None else {}
        if name is not None:
            self.name = name
        self.is_active = False

    def activate_impl(self) -> None:
        """Acquire the session/engine (raise `UserError` with the fix when it cannot be loaded)."""
        raise NotImplementedError

    def deactivate_impl(self) -> None:
        """Release what `activate_impl` acquired (also called after a failed activation)."""

    def infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run on checked feeds: `image` (the artifact's type and layout) and `level` (float32 (1,)) when taken."""
        raise NotImplementedError

    def __enter__(self) -> Runner:
        try:
            self.activate_impl()
        except BaseException:
            self.deactivate_impl()
            raise
        self.is_active = True
        return self

    def __exit__(self, *exc) -> None:
        self.is_active = False
        self.deactivate_impl()

    def input_specs(self) -> list[TensorSpec]:
        """The inputs the artifact takes, from its metadata (None for dynamic axes)."""
        return artifact.input_specs(self.meta)

    def takes_level(self) -> bool:
        """False for fixed-level artifacts (the level is baked into the weights)."""
        return artifact.has_level_input(self.meta)

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Restore `inputs["image"]` at `inputs["level"]`; returns {"restored": ...}."""
        if not self.is_active:
            raise UserError(f"{type(self).__name__} must be entered (use it in a with block) before run()")
        return self.infer_impl(self.check_inputs(inputs))

    def check_inputs(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The feeds as the artifact takes them; a one-line `UserError` for anything it does not take."""
        required = ["image", "level"] if self.takes_level() else ["image"]
        missing = [n for n in required if inputs.get(n) is None]
        if missing:
            unit = (self.meta.get("level_map") or {}).get("unit", "the model's unit")
            raise UserError(f"missing input(s) {', '.join(missing)}: input 'level' (float32 [1], {unit}) is required"
                            if missing == ["level"] else f"missing input(s) {', '.join(missing)}; give "
                            + " and ".join(repr(n) for n in required))
        feeds = {"image": artifact.check_image(self.meta, inputs["image"])}
        level = artifact.check_level(self.meta, inputs.get("level"))
        if level is not None:
            feeds["level"] = level
        return feeds
