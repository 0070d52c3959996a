"""Kernel variants: the fused kernel's CTA shapes the tiler chooses between, by measured cost.

A variant is a (``block_m``, ``warp_rows``) pair: rows per row tile and rows per warp of the fused
kernel.  The tables depend on ``block_m`` only (the tiler cuts row tiles of that height); the
kernel's warp shape follows from the variant.  Which variant is fastest depends on the layout:
a 128-row tile on 32-row warps (FlashAttention-2's shape) computes dense key tiles ~15 % faster
than the default 64-row tile on 16-row warps, but where row tiles drift apart in compressed
coordinates (strided, dilated, global tokens) it walks ~20-40 % more key tiles.

So the choice is by cost: the tiler builds each variant's schedule (split-KV included) and
prices it with :func:`splat.tiling.cost_model.launch_cost`, in units of that variant's own
unmasked key tile; the variant's ``ms_per_unit`` for the head dim turns units into time.  Those
times are measured: ``benchmarks/calibrate_cost.py --fit-variants`` fits them on the GPU (the
calibration masks, one run, one card) and writes the ``"variants"`` list of ``cost_model.json``.
The first entry is the default variant; a variant without a time for a head dim is not offered
for it.  Without a ``"variants"`` list only the default is offered.

Pricing a second variant doubles the tiling time, which is the compile time of fragmented
layouts (~0.3-1 s at 16K for thousands of pieces): layouts with more than
:data:`MAX_PRICED_PARTS` pieces and remainder blocks keep the default variant.  The rule is
deterministic, so the same layout always gets the same artifact.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from .. import abi
from ..analysis.acsr import ACSR
from .cost_model import MODEL_FILE
from .schedule import TileSchedule, build_schedule
from .split import plan_split, schedule_cost

__all__ = ["KernelVariant", "VARIANTS", "MAX_PRICED_PARTS", "SWITCH_MARGIN", "load_variants",
           "variants_for", "warp_rows_for", "resolve_warp_rows", "tile_layout", "choose_schedule"]

# Above this many pieces + remainder blocks only the default variant is priced (module docstring).
MAX_PRICED_PARTS = 1024
# Another variant replaces the default only when priced at most this fraction of its time: the
# per-variant fits' median error is 4-9 % (cost_model.json), and on the calibration masks this
# margin keeps the choice within 0.9 % of the per-mask best on average (1.0 % without it).
SWITCH_MARGIN = 0.95


@dataclass(frozen=True)
class KernelVariant:
    block_m: int
    warp_rows: int
    # measured time of one unit of the cost model (one unmasked key tile of this variant) per
    # head dim, at the calibration's batch x heads; only ratios between variants matter
    ms_per_unit: tuple[tuple[int, float], ...]
    # keys per key tile per head dim where not abi.DEFAULT_BLOCK_N's
    block_n: tuple[tuple[int, int], ...] = ()

    @property
    def name(self) -> str:
        return abi.variant_name(self.block_m, self.warp_rows)

    def unit_ms(self, head_dim: int) -> float | None:
        return dict(self.ms_per_unit).get(head_dim)

    def block_n_for(self, head_dim: int) -> int:
        return dict(self.block_n).get(head_dim) or abi.default_block_n(head_dim)


DEFAULT = KernelVariant(abi.BLOCK_M, abi.WARP_ROWS, ())


def _by_head_dim(where: str, field: str, mapping, valid, what: str) -> tuple:
    """``((D, value), ...)`` sorted, from a table entry's ``{"D": value}`` map, every key a head
    dim of abi.HEAD_DIMS and every value passing ``valid``."""
    if not isinstance(mapping, dict):
        raise ValueError(f"{where}: {field} must map head dims to values")
    dims = {str(h) for h in abi.HEAD_DIMS}
    out = []
    for d, value in mapping.items():
        if d not in dims:
            raise ValueError(f"{where}: {field} has head dim {d!r}, not one of {abi.HEAD_DIMS}")
        if not valid(value):
            raise ValueError(f"{where}: {field}[{d}] must be {what}, got {value!r}")
        out.append((int(d), value))
    return tuple(sorted(out))


def _positive_time(t) -> bool:
    return type(t) in (int, float) and math.isfinite(t) and 0.0 < t < 1e3


def _variant(n: int, entry, path: Path) -> KernelVariant:
    where = f"{path.name}: variants[{n}]"
    if not isinstance(entry, dict) or not {"block_m", "warp_rows", "ms_per_unit"} <= set(entry):
        raise ValueError(f"{where} must hold block_m, warp_rows and ms_per_unit")
    block_m, warp_rows, times = entry["block_m"], entry["warp_rows"], entry["ms_per_unit"]
    if type(block_m) is not int or block_m not in abi.BLOCK_M_CHOICES:
        raise ValueError(f"{where}: block_m must be one of {abi.BLOCK_M_CHOICES}, got {block_m!r}")
    if type(warp_rows) is not int or warp_rows not in abi.WARP_ROWS_CHOICES:
        raise ValueError(f"{where}: warp_rows must be one of {abi.WARP_ROWS_CHOICES}, "
                         f"got {warp_rows!r}")
    if block_m % warp_rows:
        raise ValueError(f"{where}: block_m {block_m} is not a multiple of warp_rows {warp_rows}")
    ms_per_unit = _by_head_dim(where, "ms_per_unit", times, _positive_time, "a positive time")
    block_n = _by_head_dim(where, "block_n", entry.get("block_n", {}),
                           lambda n: type(n) is int and n in abi.BLOCK_N_CHOICES,
                           f"one of {abi.BLOCK_N_CHOICES}")
    return KernelVariant(block_m, warp_rows, tuple((d, float(t)) for d, t in ms_per_unit),
                         block_n)


def load_variants(path: Path = MODEL_FILE) -> tuple[KernelVariant, ...]:
    """The variants of the cost model file, checked (a wrong list is an error at import, never a
    silently different kernel): the default variant first, one variant per ``block_m`` (the
    lowering reads the warp shape off the schedule's tile height)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read the tiler's cost model {path}: {e}") from None
    entries = data.get("variants") if isinstance(data, dict) else None
    if entries is None:
        return (DEFAULT,)
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path.name}: variants must be a non-empty list")
    found = tuple(_variant(n, e, path) for n, e in enumerate(entries))
    if (found[0].block_m, found[0].warp_rows) != (DEFAULT.block_m, DEFAULT.warp_rows):
        raise ValueError(f"{path.name}: variants[0] must be the default variant "
                         f"(block_m {DEFAULT.block_m}, warp_rows {DEFAULT.warp_rows})")
    if len({v.block_m for v in found}) != len(found):
        raise ValueError(f"{path.name}: two variants with the same block_m")
    return found


VARIANTS = load_variants()


def variants_for(head_dim: int, variants: tuple[KernelVariant, ...] | None = None):
    """The variants offered at ``head_dim``: the default always, the others where they and the
    default were measured (their times are compared).  ``variants``: default :data:`VARIANTS`."""
    variants = VARIANTS if variants is None else variants
    if variants[0].unit_ms(head_dim) is None:
        return variants[:1]
    return (variants[0],) + tuple(v for v in variants[1:] if v.unit_ms(head_dim) is not None)


def warp_rows_for(block_m: int, variants: tuple[KernelVariant, ...] | None = None) -> int:
    """The fused kernel's rows per warp for schedules of ``block_m``-row tiles: the variant's,
    or the default ``abi.WARP_ROWS`` for a tile height no variant lists."""
    variants = VARIANTS if variants is None else variants
    return next((v.warp_rows for v in variants if v.block_m == block_m), abi.WARP_ROWS)


def resolve_warp_rows(warp_rows: int, block_m: int, mma: str) -> int:
    """A ``warp_rows`` option resolved: 0 means the variant's for ``block_m``-row tiles (the
    wgmma kernel: always ``abi.WARP_ROWS``, a warpgroup owns wgmma's 64 rows, 16 a warp)."""
    if warp_rows:
        return warp_rows
    return abi.WARP_ROWS if mma == "wgmma" else warp_rows_for(block_m)


def tile_layout(acsr: ACSR, block_m: int, block_n: int, *, order: str = "rows",
                plan: str = "auto", split_kv: bool = True
                ) -> tuple[TileSchedule, TileSchedule | None]:
    """``(schedule, split)`` of ``acsr`` for one tile shape: the schedule and, with ``split_kv``,
    split-KV's second schedule where :func:`~splat.tiling.split.plan_split` prices it cheaper."""
    schedule = build_schedule(acsr, block_m, block_n, order=order, plan=plan)
    if not split_kv:
        return schedule, None
    return plan_split(acsr, block_m, block_n, single=schedule, order=order, plan=plan)


def _parts(acsr: ACSR) -> int:
    return len(acsr.pieces) + (acsr.remainder.n if acsr.remainder is not None else 0)


def choose_schedule(acsr: ACSR, head_dim: int, block_n: int | None = None, *, order: str = "rows",
                    plan: str = "auto", split_kv: bool = True,
                    variants: tuple[KernelVariant, ...] | None = None
                    ) -> tuple[KernelVariant, TileSchedule, TileSchedule | None]:
    """The cheapest variant at ``head_dim`` for ``acsr`` and its ``(schedule, split)`` (as
    :func:`~splat.tiling.split.plan_split` gives them; ``split`` is None without split-KV).
    ``block_n``: every variant's keys per key tile; None: each variant's own for the head dim.
    Another variant must beat the default by :data:`SWITCH_MARGIN`; ties go to the earlier
    variant, so the default wins when the model cannot tell."""
    offered = variants_for(head_dim, variants)
    if _parts(acsr) > MAX_PRICED_PARTS:
        offered = offered[:1]
    best = None
    for v in offered:
        schedule, split = tile_layout(acsr, v.block_m, block_n or v.block_n_for(head_dim),
                                      order=order, plan=plan, split_kv=split_kv)
        if len(offered) == 1:
            return v, schedule, split
        units = schedule_cost(schedule) + (schedule_cost(split) if split is not None else 0.0)
        ms = units * v.unit_ms(head_dim) / (1.0 if v is offered[0] else SWITCH_MARGIN)
        if best is None or ms < best[0]:
            best = (ms, v, schedule, split)
    return best[1:]
