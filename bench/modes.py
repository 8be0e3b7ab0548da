"""Run modes (torch-free, so the CLI can offer them without importing torch)."""

MODES = ("smoke", "quick", "full")
# Modes a procedure sets (`run --procedure`), not offered by --mode: "lab" is the lab procedure's
# sizes and budgets (bench/backend.py).
PROCEDURE_MODES = ("lab",)
# Matmul precisions, torch-free (bench.kernels.matmul and the CLI's --soak-precision share them).
MATMUL_PRECISIONS = ("fp64", "fp32", "tf32", "fp16", "bf16", "fp8", "int8", "fp4")
