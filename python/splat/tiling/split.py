"""Split-KV: two row groupings for one layout (docs/design.md section 5).

A tile groups rows so that one key sequence serves all of them.  Some layouts want two
groupings at once: Sparse Transformer *strided* rows hold a local window (consecutive rows share
keys) and keys of their own residue class (rows ``r, r + s, r + 2s, ...`` share keys).  One
schedule serves one grouping well and pays a masked key tile per row for the other.

:func:`plan_split` divides the pieces into a *main* set (pieces whose columns stay on one residue
class per row step 1: bands, blocks, rows; plus the remainder) and an *extra* set (the others),
re-expresses the extra set by residue class (``analysis.acsr_from_intervals(...,
prefer_residue=True)``), schedules both, and keeps the split only when the tiler's measured cost
model (:func:`splat.tiling.cost_model.launch_cost`, the second launch's fixed cost included)
prices the two launches clearly below the one.  The kernel then runs twice: the main schedule
writes ``o, lse`` for every row (its row tiles partition ``[0, Lq)``); the extra schedule, its
empty row tiles dropped, runs the *accumulating* kernel variant, which folds its result into the
``o, lse`` of its rows (log-sum-exp weights; :func:`merge_partials` is that math in numpy).  So
a split costs only the extra schedule's own work and its launch, no pass over all rows.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..analysis.acsr import ACSR, BlockRemainder
from . import cost_model
from .cost_model import launch_cost
from . import schedule as _sched
from .schedule import build_schedule
from .tile_schedule import PLAN_BLOCKS, TileSchedule

__all__ = ["plan_split", "split_pieces", "may_split", "schedule_cost", "tiles_cost_range",
           "launch_cost_floor", "merge_partials"]

# The two launches must cost at most this fraction of the one: the model prices the second
# launch (W_LAUNCH) and fits the split launches of the calibration without bias, but its
# median error is 3-5 % (max ~30 %), so a split must save more than that.
_SPLIT_MARGIN = 0.9
# the relative error allowed the main schedule's cost read off its tiles (measured: 1e-14)
_REFUSE_SLACK = 1e-6
# pieces of the extra set in residue form from this size on are kept as they are (_residue_form)
_RESIDUE_MIN_NNZ = 64
# plan_split's ``parts`` when the caller has no split_pieces result (None is one: no split)
_NOT_GIVEN = object()


def schedule_cost(s: TileSchedule) -> float:
    """The measured cost model's price of running ``s`` as one launch, in key-tile units."""
    return launch_cost(s.stats())


def _row_local(p) -> bool:
    """Columns on one residue class from row to row: ``row_step == 1`` and the offset moves by a
    multiple of the stride (always so for ``stride == 1``)."""
    return p.row_step == 1 and (p.stride == 1 or p.off_a % p.stride == 0)


def _residue_form(p) -> bool:
    """The residue form the extra set is re-expressed in: rows one stride apart (``row_step
    == stride``) whose columns stay on one residue class, and large enough that the analysis
    would not move it to the remainder (``min_piece_nnz`` is 8)."""
    return p.row_step == p.stride > 1 and p.off_a % p.stride == 0 and p.nnz >= _RESIDUE_MIN_NNZ


def may_split(acsr: ACSR) -> bool:
    """Whether :func:`split_pieces` may find two sets (both kinds of pieces are there); without
    them :func:`plan_split` keeps the one schedule."""
    local = [_row_local(p) for p in acsr.pieces]
    return any(local) and not all(local)


def split_pieces(acsr: ACSR) -> tuple[ACSR, ACSR] | None:
    """(main, extra) ACSRs or None when one of the sets is empty.  Pieces of the extra set that
    the residue form leaves too small (they go to its remainder) join the main set's remainder,
    so the extra set has pieces only."""
    if not may_split(acsr):
        return None
    main = tuple(p for p in acsr.pieces if _row_local(p))
    other = tuple(p for p in acsr.pieces if not _row_local(p))
    if all(_residue_form(p) for p in other):
        # already one piece per residue class run: re-expressing their cells gives them back
        # (on every layout tried, tests/unit/test_split.py), at a cost that grows with their
        # cells (Sparse Transformer strided at 64K: 16.7M cells, ~7 s)
        return ACSR(acsr.Lq, acsr.Lk, main, acsr.remainder), ACSR(acsr.Lq, acsr.Lk, other)
    from .. import analysis  # noqa: PLC0415  (analysis imports nothing from tiling)
    block = acsr.remainder.block if acsr.remainder is not None else 64
    extra = ACSR(acsr.Lq, acsr.Lk, other)
    extra = analysis.acsr_from_intervals(analysis.intervals_from_acsr(extra), block=block,
                                         prefer_residue=True)
    remainder = _union_remainders(acsr.remainder, extra.remainder)
    if not extra.pieces:
        return None
    return (ACSR(acsr.Lq, acsr.Lk, main, remainder),
            ACSR(acsr.Lq, acsr.Lk, extra.pieces) if extra.remainder is not None else extra)


def _union_remainders(a: BlockRemainder | None, b: BlockRemainder | None) -> BlockRemainder | None:
    """The union of two block remainders of one block size (disjoint cells).  The blocks are
    sorted by (row block, column block) and the masks of each block listed more than once
    OR-ed into its first entry: few are (``logical_or.at`` or ``reduceat`` over all of 10^4
    blocks of 64 x 64 took a quarter to half a second)."""
    if a is None or b is None:
        return a if b is None else b
    blocks = np.concatenate([a.blocks, b.blocks]).astype(np.int64)
    key = blocks[:, 0] * (int(blocks[:, 1].max()) + 1) + blocks[:, 1]
    order = np.argsort(key, kind="stable")
    key = key[order]
    masks = np.concatenate([a.masks, b.masks])[order]
    first = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
    count = np.diff(np.append(first, key.size))
    for i, n in zip(first[count > 1].tolist(), count[count > 1].tolist()):
        masks[i] = masks[i:i + n].any(axis=0)
    return BlockRemainder(a.block, blocks[order[first]].astype(np.int32), masks[first])


def _without_empty_tiles(s: TileSchedule) -> TileSchedule:
    """The schedule less its row tiles without segments or mask tiles (the accumulating kernel
    would only rewrite those rows unchanged)."""
    keep = (s.row_tiles[:, 3] < s.row_tiles[:, 4]) | (np.diff(s.mask_ptr) > 0)
    if keep.all():
        return s
    ptr = np.concatenate([[0], np.cumsum(np.diff(s.mask_ptr)[keep])])
    return TileSchedule(s.Lq, s.Lk, s.block_m, s.block_n, s.row_tiles[keep], s.segments, ptr,
                        s.mask_tiles, s.mask_bits, s.plans[keep])


def _partitions_rows(s: TileSchedule) -> bool:
    rows = np.concatenate([s.tile_rows(i) for i in range(s.n_tiles)]) if s.n_tiles else np.zeros(0)
    return rows.size == s.Lq and np.array_equal(np.sort(rows), np.arange(s.Lq))


def plan_split(acsr: ACSR, block_m: int = 64, block_n: int = 64, *,
               single: TileSchedule | None = None, order: str = "rows",
               plan: str = "auto", parts: object = _NOT_GIVEN
               ) -> tuple[TileSchedule, TileSchedule | None]:
    """``(schedule, None)`` for one schedule, or ``(main, extra)`` when split-KV is cheaper.
    ``single``: the one-schedule result if the caller has it already; ``order``: the row tile
    order of the schedules built here; ``plan``: the plan of the single and main schedules (the
    extra one always takes the affine plan: its kernel runs no mask tiles); ``parts``:
    ``split_pieces(acsr)`` if the caller has it already (it depends on the layout alone, and
    re-expressing the extra set walks its cells: ~4 s for strided at 64K), None included."""
    single = (single if single is not None
              else build_schedule(acsr, block_m, block_n, order=order, plan=plan))
    if parts is _NOT_GIVEN:
        parts = split_pieces(acsr)
    if parts is None:
        return single, None
    budget = _SPLIT_MARGIN * schedule_cost(single)
    # the extra schedule first: it decides most refusals before the main one is built. It runs
    # on the accumulating kernel, which walks segments only, so its tiles take the affine plan
    # (a blocks plan would give it mask tiles: pricing one, 2-3x dearer on fragmented layouts,
    # only to refuse it)
    extra = build_schedule(parts[1], block_m, block_n, order=order, plan="affine")
    if extra.has_masks:  # the affine plan makes none; kept as the kernel's requirement
        return single, None
    extra = _without_empty_tiles(extra)
    if schedule_cost(extra) + _main_cost_bound(acsr.Lq, block_m) > budget:
        return single, None
    # the main schedule's tiles' costs are its launch's, less the mask kernel's extra
    # (non-negative) and up to rounding: a sum that already loses refuses before the tables are
    # assembled (a split within _REFUSE_SLACK of the budget is decided on the tables, as ever)
    b, built = _sched.plan_tiles(parts[0], block_m, block_n, plan)
    if (1.0 - _REFUSE_SLACK) * tiles_cost_range(b, built)[0] + schedule_cost(extra) > budget:
        return single, None
    main = _sched._assemble(parts[0], b, built, order)
    # the main launch must write every row (the accumulating one reads the rows it folds into);
    # the extra schedule's tiles, a partition less its empty tiles, meet each row at most once
    if not _partitions_rows(main) or schedule_cost(main) + schedule_cost(extra) > budget:
        return single, None
    return main, extra


def tiles_cost_range(b, built: list) -> tuple[float, float]:
    """``(low, high)``: bounds, up to rounding, of the launch cost of the schedule of planned
    tiles ``built`` of the builder ``b`` (``schedule.plan_tiles``), without its tables.  The
    tiles' costs are the launch's tile terms, plus ``W_LAUNCH``; so without mask tiles
    ``low == high`` is the launch cost.  When a tile has mask tiles (its affine plan's, or its
    blocks plan's: ``blocks_adds_masks``; the launch then runs the mask kernel) the launch adds
    ``W_MASK_KERNEL`` on every key tile, of which a tile has at most ``cost - W_TILE`` (each
    costs 1 or more) and at least ``(cost - W_TILE) / (1 + W_MASKED + W_BITS)`` where segments
    weigh nothing (``W_SEG = 0``: its masked key tiles and mask tiles are among its key tiles).
    ``(-inf, inf)`` where the tiles were priced with other weights than the launch's (tests)."""
    w = cost_model.WEIGHTS
    if not _tiles_priced_as_launches():
        return -math.inf, math.inf
    tiles = sum(r[2] for _, r in built)
    cost = tiles + w.W_LAUNCH
    if not any(b.blocks_adds_masks(t, r) if r[3] == PLAN_BLOCKS else len(r[1])
               for t, r in built):
        return cost, cost
    walked = max(0.0, tiles - w.W_TILE * len(built))  # the key tiles' costs
    low = walked / (1.0 + w.W_MASKED + w.W_BITS) if w.W_SEG == 0.0 else 0.0
    return cost + w.W_MASK_KERNEL * low, cost + w.W_MASK_KERNEL * walked


def launch_cost_floor(tiles_floor: float) -> float:
    """A lower bound, up to rounding, of the launch cost of a schedule whose tiles' costs
    (the launch's tile terms: :func:`tiles_cost_range`) sum to ``tiles_floor`` or more
    (``schedule.first_tiles_floor``, ``schedule.relaxed_tiles_floor``): plus ``W_LAUNCH``, the
    mask kernel's extra being not negative; ``-inf`` where not known."""
    if not _tiles_priced_as_launches():
        return -math.inf
    return tiles_floor + cost_model.WEIGHTS.W_LAUNCH


def _tiles_priced_as_launches() -> bool:
    """Whether the tiler's tile costs are the launch cost's tile terms: the same weights,
    ``W_LAUNCH`` aside (tests change the launch's)."""
    return dataclasses.replace(cost_model.WEIGHTS, W_LAUNCH=_sched.COST.W_LAUNCH) == _sched.COST


def _main_cost_bound(Lq: int, block_m: int) -> float:
    """A lower bound of the main schedule's cost: it covers every row, so it has at least
    ``ceil(Lq / block_m)`` row tiles, and is one launch."""
    w = cost_model.WEIGHTS
    return w.W_TILE * -(-Lq // block_m) + w.W_LAUNCH


def merge_partials(o1, lse1, o2, lse2):
    """The accumulating kernel's fold in numpy (float32): ``o = (w1 o1 + w2 o2) / (w1 + w2)`` with
    ``w = exp(lse - max(lse1, lse2))``, ``lse = max + log(w1 + w2)``; rows where both partials
    are empty stay ``0, -inf``."""
    o1, o2 = np.asarray(o1, np.float32), np.asarray(o2, np.float32)
    lse1, lse2 = np.asarray(lse1, np.float32), np.asarray(lse2, np.float32)
    m = np.maximum(lse1, lse2)
    live = m > -np.inf
    m_use = np.where(live, m, np.float32(0))
    w1, w2 = np.exp(lse1 - m_use), np.exp(lse2 - m_use)
    s = np.where(live, w1 + w2, np.float32(1))
    o = np.where(live[..., None], (w1[..., None] * o1 + w2[..., None] * o2) / s[..., None], 0)
    lse = np.where(live, m_use + np.log(s), np.float32(-np.inf))
    return o.astype(np.float32), lse.astype(np.float32)
