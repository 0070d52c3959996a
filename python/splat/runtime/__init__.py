"""SPLAT runtime: load compiled artifacts and launch their kernels. Imports no MLIR.

- `Artifact`, `save`, `load`, `content_key`: the compiler → runtime hand-over (docs/design.md §4).
- `cache`: in-process and on-disk (``$SPLAT_CACHE_DIR``) artifact caches, `get_or_build`.
- `driver`: checked `cuda.bindings.driver` wrappers, `SplatCudaError`, `pack_params`, `launch`.
- `Launcher` / `get_launcher`: PTX loaded once per context, schedule tables resident on the GPU,
  `forward(...)` on raw device pointers.
- `resolve_artifact`: artifact for a call (given, compiled, or prebuilt in ``$SPLAT_ARTIFACT_DIR``).
- `integrity`, `trust`: the runtime's own checks of an artifact's tables and kernels against the
  ABI, and of who may write the directories kernels are loaded from (docs/runtime.md, "Trust model").

CUDA (``cuda-bindings``) is imported on first use, so this package imports on any machine.
"""

from .artifact import (FORMAT, Artifact, ArtifactError, artifact_key, canonical_json, content_key,
                       load, save, validate_manifest)
from .cache import cache_dir, get_or_build
from .driver import MemRef, SplatCudaError, pack_params
from .launcher import Launcher, Shapes, close_all, get_launcher
from .resolve import request_key, resolve_artifact
from .trust import UnsafePathError
from .validate import SplatInputError, TensorDesc, normalize_dtype

__all__ = [
    "FORMAT", "Artifact", "ArtifactError", "artifact_key", "canonical_json", "content_key", "load",
    "save", "validate_manifest", "cache_dir", "get_or_build", "MemRef", "SplatCudaError",
    "pack_params", "Launcher", "Shapes", "close_all", "get_launcher", "request_key",
    "resolve_artifact", "SplatInputError", "TensorDesc", "normalize_dtype", "UnsafePathError",
]
