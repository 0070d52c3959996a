"""The decomposed sparse-attention path: ``splat.sddmm -> splat.softmax -> splat.spmm`` as three
GPU kernels over a compressed f32 score tensor ``B x H x Lq x W`` (the SPLAT paper's design),
built with the MLIR Python bindings.

Kernels (all in ``gpu.module @splat_kernels``, 128 threads = 4 warps, no shared memory)::

    splat_sddmm_<dtype>_d<D>   scores[b,h,i,n] = scale * q[b,h,i] . k[b,g,col(i,n)]      (f32)
    splat_softmax_<dtype>      scores[b,h,i,:] = softmax over n < nnz(i), 0 for n >= nnz(i)
                               (in place, f32); lse[b,h,i] = log sum exp (-inf for empty rows)
    splat_spmm_<dtype>_d<D>    o[b,h,i] = sum_n scores[b,h,i,n] v[b,g,col(i,n)]          (dtype)

``g = h // (H // Hkv)`` (GQA).  ``col(i, n)`` is the ``n``-th allowed key of row ``i`` in ACSR
piece order, computed in the kernel from the row's affine pieces (``row_pieces``, ``row_nnz``),
never from a column table: ``col(i, n) = offset_p + stride_p * (n - start_p)`` for the slot ``p``
with ``start_p <= n < start_p + count_p``.  The tables, their format, the configuration, the launch
metadata and a numpy model of the three kernels are in :mod:`splat.tiling.decomposed` (no MLIR).

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
kernel's manifest entry (``decomposed_launch_info``).  The runtime allocates the score tensor
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

from mlir import ir
from mlir.dialects import arith, gpu, memref, vector

from .. import abi
from ..abi import NUM_THREADS, NUM_WARPS
from ..tiling.decomposed import CHUNK, GROUP, DecomposedConfig
from .builder import (LN2, LOG2E, add, band, cf, ci, cx, exp2, f32_type, fcmp, fma, fmax,
                      for_range, i32_type, icmp, if_then, log2, mul, select, shuffle_idx,
                      shuffle_xor, smin, sub, to_i32, to_index, while_loop)
from .modules import build_in_module, find_or_create_gpu_module

__all__ = ["build_decomposed", "build_into"]

VEC = 8  # 16-bit elements per 16-byte load


class _Emitter:
    """Shared pieces of the three kernel bodies; ``emit_<kind>`` is called in the entry block."""

    def __init__(self, cfg: DecomposedConfig, kind: str, args):
        self.cfg, self.kind, self.args = cfg, kind, list(args)
        self.D = cfg.head_dim
        self.NC = self.D // 64  # 16-byte chunks per lane per K/V row
        self.R = cfg.rows(kind)
        self.elem = ir.BF16Type.get() if cfg.dtype == "bf16" else ir.F16Type.get()

    # -- ids -----------------------------------------------------------------------------------
    def setup(self):
        self.tid = to_i32(gpu.thread_id(gpu.Dimension.x))
        self.warp = arith.shrui(self.tid, ci(5))
        self.lane = arith.andi(self.tid, ci(31))
        self.grp = arith.shrui(self.lane, ci(3))
        self.r = arith.andi(self.lane, ci(7))
        self.tile = to_i32(gpu.block_id(gpu.Dimension.x))
        self.h = gpu.block_id(gpu.Dimension.y)
        self.b = gpu.block_id(gpu.Dimension.z)

    def kv_head(self, q_like, kv):
        """GQA: h // (H // Hkv) from the memref sizes."""
        hq = memref.dim(q_like, cx(1))
        hkv = memref.dim(kv, cx(1))
        return arith.divui(self.h, arith.divui(hq, hkv))

    def for_rows(self, Lq, body):
        """Warp ``w`` runs ``body(i)`` for rows ``tile*R + w + 4j < Lq`` (warp-uniform)."""
        def row(j):
            i = add(mul(self.tile, self.R), to_i32(j))
            with if_then(icmp("slt", i, Lq)):
                body(i)

        for_range(to_index(self.warp), cx(self.R), cx(NUM_WARPS), row)

    # -- column walker ---------------------------------------------------------------------------
    def walk_columns(self, rp, i_idx, n, n0, cursor):
        """col(i, n) for this lane's ``n`` in chunk ``[n0, n0 + 32)``.

        ``cursor = {"slot", "start"}`` is warp-uniform: the slot that holds ``n0`` and its start.
        The loop visits the slots that start at or before the chunk's last entry, each lane
        keeping the column of the last slot starting at or before its ``n``.  Returns
        ``(col, cursor')`` with the cursor for the next chunk.  ``col`` is garbage for
        ``n >= nnz(i)``."""
        nslots = to_i32(memref.dim(rp, cx(1)))
        n_last = add(n0, CHUNK - 1)
        n_next = add(n0, CHUNK)

        def more(st):
            return band(icmp("slt", st["slot"], nslots), icmp("sle", st["start"], n_last))

        def visit(st):
            pi = to_index(st["slot"])
            off = memref.load(rp, [i_idx, pi, cx(0)])
            stride = memref.load(rp, [i_idx, pi, cx(1)])
            cnt = memref.load(rp, [i_idx, pi, cx(2)])
            here = add(off, mul(stride, sub(n, st["start"])))
            col = select(icmp("sge", n, st["start"]), here, st["col"])
            return dict(slot=add(st["slot"], 1), start=add(st["start"], cnt), col=col,
                        last_slot=st["slot"], last_start=st["start"])

        # The slot after the last one visited holds n_next only if it starts exactly there;
        # otherwise the next chunk starts inside the last visited slot.
        end = while_loop(dict(slot=cursor["slot"], start=cursor["start"], col=ci(0),
                              last_slot=cursor["slot"], last_start=cursor["start"]), more, visit)
        at_next = icmp("eq", end["start"], n_next)
        return end["col"], dict(slot=select(at_next, end["slot"], end["last_slot"]),
                                start=select(at_next, end["start"], end["last_start"]))

    # -- 16-byte row segments ----------------------------------------------------------------------
    def load_row_f32(self, mem, b, hh, row_i32):
        """This lane's D/8 elements of ``mem[b, hh, row]`` (chunks ``r`` and ``8 + r`` of 8
        elements) as f32 scalars."""
        v8 = ir.VectorType.get([VEC], self.elem)
        f8 = ir.VectorType.get([VEC], f32_type())
        row = to_index(row_i32)
        out = []
        for c in range(self.NC):
            col = to_index(add(mul(self.r, VEC), 64 * c))
            x = vector.load(v8, mem, [b, hh, row, col], alignment=16)
            if self.cfg.dtype == "bf16":
                # bf16 -> f32 is a 16-bit shift: per packed pair, (w << 16) and (w & 0xffff0000)
                # (2 integer ops; the generic extf path costs 3 per pair).
                words = vector.bitcast(ir.VectorType.get([VEC // 2], i32_type()), x)
                for j in range(VEC // 2):
                    w = vector.extract(words, [], [j])
                    lo = arith.shli(w, ci(16))
                    hi = arith.andi(w, ci(-65536))
                    out += [arith.bitcast(f32_type(), lo), arith.bitcast(f32_type(), hi)]
            else:
                xf = arith.extf(f8, x)
                out += [vector.extract(xf, [], [e]) for e in range(VEC)]
        return out

    def store_row(self, mem, b, hh, row_i32, vals):
        f8 = ir.VectorType.get([VEC], f32_type())
        v8 = ir.VectorType.get([VEC], self.elem)
        row = to_index(row_i32)
        for c in range(self.NC):
            col = to_index(add(mul(self.r, VEC), 64 * c))
            x = vector.from_elements(f8, vals[VEC * c:VEC * (c + 1)])
            vector.store(arith.truncf(v8, x), mem, [b, hh, row, col], alignment=16)

    # -- kernels ---------------------------------------------------------------------------------
    def emit_sddmm(self):
        q, k, scores, rp, rnnz, scale = self.args
        self.setup()
        g = self.kv_head(q, k)
        Lq = to_i32(memref.dim(q, cx(2)))
        W = to_i32(memref.dim(scores, cx(3)))

        def row(i):
            i_idx = to_index(i)
            nnz = smin(memref.load(rnnz, [i_idx]), W)
            qf = [mul(x, scale) for x in self.load_row_f32(q, self.b, self.h, i)]
            nchunks = arith.shrui(add(nnz, CHUNK - 1), ci(5))

            def chunk(j, cursor):
                n0 = mul(to_i32(j), CHUNK)
                n = add(n0, self.lane)
                valid = icmp("slt", n, nnz)
                col, cursor = self.walk_columns(rp, i_idx, n, n0, cursor)
                col = select(valid, col, 0)
                base = mul(self.grp, GROUP)
                cols = [shuffle_idx(col, add(base, s)) for s in range(GROUP)]
                rows = [self.load_row_f32(k, self.b, g, c) for c in cols]
                acc = []
                for kv in rows:
                    a = cf(0.0)
                    for x, y in zip(kv, qf):
                        a = fma(x, y, a)
                    acc.append(a)
                score = self.butterfly(acc)
                with if_then(valid):
                    memref.store(score, scores, [self.b, self.h, i_idx, to_index(n)])
                return cursor

            for_range(cx(0), to_index(nchunks), cx(1), chunk, dict(slot=ci(0), start=ci(0)))

        self.for_rows(Lq, row)

    def butterfly(self, acc):
        """acc[s] (s = 0..7) partial sums per lane -> lane r of each 8-lane group holds the
        group's full sum for s = r (7 shuffles)."""
        vals = list(acc)
        for bit in (4, 2, 1):
            upper = icmp("ne", band(self.r, ci(bit)), ci(0))
            half = len(vals) // 2
            new = []
            for j in range(half):
                lo, hi = vals[j], vals[j + half]
                send = select(upper, lo, hi)
                keep = select(upper, hi, lo)
                new.append(add(keep, shuffle_xor(send, bit)))
            vals = new
        return vals[0]

    def emit_softmax(self):
        scores, lse, rnnz = self.args
        self.setup()
        Lq = to_i32(memref.dim(scores, cx(2)))
        W = to_i32(memref.dim(scores, cx(3)))
        f4 = ir.VectorType.get([4], f32_type())
        c = cf(LOG2E)
        ninf = cf(-math.inf)
        span = 4 * CHUNK  # entries per warp step

        def guard_m(m):
            return select(fcmp("oeq", m, -math.inf), cf(0.0), m)

        def row(i):
            i_idx = to_index(i)
            nnz = smin(memref.load(rnnz, [i_idx]), W)
            first = mul(self.lane, 4)
            nfull = arith.divui(add(nnz, span - 1), ci(span))

            def load4(c0):
                idx = add(c0, first)
                at = smin(idx, sub(W, 4))  # always in bounds (W % 4 == 0, W >= 4)
                v = vector.load(f4, scores, [self.b, self.h, i_idx, to_index(at)], alignment=16)
                xs = []
                for e in range(4):
                    x = vector.extract(v, [], [e])
                    xs.append(select(icmp("slt", add(idx, e), nnz), x, ninf))
                return idx, xs

            # pass 1: online max / sum (base 2) per lane
            def max_sum(j, st):
                m, l = st["m"], st["l"]
                _, xs = load4(mul(to_i32(j), span))
                ys = [mul(x, c) for x in xs]
                m_new = fmax(m, fmax(fmax(ys[0], ys[1]), fmax(ys[2], ys[3])))
                mu = guard_m(m_new)
                ps = [exp2(sub(y, mu)) for y in ys]
                l = fma(l, exp2(sub(m, mu)), add(add(ps[0], ps[1]), add(ps[2], ps[3])))
                return dict(m=m_new, l=l)

            st = for_range(cx(0), to_index(nfull), cx(1), max_sum, dict(m=ninf, l=cf(0.0)))
            m, l = st["m"], st["l"]
            # warp reduction of (m, l)
            for off in (16, 8, 4, 2, 1):
                mo, lo = shuffle_xor(m, off), shuffle_xor(l, off)
                mn = fmax(m, mo)
                mu = guard_m(mn)
                l = add(mul(l, exp2(sub(m, mu))), mul(lo, exp2(sub(mo, mu))))
                m = mn
            nonempty = fcmp("ogt", l, 0.0)
            inv = select(nonempty, arith.divf(cf(1.0), l), cf(0.0))
            mu = guard_m(m)
            neg_m = arith.negf(mu)
            lse_v = select(nonempty, mul(add(m, log2(l)), cf(LN2)), ninf)
            with if_then(icmp("eq", self.lane, 0)):
                memref.store(lse_v, lse, [self.b, self.h, i_idx])

            # pass 2: normalise the live entries
            def normalise(j):
                idx, xs = load4(mul(to_i32(j), span))
                ps = [mul(exp2(fma(x, c, neg_m)), inv) for x in xs]
                with if_then(icmp("slt", idx, W)):
                    vector.store(vector.from_elements(f4, ps), scores,
                                 [self.b, self.h, i_idx, to_index(idx)], alignment=16)

            for_range(cx(0), to_index(nfull), cx(1), normalise)
            # pass 3: zero the rest of the row
            ntot = arith.divui(add(W, span - 1), ci(span))
            zero4 = vector.from_elements(f4, [cf(0.0)] * 4)

            def zero_fill(j):
                idx = add(mul(to_i32(j), span), first)
                with if_then(icmp("slt", idx, W)):
                    vector.store(zero4, scores, [self.b, self.h, i_idx, to_index(idx)],
                                 alignment=16)

            for_range(to_index(nfull), to_index(ntot), cx(1), zero_fill)

        self.for_rows(Lq, row)

    def emit_spmm(self):
        scores, v, o, rp, rnnz = self.args
        self.setup()
        g = self.kv_head(o, v)
        Lq = to_i32(memref.dim(o, cx(2)))
        W = to_i32(memref.dim(scores, cx(3)))
        nacc = self.D // GROUP

        def row(i):
            i_idx = to_index(i)
            nnz = smin(memref.load(rnnz, [i_idx]), W)
            nchunks = arith.shrui(add(nnz, CHUNK - 1), ci(5))
            zero = cf(0.0)

            def chunk(j, st):
                n0 = mul(to_i32(j), CHUNK)
                n = add(n0, self.lane)
                valid = icmp("slt", n, nnz)
                p = memref.load(scores, [self.b, self.h, i_idx, to_index(select(valid, n, 0))])
                p = select(valid, p, zero)
                col, cursor = self.walk_columns(rp, i_idx, n, n0, st["cursor"])
                col = select(valid, col, 0)
                base = mul(self.grp, GROUP)
                srcs = [add(base, s) for s in range(GROUP)]
                ps = [shuffle_idx(p, s) for s in srcs]
                cols = [shuffle_idx(col, s) for s in srcs]
                rows = [self.load_row_f32(v, self.b, g, cc) for cc in cols]
                acc = st["acc"]
                for pk, vk in zip(ps, rows):
                    acc = [fma(pk, x, a) for x, a in zip(vk, acc)]
                return dict(cursor=cursor, acc=acc)

            acc = for_range(cx(0), to_index(nchunks), cx(1), chunk,
                            dict(cursor=dict(slot=ci(0), start=ci(0)), acc=[zero] * nacc))["acc"]
            for off in (8, 16):
                acc = [add(a, shuffle_xor(a, off)) for a in acc]
            with if_then(icmp("eq", self.grp, 0)):
                self.store_row(o, self.b, self.h, i, acc)

        self.for_rows(Lq, row)


def _func_exists(gm, name: str) -> bool:
    for op in gm.bodyRegion.blocks[0].operations:
        if op.operation.name == "gpu.func" and ir.StringAttr(op.attributes["sym_name"]).value == name:
            return True
    return False


def build_into(module, cfg: DecomposedConfig, kinds=("sddmm", "softmax", "spmm")):
    """Add the kernels of ``cfg`` to ``gpu.module @splat_kernels`` (created if missing).  A kernel
    whose symbol already exists (e.g. ``splat_softmax_bf16`` when building D=64 and D=128 into one
    module) is skipped.  Must be called inside the module's context and a location."""
    gm = find_or_create_gpu_module(module)
    dyn = ir.ShapedType.get_dynamic_size()
    elem = ir.BF16Type.get() if cfg.dtype == "bf16" else ir.F16Type.get()
    f32, i32 = f32_type(), i32_type()
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
    ``splat.tiling.decomposed.decomposed_launch_info(dtype, head_dim, maxnnz, rows_per_cta)``."""
    cfg = DecomposedConfig(dtype, head_dim, rows_per_cta)
    return build_in_module(module_or_none, lambda module: build_into(module, cfg, kinds))
