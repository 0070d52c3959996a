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

The price is what the tables would cost, but most of it is known before them, and a variant
that surely loses needs no exact price.  Each variant starts with a lower bound of its time
(:func:`_units_floor`: its row tiles, and the key tiles every row needs); the variant of the
least bound and those whose bounds do not exceed its estimate are estimated
(``schedule.chunk_tiles_estimate``, band layouts), and the variant of the least estimate is
planned first, its price read off its planned tiles' costs (``split.tiles_cost_range``, the
launch cost up to rounding).  Then, least lower bound first, a variant is priced a stage
further (the cut DP over lower bounds of its tiles' costs, ``schedule.relaxed_tiles_floor``;
its tiles cut, ``schedule.first_tiles_floor``; its schedule planned) until one price is below
every other variant's bound.  Only the winner's tables are assembled; a choice too close to
call on the planned tiles (within ``_PRICE_SLACK``) is made on the tables, and where split-KV
may apply (``split.may_split``) a variant is priced on its tables.  So the choice and the
tables are those of building and pricing every variant's schedule.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import abi
from ..analysis.acsr import ACSR
from . import cost_model
from . import schedule as _sched
from .cost_model import MODEL_FILE
from .schedule import build_schedule
from .tile_schedule import TileSchedule
from .split import (launch_cost_floor, may_split, plan_split, schedule_cost, split_pieces,
                    tiles_cost_range)

__all__ = ["KernelVariant", "VARIANTS", "MAX_PRICED_PARTS", "SWITCH_MARGIN", "load_variants",
           "wgmma_default", "Kernel", "resolve_kernel", "variants_for", "warp_rows_for",
           "resolve_warp_rows", "tile_layout", "choose_schedule"]

# Above this many pieces + remainder blocks only the default variant is priced (module docstring).
MAX_PRICED_PARTS = 1024
# Another variant replaces the default only when priced at most this fraction of its time: the
# per-variant fits' median error is 4-9 % (cost_model.json), and on the calibration masks this
# margin keeps the choice within 0.9 % of the per-mask best on average (1.0 % without it).
SWITCH_MARGIN = 0.95
# A variant's time read off its planned tiles, or bounded before them, is trusted up to this
# relative error (the same terms summed in another order than the tables' launch cost: ~1e-14);
# a closer call is made on the tables.
_PRICE_SLACK = 1e-6


@dataclass(frozen=True)
class KernelVariant:
    block_m: int
    warp_rows: int
    # measured time of one unit of the cost model (one unmasked key tile of this variant) per
    # head dim, at the calibration's batch x heads; only ratios between variants matter
    ms_per_unit: tuple[tuple[int, float], ...]
    # keys per key tile per head dim where not abi.DEFAULT_BLOCK_N's
    block_n: tuple[tuple[int, int], ...] = ()
    # the kernel's tensor-core instruction, and for wgmma whether a producer warpgroup gathers
    # K/V: wgmma variants are offered only where the target has wgmma (sm_90a)
    mma: str = "mma_sync"
    load_warpgroup: bool = False

    @property
    def name(self) -> str:
        return abi.variant_name(self.block_m, self.warp_rows, self.mma, self.load_warpgroup)

    @property
    def kv_loads(self) -> str:
        return "producer" if self.load_warpgroup else "compute"

    def unit_ms(self, head_dim: int) -> float | None:
        return dict(self.ms_per_unit).get(head_dim)

    def block_n_for(self, head_dim: int) -> int:
        return dict(self.block_n).get(head_dim) or abi.default_block_n(head_dim)


DEFAULT = KernelVariant(abi.BLOCK_M, abi.WARP_ROWS, ())


def wgmma_default(kv_loads: str = "auto", head_dim: int = 0) -> KernelVariant:
    """The wgmma build offered when the table lists none measured (mma="wgmma" asked for):
    abi.WGMMA_BLOCK_M-row tiles, K/V loads as ``kv_loads`` resolves at ``head_dim``."""
    return KernelVariant(abi.WGMMA_BLOCK_M, abi.WARP_ROWS, (), mma="wgmma",
                         load_warpgroup=abi.resolve_kv_loads(kv_loads, "wgmma", head_dim))


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
    too_wide = [d for d, _ in ms_per_unit if d > abi.MAX_HEAD_DIM_32_ROW_WARPS]
    if warp_rows > abi.WARP_ROWS and too_wide:
        raise ValueError(f"{where}: {warp_rows}-row warps are not built at head dim "
                         f"{too_wide[0]} (ms_per_unit lists it)")
    block_n = _by_head_dim(where, "block_n", entry.get("block_n", {}),
                           lambda n: type(n) is int and n in abi.BLOCK_N_CHOICES,
                           f"one of {abi.BLOCK_N_CHOICES}")
    mma, kv_loads = entry.get("mma", "mma_sync"), entry.get("kv_loads", "compute")
    if mma not in abi.MMA_KINDS:
        raise ValueError(f"{where}: mma must be one of {abi.MMA_KINDS}, got {mma!r}")
    if kv_loads not in abi.KV_LOADS or (kv_loads == "producer" and mma != "wgmma"):
        raise ValueError(f"{where}: kv_loads must be one of {abi.KV_LOADS} ('producer' with mma "
                         f"wgmma only), got {kv_loads!r}")
    if mma == "wgmma":
        if warp_rows != abi.WARP_ROWS:
            raise ValueError(f"{where}: a wgmma variant has {abi.WARP_ROWS}-row warps (a "
                             f"warpgroup owns wgmma's 64 rows), got {warp_rows}")
        unbuilt = [d for d, _ in ms_per_unit if d not in abi.WGMMA_HEAD_DIMS]
        if unbuilt:
            raise ValueError(f"{where}: the wgmma kernel is not built at head dim {unbuilt[0]} "
                             f"(ms_per_unit lists it)")
    return KernelVariant(block_m, warp_rows, tuple((d, float(t)) for d, t in ms_per_unit),
                         block_n, mma, kv_loads == "producer")


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
    if (found[0].block_m, found[0].warp_rows, found[0].mma) != (
            DEFAULT.block_m, DEFAULT.warp_rows, DEFAULT.mma):
        raise ValueError(f"{path.name}: variants[0] must be the default variant "
                         f"(block_m {DEFAULT.block_m}, warp_rows {DEFAULT.warp_rows}, mma_sync)")
    # mma.sync: one variant per tile height (an explicit block_m takes its warp shape);
    # wgmma: one per tile height and K/V loads
    kinds = [(v.mma, v.block_m, v.load_warpgroup) for v in found]
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"{path.name}: two variants with the same block_m (and mma, kv_loads)")
    return found


VARIANTS = load_variants()


def variants_for(head_dim: int, variants: tuple[KernelVariant, ...] | None = None,
                 mma: str = "mma_sync", kv_loads: str = "auto"):
    """The variants offered at ``head_dim`` for instruction ``mma``, first the one the others
    must beat by SWITCH_MARGIN.  ``"mma_sync"``: the default always, the other mma.sync
    variants where they and the default were measured (their times are compared).
    ``"wgmma"``: the wgmma variants measured at the head dim (of K/V loads ``kv_loads`` unless
    "auto"), or `wgmma_default` where there are none.  ``"auto"`` (a target with both): the
    mma.sync offer, then the wgmma variants measured where the default is.  ``variants``:
    default :data:`VARIANTS`."""
    variants = VARIANTS if variants is None else variants
    wgmma = tuple(v for v in variants if v.mma == "wgmma" and v.unit_ms(head_dim) is not None
                  and kv_loads in ("auto", v.kv_loads))
    if mma == "wgmma":
        return wgmma or (wgmma_default(kv_loads, head_dim),)
    if variants[0].unit_ms(head_dim) is None:
        return variants[:1]
    offer = (variants[0],) + tuple(v for v in variants[1:] if v.mma == "mma_sync"
                                   and v.unit_ms(head_dim) is not None)
    return offer + (wgmma if mma == "auto" else ())


def warp_rows_for(block_m: int, variants: tuple[KernelVariant, ...] | None = None) -> int:
    """The mma.sync kernel's rows per warp for schedules of ``block_m``-row tiles: the
    variant's, or the default ``abi.WARP_ROWS`` for a tile height no variant lists."""
    variants = VARIANTS if variants is None else variants
    return next((v.warp_rows for v in variants if v.block_m == block_m and v.mma == "mma_sync"),
                abi.WARP_ROWS)


class Kernel(NamedTuple):
    """How a fused kernel is built, beside its tile shape (the lowering's and the manifest's)."""

    mma: str
    load_warpgroup: bool
    warp_rows: int

    def describe(self) -> str:
        loads = ", producer warpgroup" if self.load_warpgroup else ""
        return f"{self.mma}, {self.warp_rows}-row warps{loads}"


def resolve_kernel(mma: str, kv_loads: str, warp_rows: int, chosen: dict, block_m: int,
                   head_dim: int) -> Kernel:
    """The fused kernel build for options ``mma`` / ``kv_loads`` ("auto" allowed) and
    ``warp_rows`` (0 allowed): each as given, or where left open the variant the tiler chose
    (``chosen``: ``{mma, kv_loads, warp_rows}``, or {} when it chose none), else mma_sync and
    the variant of the tile height. A build the kernels cannot make is a ValueError."""
    if mma == "auto":  # K/V loads by a producer warpgroup are a wgmma build
        mma = "wgmma" if kv_loads == "producer" else chosen.get("mma", "mma_sync")
    same = chosen.get("mma") == mma  # the chosen variant's loads and warps apply
    if kv_loads == "auto":
        kv_loads = chosen["kv_loads"] if same else (
            "producer" if abi.resolve_kv_loads("auto", mma, head_dim) else "compute")
    warp_rows = resolve_warp_rows(warp_rows or (chosen["warp_rows"] if same else 0), block_m,
                                  mma, head_dim)
    if kv_loads == "producer" and mma != "wgmma":
        raise ValueError("K/V loads by a producer warpgroup need mma wgmma (the mma_sync "
                         "kernel's warps gather their own K/V)")
    loads_error = abi.wgmma_loads_error(head_dim, producer=kv_loads == "producer")
    if mma == "wgmma" and loads_error:
        raise ValueError(loads_error)
    if mma == "wgmma" and warp_rows != abi.WARP_ROWS:
        raise ValueError("option 'warp-rows' must be 16 with mma wgmma (a warpgroup owns "
                         "wgmma's 64 rows, 16 a warp)")
    if warp_rows > abi.WARP_ROWS and head_dim > abi.MAX_HEAD_DIM_32_ROW_WARPS:
        raise ValueError(f"option 'warp-rows' {warp_rows} needs head dim <= "
                         f"{abi.MAX_HEAD_DIM_32_ROW_WARPS} (a warp's accumulators would not fit "
                         f"its registers); got {head_dim}")
    return Kernel(mma, kv_loads == "producer", warp_rows)


def resolve_warp_rows(warp_rows: int, block_m: int, mma: str, head_dim: int = 0) -> int:
    """A ``warp_rows`` option resolved: 0 means the variant's for ``block_m``-row tiles (the
    wgmma kernel: always ``abi.WARP_ROWS``, a warpgroup owns wgmma's 64 rows, 16 a warp; and
    ``abi.WARP_ROWS`` at a head dim too wide for more rows a warp)."""
    if warp_rows:
        return warp_rows
    if mma == "wgmma" or head_dim > abi.MAX_HEAD_DIM_32_ROW_WARPS:
        return abi.WARP_ROWS
    return warp_rows_for(block_m)


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
                    variants: tuple[KernelVariant, ...] | None = None,
                    mma: str = "mma_sync", kv_loads: str = "auto"
                    ) -> tuple[KernelVariant, TileSchedule, TileSchedule | None]:
    """The cheapest variant at ``head_dim`` for ``acsr`` and its ``(schedule, split)`` (as
    :func:`~splat.tiling.split.plan_split` gives them; ``split`` is None without split-KV).
    ``block_n``: every variant's keys per key tile; None: each variant's own for the head dim.
    ``mma``, ``kv_loads``: which variants are offered (:func:`variants_for`).
    Another variant must beat the default by :data:`SWITCH_MARGIN`; ties go to the earlier
    variant, so the default wins when the model cannot tell.  (How the prices are found
    without every variant's tables: the module docstring.)"""
    offered = variants_for(head_dim, variants, mma, kv_loads)
    if _parts(acsr) > MAX_PRICED_PARTS:
        offered = offered[:1]
    if len(offered) == 1:
        v = offered[0]
        return (v,) + tile_layout(acsr, v.block_m, block_n or v.block_n_for(head_dim),
                                  order=order, plan=plan, split_kv=split_kv)
    job = _Job(acsr, head_dim, order, plan, split_kv)
    priced = [_Priced(n, v, block_n or v.block_n_for(head_dim)) for n, v in enumerate(offered)]
    for p in priced:
        p.low = job.ms(p, (1.0 - _PRICE_SLACK) * job.units_floor(p))
    winner = _cheapest(job, priced)
    return (winner.variant,) + job.tables(winner)


# How far a variant is priced (_Priced.stage): a lower bound of its time only (its time perhaps
# estimated); a tighter bound found before any tile is cut
# (schedule.relaxed_tiles_floor); its first tiles cut (schedule.first_tiles_floor); its
# schedule's tiles planned (its time up to rounding, or bounds where mask tiles are); its
# tables (exact).
_BOUNDED, _RELAXED, _CUT, _PLANNED, _EXACT = range(5)


def _cheapest(job: "_Job", priced: list) -> "_Priced":
    """The variant of the least time, ties to the earlier one.  The variant of the least
    estimate is planned first (it mostly wins; estimated are the variant of the least lower
    bound and those whose bounds do not exceed its estimate); then, best first, the variant of
    the least lower bound is priced one stage further until it has a price that every other's
    lower bound exceeds; variants whose lower bounds reach below that price are priced further
    too, down to their tables if need be.  A variant whose bound exceeds the winner's price is
    never planned further: its time exceeds the winner's."""
    leader = min(priced, key=lambda q: (q.low, q.index))
    job.estimate(leader)
    for q in priced:
        if q is not leader and q.low <= leader.estimate:
            job.estimate(q)
    first = min(priced, key=lambda q: (q.estimate, q.index))
    while first.stage < _PLANNED:
        job.advance(first, relax=False)  # its relaxed bound would not be needed
    while True:
        p = min(priced, key=lambda q: (q.low, q.index))
        if p.stage < _PLANNED:
            job.advance(p)
            continue
        close = [q for q in priced if q.low <= p.high]
        if close == [p]:
            return p
        behind = [q for q in close if q.stage < _PLANNED]
        for q in behind:
            job.advance(q)
        if not behind:  # not told apart by their planned tiles: their tables decide
            for q in close:
                if q.stage < _EXACT:
                    job.advance(q)
            return min(close, key=lambda q: (q.high, q.index))


@dataclass
class _Priced:
    """A variant being priced by :func:`choose_schedule`: its time in ms lies in ``[low, high]``
    (a lower bound only until its schedule's tiles are planned, exact once its tables are
    assembled)."""

    index: int  # among the offered variants: ties go to the earlier one
    variant: KernelVariant
    block_n: int
    low: float = 0.0
    high: float = math.inf
    estimate: float = math.inf  # of its time, to order the pricing (not a bound)
    stage: int = _BOUNDED
    planned: tuple | None = None  # (builder, tiles cut or None), then plan_tiles' (b, built)
    tables: tuple | None = None   # (schedule, split)


@dataclass
class _Job:
    """What :func:`choose_schedule` prices every variant for."""

    acsr: ACSR
    head_dim: int
    order: str
    plan: str
    split_kv: bool
    index: object = None  # a builder of the ACSR (schedule.tile_builder's ``index``)
    # :func:`_key_tiles_needed` by key tile width (the variants mostly share one)
    needs: dict[int, float] = field(default_factory=dict)

    @cached_property
    def row_keys(self) -> tuple[np.ndarray, bool]:
        return _piece_row_keys(self.acsr)

    def units_floor(self, p: _Priced) -> float:
        """:func:`_units_floor` of ``p``'s tile shape."""
        need = self.needs.get(p.block_n)
        if need is None:
            need = self.needs[p.block_n] = _key_tiles_needed(self.acsr, *self.row_keys,
                                                             p.block_n)
        return _units_floor(self.acsr, need, p.variant.block_m)

    def ms(self, p: _Priced, units: float) -> float:
        """``units`` of ``p``'s variant in ms, the switch margin included for all but the
        default."""
        return units * p.variant.unit_ms(self.head_dim) / (1.0 if p.index == 0 else SWITCH_MARGIN)

    @cached_property
    def splits(self) -> bool:
        """Whether split-KV may apply: then a variant's tables decide its price (plan_split
        prices the split on them)."""
        return self.split_kv and may_split(self.acsr)

    @cached_property
    def split_parts(self) -> tuple | None:
        """``split_pieces`` of the layout, shared by every variant's plan_split."""
        return split_pieces(self.acsr)

    def builder(self, p: _Priced):
        """``p``'s builder, made on first need."""
        if p.planned is None:
            p.planned = (_sched.tile_builder(self.acsr, p.variant.block_m, p.block_n, self.plan,
                                             self.order, self.index), None)
            self.index = p.planned[0]  # the ACSR's index, for the next variant's builder
        return p.planned[0]

    def estimate(self, p: _Priced) -> None:
        """Estimate ``p``'s time (its lower bound where there is no estimate)."""
        tiles = None if self.splits else _sched.chunk_tiles_estimate(self.builder(p))
        p.estimate = p.low if tiles is None else self.ms(p, launch_cost_floor(tiles))

    def advance(self, p: _Priced, relax: bool = True) -> None:
        """Price ``p`` one stage further (``relax``: through its relaxed bound, else past it);
        where split-KV may apply, down to its tables at once."""
        if p.stage == _BOUNDED and relax and not self.splits:
            p.stage = _RELAXED
            self.bound(p, _sched.relaxed_tiles_floor(self.builder(p)))
            return
        {_BOUNDED: self.cut, _RELAXED: self.cut, _CUT: self.plan_rest,
         _PLANNED: self.price_tables}[p.stage](p)
        if self.splits and p.stage < _EXACT:
            self.advance(p)

    def cut(self, p: _Priced) -> None:
        """Cut ``p``'s first tiles and bound its time by them."""
        b = self.builder(p)
        p.planned, p.stage = (b, _sched.cut_tiles(b)), _CUT
        self.bound(p, _sched.first_tiles_floor(b))

    def bound(self, p: _Priced, tiles_floor: float) -> None:
        """Raise ``p``'s lower bound to a launch whose tiles cost ``tiles_floor`` or more."""
        p.low = max(p.low, self.ms(p, (1.0 - _PRICE_SLACK) * launch_cost_floor(tiles_floor)))

    def plan_rest(self, p: _Priced) -> None:
        """Plan the rest of ``p``'s tiles and price it by their costs."""
        p.planned = _sched.plan_tiles_rest(self.acsr, *p.planned)
        p.stage = _PLANNED
        low, high = tiles_cost_range(*p.planned)
        p.low = max(p.low, self.ms(p, (1.0 - _PRICE_SLACK) * low))
        p.high = self.ms(p, (1.0 + _PRICE_SLACK) * high)

    def price_tables(self, p: _Priced) -> None:
        """``p``'s exact time: its tables' launch costs."""
        schedule, split = self.tables(p)
        p.stage = _EXACT
        p.low = p.high = self.ms(p, schedule_cost(schedule)
                                 + (schedule_cost(split) if split is not None else 0.0))

    def tables(self, p: _Priced) -> tuple:
        """``p``'s ``(schedule, split)`` (tile_layout's), from its planned tiles."""
        if p.tables is None:
            b, built = p.planned
            schedule = _sched._assemble(self.acsr, b, built, self.order)
            p.tables = (schedule, None)
            if self.split_kv:
                p.tables = plan_split(self.acsr, p.variant.block_m, p.block_n, single=schedule,
                                      order=self.order, plan=self.plan, parts=self.split_parts)
        return p.tables


def _units_floor(acsr: ACSR, need: float, block_m: int) -> float:
    """A lower bound of the launch cost (:func:`~splat.tiling.cost_model.launch_cost`) of
    every schedule of ``acsr`` for ``block_m``-row tiles, split-KV's two included: the row tiles
    partition the rows, at most ``block_m`` a tile, so there are ``ceil(Lq / block_m)`` or more;
    and a tile's key tiles are at least what its neediest row needs (``need``,
    :func:`_key_tiles_needed`), so at least the mean over its rows, so at least ``1 /
    block_m`` of its rows' sum (split-KV shares a row's keys between two tiles, which need no
    fewer)."""
    w = cost_model.WEIGHTS
    return w.W_TILE * -(-acsr.Lq // block_m) + need / block_m + w.W_LAUNCH


def _key_tiles_needed(acsr: ACSR, keys: np.ndarray, exact: bool, block_n: int) -> float:
    """What the rows need of their tiles' key tiles, summed: a row of ``c`` keys needs
    ``ceil(c / block_n)`` key tiles, and one of them masked (``W_MASKED`` more) unless
    ``block_n`` divides ``c`` (a full key tile holds ``block_n`` keys of each of ``block_m``
    rows, and a shorter tile has none).  ``keys, exact``: :func:`_piece_row_keys`; with a
    remainder, or where the pieces' counts are not each row's keys, no masked key tile is
    counted (fewer keys can need more of those)."""
    need = float((-(-keys // block_n)).sum())
    if exact and acsr.remainder is None:
        need += cost_model.WEIGHTS.W_MASKED * np.count_nonzero(keys % block_n)
    return need


def _piece_row_keys(acsr: ACSR) -> tuple[np.ndarray, bool]:
    """``(int64 [Lq], exact)``: the sum of the pieces' counts on each query row, from the
    pieces' table (pieces of row step 1, all of a band layout's, as difference arrays of their
    counts' slope and intercept; the others row by row), and whether it is each row's keys in
    the pieces: no count is negative (an affine count is not, if not at either end; a sum short
    of the keys is still a lower bound of the key tiles a row needs)."""
    Lq = acsr.Lq
    r0, _, step, _, _, _, ca, cb, T = acsr.table.T
    exact = bool(((cb >= 0) & (ca * (T - 1) + cb >= 0)).all())
    unit = step == 1
    # count ca * (row - r0) + cb on rows [r0, r0 + T): its slope and intercept start at r0 and
    # stop at r0 + T
    ends = np.concatenate([r0[unit], (r0 + T)[unit]])
    steps = np.zeros((2, Lq + 1), dtype=np.int64)
    for d, v in zip(steps, (ca[unit], (cb - ca * r0)[unit])):
        np.add.at(d, ends, np.concatenate([v, -v]))
    slope, intercept = np.cumsum(steps[:, :Lq], axis=1)
    keys = slope * np.arange(Lq) + intercept
    n = T[~unit]
    if n.size:
        piece = np.repeat(np.flatnonzero(~unit), n)
        t = np.arange(piece.size) - np.repeat(np.cumsum(n) - n, n)
        np.add.at(keys, r0[piece] + step[piece] * t, ca[piece] * t + cb[piece])
    return keys, exact
