"""On-device benchmark scripts (Jetson, Android over adb, Mac/iPhone for CoreML), reporting in the
`runtimes.bench` schema. Imports runtimes/ only, never torch. Not built yet: see the README's status."""
