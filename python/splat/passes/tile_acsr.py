"""splat-tile-acsr: choose compressed-coordinate tiles for every ACSR layout.

The schedule (docs/design.md section 2) is computed by ``splat.tiling`` and
recorded on the op as ``schedule(#splat.tile_schedule<...>)``, so lit can
check it and the lowering reads it from the IR.  With ``split-kv`` (the
default) a layout that wants two row groupings (``splat.tiling.split``) gets a
second schedule, ``split_schedule(...)``, when the two walk clearly fewer key
tiles than one.
"""

from __future__ import annotations

import re

import numpy as np
from mlir import ir

from ..acsr_ir import attr_to_acsr, is_acsr_attr
from ..dialects import splat as splat_d
from ..tiling import TileSchedule, build_schedule
from ..tiling.split import plan_split
from ..lowering.fused_forward import DEFAULTS
from .registry import PassError, PassOption, SplatPass, register_pass, walk_ops


def default_block_n(op: ir.Operation) -> int:
    """The fused kernel's tuned BLOCK_N for the op's head dim (64 when it has none)."""
    head_dim = ir.RankedTensorType(op.operands[0].type).shape[3]
    return DEFAULTS.get(head_dim, DEFAULTS[64])["block_n"]

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


@register_pass
class TileACSR(SplatPass):
    argument = "splat-tile-acsr"
    summary = "Tile ACSR layouts in compressed coordinates (records #splat.tile_schedule)"
    options_spec = (
        PassOption("block-m", int, 64, "query rows per tile (the kernel's BLOCK_M)"),
        PassOption("block-n", int, 0, "compressed keys per tile (the kernel's BLOCK_N); "
                   "0: the fused kernel's tuned value for the op's head dim"),
        PassOption("tile-order", str, "heavy-first", "row tile order: 'heavy-first' (decreasing "
                   "work, so the longest tiles start first on the GPU) or 'rows' (by first row)"),
        PassOption("split-kv", bool, True, "split layouts that want two row groupings into two "
                   "schedules (merged per row) when that is cheaper"),
    )

    def run(self, op: ir.Operation) -> None:
        block_m = self.options["block-m"]
        if block_m < 1 or self.options["block-n"] < 0:
            raise PassError(f"block-m must be >= 1 and block-n >= 0, got {block_m} and "
                            f"{self.options['block-n']}", op)
        order = {"heavy-first": "heavy_first", "rows": "rows"}.get(self.options["tile-order"])
        if order is None:
            raise PassError(f"tile-order must be 'heavy-first' or 'rows', got "
                            f"'{self.options['tile-order']}'", op)
        for target in walk_ops(op, lambda o: o.name == "splat.attention"):
            layout = target.attributes["layout"]
            if not is_acsr_attr(layout):
                raise PassError("layout is not analysed yet: run splat-analyze-regularity "
                                "before splat-tile-acsr", target)
            block_n = self.options["block-n"] or default_block_n(target)
            acsr = attr_to_acsr(layout)
            schedule, split = build_schedule(acsr, block_m, block_n, order=order), None
            if self.options["split-kv"]:
                schedule, split = plan_split(acsr, block_m, block_n, single=schedule, order=order)
            target.attributes["schedule"] = schedule_to_attr(schedule)
            if split is not None:
                target.attributes["split_schedule"] = schedule_to_attr(split)
