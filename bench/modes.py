"""Run modes (torch-free, so the CLI can offer them without importing torch)."""

MODES = ("smoke", "quick", "full")
# Modes a procedure sets (`run --procedure`), not offered by --mode: "lab" is the lab procedure's
# sizes and budgets (bench/backend.py).
PROCEDURE_MODES = ("lab",)
