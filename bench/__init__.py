"""Measuring: the only package that touches torch devices or NVML (imported lazily)."""

__version__ = "0.1.0"
