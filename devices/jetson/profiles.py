"""Jetson Orin profiles. Peak figures: NVIDIA's published module specifications (vendor-published)."""

from __future__ import annotations

from devices.profiles import Profile

_PRECISIONS = ("fp32", "fp16", "int8")

PROFILES = (
    Profile("orin-nano-8gb", "Jetson Orin Nano 8GB", "TensorRT (JetPack)", _PRECISIONS,
            {"ai_tops_int8_sparse": 67, "gpu": "1024-core Ampere, 32 Tensor Cores, up to 1020 MHz",
             "memory_gb_s": 102, "power_w": "7-25"},
            "JetPack 6.1+ 'Super' modes (MAXN SUPER); 40 TOPS / 68 GB/s / 15 W in the original modes",
            ("orin nano",)),
    Profile("orin-nx-16gb", "Jetson Orin NX 16GB", "TensorRT (JetPack)", _PRECISIONS,
            {"ai_tops_int8_sparse": 157, "gpu": "1024-core Ampere, 32 Tensor Cores, up to 1173 MHz",
             "memory_gb_s": 102.4, "power_w": "10-40"},
            "JetPack 6.1+ 'Super' modes (MAXN SUPER); 100 TOPS / 25 W in the original modes",
            ("orin nx",)),
    Profile("agx-orin-64gb", "Jetson AGX Orin 64GB", "TensorRT (JetPack)", _PRECISIONS,
            {"ai_tops_int8_sparse": 275, "gpu": "2048-core Ampere, 64 Tensor Cores, up to 1.3 GHz",
             "memory_gb_s": 204.8, "power_w": "15-60"},
            "MAXN power mode; TOPS include the two DLA engines and assume structured sparsity",
            ("agx orin",)),
)
