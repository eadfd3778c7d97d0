"""Runners, images, metrics and degradations: numpy-only, no torch (device hosts may not have it).

Three layers, each importing only those below it: `core` (errors, CLI types, levels, metadata, formats,
images, metrics, latency), `runners` (one per format, and the factory), `apps` (tiling, restore, bench).
"""
