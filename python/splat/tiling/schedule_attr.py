"""Conversion between :class:`splat.tiling.TileSchedule` and ``#splat.tile_schedule``."""

from __future__ import annotations

import re

import numpy as np
from mlir import ir

from ..dialects import splat as splat_d
from .schedule import TileSchedule

_TABLES = ("row_tiles", "segments", "mask_ptr", "mask_tiles", "mask_bits")


def schedule_to_attr(schedule: TileSchedule) -> ir.Attribute:
    masks = {}
    if schedule.mask_tiles.shape[0]:
        masks = dict(mask_ptr=schedule.mask_ptr.ravel(), mask_tiles=schedule.mask_tiles.ravel(),
                     mask_bits=schedule.mask_bits.ravel())
    return splat_d.tile_schedule(schedule.block_m, schedule.block_n, schedule.row_tiles.ravel(),
                                 schedule.segments.ravel(), **masks)


def attr_to_schedule(attr: ir.Attribute, lq: int, lk: int) -> TileSchedule:
    text = str(attr)
    block_m = int(re.search(r"block_m = (\d+)", text).group(1))
    block_n = int(re.search(r"block_n = (\d+)", text).group(1))
    tables = {}
    for name in _TABLES:
        m = re.search(name + r" = \[([^\]]*)\]", text)
        if m:
            tables[name] = np.array([int(v) for v in m.group(1).split(",") if v.strip()],
                                    dtype=np.int64).astype(np.int32)
    words = (block_n + 31) // 32
    return TileSchedule(
        lq, lk, block_m, block_n, tables["row_tiles"].reshape(-1, 5),
        tables["segments"].reshape(-1, 9), tables.get("mask_ptr"),
        tables["mask_tiles"].reshape(-1, 2) if "mask_tiles" in tables else None,
        tables["mask_bits"].reshape(-1, block_m, words) if "mask_bits" in tables else None)
