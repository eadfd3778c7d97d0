"""Jetson: build the TensorRT engine on the device and benchmark it (`python -m devices.jetson`)."""
