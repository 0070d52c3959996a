"""Conversion between :class:`splat.tiling.TileSchedule` and ``#splat.tile_schedule``."""

from __future__ import annotations

from mlir import ir

from ..dialects import splat as splat_d
from .schedule import TileSchedule


def schedule_to_attr(schedule: TileSchedule) -> ir.Attribute:
    extra = {}
    if schedule.mask_tiles.shape[0]:
        extra = dict(mask_ptr=schedule.mask_ptr.ravel(), mask_tiles=schedule.mask_tiles.ravel(),
                     mask_bits=schedule.mask_bits.ravel())
    if schedule.plans.any():  # recorded only when some tile uses the blocks plan
        extra["plans"] = schedule.plans
    return splat_d.tile_schedule(schedule.block_m, schedule.block_n, schedule.row_tiles.ravel(),
                                 schedule.segments.ravel(), **extra)


def attr_to_schedule(attr: ir.Attribute, lq: int, lk: int) -> TileSchedule:
    """The :class:`TileSchedule` of a ``#splat.tile_schedule`` (ValueError for another kind)."""
    view = splat_d.TileScheduleAttr(attr)
    return TileSchedule(lq, lk, view.block_m, view.block_n, view.row_tiles, view.segments,
                        view.mask_ptr, view.mask_tiles, view.mask_bits, view.plans)
