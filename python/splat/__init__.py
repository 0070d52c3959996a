"""SPLAT: sparse regular attention compiled through MLIR to GPU kernels."""

__version__ = "0.1.0"
