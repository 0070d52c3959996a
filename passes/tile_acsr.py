"""splat-tile-acsr: choose compressed-coordinate tiles for every ACSR layout.

The schedule (docs/design.md section 2) is computed by ``splat.tiling`` and
recorded on the op as ``schedule(#splat.tile_schedule<...>)``, so lit can
check it and the lowering reads it from the IR.  With ``split-kv`` (the
default) a layout that wants two row groupings (``splat.tiling.split``) gets a
second schedule, ``split_schedule(...)``, when the measured cost model prices
the two launches clearly below the one.  With ``backward`` the op is tiled for
the backward kernels instead (docs/design.md section 6): ``schedule`` gets
``abi.BACKWARD_BLOCK_M``-row tiles (the dQ kernel walks it), ``col_schedule`` is
the schedule of the transposed layout (the dK/dV kernel's), and each may get its
split (``split_schedule``, ``col_split_schedule``), run by the kernels'
accumulating variants.
"""

from __future__ import annotations

from mlir import ir

from .. import abi
from ..analysis.acsr_attr import attr_to_acsr, is_acsr_attr
from ..tiling.backward import column_schedules
from ..tiling.schedule import PLANS
from ..tiling.schedule_attr import schedule_to_attr
from ..tiling.variants import choose_schedule, tile_layout
from .registry import PassError, PassOption, SplatPass, failures_at, register_pass, walk_ops


def head_dim(op: ir.Operation) -> int:
    return ir.RankedTensorType(op.operands[0].type).shape[3]


def default_block_n(op: ir.Operation) -> int:
    """The fused kernel's tuned BLOCK_N for the op's head dim (64 when it has none)."""
    return abi.default_block_n(head_dim(op))

@register_pass
class TileACSR(SplatPass):
    argument = "splat-tile-acsr"
    summary = "Tile ACSR layouts in compressed coordinates (records #splat.tile_schedule)"
    options_spec = (
        PassOption("block-m", int, 64, "query rows per tile (the kernel's BLOCK_M); 0: the "
                   "kernel variant (splat.tiling.variants) whose schedule the cost model prices "
                   "lowest"),
        PassOption("block-n", int, 0, "compressed keys per tile (the kernel's BLOCK_N); "
                   "0: the fused kernel's tuned value for the op's head dim"),
        PassOption("tile-order", str, "heavy-first", "row tile order: 'heavy-first' (decreasing "
                   "work, so the longest tiles start first on the GPU) or 'rows' (by first row)"),
        PassOption("split-kv", bool, True, "split layouts that want two row groupings into two "
                   "schedules (merged per row) when that is cheaper"),
        PassOption("plan", str, "auto", "row tile plan: 'auto' (per tile, the affine or the "
                   "blocks plan by cost), 'affine' or 'blocks' (forced, for tests and benchmarks)"),
        PassOption("mma", str, "mma_sync", "with block-m=0, the instructions whose kernel "
                   "variants are priced: 'mma_sync', 'wgmma' or 'auto' (both: a target with "
                   "wgmma); the chosen variant is recorded as the op's 'kernel' attribute"),
        PassOption("kv-loads", str, "auto", "with block-m=0, the wgmma variants' K/V loads "
                   "offered: 'compute', 'producer' or 'auto' (any measured)"),
        PassOption("backward", bool, False, "tile for the backward kernels: 64-row tiles, and "
                   "the transposed layout's schedule as col_schedule (each split as split-kv "
                   "says)"),
    )

    def run(self, op: ir.Operation) -> None:
        targets = walk_ops(op, lambda o: o.name == "splat.attention")
        # a bad option is reported at the first op it would apply to
        block_m, order, plan = self._checked_options(targets[0] if targets else op)
        for target in targets:
            with failures_at(target):
                self._tile(target, block_m, order, plan)

    def _checked_options(self, op: ir.Operation) -> tuple[int, str, str]:
        block_m = self.options["block-m"]
        if block_m < 0 or self.options["block-n"] < 0:
            raise PassError(f"block-m and block-n must be >= 0, got {block_m} and "
                            f"{self.options['block-n']}", op)
        order = {"heavy-first": "heavy_first", "rows": "rows"}.get(self.options["tile-order"])
        if order is None:
            raise PassError(f"tile-order must be 'heavy-first' or 'rows', got "
                            f"'{self.options['tile-order']}'", op)
        plan = self.options["plan"]
        if plan not in PLANS:
            raise PassError(f"plan must be one of {', '.join(repr(p) for p in PLANS)}, got "
                            f"'{plan}'", op)
        if self.options["mma"] not in ("auto",) + abi.MMA_KINDS:
            raise PassError(f"mma must be 'auto', 'mma_sync' or 'wgmma', got "
                            f"'{self.options['mma']}'", op)
        if self.options["kv-loads"] not in ("auto",) + abi.KV_LOADS:
            raise PassError(f"kv-loads must be 'auto', 'compute' or 'producer', got "
                            f"'{self.options['kv-loads']}'", op)
        return block_m, order, plan

    def _tile(self, target: ir.Operation, block_m: int, order: str, plan: str) -> None:
        layout = target.attributes["layout"]
        if not is_acsr_attr(layout):
            raise PassError("layout is not analysed yet: run splat-analyze-regularity "
                            "before splat-tile-acsr", target)
        acsr = attr_to_acsr(layout)
        split_kv = self.options["split-kv"]
        if self.options["backward"]:
            self._tile_backward(target, acsr, block_m, order, plan)
            return
        try:
            variant = None
            if block_m == 0:  # each variant's own block_n unless the option gives one
                variant, schedule, split = choose_schedule(
                    acsr, head_dim(target), self.options["block-n"] or None, order=order,
                    plan=plan, split_kv=split_kv, mma=self.options["mma"],
                    kv_loads=self.options["kv-loads"])
            else:
                schedule, split = tile_layout(acsr, block_m,
                                              self.options["block-n"] or default_block_n(target),
                                              order=order, plan=plan, split_kv=split_kv)
        except (ValueError, MemoryError) as e:  # the tiler refuses the layout (int32 sizes, memory)
            raise PassError(f"cannot tile this layout: {e}", target) from None
        target.attributes["schedule"] = schedule_to_attr(schedule)
        if split is not None:
            target.attributes["split_schedule"] = schedule_to_attr(split)
        if variant is not None:
            target.attributes["kernel"] = kernel_attr(variant)

    def _tile_backward(self, target: ir.Operation, acsr, block_m: int, order: str,
                       plan: str) -> None:
        heights = sorted({m for ms in abi.BACKWARD_BLOCK_M_CHOICES.values() for m in ms})
        if block_m not in (0, *heights):
            raise PassError(f"the backward kernels run {' or '.join(map(str, heights))}-row "
                            f"tiles; got block-m={block_m}", target)
        block_m = block_m or abi.BACKWARD_BLOCK_M
        block_n = self.options["block-n"] or abi.backward_block_n(head_dim(target))
        split_kv = self.options["split-kv"]
        try:
            rows, rows_split = tile_layout(acsr, block_m, block_n, order=order,
                                           plan=plan, split_kv=split_kv)
            cols, cols_split = column_schedules(acsr, block_m, block_n,
                                                order=order, plan=plan, split_kv=split_kv)
        except (ValueError, MemoryError) as e:
            raise PassError(f"cannot tile this layout: {e}", target) from None
        for name, schedule in (("schedule", rows), ("split_schedule", rows_split),
                               ("col_schedule", cols), ("col_split_schedule", cols_split)):
            if schedule is not None:
                target.attributes[name] = schedule_to_attr(schedule)


def kernel_attr(variant) -> ir.Attribute:
    """``{mma, kv_loads, warp_rows}`` of the chosen kernel variant: what splat-lower-to-gpu
    builds where its own options are left to the schedule (the tile height is the schedule's)."""
    i64 = ir.IntegerType.get_signless(64)
    return ir.DictAttr.get({"mma": ir.StringAttr.get(variant.mma),
                            "kv_loads": ir.StringAttr.get(variant.kv_loads),
                            "warp_rows": ir.IntegerAttr.get(i64, variant.warp_rows)})
