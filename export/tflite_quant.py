"""TFLite quantization: dynamic-range int8, full-integer int8 and a16w8 by ai-edge-quantizer, on the float model.

Full integer keeps the level path in float so level 0 stays exact: the strength ops and everything
after the last conv are named into `FLOAT_SCOPE`; ReLU is folded into the convs where that is exact;
weights are rounded to the quantizer's per-channel grid with bias correction. Activation ranges
(`ranges`): "mse" (the default) gives each activation tensor, at each calibration level, the range that
minimises its int8 rounding-plus-clipping error, and keeps the widest of those ranges over the levels, so
the strongest level is not clipped to suit the weak ones; "minmax" keeps the true min/max over every
sample. The level input and the strength scalars always keep their true min/max (DESIGN: a clamped
strength range was the first int8 failure). a16w8 is the same graph with 16-bit activations (int8
weights): min/max ranges, for the NPUs that run it; LiteRT's CPU runs it without XNNPACK.

Usage:
    quantized = quantize(float_flatbuffer, "int8", feeds)   # feeds: export.tflite.calibration_feeds(...)
"""

from __future__ import annotations

import copy

import numpy as np

from export.base import quiet
from runtimes.core.errors import UserError, require
from train.int8_range import level_union_range

RANGE_TEXT = {"mse": "per tensor, the widest over the levels of each level's least-squared-error int8 range",
              "minmax": "min/max over all samples"}  # the activation range methods, as the metadata states them
RANGES = tuple(RANGE_TEXT)


def quantize(flatbuffer: bytes, precision: str, calibration: dict | None = None, ranges: str = "mse") -> bytes:
    """Apply ai-edge-quantizer: fp16 weights, int8 dynamic range, or full integer int8 / a16w8 (calibrated,
    see `int8_model`; a16w8 takes min/max ranges only)."""
    if precision == "fp32":
        return flatbuffer
    if precision in ("int8", "a16w8"):
        return int8_model(flatbuffer, calibration, ranges, activation_bits=16 if precision == "a16w8" else 8)
    require("ai_edge_quantizer", "tflite")
    from ai_edge_quantizer import quantizer, recipe

    q = quantizer.Quantizer(bytearray(flatbuffer))
    if precision == "fp16":
        q.add_weight_only_config(".*", recipe.TFLOperationName.ALL_SUPPORTED, 16,
                                 algorithm_key=recipe.AlgorithmName.FLOAT_CASTING)
    else:
        q.load_quantization_recipe(recipe.dynamic_wi8_afp32())
    with quiet():
        return bytes(q.quantize(enable_progress_report=False).quantized_model)


FLOAT_SCOPE = "levelres_float/"  # prefix of op outputs that full-int8 models keep in float
_NO_QUANTIZE = {"algorithm_key": "no_quantize",
                "op_config": {"compute_precision": "FLOAT", "explicit_dequantize": False}}


def int8_recipe(activation_bits: int = 8) -> list:
    """int8 weights, int8 (or int16) activations; float32 I/O and float for the ops under `FLOAT_SCOPE`."""
    from ai_edge_quantizer import recipe

    rc = recipe.static_wi8_ai16() if activation_bits == 16 else recipe.static_wi8_ai8()
    for op in ("INPUT", "OUTPUT"):  # keep float32 I/O (image, level, restored); quantize inside
        rc.append({"regex": ".*", "operation": op, **copy.deepcopy(_NO_QUANTIZE)})
    rc.append({"regex": "^" + FLOAT_SCOPE, "operation": "*", **copy.deepcopy(_NO_QUANTIZE)})
    return rc


def int8_model(flatbuffer: bytes, calibration: dict | None, ranges: str = "mse", activation_bits: int = 8) -> bytes:
    """Full-integer model: every conv with int8 per-channel weights and int8 (or, activation_bits=16, int16)
    per-tensor activations.

    The float model is first prepared (`prepare_int8`); activation ranges start as the min/max over all
    calibration samples (ai-edge-quantizer's default is a moving average that forgets most of a small
    calibration set: with the neutral level first, the level input's range ended at 5 instead of the
    maximum training level, clamping every strength to 0.07), then with ranges="mse" shrink to
    `mse_ranges`.
    """
    if ranges not in RANGES:
        raise UserError(f"unknown activation ranges {ranges!r}; choose one of {', '.join(RANGES)}")
    if activation_bits not in (8, 16) or (activation_bits == 16 and ranges != "minmax"):
        raise UserError("16-bit activations take min/max ranges only (ranges='minmax')")
    require("ai_edge_quantizer", "tflite")
    from ai_edge_quantizer import calibrator, quantizer, recipe_manager
    from ai_edge_quantizer.utils import qsv_utils

    if not calibration or not all(calibration.values()):
        raise UserError("full-integer quantization needs calibration samples for every signature "
                        "(--calibration IMAGE_DIR)")
    flat = prepare_int8(flatbuffer, calibration)
    rc = int8_recipe(activation_bits)
    manager = recipe_manager.RecipeManager()
    manager.load_quantization_recipe(rc)
    q = quantizer.Quantizer(bytearray(flat))
    q.load_quantization_recipe(rc)
    with quiet():
        cal = calibrator.Calibrator(flat, num_threads=2, qsv_update_func=qsv_utils.min_max_update)
        cal.calibrate(calibration, manager)
        qsvs = cal.get_model_qsvs()
        del cal
        if ranges == "mse":
            qsvs = mse_ranges(flat, calibration, qsvs)
        return bytes(q.quantize(qsvs, enable_progress_report=False).quantized_model)


MSE_SAMPLE = 1 << 18  # values kept per tensor and level (drawn at random from the calibration outputs)


def mse_ranges(flatbuffer: bytes, calibration: dict, qsvs: dict) -> dict:
    """Activation ranges that minimise int8 error at every level: the widest per-level optimum per tensor.

    Each activation tensor's values are collected per calibration level (the level input's value); at each
    level the range is the fraction of that level's min/max (`train.int8_range.MSE_SCALES`) whose 256-step grid
    gives the least mean squared rounding-plus-clipping error; the tensor gets the union of those ranges. Scalars
    (the level and strength path) and `FLOAT_SCOPE` tensors keep their min/max.
    """
    from ai_edge_litert.interpreter import Interpreter

    with quiet():
        interp = Interpreter(model_content=flatbuffer, experimental_preserve_all_tensors=True, num_threads=2)
    index = {d["name"]: d["index"] for d in interp.get_tensor_details()}
    names = [n for n in qsvs if n in index and not n.startswith(FLOAT_SCOPE)]
    values: dict[str, dict[float, list]] = {}
    rng = np.random.default_rng(0)
    for key, feeds in calibration.items():
        runner = interp.get_signature_runner(key)
        levels = [next((float(v.reshape(-1)[0]) for v in feed.values() if np.size(v) == 1), 0.0) for feed in feeds]
        per_level = {lv: levels.count(lv) for lv in levels}
        for feed, lv in zip(feeds, levels, strict=True):
            runner(**feed)
            for n in names:
                x = interp.get_tensor(index[n])
                if x.dtype != np.float32 or x.size <= 1:
                    continue
                values.setdefault(n, {}).setdefault(lv, []).append(sample_values(x, MSE_SAMPLE // per_level[lv], rng))
    out = dict(qsvs)
    for n, per_level_values in values.items():
        lo, hi = level_union_range([np.concatenate(chunks) for chunks in per_level_values.values()])
        q = qsvs[n]
        mn, mx = np.asarray(q["min"], np.float32), np.asarray(q["max"], np.float32)
        out[n] = {**q, "min": np.maximum(mn, np.float32(lo)), "max": np.minimum(mx, np.float32(hi))}
    return out


def sample_values(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Up to k values of x drawn at random (a fixed stride aliases with the channels of an NHWC tensor)."""
    flat = x.reshape(-1)
    k = max(1, k)
    return flat.copy() if k >= flat.size else flat[rng.integers(0, flat.size, k)]


def prepare_int8(flatbuffer: bytes, calibration: dict) -> bytes:
    """The float model rewritten for full-integer quantization (in float: the same function, int8-grid weights).

    - ReLU moves into the conv before it where that is exact: relu(s * conv) = s * relu(conv) for the
      strength s >= 0 (every valid level), relu(shuffle(conv)) = shuffle(relu(conv)) for the one-hot
      transposed conv. The conv's int8 output then spends its range on the values that survive.
    - The strength path (scalar ops fed by the level input) and the ops after the last conv (the
      level-scaled residual added to the float input image) are named into `FLOAT_SCOPE`: level 0
      returns the input exactly and the skip path is not quantized (3-channel ops: cheap).
      The level convs' int8 Mul gets the strength quantized over its calibrated range (neutral..max level).
    - Weights are rounded here to the per-channel int8 grid the quantizer uses, and each conv's bias
      absorbs the rounding's mean effect on its output over the calibration inputs (bias correction).
    """
    from ai_edge_litert.tools import flatbuffer_utils as fbu

    means = _conv_input_means(flatbuffer, calibration)
    model = fbu.read_model_from_bytearray(bytearray(flatbuffer))
    for g in model.subgraphs:
        _fold_relu(model, g)
        _name_float_ops(model, g)
    _correct_biases(model, means)
    return bytes(fbu.convert_object_to_bytearray(model))


def _ops():
    from ai_edge_litert import schema_py_generated as schema

    return schema.BuiltinOperator, schema.ActivationFunctionType


def _code(model, op) -> int:
    oc = model.operatorCodes[op.opcodeIndex]
    return max(oc.builtinCode, oc.deprecatedBuiltinCode)


def _size(g, t: int) -> int:
    shape = g.tensors[t].shape
    return int(np.prod(shape)) if shape is not None else 0


def _const(model, g, t: int) -> np.ndarray | None:
    """A constant float32 tensor's value, else None."""
    tensor = g.tensors[t]
    data = model.buffers[tensor.buffer].data if tensor.buffer < len(model.buffers) else None
    if data is None or len(data) == 0 or tensor.type != 0:  # 0: FLOAT32
        return None
    return np.frombuffer(bytes(data), np.float32).reshape(tensor.shape)


def _wiring(g) -> tuple[dict, dict]:
    producer, consumers = {}, {}
    for i, op in enumerate(g.operators):
        for t in op.outputs:
            producer[t] = i
        for t in op.inputs:
            if t >= 0:
                consumers.setdefault(t, []).append(i)
    return producer, consumers


def _strength_tensors(model, g) -> tuple[set, list]:
    """Tensors computed from the level input alone (scalars) and the ops computing them."""
    tensors = {t for t in g.inputs if _size(g, t) == 1}
    ops = []
    for op in g.operators:
        if any(t in tensors for t in op.inputs) and all(_size(g, t) == 1 for t in op.outputs):
            tensors.update(op.outputs)
            ops.append(op)
    return tensors, ops


def _fold_relu(model, g) -> None:
    op_codes, act = _ops()
    producer, consumers = _wiring(g)
    strength, _ = _strength_tensors(model, g)

    def fold(t: int) -> None:  # the conv producing t (its only use) gets a fused ReLU
        p = producer.get(t)
        if p is None or len(consumers.get(t, [])) != 1:
            return
        conv = g.operators[p]
        if _code(model, conv) == op_codes.CONV_2D and conv.builtinOptions.fusedActivationFunction == act.NONE:
            conv.builtinOptions.fusedActivationFunction = act.RELU

    for op in g.operators:
        code = _code(model, op)
        if code == op_codes.MUL and op.builtinOptions.fusedActivationFunction == act.RELU:
            others = [t for t in op.inputs if t not in strength]
            if len(others) == 1 and len(op.inputs) == 2:
                fold(others[0])
        elif code == op_codes.RELU and op.inputs[0] in producer:
            shuffle = g.operators[producer[op.inputs[0]]]
            if _code(model, shuffle) == op_codes.TRANSPOSE_CONV and _one_hot(model, g, shuffle):
                fold(shuffle.inputs[2])


def _one_hot(model, g, op) -> bool:
    """A transposed conv that only moves values (stride = kernel, 0/1 weights, one input per output, no bias)."""
    w = _const(model, g, op.inputs[1])
    if w is None or w.ndim != 4:
        return False
    opts = op.builtinOptions
    if (opts.strideH, opts.strideW) != w.shape[1:3] or not np.isin(w, (0.0, 1.0)).all() or w.sum(-1).max() > 1:
        return False
    if len(op.inputs) > 3 and op.inputs[3] >= 0:
        b = _const(model, g, op.inputs[3])
        return b is not None and not b.any()
    return True


def _name_float_ops(model, g) -> None:
    op_codes, _ = _ops()
    convs = [i for i, op in enumerate(g.operators) if _code(model, op) == op_codes.CONV_2D]
    _, strength_ops = _strength_tensors(model, g)
    tail = g.operators[convs[-1] + 1:] if convs else []
    for op in [*strength_ops, *tail]:
        for t in op.outputs:
            name = _name(g.tensors[t])
            if not name.startswith(FLOAT_SCOPE):
                g.tensors[t].name = (FLOAT_SCOPE + name).encode()


def _name(tensor) -> str:
    name = tensor.name
    return name.decode() if isinstance(name, bytes) else (name or "")


def _int8_convs(model, g) -> list[int]:
    """Indices of the convs with constant float weights and bias (the ones bias correction applies to)."""
    op_codes, _ = _ops()
    return [i for i, op in enumerate(g.operators)
            if _code(model, op) == op_codes.CONV_2D and len(op.inputs) > 2 and op.inputs[2] >= 0
            and _const(model, g, op.inputs[1]) is not None and _const(model, g, op.inputs[2]) is not None]


def _conv_input_means(flatbuffer: bytes, calibration: dict) -> dict:
    """(subgraph, op index) -> per-channel mean of the conv's input over the signature's calibration feeds."""
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_litert.tools import flatbuffer_utils as fbu

    model = fbu.read_model_from_bytearray(bytearray(flatbuffer))
    with quiet():
        interp = Interpreter(model_content=flatbuffer, experimental_preserve_all_tensors=True, num_threads=2)
    means = {}
    for sig in model.signatureDefs or []:
        key = sig.signatureKey.decode() if isinstance(sig.signatureKey, bytes) else sig.signatureKey
        feeds, gi = calibration.get(key) or [], sig.subgraphIndex
        g = model.subgraphs[gi]
        convs = _int8_convs(model, g)
        runner = interp.get_signature_runner(key)
        sums = {i: 0.0 for i in convs}
        for feed in feeds:
            runner(**feed)
            for i in convs:
                x = interp.get_tensor(g.operators[i].inputs[0], gi)
                sums[i] = sums[i] + x.reshape(-1, x.shape[-1]).mean(0, dtype=np.float64)
        means.update({(gi, i): s / len(feeds) for i, s in sums.items() if feeds})
    return means


def _correct_biases(model, means: dict) -> None:
    from ai_edge_litert import schema_py_generated as schema

    rounded = {}
    for (gi, i), mean in means.items():
        g = model.subgraphs[gi]
        op = g.operators[i]
        w, b = _const(model, g, op.inputs[1]), _const(model, g, op.inputs[2])
        if w.ndim != 4 or mean.shape != (w.shape[-1],) or b.shape != (w.shape[0],):
            continue
        wq = _int8_grid(w)
        b = (b - ((wq - w).astype(np.float64) * mean).sum(axis=(1, 2, 3))).astype(np.float32)
        rounded[g.tensors[op.inputs[1]].buffer] = wq
        buf = schema.BufferT()  # a buffer of its own: equal constants may share one
        buf.data = np.frombuffer(b.tobytes(), np.uint8)
        model.buffers.append(buf)
        if sum(o.inputs.count(op.inputs[2]) for o in g.operators) > 1:  # a tensor of its own, too
            bias = copy.deepcopy(g.tensors[op.inputs[2]])
            bias.name = _name(bias) + f"/corrected_{gi}_{i}"
            g.tensors.append(bias)
            op.inputs[2] = len(g.tensors) - 1
        g.tensors[op.inputs[2]].buffer = len(model.buffers) - 1
    for index, wq in rounded.items():
        model.buffers[index].data = np.frombuffer(wq.tobytes(), np.uint8)


def _int8_grid(w: np.ndarray) -> np.ndarray:
    """Weights (O, kh, kw, I) rounded to symmetric per-output-channel int8 (scale max|w| / 127)."""
    scale = np.abs(w).reshape(len(w), -1).max(axis=1) / 127.0
    scale = np.where(scale > 0, scale, 1.0).reshape(-1, 1, 1, 1)
    return (np.clip(np.round(w / scale), -127, 127) * scale).astype(np.float32)
