"""The torch-free core every layer builds on: errors, CLI types, levels, artifact metadata, formats, images,
degradations, metrics and latency. Imports nothing of the project outside `runtimes.core`."""
