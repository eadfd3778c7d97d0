"""Apple profiles. Peak figures: Apple's published product pages (vendor-published)."""

from __future__ import annotations

from devices.profiles import Profile

_PRECISIONS = ("fp32", "fp16")

PROFILES = (
    Profile("iphone-15-pro", "iPhone 15 Pro (A17 Pro)", "CoreML (Xcode performance report on the phone)", _PRECISIONS,
            {"neural_engine_tops": 35, "neural_engine_cores": 16, "gpu_cores": 6,
             "cpu": "2 performance + 4 efficiency"},
            "Apple's Neural Engine figure; Apple does not state its precision", ("iphone16,1", "iphone 15 pro", "a17")),
    Profile("mac-m3", "Mac with Apple M3", "CoreML (coremltools predict)", _PRECISIONS,
            {"neural_engine_tops": 18, "neural_engine_cores": 16, "gpu_cores": "8-10", "memory_gb_s": 100},
            "Apple's Neural Engine figure for M3", ("apple m3",)),
    Profile("mac-m4", "Mac with Apple M4", "CoreML (coremltools predict)", _PRECISIONS,
            {"neural_engine_tops": 38, "neural_engine_cores": 16, "gpu_cores": "8-10", "memory_gb_s": 120},
            "Apple's Neural Engine figure for M4 (stated as INT8 in Apple's comparisons)", ("apple m4",)),
)
