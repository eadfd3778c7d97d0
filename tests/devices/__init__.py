"""Tests of the on-device scripts (devices/)."""
