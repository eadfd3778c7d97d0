"""Pick and construct the runner for a model: the format table's runner for an artifact, the torch reference
for a checkpoint.

Runners are named by "module:Class" strings (the format table's `runner`, `REFERENCE_RUNNER`) and imported
only when used, so this layer never imports a runtime it does not run, nor the training code (the torch
reference lives in `train.reference`, above the runtimes; it is reached by name, with torch installed).

Usage:
    runner, meta = load_runner("dn.onnx", threads=2)
    with enter_runner(runner, path) as r: ...
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

from runtimes.core.errors import UserError
from runtimes.core.formats import FORMATS, REFERENCE_RUNNER, Format, format_for_path
from runtimes.core.meta import read_artifact_meta


def runner_class(spec: str, key: str, extra: str):
    """The class a "module:Class" string names; a one-line error naming the pip extra when it won't import."""
    module_name, cls_name = spec.split(":")
    try:
        return getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError) as exc:
        raise UserError(f"no runner for {key} artifacts ({spec}: {exc}); pip install 'levelres[{extra}]'") from None


def reference_runner(weights: str | Path, threads: int | None = None):
    """The torch reference runner (not entered) for a checkpoint or shipped weight-set name."""
    from runtimes.core.errors import require

    require("torch", "train")
    return runner_class(REFERENCE_RUNNER, "torch", "train")(weights, threads=threads)


def artifact_format(path: Path, meta: dict) -> Format:
    """The format of an artifact: its metadata's format key, else its file suffix; an error when they disagree."""
    for key in (meta.get("artifact_format"), meta.get("format")):
        if key in FORMATS:
            by_suffix = {f.suffix: f for f in FORMATS.values()}.get(path.suffix.lower())
            onnx_for_trt = key == "tensorrt" and path.suffix.lower() == ".onnx"
            if by_suffix is not None and by_suffix.key != key and not onnx_for_trt:
                raise UserError(f"{path.name}'s metadata describes a {key} artifact but the file is "
                                f"{by_suffix.suffix}: the file and its .meta.json do not belong together; re-export it")
            return FORMATS[key]
    return format_for_path(path)


def load_runner(path: str | Path, threads: int | None = None, bind_level: bool = False):
    """Construct (not enter) the runner the format table names for an artifact (`bind_level` goes to the
    runners that take it: onnxruntime).

    Returns:
        (runner, metadata).
    """
    path = Path(path)
    meta = read_artifact_meta(path)
    fmt = artifact_format(path, meta)
    cls = runner_class(fmt.runner, fmt.key, fmt.extra)
    params = inspect.signature(cls).parameters
    kwargs = {"threads": threads} if "threads" in params else {}
    if bind_level and "bind_level" in params:
        kwargs["bind_level"] = True
    return cls(path, **kwargs), meta


def enter_runner(runner, path: Path):
    """Enter a runner; any loading failure becomes a one-line UserError naming the file."""
    try:
        return runner.__enter__()
    except UserError:
        raise
    except Exception as exc:  # each runtime raises its own types for corrupt files
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"cannot load {path} with {getattr(runner, 'name', 'its runner')}: {first}; re-export it"
                        ) from None
