"""Run modes (torch-free, so the CLI can offer them without importing torch)."""

MODES = ("smoke", "quick", "full")
