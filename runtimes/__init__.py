"""Runners, images, metrics and degradations: numpy-only, no torch (device hosts may not have it)."""
