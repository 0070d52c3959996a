"""Tiling stage: ACSR -> tile schedule (docs/design.md section 2), split-KV planning for layouts
that want two row groupings, plus a numpy executor that runs a schedule exactly as the GPU kernel
walks it."""

from .schedule import build_schedule
from .tile_schedule import TileSchedule
from .executor import reference_attention, run_schedule
from .split import merge_partials, plan_split

__all__ = ["TileSchedule", "build_schedule", "plan_split", "merge_partials", "run_schedule",
           "reference_attention"]
