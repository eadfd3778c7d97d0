"""INT8 as explicit Q/DQ in the ONNX (for TensorRT): onnxruntime static quantization of the convs.

Symmetric int8 activations and per-channel symmetric weights (what TensorRT's explicit
quantization expects); calibrated on --calibration images at the neutral and training levels.
Conv biases stay float: TensorRT's DequantizeLinear takes INT8 only (onnx-tensorrt's operator table,
every version), not the INT32 bias DequantizeLinear onnxruntime writes by default.
Only Conv nodes are quantized, so the level arithmetic stays float.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from runtimes.core.errors import UserError, require

CALIBRATION_SIZE = (256, 256)


def quantize_qdq(proto, model, c):
    """A Q/DQ-quantized copy of an fp32 ONNX model.

    Args:
        proto: the fp32 `onnx.ModelProto`.
        model: the loaded network (its level map picks the calibration levels).
        c: the `ExportConfig` (calibration folder, level mode, layout).
    """
    import onnx

    from export.calibration import calibration_samples, to_layout

    quant = require("onnxruntime.quantization", "onnx")
    if c.calibration is None:
        raise UserError("INT8 needs --calibration IMAGE_DIR (a folder of representative images)")
    feeds = []
    for img, level in calibration_samples(c.calibration, model.level_map, CALIBRATION_SIZE):
        feed = {"image": to_layout(img, c.nhwc, c.io)}
        if c.level_mode != "fixed":
            import numpy as np

            feed["level"] = np.array([level], np.float32)
        feeds.append(feed)

    class Reader(quant.CalibrationDataReader):
        def __init__(self):
            self._it = iter(feeds)

        def get_next(self):
            return next(self._it, None)

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save_model(proto, str(src))
        quant.quantize_static(str(src), str(dst), Reader(), quant_format=quant.QuantFormat.QDQ,
                              op_types_to_quantize=["Conv"], per_channel=True,
                              activation_type=quant.QuantType.QInt8, weight_type=quant.QuantType.QInt8,
                              calibrate_method=quant.CalibrationMethod.Entropy,
                              extra_options={"ActivationSymmetric": True, "WeightSymmetric": True,
                                             "QuantizeBias": False})
        return onnx.load(str(dst))
