"""Fixtures for the `levelres` command and API: the runtime tests' tiny checkpoint and its ONNX export."""

from __future__ import annotations

from tests.runtimes.conftest import REPO, tiny_ckpt, tiny_onnx  # noqa: F401 - fixtures shared with tests/runtimes
