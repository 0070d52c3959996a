"""Tiling stage: ACSR -> tile schedule (docs/design.md section 2), plus a numpy executor that
runs a schedule exactly as the GPU kernel walks it."""

from .schedule import TileSchedule, build_schedule
from .executor import reference_attention, run_schedule

__all__ = ["TileSchedule", "build_schedule", "run_schedule", "reference_attention"]
