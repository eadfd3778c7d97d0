"""The torch device a command runs on: the user's choice checked, or CUDA when available.

Usage:
    device = resolve_device(args.device)        # None -> cuda when available, else cpu
"""

from __future__ import annotations

import os

import torch

from runtimes.core.errors import UserError


def resolve_device(text: str | None) -> torch.device:
    """`--device` as a torch device; a one-line error for an unknown or unavailable one."""
    if not text:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # torchrun: one GPU per process
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except RuntimeError:
        raise UserError(f"unknown --device {text!r}; use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {text}: no CUDA GPU is usable here (torch {torch.__version__}); use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"--device {text}: only {torch.cuda.device_count()} CUDA device(s) here")
    return device
