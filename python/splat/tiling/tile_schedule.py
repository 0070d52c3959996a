"""The tile schedule (docs/design.md section 2): the tables the fused kernel walks, one row
tile per CTA, its segments and mask tiles, and what they compute (:class:`TileSchedule`);
``key_tile_full``, the rule for a key tile that needs no element mask.  How a schedule is built
from an ACSR, and priced, is :mod:`splat.tiling.schedule`'s."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..abi import MASK_TILE_FIELDS, ROW_TILE_FIELDS, SEGMENT_FIELDS, mask_words

_RT, _SG, _MT = len(ROW_TILE_FIELDS), len(SEGMENT_FIELDS), len(MASK_TILE_FIELDS)
_I32_MAX = 2**31 - 1
# Plans of a row tile (TileSchedule.plans)
PLAN_AFFINE, PLAN_BLOCKS = 0, 1

__all__ = ["TileSchedule", "key_tile_full", "PLAN_AFFINE", "PLAN_BLOCKS"]


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def key_tile_full(seg, nrows: int, u0: int, block_m: int, block_n: int) -> bool:
    """The section 2 rule: key tile ``[u0, u0 + BLOCK_N)`` of segment ``seg`` needs no element
    mask iff the segment spans all ``BLOCK_M`` rows of a full tile, the key tile lies inside
    ``[0, ncols)`` and inside every row's ``[lo, hi)`` (checked at the two end rows)."""
    col0, cs, ncols, rl, rh, la, lb, ha, hb = (int(x) for x in seg)
    if rl != 0 or rh != nrows or nrows != block_m or u0 + block_n > ncols:
        return False
    last = rh - 1
    return (max(lb, la * last + lb) <= u0
            and u0 + block_n <= min(hb, ha * last + hb))


def _seg_key_tiles(seg, nrows: int, block_m: int, block_n: int) -> tuple[int, int]:
    """(key tiles walked, of which full) for one segment: closed form of :func:`key_tile_full`
    over ``u0 = 0, BLOCK_N, ...``."""
    col0, cs, ncols, rl, rh, la, lb, ha, hb = seg
    nkt = _cdiv(ncols, block_n)
    if rl != 0 or rh != nrows or nrows != block_m:
        return nkt, 0
    last = rh - 1
    lo = max(lb, la * last + lb)
    hi = min(ncols, hb, ha * last + hb)
    first = _cdiv(max(lo, 0), block_n)
    lastk = (hi - block_n) // block_n
    return nkt, max(0, lastk - first + 1)


def _segments_key_tiles(S: np.ndarray, nrows, block_m: int, block_n: int):
    """:func:`_seg_key_tiles` of every row of ``S`` (``(walked, full)`` arrays); ``nrows``: the
    tile rows of all of them, or an array of each one's."""
    col0, cs, ncols, rl, rh, la, lb, ha, hb = S.T
    nkt = -(-ncols // block_n)
    if np.isscalar(nrows) and nrows != block_m:
        return nkt, np.zeros_like(nkt)
    last = rh - 1
    lo = np.maximum(lb, la * last + lb)
    hi = np.minimum(np.minimum(ncols, hb), ha * last + hb)
    first = -(-np.maximum(lo, 0) // block_n)
    lastk = (hi - block_n) // block_n
    full = np.where((rl == 0) & (rh == nrows) & (nrows == block_m),
                    np.maximum(0, lastk - first + 1), 0)
    return nkt, full


def _popcount(words: np.ndarray) -> int:
    """Set bits of an integer array."""
    if hasattr(np, "bitwise_count"):  # numpy >= 2
        return int(np.bitwise_count(words.view(np.uint32)).sum())
    return int(np.unpackbits(words.view(np.uint8)).sum())



def _i32(a, shape_tail) -> np.ndarray:
    a = np.asarray(a, dtype=np.int64).reshape((-1,) + shape_tail)
    if a.size and (a.min() < -_I32_MAX - 1 or a.max() > _I32_MAX):
        raise ValueError("schedule value does not fit int32")
    return np.ascontiguousarray(a, dtype=np.int32)


@dataclass(eq=False)
class TileSchedule:
    """Tile schedule of one ACSR for one ``BLOCK_M x BLOCK_N`` tile shape.

    ``row_tiles int32 [n_tiles, 5]`` and ``segments int32 [n_segs, 9]`` are exactly the tables
    of design section 2.  The remainder tables (empty when the ACSR has no remainder):

    * ``mask_ptr int32 [n_tiles + 1]``: mask tiles of row tile ``i`` are
      ``mask_ptr[i] .. mask_ptr[i+1]-1``;
    * ``mask_tiles int32 [n_mask, 2]``: ``(col0, ncols)``, keys ``col0 + u``, ``u < ncols <=
      BLOCK_N``;
    * ``mask_bits int32 [n_mask, BLOCK_M, ceil(BLOCK_N/32)]``: bit ``u % 32`` of word
      ``[m, rho, u // 32]`` says tile row ``rho`` attends key ``col0 + u`` (bits of rows
      ``rho >= nrows`` and keys ``u >= ncols`` are 0).  Mask tiles are disjoint from the
      segments, so the kernel just runs them as always-masked key tiles after the segments,
      carrying the same online-softmax state.

    ``plans int8 [n_tiles]`` says which plan built each row tile (``PLAN_AFFINE = 0``,
    ``PLAN_BLOCKS = 1``, :mod:`splat.tiling.schedule` step 6).  It is metadata for statistics
    only: the kernel tables above are the same format for both plans.
    ``#splat.tile_schedule`` carries it (``plans``) when some tile uses the blocks plan; a
    schedule built from tables alone has ``plans`` all 0 ("unknown" reads as affine).
    Equality compares the tables only.
    """

    Lq: int
    Lk: int
    block_m: int
    block_n: int
    row_tiles: np.ndarray
    segments: np.ndarray
    mask_ptr: np.ndarray | None = None
    mask_tiles: np.ndarray | None = None
    mask_bits: np.ndarray | None = None
    plans: np.ndarray | None = None

    def __post_init__(self):
        self.Lq, self.Lk = int(self.Lq), int(self.Lk)
        self.block_m, self.block_n = int(self.block_m), int(self.block_n)
        self.row_tiles = _i32(self.row_tiles, (_RT,))
        self.segments = _i32(self.segments, (_SG,))
        n = self.row_tiles.shape[0]
        if self.mask_ptr is None:
            self.mask_ptr = np.zeros(n + 1, dtype=np.int32)
        self.mask_ptr = _i32(self.mask_ptr, ()).reshape(-1)
        if self.mask_tiles is None:
            self.mask_tiles = np.zeros((0, _MT), dtype=np.int32)
        self.mask_tiles = _i32(self.mask_tiles, (_MT,))
        if self.mask_bits is None:
            self.mask_bits = np.zeros((0, self.block_m, self.words), dtype=np.int32)
        bits = np.asarray(self.mask_bits)
        if bits.dtype not in (np.int32, np.uint32):
            bits = (bits.astype(np.int64) & 0xFFFFFFFF).astype(np.uint32)
        self.mask_bits = np.ascontiguousarray(bits.view(np.int32).reshape(-1, self.block_m, self.words))
        plans = np.zeros(n, dtype=np.int8) if self.plans is None else self.plans
        self.plans = np.ascontiguousarray(np.asarray(plans, dtype=np.int8).reshape(-1))

    # -- sizes -------------------------------------------------------------------------------
    @property
    def words(self) -> int:
        """32-bit words per mask-tile row."""
        return mask_words(self.block_n)

    @property
    def n_tiles(self) -> int:
        return int(self.row_tiles.shape[0])

    @property
    def n_segments(self) -> int:
        return int(self.segments.shape[0])

    @property
    def n_mask_tiles(self) -> int:
        return int(self.mask_tiles.shape[0])

    @property
    def has_masks(self) -> bool:
        return self.n_mask_tiles > 0

    def kernel_tables(self, names: dict | None = None) -> dict:
        """The schedule's tables by the forward kernel's parameter names, renamed through
        ``names`` where given (``abi.SPLIT_TABLES``, ``abi.COL_TABLES``, ...); the remainder's
        only where it has mask tiles."""
        tables = {"row_tiles": self.row_tiles, "segments": self.segments}
        if self.has_masks:
            tables.update(mask_ptr=self.mask_ptr, mask_tiles=self.mask_tiles,
                          mask_bits=self.mask_bits)
        names = names or {}
        return {names.get(n, n): t for n, t in tables.items()}

    def tile_rows(self, i: int) -> np.ndarray:
        row0, step, nrows = (int(x) for x in self.row_tiles[i, :3])
        return row0 + step * np.arange(nrows, dtype=np.int64)

    def tile_segments(self, i: int) -> np.ndarray:
        b, e = self.row_tiles[i, 3], self.row_tiles[i, 4]
        return self.segments[b:e]

    def mask_tile_bool(self, m: int) -> np.ndarray:
        """``bool [BLOCK_M, BLOCK_N]`` of mask tile ``m``."""
        w = self.mask_bits[m].view(np.uint32).astype(np.uint64)          # [BM, W]
        bits = (w[:, :, None] >> np.arange(32, dtype=np.uint64)) & 1      # [BM, W, 32]
        return bits.reshape(self.block_m, -1)[:, :self.block_n].astype(bool)

    # -- statistics --------------------------------------------------------------------------
    def stats(self) -> dict:
        """Counts and tile efficiency = nnz / computed elements, where every walked key tile
        (segment key tiles and mask tiles) computes ``BLOCK_M * BLOCK_N`` elements."""
        BM, BN = self.block_m, self.block_n
        nrows_of = np.zeros(self.n_segments, dtype=np.int64)
        for row0, step, nrows, b, e in self.row_tiles.tolist():
            nrows_of[b:e] = nrows
        # one pass of numpy over the segments (tens of thousands on fragmented layouts): the
        # same integers as _seg_key_tiles and the affine row sums, segment by segment
        S = self.segments.astype(np.int64)
        k, f = _segments_key_tiles(S, nrows_of, BM, BN)
        key_tiles, full = int(k.sum()), int(f.sum())
        col0, cs, ncols, rl, rh, la, lb, ha, hb = S.T
        n = rh - rl  # sum over rho in [rl, rh) of (ha - la)*rho + (hb - lb)
        nnz = int(((ha - la) * (rl + rh - 1) * n // 2 + (hb - lb) * n).sum())
        nmask = self.n_mask_tiles
        if nmask:
            nnz += _popcount(self.mask_bits)
        key_tiles += nmask
        computed = key_tiles * BM * BN
        no_segs = self.row_tiles[:, 3] == self.row_tiles[:, 4]
        empty = int(np.count_nonzero(no_segs & (np.diff(self.mask_ptr) == 0)))
        out = {
            "tiles": self.n_tiles,
            "empty_tiles": empty,
            "full_row_tiles": int(np.count_nonzero(self.row_tiles[:, 2] == BM)),
            "segments": self.n_segments,
            "mask_tiles": nmask,
            "key_tiles": key_tiles,
            "masked_key_tiles": key_tiles - full,
            "nnz": nnz,
            "computed": computed,
            "efficiency": nnz / computed if computed else 1.0,
        }
        # only when some tile uses the blocks plan, so the stats (and the artifact manifests
        # that hold them) of every other schedule are as before; absent means 0
        blocks = int(np.count_nonzero(self.plans == PLAN_BLOCKS))
        if blocks:
            out["tiles_blocks_plan"] = blocks
        return out

    def summary(self) -> str:
        s = self.stats()
        return (f"TileSchedule {self.Lq}x{self.Lk} tile {self.block_m}x{self.block_n}: "
                f"{s['tiles']} tiles ({s['full_row_tiles']} full, {s['empty_tiles']} empty), "
                f"{s['segments']} segments, {s['mask_tiles']} mask tiles, "
                f"{s['key_tiles']} key tiles ({s['masked_key_tiles']} masked), "
                f"nnz={s['nnz']}, efficiency {s['efficiency']:.3f}")

    def __repr__(self) -> str:
        return f"<{self.summary()}>"

    def to_text(self) -> str:
        """Human-readable dump: the summary, then each tile and its segments."""
        lines = [self.summary()]
        for i, (row0, step, nrows, b, e) in enumerate(self.row_tiles.tolist()):
            mb, me = int(self.mask_ptr[i]), int(self.mask_ptr[i + 1])
            lines.append(f"tile {i} rows={row0}+{step}*rho rho<{nrows} segs={b}:{e}"
                         + (f" masks={mb}:{me}" if me > mb else ""))
            for col0, cs, ncols, rl, rh, la, lb, ha, hb in self.segments[b:e].tolist():
                lines.append(f"  seg cols={col0}+{cs}*u u<{ncols} rho={rl}:{rh} "
                             f"u in [{la}*rho{lb:+d}, {ha}*rho{hb:+d})")
            for col0, ncols in self.mask_tiles[mb:me].tolist():
                lines.append(f"  mask cols={col0}+u u<{ncols}")
        return "\n".join(lines)

    # -- (de)serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": "splat-tile-schedule/1",
            "Lq": self.Lq, "Lk": self.Lk, "block_m": self.block_m, "block_n": self.block_n,
            "row_tiles": self.row_tiles.tolist(),
            "segments": self.segments.tolist(),
            "mask_ptr": self.mask_ptr.tolist(),
            "mask_tiles": self.mask_tiles.tolist(),
            "mask_bits": self.mask_bits.reshape(-1).tolist(),
        } | ({"plans": self.plans.tolist()} if self.plans.any() else {})

    @classmethod
    def from_dict(cls, d: dict) -> "TileSchedule":
        fmt = d.get("format", "splat-tile-schedule/1")
        if fmt != "splat-tile-schedule/1":
            raise ValueError(f"unknown tile schedule format {fmt!r}")
        bm, bn = int(d["block_m"]), int(d["block_n"])
        bits = np.array(d.get("mask_bits", []), dtype=np.int64).reshape(-1, bm, mask_words(bn))
        return cls(int(d["Lq"]), int(d["Lk"]), bm, bn,
                   np.array(d["row_tiles"], dtype=np.int64).reshape(-1, _RT),
                   np.array(d["segments"], dtype=np.int64).reshape(-1, _SG),
                   np.array(d.get("mask_ptr", [0] * (len(d["row_tiles"]) + 1)), dtype=np.int64),
                   np.array(d.get("mask_tiles", []), dtype=np.int64).reshape(-1, _MT),
                   bits, d.get("plans"))

    def __eq__(self, other) -> bool:
        if not isinstance(other, TileSchedule):
            return NotImplemented
        return ((self.Lq, self.Lk, self.block_m, self.block_n)
                == (other.Lq, other.Lk, other.block_m, other.block_n)
                and all(np.array_equal(getattr(self, n), getattr(other, n))
                        for n in ("row_tiles", "segments", "mask_ptr", "mask_tiles", "mask_bits")))

    __hash__ = None

    # -- checks ------------------------------------------------------------------------------
    def validate(self) -> "TileSchedule":
        """Structural checks (no ACSR needed): the row tiles partition ``[0, Lq)``, segment
        ranges are contiguous, every segment's keys lie in ``[0, Lk)`` with ``0 <= lo <= hi <=
        ncols`` on its rows, mask tables are consistent.  Disjointness and equality with a mask
        are checked by :meth:`coverage`.  Returns self."""
        BM, BN, Lq, Lk = self.block_m, self.block_n, self.Lq, self.Lk
        rt, sg = self.row_tiles, self.segments
        if BM < 1 or BN < 1:
            raise ValueError("block sizes must be >= 1")
        n = rt.shape[0]
        if n == 0:
            raise ValueError("a schedule needs at least one row tile")
        row0, step, nrows, sb, se = (rt[:, c].astype(np.int64) for c in range(_RT))
        if (nrows < 1).any() or (nrows > BM).any():
            raise ValueError(f"tile nrows must be in 1..{BM}")
        if (step < 1).any() or (row0 < 0).any() or (row0 + step * (nrows - 1) >= Lq).any():
            raise ValueError("tile rows outside [0, Lq) or row_step < 1")
        seen = np.zeros(Lq, dtype=np.int64)
        rows = np.repeat(row0, nrows) + np.repeat(step, nrows) * (
            np.arange(int(nrows.sum())) - np.repeat(np.cumsum(nrows) - nrows, nrows))
        np.add.at(seen, rows, 1)
        if (seen != 1).any():
            r = int(np.flatnonzero(seen != 1)[0])
            raise ValueError(f"row tiles do not partition [0, Lq): row {r} is in {seen[r]} tiles")
        if sb[0] != 0 or se[-1] != sg.shape[0] or (sb > se).any() or (sb[1:] != se[:-1]).any():
            raise ValueError("segment ranges must be contiguous and cover the segment table")
        if sg.shape[0]:
            col0, cs, ncols, rl, rh, la, lb, ha, hb = (sg[:, c].astype(np.int64) for c in range(_SG))
            tile_n = np.repeat(nrows, se - sb)
            if (cs < 1).any() or (ncols < 1).any():
                raise ValueError("segments need col_step >= 1 and ncols >= 1")
            if (rl < 0).any() or (rl >= rh).any() or (rh > tile_n).any():
                raise ValueError("segments need 0 <= rho_lo < rho_hi <= nrows")
            if (col0 < 0).any() or (col0 + cs * (ncols - 1) >= Lk).any():
                raise ValueError("segment keys outside [0, Lk)")
            for r in (rl, rh - 1):
                lo, hi = la * r + lb, ha * r + hb
                if (lo < 0).any() or (hi < lo).any() or (hi > ncols).any():
                    raise ValueError("segment bounds need 0 <= lo <= hi <= ncols on its rows")
        if self.plans.shape != (n,) or not np.isin(self.plans, (PLAN_AFFINE, PLAN_BLOCKS)).all():
            raise ValueError("plans must hold one plan (0 affine, 1 blocks) per row tile")
        mp = self.mask_ptr.astype(np.int64)
        if mp.shape != (n + 1,) or mp[0] != 0 or mp[-1] != self.n_mask_tiles or (np.diff(mp) < 0).any():
            raise ValueError("mask_ptr must be a CSR pointer over the row tiles")
        if self.mask_bits.shape != (self.n_mask_tiles, BM, self.words):
            raise ValueError("mask_bits shape must be [n_mask, BLOCK_M, ceil(BLOCK_N/32)]")
        if self.n_mask_tiles:
            c0, nc = self.mask_tiles[:, 0].astype(np.int64), self.mask_tiles[:, 1].astype(np.int64)
            if (nc < 1).any() or (nc > BN).any() or (c0 < 0).any() or (c0 + nc > Lk).any():
                raise ValueError("mask tiles need 1 <= ncols <= BLOCK_N inside [0, Lk)")
            tn = np.repeat(nrows, np.diff(mp))
            for m in range(self.n_mask_tiles):
                b = self.mask_tile_bool(m)
                if b[tn[m]:].any() or b[:, nc[m]:].any():
                    raise ValueError(f"mask tile {m} sets bits outside its rows/columns")
        return self

    def element_lists(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) of every element the schedule lets attend, one entry per
        (segment or mask tile, element): duplicates mean overlapping segments."""
        rows_out, cols_out = [], []
        for row0, step, nrows, b, e in self.row_tiles.tolist():
            for col0, cs, ncols, rl, rh, la, lb, ha, hb in self.segments[b:e].tolist():
                rho = np.arange(rl, rh, dtype=np.int64)
                lo, hi = la * rho + lb, ha * rho + hb
                cnt = np.maximum(hi - lo, 0)
                tot = int(cnt.sum())
                j = np.arange(tot, dtype=np.int64) - np.repeat(np.cumsum(cnt) - cnt, cnt)
                u = np.repeat(lo, cnt) + j
                rows_out.append(row0 + step * np.repeat(rho, cnt))
                cols_out.append(col0 + cs * u)
        for i in range(self.n_tiles):
            rows = self.tile_rows(i)
            for m in range(int(self.mask_ptr[i]), int(self.mask_ptr[i + 1])):
                r, u = np.nonzero(self.mask_tile_bool(m))
                rows_out.append(rows[r])
                cols_out.append(int(self.mask_tiles[m, 0]) + u.astype(np.int64))
        if not rows_out:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(rows_out), np.concatenate(cols_out)

    def coverage(self) -> tuple[np.ndarray, int]:
        """``(mask bool [Lq, Lk], overlaps)``: the elements the schedule computes and how many
        elements are covered more than once (0 for a valid schedule)."""
        r, c = self.element_lists()
        flat = r * self.Lk + c
        mask = np.zeros(self.Lq * self.Lk, dtype=bool)
        mask[flat] = True
        overlaps = int(flat.size - np.count_nonzero(mask))
        return mask.reshape(self.Lq, self.Lk), overlaps
