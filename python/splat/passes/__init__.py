"""splat's Python passes, registered by name (see registry.py)."""

from .registry import PASSES, PassError, PassOption, SplatPass, describe_passes, register_pass

# Importing a pass module registers its pass.
from . import canonicalize_patterns  # noqa: F401,E402

__all__ = ["PASSES", "PassError", "PassOption", "SplatPass", "describe_passes", "register_pass"]
