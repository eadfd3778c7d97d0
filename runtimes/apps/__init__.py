"""What users run on top of the runners: tiling, photo I/O, level estimation, restore and the benchmark.
Imports `runtimes.core` and `runtimes.runners` only (never train/, export/ or devices/)."""
