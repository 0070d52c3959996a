"""The decomposed sparse-attention path: ``splat.sddmm -> splat.softmax -> splat.spmm`` as three
GPU kernels over a compressed f32 score tensor ``B x H x Lq x W`` (the SPLAT paper's design),
built with the MLIR Python bindings.

Kernels (all in ``gpu.module @splat_kernels``, 128 threads = 4 warps, no shared memory)::

    splat_sddmm_<dtype>_d<D>   scores[b,h,i,n] = scale * q[b,h,i] . k[b,g,col(i,n)]      (f32)
    splat_softmax_<dtype>      scores[b,h,i,:] = softmax over n < nnz(i), 0 for n >= nnz(i)
                               (in place, f32); lse[b,h,i] = log sum exp (-inf for empty rows)
    splat_spmm_<dtype>_d<D>    o[b,h,i] = sum_n scores[b,h,i,n] v[b,g,col(i,n)]          (dtype)

``g = h // (H // Hkv)`` (GQA).  ``col(i, n)`` is the ``n``-th allowed key of row ``i`` in ACSR
piece order, computed in the kernel from the row's affine pieces, never from a column table:

* ``row_pieces int32 [Lq, P, 3]``: ``(offset, stride, count)`` of each piece covering row ``i``,
  in ACSR piece order, followed by the row's remainder columns as runs of consecutive columns
  (stride 1); unused slots are ``(0, 0, 0)`` and only ever trail the used ones.
* ``row_nnz int32 [Lq]``: the row's number of allowed keys (sum of its counts).

so ``col(i, n) = offset_p + stride_p * (n - start_p)`` for the slot ``p`` with
``start_p <= n < start_p + count_p``, ``start_p`` the sum of the counts before it.  Build them
with :func:`decomposed_tables` (numpy only).

Kernel ABI (MLIR default calling convention, each rank-R memref = 3 + 2R 64-bit parameters, as in
design.md §3; ``T`` = bf16 / f16, the last dimension of q/k/v/o is the static head dim)::

    sddmm:   q  memref<?x?x?xDxT> (B,H,Lq,D), k memref<?x?x?xDxT> (B,Hkv,Lk,D),
             scores memref<?x?x?x?xf32> (B,H,Lq,W), row_pieces memref<?x?x3xi32>,
             row_nnz memref<?xi32>, scale f32
    softmax: scores memref<?x?x?x?xf32>, lse memref<?x?x?xf32> (B,H,Lq), row_nnz memref<?xi32>
    spmm:    scores memref<?x?x?x?xf32>, v memref<?x?x?xDxT>, o memref<?x?x?xDxT>,
             row_pieces memref<?x?x3xi32>, row_nnz memref<?xi32>

Launch: the three kernels in that order on one stream, block ``(128, 1, 1)``, no dynamic shared
memory, grid ``"rows"`` = ``(ceil(Lq / rows_per_cta), H, B)`` with ``rows_per_cta`` given in the
kernel's manifest entry (:func:`decomposed_launch_info`).  The runtime allocates the score tensor
(scratch, f32, ``B x H x Lq x W`` contiguous, ``W = score_width(max_row_nnz)``: rounded up to a
multiple of 4 so that each row is 16-byte aligned; no initialisation needed: sddmm writes
``n < nnz(i)`` and softmax writes every entry).

Implementation (SIMT, f32 math, 16-byte vector loads; *not* tensor cores, see below).  One warp
works on one query row at a time (warp ``w`` takes rows ``w, w+4, ...`` of the CTA's
``rows_per_cta``), in chunks of 32 compressed entries: lane ``l`` resolves ``col(i, n0 + l)``
with a warp-uniform cursor over the row's piece slots (each slot is visited once per chunk it
touches, so the cost is O(P + chunks) per row), then the warp splits into 4 groups of 8 lanes
and each group handles 8 of the chunk's keys, its 8 lanes covering one 128-byte (D = 64) or two
(D = 128) K/V row segments with coalesced ``ld.global.v4``.

* sddmm: q (scaled, f32) stays in registers (D/8 values per lane); each lane accumulates 8
  partial dot products, and a 3-step butterfly (7 shuffles) reduces them inside the group so that
  lane ``l`` ends with entry ``n0 + l``: one coalesced 128-byte store per chunk.
* softmax: one warp per row, 4 entries (one ``v4`` load) per lane; an online max/sum pass over
  ``n < nnz``, a warp reduction, then a normalise pass over ``n < nnz`` and a zero-fill pass.
* spmm: lane ``l`` loads ``p[n0 + l]`` (coalesced) and the groups broadcast ``(p, col)`` by
  shuffles; each lane accumulates D/8 output elements in f32; a final 2-step shuffle reduction
  over the groups; the first group writes the row with 16-byte stores.

Why no ``mma.sync``: a tensor-core tile ``S = Q_tile K_g^T`` with gathered K rows computes
``q_i . k_{c_u}`` for one key set shared by all rows of the tile, but in compressed coordinates the
key of entry ``n`` depends on the row (``col(i, n) = i - w + n`` for a window), so a
64-row x 64-entry compressed tile touches up to 64*64 distinct keys.  Only row-invariant tiles
(``off_a == 0``: blocked, global columns, random blocks) map onto an MMA; the general case needs a
dense tile over the rows' key union plus a scatter into compressed positions, which is the fused
kernel's schedule, not this path's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import abi

__all__ = [
    "DecomposedConfig", "decomposed_tables", "decomposed_launch_info", "score_width",
    "build_decomposed", "build_into", "emulate_decomposed",
]

NUM_WARPS = abi.NUM_WARPS
NUM_THREADS = abi.NUM_THREADS
CHUNK = 32  # compressed entries per warp step (one per lane)
GROUP = 8  # lanes per K/V row segment (8 x 16 bytes = 128 bytes)
VEC = 8  # 16-bit elements per 16-byte load
# One row per warp: measured on an H100 (B=2, H=16, L=4096, bf16), rows_per_cta = 4 beats 16 by
# 1-4 % on window/dilated and by 24-32 % on BigBird (whose 64 global rows of 4096 keys would
# otherwise queue 4 deep on one warp); 32 is slower everywhere.
DEFAULT_ROWS_PER_CTA = {"sddmm": 4, "softmax": 4, "spmm": 4}
_LOG2E = 1.4426950408889634
_LN2 = 0.6931471805599453


# ----------------------------------------------------------------------------------------------
# Configuration, tables and launch metadata (numpy only, no MLIR)
# ----------------------------------------------------------------------------------------------


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
        if r is not None and (not isinstance(r, int) or r < 1 or r % NUM_WARPS):
            raise ValueError(f"rows_per_cta must be a positive multiple of {NUM_WARPS}, got {r!r}")

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
            "block": [NUM_THREADS, 1, 1],
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


# ----------------------------------------------------------------------------------------------
# numpy emulation of the three kernels' math (f32, over the tables)
# ----------------------------------------------------------------------------------------------


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
    """The three kernels' math in numpy f32 over the tables: returns ``(o, lse, probs)``.
    ``q``: ``[B, H, Lq, D]``, ``k``/``v``: ``[B, Hkv, Lk, D]``."""
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


# ----------------------------------------------------------------------------------------------
# MLIR emission
# ----------------------------------------------------------------------------------------------


def _mlir():
    """Import the bindings lazily so that the numpy half works without MLIR."""
    from mlir import ir  # noqa: PLC0415
    from mlir.dialects import arith, gpu, memref, scf, vector  # noqa: PLC0415
    from . import fused_forward as ff  # noqa: PLC0415
    return ir, arith, gpu, memref, scf, vector, ff


class _Emitter:
    """Shared pieces of the three kernel bodies; ``emit_<kind>`` is called in the entry block."""

    def __init__(self, cfg: DecomposedConfig, kind: str, args):
        ir, arith, gpu, memref, scf, vector, ff = _mlir()
        self.ir, self.arith, self.gpu, self.memref, self.scf, self.vector, self.ff = (
            ir, arith, gpu, memref, scf, vector, ff)
        self.cfg, self.kind, self.args = cfg, kind, list(args)
        self.D = cfg.head_dim
        self.NC = self.D // 64  # 16-byte chunks per lane per K/V row
        self.R = cfg.rows(kind)
        self.elem = ir.BF16Type.get() if cfg.dtype == "bf16" else ir.F16Type.get()

    # -- ids -----------------------------------------------------------------------------------
    def setup(self):
        ff, gpu, arith = self.ff, self.gpu, self.arith
        self.tid = ff.to_i32(gpu.thread_id(gpu.Dimension.x))
        self.warp = arith.shrui(self.tid, ff.ci(5))
        self.lane = arith.andi(self.tid, ff.ci(31))
        self.grp = arith.shrui(self.lane, ff.ci(3))
        self.r = arith.andi(self.lane, ff.ci(7))
        self.tile = ff.to_i32(gpu.block_id(gpu.Dimension.x))
        self.h = gpu.block_id(gpu.Dimension.y)
        self.b = gpu.block_id(gpu.Dimension.z)

    def kv_head(self, q_like, kv):
        """GQA: h // (H // Hkv) from the memref sizes."""
        arith, memref, ff = self.arith, self.memref, self.ff
        hq = memref.dim(q_like, ff.cx(1))
        hkv = memref.dim(kv, ff.cx(1))
        return arith.divui(self.h, arith.divui(hq, hkv))

    def for_rows(self, Lq, body):
        """Warp ``w`` runs ``body(i)`` for rows ``tile*R + w + 4j < Lq`` (warp-uniform)."""
        ff, scf, ir = self.ff, self.scf, self.ir
        loop = scf.ForOp(ff.to_idx(self.warp), ff.cx(self.R), ff.cx(NUM_WARPS))
        with ir.InsertionPoint(loop.body):
            i = ff.add(ff.mul(self.tile, self.R), ff.to_i32(loop.induction_variable))
            inside = scf.IfOp(ff.icmp("slt", i, Lq))
            with ir.InsertionPoint(inside.then_block):
                body(i)
                ff._yield([])
            ff._yield([])

    # -- shuffles --------------------------------------------------------------------------------
    def shfl_xor(self, x, off):
        ff, gpu = self.ff, self.gpu
        return gpu.shuffle(x, ff.ci(off), ff.ci(32), gpu.ShuffleMode.XOR)[0]

    def shfl_idx(self, x, src):
        ff, gpu = self.ff, self.gpu
        return gpu.shuffle(x, src, ff.ci(32), gpu.ShuffleMode.IDX)[0]

    # -- column walker ---------------------------------------------------------------------------
    def walk_columns(self, rp, i_idx, n, n0, pc, sc):
        """col(i, n) for this lane's ``n`` in chunk ``[n0, n0 + 32)``.

        ``(pc, sc)`` is a warp-uniform cursor: the slot that holds ``n0`` and its start.  The loop
        visits the slots that start at or before the chunk's last entry, each lane keeping the
        column of the last slot starting at or before its ``n``.  Returns ``(col, pc', sc')``
        with the cursor for the next chunk.  ``col`` is garbage for ``n >= nnz(i)``."""
        ir, scf, memref, ff = self.ir, self.scf, self.memref, self.ff
        i32 = ff._i32()
        nslots = ff.to_i32(memref.dim(rp, ff.cx(1)))
        n_last = ff.add(n0, CHUNK - 1)
        n_next = ff.add(n0, CHUNK)
        types = [i32] * 5
        w = scf.WhileOp(types, [pc, sc, ff.ci(0), pc, sc])
        before = w.before.blocks.append(*types)
        with ir.InsertionPoint(before):
            p, start = before.arguments[0], before.arguments[1]
            cond = ff.band(ff.icmp("slt", p, nslots), ff.icmp("sle", start, n_last))
            scf.condition(cond, list(before.arguments))
        after = w.after.blocks.append(*types)
        with ir.InsertionPoint(after):
            p, start, col = after.arguments[0], after.arguments[1], after.arguments[2]
            pi = ff.to_idx(p)
            off = memref.load(rp, [i_idx, pi, ff.cx(0)])
            stride = memref.load(rp, [i_idx, pi, ff.cx(1)])
            cnt = memref.load(rp, [i_idx, pi, ff.cx(2)])
            here = ff.add(off, ff.mul(stride, ff.sub(n, start)))
            col = ff.sel(ff.icmp("sge", n, start), here, col)
            ff._yield([ff.add(p, 1), ff.add(start, cnt), col, p, start])
        p_end, s_end, col, p_vis, s_vis = list(w.results)
        at_next = ff.icmp("eq", s_end, n_next)
        return col, ff.sel(at_next, p_end, p_vis), ff.sel(at_next, s_end, s_vis)

    # -- 16-byte row segments ----------------------------------------------------------------------
    def load_row_f32(self, mem, b, hh, row_i32):
        """This lane's D/8 elements of ``mem[b, hh, row]`` (chunks ``r`` and ``8 + r`` of 8
        elements) as f32 scalars."""
        ir, vector, arith, ff = self.ir, self.vector, self.arith, self.ff
        v8 = ir.VectorType.get([VEC], self.elem)
        f8 = ir.VectorType.get([VEC], ff._f32())
        row = ff.to_idx(row_i32)
        out = []
        for c in range(self.NC):
            col = ff.to_idx(ff.add(ff.mul(self.r, VEC), 64 * c))
            x = vector.load(v8, mem, [b, hh, row, col], alignment=16)
            if self.cfg.dtype == "bf16":
                # bf16 -> f32 is a 16-bit shift: per packed pair, (w << 16) and (w & 0xffff0000)
                # (2 integer ops; the generic extf path costs 3 per pair).
                i32 = ff._i32()
                words = vector.bitcast(ir.VectorType.get([VEC // 2], i32), x)
                for j in range(VEC // 2):
                    w = vector.extract(words, [], [j])
                    lo = arith.shli(w, ff.ci(16))
                    hi = arith.andi(w, ff.ci(-65536))
                    out += [arith.bitcast(ff._f32(), lo), arith.bitcast(ff._f32(), hi)]
            else:
                xf = arith.extf(f8, x)
                out += [vector.extract(xf, [], [e]) for e in range(VEC)]
        return out

    def store_row(self, mem, b, hh, row_i32, vals):
        ir, vector, arith, ff = self.ir, self.vector, self.arith, self.ff
        f8 = ir.VectorType.get([VEC], ff._f32())
        v8 = ir.VectorType.get([VEC], self.elem)
        row = ff.to_idx(row_i32)
        for c in range(self.NC):
            col = ff.to_idx(ff.add(ff.mul(self.r, VEC), 64 * c))
            x = vector.from_elements(f8, vals[VEC * c:VEC * (c + 1)])
            vector.store(arith.truncf(v8, x), mem, [b, hh, row, col], alignment=16)

    # -- kernels ---------------------------------------------------------------------------------
    def emit_sddmm(self):
        ff, memref, scf, ir = self.ff, self.memref, self.scf, self.ir
        q, k, scores, rp, rnnz, scale = self.args
        self.setup()
        g = self.kv_head(q, k)
        Lq = ff.to_i32(memref.dim(q, ff.cx(2)))
        W = ff.to_i32(memref.dim(scores, ff.cx(3)))

        def row(i):
            i_idx = ff.to_idx(i)
            nnz = ff.smin(memref.load(rnnz, [i_idx]), W)
            qf = [ff.mul(x, scale) for x in self.load_row_f32(q, self.b, self.h, i)]
            nchunks = self.arith.shrui(ff.add(nnz, CHUNK - 1), ff.ci(5))
            loop = scf.ForOp(ff.cx(0), ff.to_idx(nchunks), ff.cx(1), [ff.ci(0), ff.ci(0)])
            with ir.InsertionPoint(loop.body):
                n0 = ff.mul(ff.to_i32(loop.induction_variable), CHUNK)
                pc, sc = loop.inner_iter_args
                n = ff.add(n0, self.lane)
                valid = ff.icmp("slt", n, nnz)
                col, pc, sc = self.walk_columns(rp, i_idx, n, n0, pc, sc)
                col = ff.sel(valid, col, 0)
                base = ff.mul(self.grp, GROUP)
                cols = [self.shfl_idx(col, ff.add(base, s)) for s in range(GROUP)]
                rows = [self.load_row_f32(k, self.b, g, c) for c in cols]
                acc = []
                for kv in rows:
                    a = ff.cf(0.0)
                    for x, y in zip(kv, qf):
                        a = ff.fma(x, y, a)
                    acc.append(a)
                score = self.butterfly(acc)
                st = scf.IfOp(valid)
                with ir.InsertionPoint(st.then_block):
                    memref.store(score, scores, [self.b, self.h, i_idx, ff.to_idx(n)])
                    ff._yield([])
                ff._yield([pc, sc])

        self.for_rows(Lq, row)

    def butterfly(self, acc):
        """acc[s] (s = 0..7) partial sums per lane -> lane r of each 8-lane group holds the
        group's full sum for s = r (7 shuffles)."""
        ff = self.ff
        vals = list(acc)
        for bit in (4, 2, 1):
            upper = ff.icmp("ne", ff.band(self.r, ff.ci(bit)), ff.ci(0))
            half = len(vals) // 2
            new = []
            for j in range(half):
                lo, hi = vals[j], vals[j + half]
                send = ff.sel(upper, lo, hi)
                keep = ff.sel(upper, hi, lo)
                new.append(ff.add(keep, self.shfl_xor(send, bit)))
            vals = new
        return vals[0]

    def emit_softmax(self):
        ff, memref, scf, ir, vector, arith = (self.ff, self.memref, self.scf, self.ir,
                                              self.vector, self.arith)
        scores, lse, rnnz = self.args
        self.setup()
        Lq = ff.to_i32(memref.dim(scores, ff.cx(2)))
        W = ff.to_i32(memref.dim(scores, ff.cx(3)))
        f32 = ff._f32()
        f4 = ir.VectorType.get([4], f32)
        c = ff.cf(_LOG2E)
        ninf = ff.cf(-math.inf)
        span = 4 * CHUNK  # entries per warp step

        def guard_m(m):
            return ff.sel(ff.fcmp("oeq", m, -math.inf), ff.cf(0.0), m)

        def row(i):
            i_idx = ff.to_idx(i)
            nnz = ff.smin(memref.load(rnnz, [i_idx]), W)
            first = ff.mul(self.lane, 4)
            nfull = arith.divui(ff.add(nnz, span - 1), ff.ci(span))

            def load4(c0):
                idx = ff.add(c0, first)
                at = ff.smin(idx, ff.sub(W, 4))  # always in bounds (W % 4 == 0, W >= 4)
                v = vector.load(f4, scores, [self.b, self.h, i_idx, ff.to_idx(at)], alignment=16)
                xs = []
                for e in range(4):
                    x = vector.extract(v, [], [e])
                    xs.append(ff.sel(ff.icmp("slt", ff.add(idx, e), nnz), x, ninf))
                return idx, xs

            # pass 1: online max / sum (base 2) per lane
            loop = scf.ForOp(ff.cx(0), ff.to_idx(nfull), ff.cx(1), [ninf, ff.cf(0.0)])
            with ir.InsertionPoint(loop.body):
                m, l = loop.inner_iter_args
                _, xs = load4(ff.mul(ff.to_i32(loop.induction_variable), span))
                ys = [ff.mul(x, c) for x in xs]
                m_new = ff.fmax(m, ff.fmax(ff.fmax(ys[0], ys[1]), ff.fmax(ys[2], ys[3])))
                mu = guard_m(m_new)
                ps = [ff.exp2(ff.sub(y, mu)) for y in ys]
                l = ff.fma(l, ff.exp2(ff.sub(m, mu)), ff.add(ff.add(ps[0], ps[1]),
                                                            ff.add(ps[2], ps[3])))
                ff._yield([m_new, l])
            m, l = loop.results
            # warp reduction of (m, l)
            for off in (16, 8, 4, 2, 1):
                mo, lo = self.shfl_xor(m, off), self.shfl_xor(l, off)
                mn = ff.fmax(m, mo)
                mu = guard_m(mn)
                l = ff.add(ff.mul(l, ff.exp2(ff.sub(m, mu))), ff.mul(lo, ff.exp2(ff.sub(mo, mu))))
                m = mn
            nonempty = ff.fcmp("ogt", l, 0.0)
            inv = ff.sel(nonempty, arith.divf(ff.cf(1.0), l), ff.cf(0.0))
            mu = guard_m(m)
            neg_m = arith.negf(mu)
            lse_v = ff.sel(nonempty, ff.mul(ff.add(m, ff.log2(l)), ff.cf(_LN2)), ninf)
            w_lse = scf.IfOp(ff.icmp("eq", self.lane, 0))
            with ir.InsertionPoint(w_lse.then_block):
                memref.store(lse_v, lse, [self.b, self.h, i_idx])
                ff._yield([])

            # pass 2: normalise the live entries
            loop = scf.ForOp(ff.cx(0), ff.to_idx(nfull), ff.cx(1))
            with ir.InsertionPoint(loop.body):
                idx, xs = load4(ff.mul(ff.to_i32(loop.induction_variable), span))
                ps = [ff.mul(ff.exp2(ff.fma(x, c, neg_m)), inv) for x in xs]
                inb = scf.IfOp(ff.icmp("slt", idx, W))
                with ir.InsertionPoint(inb.then_block):
                    vector.store(vector.from_elements(f4, ps), scores,
                                 [self.b, self.h, i_idx, ff.to_idx(idx)], alignment=16)
                    ff._yield([])
                ff._yield([])
            # pass 3: zero the rest of the row
            ntot = arith.divui(ff.add(W, span - 1), ff.ci(span))
            zero4 = vector.from_elements(f4, [ff.cf(0.0)] * 4)
            loop = scf.ForOp(ff.to_idx(nfull), ff.to_idx(ntot), ff.cx(1))
            with ir.InsertionPoint(loop.body):
                idx = ff.add(ff.mul(ff.to_i32(loop.induction_variable), span), first)
                inb = scf.IfOp(ff.icmp("slt", idx, W))
                with ir.InsertionPoint(inb.then_block):
                    vector.store(zero4, scores, [self.b, self.h, i_idx, ff.to_idx(idx)],
                                 alignment=16)
                    ff._yield([])
                ff._yield([])

        self.for_rows(Lq, row)

    def emit_spmm(self):
        ff, memref, scf, ir = self.ff, self.memref, self.scf, self.ir
        scores, v, o, rp, rnnz = self.args
        self.setup()
        g = self.kv_head(o, v)
        Lq = ff.to_i32(memref.dim(o, ff.cx(2)))
        W = ff.to_i32(memref.dim(scores, ff.cx(3)))
        nacc = self.D // GROUP

        def row(i):
            i_idx = ff.to_idx(i)
            nnz = ff.smin(memref.load(rnnz, [i_idx]), W)
            nchunks = self.arith.shrui(ff.add(nnz, CHUNK - 1), ff.ci(5))
            zero = ff.cf(0.0)
            loop = scf.ForOp(ff.cx(0), ff.to_idx(nchunks), ff.cx(1),
                             [ff.ci(0), ff.ci(0)] + [zero] * nacc)
            with ir.InsertionPoint(loop.body):
                n0 = ff.mul(ff.to_i32(loop.induction_variable), CHUNK)
                args = list(loop.inner_iter_args)
                pc, sc, acc = args[0], args[1], args[2:]
                n = ff.add(n0, self.lane)
                valid = ff.icmp("slt", n, nnz)
                p = memref.load(scores, [self.b, self.h, i_idx, ff.to_idx(ff.sel(valid, n, 0))])
                p = ff.sel(valid, p, zero)
                col, pc, sc = self.walk_columns(rp, i_idx, n, n0, pc, sc)
                col = ff.sel(valid, col, 0)
                base = ff.mul(self.grp, GROUP)
                srcs = [ff.add(base, s) for s in range(GROUP)]
                ps = [self.shfl_idx(p, s) for s in srcs]
                cols = [self.shfl_idx(col, s) for s in srcs]
                rows = [self.load_row_f32(v, self.b, g, cc) for cc in cols]
                acc = list(acc)
                for pk, vk in zip(ps, rows):
                    acc = [ff.fma(pk, x, a) for x, a in zip(vk, acc)]
                ff._yield([pc, sc] + acc)
            acc = list(loop.results)[2:]
            for off in (8, 16):
                acc = [ff.add(a, self.shfl_xor(a, off)) for a in acc]
            st = scf.IfOp(ff.icmp("eq", self.grp, 0))
            with ir.InsertionPoint(st.then_block):
                self.store_row(o, self.b, self.h, i, acc)
                ff._yield([])

        self.for_rows(Lq, row)


def _func_exists(gm, name: str) -> bool:
    from mlir import ir  # noqa: PLC0415
    for op in gm.bodyRegion.blocks[0].operations:
        if op.operation.name == "gpu.func" and ir.StringAttr(op.attributes["sym_name"]).value == name:
            return True
    return False


def build_into(module, cfg: DecomposedConfig, kinds=("sddmm", "softmax", "spmm")):
    """Add the kernels of ``cfg`` to ``gpu.module @splat_kernels`` (created if missing).  A kernel
    whose symbol already exists (e.g. ``splat_softmax_bf16`` when building D=64 and D=128 into one
    module) is skipped.  Must be called inside the module's context and a location."""
    ir, arith, gpu, memref, scf, vector, ff = _mlir()
    gm = ff._find_or_create_gpu_module(module)
    dyn = ir.ShapedType.get_dynamic_size()
    elem = ir.BF16Type.get() if cfg.dtype == "bf16" else ir.F16Type.get()
    f32, i32 = ff._f32(), ff._i32()
    t4 = ir.MemRefType.get([dyn, dyn, dyn, cfg.head_dim], elem)
    s4 = ir.MemRefType.get([dyn] * 4, f32)
    lse_t = ir.MemRefType.get([dyn] * 3, f32)
    rp_t = ir.MemRefType.get([dyn, dyn, 3], i32)
    nnz_t = ir.MemRefType.get([dyn], i32)
    sig = {"sddmm": [t4, t4, s4, rp_t, nnz_t, f32],
           "softmax": [s4, lse_t, nnz_t],
           "spmm": [s4, t4, t4, rp_t, nnz_t]}
    names = abi.decomposed_kernel_names(cfg.dtype, cfg.head_dim)
    block = gm.bodyRegion.blocks[0]
    for kind in kinds:
        if _func_exists(gm, names[kind]):
            continue
        with ir.InsertionPoint(block):
            fn = gpu.GPUFuncOp(ir.FunctionType.get(sig[kind], []), sym_name=names[kind],
                               kernel=True, known_block_size=[NUM_THREADS, 1, 1])
            entry = fn.add_entry_block()
            with ir.InsertionPoint(entry):
                em = _Emitter(cfg, kind, entry.arguments)
                getattr(em, f"emit_{kind}")()
                gpu.return_([])
    return module


def build_decomposed(module_or_none, *, dtype: str, head_dim: int,
                     rows_per_cta: int | None = None,
                     kinds=("sddmm", "softmax", "spmm")):
    """Emit ``splat_sddmm_<dtype>_d<D>``, ``splat_softmax_<dtype>``, ``splat_spmm_<dtype>_d<D>``
    into ``gpu.module @splat_kernels`` of ``module_or_none`` (or of a new module, in the current
    MLIR context or a fresh one).  Returns the module.  Launch metadata of the same configuration:
    ``decomposed_launch_info(dtype, head_dim, maxnnz, rows_per_cta)``."""
    from .modules import build_in_module  # noqa: PLC0415  (MLIR is imported lazily here)

    cfg = DecomposedConfig(dtype, head_dim, rows_per_cta)
    return build_in_module(module_or_none, lambda module: build_into(module, cfg, kinds))
