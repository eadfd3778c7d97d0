"""The standard TFLite model metadata (`TFLITE_METADATA`, schema `metadata_schema.fbs` of tflite-support, file
identifier M001): model name, description, version, author, licence, and per subgraph the description, value range
and pixel normalisation of `image`, `level` and `restored`. Android Studio's model binding, the TFLite metadata
extractors and model viewers read it.

tflite-support's own writer cannot be installed beside this project (it pins protobuf < 4, which onnx refuses,
and is built for NumPy 1), so the table is written here with the flatbuffers runtime, field by field in the
schema's slot order; `read_model_metadata` reads it back the same way (tests) and any schema-generated reader
reads it too.

Usage:
    buf = model_metadata_buffer(meta, subgraphs)   # subgraphs: [{"name", "inputs": [roles], "outputs": [...]}]
    info = read_model_metadata(buf)
"""

from __future__ import annotations

import flatbuffers
from flatbuffers import number_types as nt
from flatbuffers.table import Table

NAME = "TFLITE_METADATA"
IDENTIFIER = b"M001"
MIN_PARSER_VERSION = "1.0.0"  # ImageProperties, NormalizationOptions and Stats: all in the 1.0 schema
FEATURE, IMAGE = 1, 2  # ContentProperties union members
NORMALIZATION = 1  # ProcessUnitOptions union member
RGB = 1  # ColorSpaceType
AUTHOR = "the levelres authors"


def _strings(b: flatbuffers.Builder, items: list[str]) -> int:
    offsets = [b.CreateString(s) for s in items]
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def _tables(b: flatbuffers.Builder, offsets: list[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def _floats(b: flatbuffers.Builder, values: list[float]) -> int:
    b.StartVector(4, len(values), 4)
    for v in reversed(values):
        b.PrependFloat32(float(v))
    return b.EndVector()


def _table(b: flatbuffers.Builder, slots: int, fields: dict[int, tuple[str, object]]) -> int:
    """A table with `fields` {slot: (kind, value)}; kind: offset, uint8, int8 or uint32."""
    b.StartObject(slots)
    add = {"offset": b.PrependUOffsetTRelativeSlot, "uint8": b.PrependUint8Slot, "int8": b.PrependInt8Slot,
           "uint32": b.PrependUint32Slot}
    for slot, (kind, value) in sorted(fields.items()):
        add[kind](slot, value, 0)
    return b.EndObject()


def tensor_specs(meta: dict) -> dict[str, dict]:
    """Role -> {description, dims, image (bool: an RGB image in NHWC), min, max, mean, std} from the artifact's
    metadata."""
    nhwc, u8 = meta["layout"] == "NHWC", meta["io"] == "uint8"
    lo, hi = (0.0, 255.0) if u8 else (0.0, 1.0)
    kind = "uint8 0-255" if u8 else "float32 in [0, 1]"
    layout = "(1, H, W, 3)" if nhwc else "(1, 3, H, W)"
    dims = ["batch", "height", "width", "channels"] if nhwc else ["batch", "channels", "height", "width"]
    image = {"dims": dims, "image": nhwc, "min": lo, "max": hi, "mean": 0.0, "std": 1.0 if u8 else 255.0}
    specs = {
        "image": {**image, "description": f"sRGB photo, R, G, B; {kind}, {layout}. Pixel bytes are fed as they are"
                                          + ("." if u8 else " / 255 (normalisation mean 0, std 255).")},
        "restored": {**{k: v for k, v in image.items() if k not in ("mean", "std")},  # normalisation is input-side
                     "description": f"restored photo, as `image`: {kind}, {layout}"
                                             + ("; rounded and clamped in the graph." if u8 else
                                                "; not clamped: clamp to [0, 1], then x 255 for bytes.")},
    }
    if meta.get("level_mode") != "fixed":
        lo_l, hi_l = meta["level_range"]
        specs["level"] = {"description": f"restoration level in {meta['level_unit']} units, float32 [1], "
                                         f"{lo_l:g}-{hi_l:g}; trained at "
                                         f"{', '.join(f'{x:g}' for x in meta['train_levels'])}",
                          "dims": ["level"], "image": False, "min": float(lo_l), "max": float(hi_l)}
    return specs


def _tensor(b: flatbuffers.Builder, role: str, spec: dict, size: tuple[int, int]) -> int:
    name, desc, dims = b.CreateString(role), b.CreateString(spec["description"]), _strings(b, spec["dims"])
    if spec["image"]:
        img_size = _table(b, 2, {0: ("uint32", size[1]), 1: ("uint32", size[0])})
        props, ptype = _table(b, 2, {0: ("int8", RGB), 1: ("offset", img_size)}), IMAGE
    else:
        props, ptype = _table(b, 0, {}), FEATURE
    content = _table(b, 3, {0: ("uint8", ptype), 1: ("offset", props)})
    units = None
    if "mean" in spec:
        norm = _table(b, 2, {0: ("offset", _floats(b, [spec["mean"]])), 1: ("offset", _floats(b, [spec["std"]]))})
        units = _tables(b, [_table(b, 2, {0: ("uint8", NORMALIZATION), 1: ("offset", norm)})])
    stats = _table(b, 2, {0: ("offset", _floats(b, [spec["max"]])), 1: ("offset", _floats(b, [spec["min"]]))})
    fields = {0: ("offset", name), 1: ("offset", desc), 2: ("offset", dims), 3: ("offset", content),
              5: ("offset", stats)}
    if units is not None:
        fields[4] = ("offset", units)
    return _table(b, 7, fields)


def model_metadata_buffer(meta: dict, subgraphs: list[dict]) -> bytes:
    """The ModelMetadata flatbuffer.

    Args:
        meta: the artifact's metadata (task, level unit and range, layout, io, description, version, licence).
        subgraphs: one per subgraph in subgraph order: {"name": signature, "size": (H, W), "inputs": roles in
            the subgraph's input order, "outputs": roles in output order}.
    """
    specs = tensor_specs(meta)
    b = flatbuffers.Builder(1024)
    sub_offsets = []
    for sg in subgraphs:
        ins = [_tensor(b, r, specs[r], sg["size"]) for r in sg["inputs"]]
        outs = [_tensor(b, r, specs[r], sg["size"]) for r in sg["outputs"]]
        h, w = sg["size"]
        sub_offsets.append(_table(b, 7, {
            0: ("offset", b.CreateString(sg["name"])),
            1: ("offset", b.CreateString(f"signature {sg['name']}: one {h}x{w} image")),
            2: ("offset", _tables(b, ins)), 3: ("offset", _tables(b, outs))}))
    weights = meta.get("source", {}).get("weights", "")
    name = f"levelres {meta['task']}" + (f" ({weights})" if weights else "")
    fields = {
        0: ("offset", b.CreateString(name)),
        1: ("offset", b.CreateString(meta["description"] + ". One network for every level: set `level` per frame; "
                                     "the neutral level returns the input.")),
        2: ("offset", b.CreateString(str(meta.get("levelres_version") or ""))),
        3: ("offset", _tables(b, sub_offsets)),
        4: ("offset", b.CreateString(AUTHOR)),
        5: ("offset", b.CreateString(meta.get("license", "MIT"))),
        7: ("offset", b.CreateString(MIN_PARSER_VERSION)),
    }
    b.Finish(_table(b, 8, fields), file_identifier=IDENTIFIER)
    return bytes(b.Output())


# --- reading back (generic flatbuffer tables, slot by slot) -------------------------------------------------------

def _tab(buf: bytes, pos: int) -> Table:
    return Table(buf, pos)


def _str(t: Table, slot: int) -> str | None:
    o = t.Offset(4 + 2 * slot)
    return t.String(o + t.Pos).decode() if o else None


def _sub(t: Table, slot: int) -> Table | None:
    o = t.Offset(4 + 2 * slot)
    return _tab(t.Bytes, t.Indirect(o + t.Pos)) if o else None


def _vec_tables(t: Table, slot: int) -> list[Table]:
    o = t.Offset(4 + 2 * slot)
    if not o:
        return []
    start = t.Vector(o)
    return [_tab(t.Bytes, t.Indirect(start + 4 * i)) for i in range(t.VectorLen(o))]


def _vec_strings(t: Table, slot: int) -> list[str]:
    o = t.Offset(4 + 2 * slot)
    if not o:
        return []
    start = t.Vector(o)
    return [t.String(start + 4 * i).decode() for i in range(t.VectorLen(o))]


def _vec_floats(t: Table, slot: int) -> list[float]:
    o = t.Offset(4 + 2 * slot)
    if not o:
        return []
    start = t.Vector(o)
    return [t.Get(nt.Float32Flags, start + 4 * i) for i in range(t.VectorLen(o))]


def _scalar(t: Table, slot: int, flags) -> int:
    o = t.Offset(4 + 2 * slot)
    return t.Get(flags, o + t.Pos) if o else 0


def _read_tensor(t: Table) -> dict:
    content = _sub(t, 3)
    ptype = _scalar(content, 0, nt.Uint8Flags) if content else 0
    out = {"name": _str(t, 0), "description": _str(t, 1), "dimension_names": _vec_strings(t, 2),
           "content": {FEATURE: "feature", IMAGE: "image"}.get(ptype, ptype)}
    if ptype == IMAGE:
        props = _sub(content, 1)
        size = _sub(props, 1)
        out["color_space"] = _scalar(props, 0, nt.Int8Flags)
        out["default_size"] = [_scalar(size, 1, nt.Uint32Flags), _scalar(size, 0, nt.Uint32Flags)]  # H, W
    for unit in _vec_tables(t, 4):
        if _scalar(unit, 0, nt.Uint8Flags) == NORMALIZATION:
            norm = _sub(unit, 1)
            out["normalization"] = {"mean": _vec_floats(norm, 0), "std": _vec_floats(norm, 1)}
    stats = _sub(t, 5)
    if stats:
        out["stats"] = {"max": _vec_floats(stats, 0), "min": _vec_floats(stats, 1)}
    return out


def read_model_metadata(buf: bytes) -> dict:
    """The ModelMetadata flatbuffer as a dict (name, description, version, author, license, subgraphs)."""
    if flatbuffers.util.GetBufferIdentifier(buf, 0) != IDENTIFIER:
        raise ValueError(f"not a TFLite metadata buffer (identifier {bytes(buf[4:8])!r}, expected {IDENTIFIER!r})")
    root = _tab(buf, flatbuffers.encode.Get(nt.UOffsetTFlags.packer_type, buf, 0))
    subgraphs = [{"name": _str(sg, 0), "description": _str(sg, 1),
                  "inputs": [_read_tensor(x) for x in _vec_tables(sg, 2)],
                  "outputs": [_read_tensor(x) for x in _vec_tables(sg, 3)]} for sg in _vec_tables(root, 3)]
    return {"name": _str(root, 0), "description": _str(root, 1), "version": _str(root, 2), "author": _str(root, 4),
            "license": _str(root, 5), "min_parser_version": _str(root, 7), "subgraphs": subgraphs}
