"""Exporters: one module per deployable format (`python -m export.onnx|tensorrt|coreml|tflite|all`).

Every exporter wraps the trained network in an export graph (export.graph), writes the artifact and
`<artifact>.meta.json`, validates it against the PyTorch reference (export.validate), and only then
renames it into place.
"""
