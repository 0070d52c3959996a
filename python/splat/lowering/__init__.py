"""Lowering stage: tile schedule -> MLIR GPU kernels -> PTX (design.md §3)."""
