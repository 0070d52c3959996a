"""The decomposed path's configuration, launch metadata, tables and a numpy model of its three
kernels (no MLIR: the runtime uses the launch metadata without the bindings).

The kernels (``splat.lowering.decomposed``) compute ``col(i, n)``, the ``n``-th allowed key of
query row ``i`` in ACSR piece order, from the row's affine pieces, never from a column table:

* ``row_pieces int32 [Lq, P, 3]``: ``(offset, stride, count)`` of each piece covering row ``i``,
  in ACSR piece order, followed by the row's remainder columns as runs of consecutive columns
  (stride 1); unused slots are ``(0, 0, 0)`` and only ever trail the used ones.
* ``row_nnz int32 [Lq]``: the row's number of allowed keys (sum of its counts).

so ``col(i, n) = offset_p + stride_p * (n - start_p)`` for the slot ``p`` with
``start_p <= n < start_p + count_p``, ``start_p`` the sum of the counts before it.  The compressed
f32 score tensor is ``B x H x Lq x W`` with ``W = score_width(max_row_nnz)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import abi

__all__ = ["CHUNK", "GROUP", "DEFAULT_ROWS_PER_CTA", "DecomposedConfig", "score_width",
           "decomposed_tables", "decomposed_launch_info", "grid_of", "columns_from_tables",
           "emulate_decomposed"]

# How the kernels deal a row's compressed entries to the lanes of its warp (the numpy models of
# their index logic in the tests follow the same split).
CHUNK = 32  # compressed entries per warp step (one per lane)
GROUP = 8  # lanes per K/V row segment (8 x 16 bytes = 128 bytes)

# One row per warp: measured on an H100 (B=2, H=16, L=4096, bf16), rows_per_cta = 4 beats 16 by
# 1-4 % on window/dilated and by 24-32 % on BigBird (whose 64 global rows of 4096 keys would
# otherwise queue 4 deep on one warp); 32 is slower everywhere.
DEFAULT_ROWS_PER_CTA = {"sddmm": 4, "softmax": 4, "spmm": 4}


@dataclass(frozen=True)
class DecomposedConfig:
    dtype: str
    head_dim: int
    rows_per_cta: int | None = None  # None: DEFAULT_ROWS_PER_CTA per kernel

    def __post_init__(self):
        if self.dtype not in abi.DTYPES:
            raise ValueError(f"dtype must be one of {abi.DTYPES}, got {self.dtype!r}")
        if self.head_dim not in abi.HEAD_DIMS:
            raise ValueError(f"head_dim must be one of {abi.HEAD_DIMS}, got {self.head_dim}")
        r = self.rows_per_cta
        if r is not None and (not isinstance(r, int) or r < 1 or r % abi.NUM_WARPS):
            raise ValueError(f"rows_per_cta must be a positive multiple of {abi.NUM_WARPS}, "
                             f"got {r!r}")

    def rows(self, kind: str) -> int:
        return self.rows_per_cta if self.rows_per_cta is not None else DEFAULT_ROWS_PER_CTA[kind]


def score_width(maxnnz: int) -> int:
    """Last dimension of the score tensor: ``maxnnz`` rounded up to a multiple of 4 (>= 4)."""
    maxnnz = int(maxnnz)
    if maxnnz < 0:
        raise ValueError(f"maxnnz must be >= 0, got {maxnnz}")
    return max(4, -(-maxnnz // 4) * 4)


def decomposed_tables(acsr) -> dict:
    """``{"row_pieces": int32 [Lq, P, 3], "row_nnz": int32 [Lq]}`` of an ``splat.analysis.acsr.ACSR``.

    Slot order per row: the pieces covering the row (count > 0) in ``acsr.pieces`` order, then the
    row's remainder columns as maximal runs of consecutive columns (stride 1).  Unused slots are
    zero and trail the used ones.  ``P = max(1, most slots of any row)``.  Exact: the slots of row
    ``i`` enumerate exactly ``acsr.row_columns(i)`` (in slot order, not sorted)."""
    Lq, Lk = acsr.Lq, acsr.Lk
    if max(Lq, Lk) >= 2**31:
        raise ValueError("decomposed tables are int32: Lq and Lk must be < 2**31")
    nslot = np.zeros(Lq, dtype=np.int64)
    groups = []  # (rows, offsets, strides, counts, rank) ; rank None = rows unique in the group
    for p in acsr.pieces:
        cnts = p.counts()
        keep = cnts > 0
        if not keep.any():
            continue
        rows = p.rows()[keep]
        groups.append((rows, p.offsets()[keep], np.full(rows.size, p.stride, np.int64),
                       cnts[keep], None))
        nslot[rows] += 1
    rem = acsr.remainder
    if rem is not None and rem.n:
        rows, cols = rem.coordinates()
        if rows.size:
            new = np.ones(rows.size, dtype=bool)
            new[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1] + 1)
            starts = np.flatnonzero(new)
            lens = np.diff(np.append(starts, rows.size))
            r_rows, r_cols = rows[starts], cols[starts]
            # rank of each run inside its row (runs are sorted by row)
            first = np.ones(r_rows.size, dtype=bool)
            first[1:] = r_rows[1:] != r_rows[:-1]
            grp_start = np.flatnonzero(first)
            grp_id = np.cumsum(first) - 1
            rank = np.arange(r_rows.size) - grp_start[grp_id]
            groups.append((r_rows, r_cols, np.ones(r_rows.size, np.int64), lens, rank))
            np.add.at(nslot, r_rows, 1)
    P = max(1, int(nslot.max(initial=0)))
    table = np.zeros((Lq, P, 3), dtype=np.int64)
    fill = np.zeros(Lq, dtype=np.int64)
    for rows, offs, strides, cnts, rank in groups:
        slot = fill[rows] if rank is None else fill[rows] + rank
        table[rows, slot, 0] = offs
        table[rows, slot, 1] = strides
        table[rows, slot, 2] = cnts
        if rank is None:
            fill[rows] += 1
        else:
            np.add.at(fill, rows, 1)
    row_nnz = table[:, :, 2].sum(axis=1)
    return {"row_pieces": np.ascontiguousarray(table.astype(np.int32)),
            "row_nnz": np.ascontiguousarray(row_nnz.astype(np.int32))}


def decomposed_launch_info(dtype: str, head_dim: int, maxnnz: int,
                           rows_per_cta: int | None = None) -> dict:
    """Manifest data of the decomposed path.

    Returns ``{"kernels": [sddmm, softmax, spmm entries (launch in this order, one stream)],
    "scratch": {"scores": {...}}, "score_width": W}``.  Each kernel entry is a design.md §4
    "kernels" entry less ``ptx_file``, with ``"grid": "rows"`` meaning
    ``(ceil(Lq / rows_per_cta), H, B)`` and the entry's ``"rows_per_cta"``; ``"scratch"`` names the
    scratch buffers the kernel reads or writes.  The scratch spec gives the score tensor's dtype
    and shape with symbolic ``"B"``, ``"H"``, ``"Lq"`` (and the concrete width ``W``): the runtime
    allocates it (contiguous, 16-byte aligned, uninitialised) and passes it as ``scores``."""
    cfg = DecomposedConfig(dtype, head_dim, rows_per_cta)
    names = abi.decomposed_kernel_names(dtype, head_dim)
    params = abi.decomposed_kernel_params(dtype)
    kernels = []
    for kind in abi.DECOMPOSED_KINDS:
        p = params[kind]
        kernels.append({
            "name": names[kind],
            "block": [abi.NUM_THREADS, 1, 1],
            "shared_bytes": 0,
            "params": p,
            "num_ptx_params": abi.num_ptx_params(p),
            "grid": "rows",
            "rows_per_cta": cfg.rows(kind),
            "tables": list(abi.DECOMPOSED_TABLES[kind]),
            "scratch": ["scores"],
        })
    W = score_width(maxnnz)
    scratch = {"scores": {"dtype": "f32", "shape": ["B", "H", "Lq", W], "align": 16,
                          "init": None}}
    return {"kernels": kernels, "scratch": scratch, "score_width": W}


def grid_of(entry: dict, B: int, H: int, Lq: int) -> tuple:
    """The launch grid of a kernel entry with ``"grid": "rows"``."""
    if entry["grid"] != "rows":
        return tuple(int(x) for x in entry["grid"])
    r = int(entry["rows_per_cta"])
    return (-(-Lq // r), H, B)


def columns_from_tables(row_pieces: np.ndarray, row_nnz: np.ndarray, width: int) -> np.ndarray:
    """``int64 [Lq, width]``: col(i, n) for n < nnz(i), -1 past it (what the kernels compute)."""
    rp = np.asarray(row_pieces, dtype=np.int64)
    Lq, P, _ = rp.shape
    n = np.arange(width, dtype=np.int64)[None, :]
    col = np.full((Lq, width), -1, dtype=np.int64)
    start = np.zeros((Lq, 1), dtype=np.int64)
    for p in range(P):
        off, stride, cnt = rp[:, p, 0:1], rp[:, p, 1:2], rp[:, p, 2:3]
        inside = (n >= start) & (n < start + cnt)
        col = np.where(inside, off + stride * (n - start), col)
        start = start + cnt
    return col


def emulate_decomposed(q, k, v, row_pieces, row_nnz, scale: float, width: int | None = None):
    """The three kernels' math (sddmm, softmax, spmm) in numpy f32 over the tables: returns
    ``(o, lse, probs)``.  ``q``: ``[B, H, Lq, D]``, ``k``/``v``: ``[B, Hkv, Lk, D]``."""
    q = np.asarray(q, dtype=np.float32)
    k = np.asarray(k, dtype=np.float32)
    v = np.asarray(v, dtype=np.float32)
    B, H, Lq, D = q.shape
    Hkv = k.shape[1]
    nnz = np.asarray(row_nnz, dtype=np.int64)
    W = score_width(int(nnz.max(initial=0))) if width is None else int(width)
    col = columns_from_tables(row_pieces, nnz, W)
    valid = col >= 0
    safe = np.where(valid, col, 0)
    kvh = np.arange(H) // (H // Hkv)
    qs = q * np.float32(scale)
    # sddmm
    scores = np.zeros((B, H, Lq, W), dtype=np.float32)
    for hh in range(H):
        kg = k[:, kvh[hh]][:, safe]  # [B, Lq, W, D]
        scores[:, hh] = np.einsum("bid,bind->bin", qs[:, hh], kg, dtype=np.float32)
    # softmax (in place)
    s = np.where(valid, scores, np.float32(-np.inf))
    m = s.max(axis=-1, keepdims=True)
    ok = np.isfinite(m)
    e = np.where(valid, np.exp(s - np.where(ok, m, 0), dtype=np.float32), np.float32(0))
    l = e.sum(axis=-1, keepdims=True, dtype=np.float32)
    probs = np.where(l > 0, e / np.where(l > 0, l, 1), np.float32(0)).astype(np.float32)
    lse = np.where(l[..., 0] > 0, m[..., 0] + np.log(np.where(l > 0, l, 1)[..., 0]),
                   np.float32(-np.inf)).astype(np.float32)
    # spmm
    o = np.zeros((B, H, Lq, D), dtype=np.float32)
    for hh in range(H):
        vg = v[:, kvh[hh]][:, safe]
        o[:, hh] = np.einsum("bin,bind->bid", probs[:, hh], vg, dtype=np.float32)
    return o, lse, probs
