"""splat's Python passes, registered by name (see registry.py)."""

from .registry import (PASSES, PassError, PassOption, SplatPass, SplatPipeline, describe_passes,
                       register_pass)

# Importing a pass module registers its pass.
from . import (analyze_regularity, canonicalize_patterns, lower_to_gpu,  # noqa: F401,E402
               tile_acsr, to_ptx)

__all__ = ["PASSES", "PassError", "PassOption", "SplatPass", "SplatPipeline", "describe_passes",
           "register_pass"]
