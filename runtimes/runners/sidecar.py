"""Cross-checks of an artifact's sidecar metadata (`<artifact>.meta.json`) against its graph, at load (numpy-only).

The runners follow the sidecar (layout, image type, level input, TFLite signatures and tensor names); a sidecar
that disagrees with the graph it sits beside would otherwise fail inside the runtime with its own traceback.
These checks name the first disagreement on one line when the runner is entered; `runtime_error` wraps a
failure inside a runtime's run call the same way.

Usage:
    check_onnx_io(session, meta, path, level_bound=False)
    check_tflite_signatures(interpreter, meta, path)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runtimes.core import artifact
from runtimes.core.errors import UserError

ONNX_TYPES = {"float32": "tensor(float)", "uint8": "tensor(uint8)"}


def mismatch(path: Path, says: str, graph: str) -> UserError:
    """The one-line error for a sidecar that disagrees with its graph."""
    return UserError(f"{path.name}.meta.json says {says} but the graph {graph}: the file and its metadata do not "
                     "belong together; re-export the model")


def runtime_error(path: Path, runtime: str, exc: BaseException) -> UserError:
    """A runtime's own failure while running an artifact, on one line."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return UserError(f"{runtime} failed to run {path.name}: {first[:300]}; check the input, or re-export the model")


def _channel_axis_ok(shape, layout: str) -> bool:
    """True when a rank-4 image shape can have its 3 channels on the layout's axis (dynamic axes accepted,
    unless the other layout's channel axis is the one that holds 3)."""
    if len(shape) != 4:
        return False
    is3 = [isinstance(v, (int, np.integer)) and int(v) == 3 for v in shape]
    mine, other = (3, 1) if layout == "NHWC" else (1, 3)
    fixed = isinstance(shape[mine], (int, np.integer)) and int(shape[mine]) > 0
    return is3[mine] or (not fixed and not is3[other])


def check_onnx_io(session, meta: dict, path: Path, level_bound: bool = False) -> None:
    """The graph's inputs and outputs against the sidecar: names, image layout and element type."""
    inputs = {i.name: i for i in session.get_inputs()}
    want = {"image"} | ({"level"} if artifact.has_level_input(meta) and not level_bound else set())
    if set(inputs) != want:
        raise mismatch(path, f"inputs {sorted(want)}", f"has inputs {sorted(inputs)}")
    if "restored" not in {o.name for o in session.get_outputs()}:
        raise mismatch(path, "an output 'restored'", f"has outputs {[o.name for o in session.get_outputs()]}")
    image, layout, dtype = inputs["image"], artifact.layout(meta), artifact.image_dtype(meta)
    if not _channel_axis_ok(list(image.shape), layout):
        raise mismatch(path, f"layout {layout}", f"takes images of shape {list(image.shape)}")
    if image.type != ONNX_TYPES[dtype]:
        raise mismatch(path, f"{dtype} images", f"takes {image.type}")


def _signature_entry(name: str, sig, meta: dict, path: Path) -> tuple[dict, dict]:
    """(inputs, outputs) tensor-name maps of one sidecar signature entry, checked for shape."""
    ok = isinstance(sig, dict) and isinstance(sig.get("inputs"), dict) and isinstance(sig.get("outputs"), dict)
    size = sig.get("size") if isinstance(sig, dict) else None
    ok = ok and isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)
    roles = ["image"] + (["level"] if artifact.has_level_input(meta) else [])
    ok = ok and all(isinstance(sig["inputs"].get(r), str) for r in roles)
    if not ok or not isinstance(sig["outputs"].get("restored"), str):
        raise UserError(f"{path.name}.meta.json: signature {name!r} is malformed (size [H, W], tensor names of "
                        f"{', '.join(roles)} and restored); re-export the model")
    return sig["inputs"], sig["outputs"]


def check_tflite_signatures(interp, meta: dict, path: Path) -> None:
    """Each sidecar signature against the interpreter's: names, tensor names, image shape and type."""
    graph = interp.get_signature_list()
    layout, dtype = artifact.layout(meta), artifact.image_dtype(meta)
    for name, sig in meta["signatures"].items():
        inputs, outputs = _signature_entry(name, sig, meta, path)
        if name not in graph:
            raise mismatch(path, f"signature {name!r}", f"has signatures {sorted(graph)}")
        have_in, have_out = set(graph[name]["inputs"]), set(graph[name]["outputs"])
        if set(inputs.values()) - have_in or outputs["restored"] not in have_out:
            raise mismatch(path, f"tensors {sorted(inputs.values())} -> {outputs['restored']!r} for {name!r}",
                           f"has {sorted(have_in)} -> {sorted(have_out)}")
        details = interp.get_signature_runner(name).get_input_details()[inputs["image"]]
        shape = [int(v) for v in details["shape"]]
        h, w = sig["size"]
        want = [1, h, w, 3] if layout == "NHWC" else [1, 3, h, w]
        if shape != want:
            raise mismatch(path, f"{layout} images of {h}x{w} for {name!r}", f"takes shape {shape}")
        if np.dtype(details["dtype"]) != np.dtype(dtype):
            raise mismatch(path, f"{dtype} images for {name!r}", f"takes {np.dtype(details['dtype'])}")
