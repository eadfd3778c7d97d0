"""levelres: one compact image-restoration network whose level (noise sigma, JPEG quality, SR scale) is a runtime
scalar, and the tools to train, export and run it.

The public API (numpy in and out; torch only where a function needs it):

    import levelres
    clean = levelres.restore(noisy, 25, model="out/artifacts/denoise-mobile.onnx")   # HxWx3 uint8 or float
    with levelres.load("out/artifacts/denoise-mobile.onnx") as runner:               # a runner (context manager)
        ...
    result = levelres.export("denoise-mobile", "onnx", out_dir="out")                # needs levelres[train,onnx]

The `levelres` command runs every tool (`levelres --help`).
"""

from __future__ import annotations

__all__ = ["restore", "load", "export", "__version__"]


def __getattr__(name: str):
    # lazy: `levelres --help` and `import levelres` load no runtime, let alone torch
    if name in ("restore", "load", "export"):
        from levelres import api

        return getattr(api, name)
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("levelres")
        except PackageNotFoundError:
            return "unknown"
    raise AttributeError(f"module 'levelres' has no attribute {name!r}")
