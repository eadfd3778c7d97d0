"""Write an artifact's golden vectors at export (the folder layout and the checker: runtimes.golden).

The input is a crop of the validation image, degraded at a middle training level and rounded to 8 bits (so
the PNG beside it is the exact source of a float input too). The cases are the neutral level (the artifact
returns its input) and that training level; a fixed-level artifact has one case, its baked level. The
expected outputs come from the artifact itself in the runtime that validated it (onnxruntime, LiteRT),
or, where that runtime is absent (Core ML on Linux), from the PyTorch export graph in fp32.

Usage:
    folder = write_golden(model, tmp_artifact, meta, cfg, runner=TFLiteRunner(tmp_artifact))
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import numpy as np

from runtimes.apps import golden as g

DEFAULT_SIZE = 64


def golden_size(meta: dict) -> tuple[int, int]:
    """The input size the artifact takes: its smallest fixed size (TFLite signature, Core ML enumerated shape,
    static ONNX size, TensorRT minimum shape), else 64x64 on the network's stride grid."""
    fixed = [tuple(s["size"]) for s in (meta.get("signatures") or {}).values()]
    fixed += [tuple(s) for s in meta.get("enumerated") or []]
    fixed += [tuple(meta["static_size"])] if meta.get("static_size") else []
    if fixed:
        return min(fixed, key=lambda s: (s[0] * s[1], s))
    trt = (meta.get("tensorrt") or {}).get("shapes")
    if trt:
        lo = trt[0]
        return (lo[1], lo[2]) if meta.get("layout") == "NHWC" else (lo[2], lo[3])
    stride = int((meta.get("arch") or {}).get("scale", 1) or 1)
    side = -(-DEFAULT_SIZE // stride) * stride
    return side, side


def golden_levels(level_map, fixed_level: float | None) -> list[float]:
    """Neutral and a middle training level; a fixed artifact's baked level."""
    if fixed_level is not None:
        return [float(fixed_level)]
    from export.validate import validation_levels

    return validation_levels(level_map)[:2]


def golden_bytes(model, size: tuple[int, int], level: float) -> np.ndarray:
    """The 8-bit (H, W, 3) input: the validation image's crop, degraded at `level`, rounded."""
    from export.validate import fit, reference_image
    from runtimes.core.degrade import degrade, image_seed

    clean, source = reference_image()
    degraded = degrade(fit(clean, *size), model.level_map.task, level, seed=image_seed(source))
    return np.clip(np.rint(np.asarray(degraded, np.float64) * 255.0), 0, 255).astype(np.uint8)


def as_artifact_input(u8: np.ndarray, layout: str, io: str) -> np.ndarray:
    """(H, W, 3) bytes as the artifact takes them: batch of one, its layout, uint8 or float32 = byte / 255."""
    x = u8[None] if layout == "NHWC" else u8.transpose(2, 0, 1)[None]
    x = np.ascontiguousarray(x)
    return x if io == "uint8" else (x.astype(np.float32) / np.float32(255.0))


def golden_io(meta: dict) -> tuple[str, str]:
    """(layout, io) of the golden arrays: the artifact's, or NHWC bytes for Core ML image I/O."""
    if meta.get("image_io"):
        return "NHWC", "uint8"
    return meta["layout"], meta["io"]


def reference_run(model, cfg, meta: dict):
    """`run(image, level)` through the fp32 PyTorch export graph with the golden arrays' layout and type."""
    import torch

    from export.base import graph_spec
    from export.graph import build_graph

    layout, io = golden_io(meta)
    spec = dataclasses.replace(graph_spec(cfg), nhwc=layout == "NHWC", io=io)
    graph = build_graph(copy.deepcopy(model), spec)

    def run(image: np.ndarray, level: float | None) -> np.ndarray:
        with torch.no_grad():
            args = (torch.from_numpy(image),) if level is None else (torch.from_numpy(image), torch.tensor([level]))
            return graph(*args).numpy()

    return run


def runner_run(runner):
    def run(image: np.ndarray, level: float | None) -> np.ndarray:
        feed = {"image": image} if level is None else {"image": image, "level": np.array([level], np.float32)}
        return runner.run(feed)["restored"]

    return run


def processing_text(layout: str, io: str, image_io: bool) -> tuple[str, str]:
    """(pre-processing, post-processing) in words, for golden.json."""
    shape = "(1, H, W, 3)" if layout == "NHWC" else "(1, 3, H, W)"
    if image_io:
        pre = ("Feed input.png as the Core ML image input `image` (RGB; from a camera, a CVPixelBuffer); the model "
               "scales by 1/255 itself. input.bin holds the same bytes as uint8 (1, H, W, 3), R, G, B.")
        post = "The output `restored` is an RGB image; its bytes, as uint8 (1, H, W, 3), are expected_<i>.bin."
        return pre, post
    if io == "uint8":
        pre = (f"input.bin holds the bytes of input.png (8-bit sRGB, R, G, B, rows top to bottom) as uint8 {shape}; "
               "feed them to `image` unchanged: no scaling, no mean or std.")
        post = "`restored` is uint8 in the same layout (rounded and clamped inside the graph); compare it as it is."
        return pre, post
    pre = (f"input.bin holds float32 {shape} in [0, 1]: each byte of input.png (8-bit sRGB, R, G, B, rows top to "
           "bottom) divided by 255. No mean or std; feed it to `image` as it is.")
    post = ("`restored` is float32 in the same layout and is not clamped. For display: round(clamp(v, 0, 1) * 255). "
            "Compare the float values themselves with expected_<i>.bin.")
    return pre, post


def array_entry(folder: Path, name: str, arr: np.ndarray, written: dict[str, str]) -> dict:
    """Write `arr` as `name` (or reuse an identical file already written) and describe it."""
    data = g.array_bytes(arr)
    digest = g.sha256(data)
    if digest not in written:
        (folder / name).write_bytes(data)
        written[digest] = name
    return {"file": written[digest], "dtype": str(arr.dtype), "shape": list(arr.shape), "byte_order": "little",
            "sha256": digest}


def write_golden(model, artifact: Path, meta: dict, cfg, runner=None) -> Path:
    """Write `<artifact>.golden/` beside the (temporary) artifact; returns the folder.

    Args:
        model: the loaded network.
        artifact: the artifact file (its sidecar written), in the export's temporary folder.
        meta: the artifact's metadata (gets a `golden` summary).
        cfg: the `ExportConfig`.
        runner: a not yet entered runner of the artifact, or None to take the expected outputs from the
            PyTorch export graph.
    """
    from runtimes.core.images import write_image

    layout, io = golden_io(meta)
    size = golden_size(meta)
    levels = golden_levels(model.level_map, meta.get("fixed_level"))
    u8 = golden_bytes(model, size, levels[-1])
    image = as_artifact_input(u8, layout, io)
    feed_level = meta.get("level_mode") != "fixed"
    if runner is None:
        run, source = reference_run(model, cfg, meta), "the PyTorch export graph (fp32) on the export machine"
        outputs = [run(image, lv if feed_level else None) for lv in levels]
    else:
        with runner:
            run, source = runner_run(runner), f"{runner.name} on the export machine"
            outputs = [run(image, lv if feed_level else None) for lv in levels]
    folder = g.golden_dir(artifact)
    folder.mkdir()
    written: dict[str, str] = {}
    input_entry = array_entry(folder, "input.bin", image, written)
    write_image(folder / "input.png", u8)
    cases = [{"level": lv, "feed_level": feed_level,
              "expected": array_entry(folder, f"expected_{i}.bin", np.asarray(out), written)}
             for i, (lv, out) in enumerate(zip(levels, outputs, strict=True))]
    pre, post = processing_text(layout, io, bool(meta.get("image_io")))
    spec = {"format": g.FORMAT, "format_version": g.FORMAT_VERSION, "artifact": Path(artifact).name,
            "levelres_version": meta.get("levelres_version"), "task": meta["task"], "level_unit": meta["level_unit"],
            "precision": meta["precision"], "layout": layout, "io": io, "size": list(size),
            "signature": _signature(meta, size), "input": {**input_entry, "png": "input.png"},
            "level_input": "float32 [1], the case's level" if feed_level else "none (the level is baked in)",
            "cases": cases, "expected_from": source,
            "validation": (meta.get("validation") or {}).get("status"),
            "tolerance": g.tolerance_for(meta["precision"], io),
            "preprocessing": pre, "postprocessing": post,
            "check": f"python -m runtimes.golden {Path(artifact).name}"}
    (folder / g.SPEC_FILE).write_text(json.dumps(spec, indent=1) + "\n")
    meta["golden"] = {"folder": folder.name, "size": list(size), "levels": levels, "expected_from": source,
                      "tolerance": spec["tolerance"]}
    return folder


def _signature(meta: dict, size: tuple[int, int]) -> str | None:
    for name, sig in (meta.get("signatures") or {}).items():
        if tuple(sig["size"]) == tuple(size):
            return name
    return None
