"""On-device scripts (Jetson, Android over adb, Mac/iPhone for CoreML), reporting in the `runtimes.apps.bench` schema.

`python -m devices.jetson|android|ios`, and `python -m devices.bundle` to make a self-contained folder per
target. Imports runtimes/ only, never torch (docs/devices.md).
"""
