"""Android over adb: LiteRT benchmark_model per delegate (`python -m devices.android`)."""
