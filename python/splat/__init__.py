"""SPLAT: sparse regular attention compiled through MLIR to GPU kernels.

    import splat
    pattern = splat.patterns.window(128, 4096)
    acsr = splat.analyze(pattern)              # exact affine pieces (numpy)
    artifact = splat.compile(pattern, dtype="bf16", head_dim=64)   # needs MLIR
    o = splat.torch.attention(q, k, v, pattern)                    # on a GPU

Submodules load lazily: the runtime side (``splat.runtime``, ``splat.torch``,
``splat.jax``) works on machines without MLIR, given prebuilt artifacts.
"""

import importlib

__version__ = "0.1.0"

_LAZY = {
    "analyze": ("splat.analysis", "analyze"),
    "ACSR": ("splat.analysis.acsr", "ACSR"),
    "Piece": ("splat.analysis.acsr", "Piece"),
    "compile": ("splat.compiler", "compile"),
    "load": ("splat.runtime.artifact", "load"),
    "save": ("splat.runtime.artifact", "save"),
}
_SUBMODULES = ("patterns", "analysis", "tiling", "compiler", "runtime", "torch", "jax",
               "viz")


def __getattr__(name):
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    if name in _SUBMODULES:
        return importlib.import_module(f"splat.{name}")
    raise AttributeError(f"module 'splat' has no attribute {name!r}")


__all__ = sorted(_LAZY) + list(_SUBMODULES)
