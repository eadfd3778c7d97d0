"""Android phone profiles. Peak figures: Qualcomm's published product brief (vendor-published)."""

from __future__ import annotations

from devices.profiles import Profile

PROFILES = (
    Profile("snapdragon-8-gen-3", "Snapdragon 8 Gen 3 phone (e.g. Galaxy S24 Ultra)",
            "LiteRT benchmark_model (CPU, XNNPACK, GPU delegate, NNAPI)", ("fp32", "fp16", "int8-dynamic", "int8"),
            {"cpu": "1x Cortex-X4 3.3 GHz + 5x Cortex-A720 + 2x Cortex-A520", "gpu": "Adreno 750",
             "npu": "Hexagon NPU (Qualcomm publishes relative gains, no TOPS figure)",
             "memory": "LPDDR5X up to 4800 MHz"},
            "peak clocks of the reference design; phone makers may clock lower",
            ("sm8650", "snapdragon 8 gen 3", "pineapple")),
)
