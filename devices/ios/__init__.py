"""Mac / iPhone: CoreML per compute unit (`python -m devices.ios`)."""
