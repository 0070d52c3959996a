"""The fused forward sparse-attention kernel of design.md §3, built with the MLIR Python bindings.

One CTA handles one row tile of the schedule (``block_m`` = BLOCK_M = 64 query rows on 4 warps
= 128 threads, or 128 rows on 8 warps; warp ``w`` owns tile rows ``16w .. 16w+15``) for one
(batch, head).  Below, BLOCK_M stands for the config's ``block_m``.  Grid ``(n_tiles, H, B)``,
dealt out tile-major: the CTAs started first take the schedule's first (heaviest) tile of every
(batch, head).

Data flow of one CTA::

    Q tile (rows row0 + row_step*rho)  --cp.async-->  smem  --ldmatrix-->  registers (A operand)
    key tile 0 (K/V rows col0 + col_step*u, u >= ncols zero-filled)  --cp.async-->  stage 0
    for it, (segment, u0) in enumerate(key tiles of all the tile's segments [+ its mask tiles]):
        cp.async.wait_group 0 ; bar.sync            (tile it landed; stage (it+1)%2 is free)
        S  = Q Kᵀ                        (ldmatrix K, mma.sync m16n8k16, f32 accumulators)
        prefetch key tile it+1  --cp.async-->  stage (it+1) % 2    (before Q Kᵀ: early_prefetch)
        S  = mask(S)                     (only when the key tile is not "full", design.md §2)
        online softmax in base 2         (m, l per row; P = exp2(S*scale*log2e - m); m moves,
                                          and O, l are rescaled, only when a warp's max grows
                                          by more than 2**RESCALE_SLACK)
        O  = O*alpha + P V               (ldmatrix.trans V, mma.sync)
    O /= l ; lse = (m + log2 l) * ln 2 ; rows with l == 0 give O = 0, lse = -inf
    O  --st.shared-->  smem  --16-byte stores-->  rows < nrows of o ; lse from one lane per row

Mask tiles (``FusedForwardConfig.mask_tiles``, kernel ``splat_fwd_<dtype>_d<D>_masked``): the
irregular remainder of the layout comes as three more arguments after ``scale`` (the
``TileSchedule`` tables, all int32, identity layout)::

    mask_ptr   memref<?xi32>      [n_tiles + 1]  CSR over row tiles
    mask_tiles memref<?x2xi32>    [n_mask, 2]    (col0, ncols): keys col0 + u, u < ncols <= BLOCK_N
    mask_bits  memref<?x?x?xi32>  [n_mask, BLOCK_M, ceil(BLOCK_N/32)]: bit u % 32 of word
                                  [m, rho, u // 32] = tile row rho attends key col0 + u

They run as key tiles ``n_seg_iter .. n_seg_iter + n_mask - 1`` of the same loop, after the
segments' key tiles, so the online-softmax state and the double-buffered prefetch carry over.
A mask tile's bits (BLOCK_M x words int32) are copied by cp.async into a per-stage bits buffer
together with its K/V rows, and S is always element-masked from them.  Past the segments the
loop reads no segment row (``seg_end`` may be outside the table).

Register layouts (m16n8k16, ``lane`` = thread index in the warp, ``g = lane // 4``, ``t = lane % 4``):

* A (16x16, row major), 4 registers of 2 elements: ``A[g][2t:2t+2], A[g+8][2t:2t+2],
  A[g][2t+8:2t+10], A[g+8][2t+8:2t+10]``.
* B (16x8, "col major" = stored N x K), 2 registers: ``B[2t:2t+2][g], B[2t+8:2t+10][g]``.
* C/D (16x8, f32), 4 values: ``C[g][2t], C[g][2t+1], C[g+8][2t], C[g+8][2t+1]``.
  We keep every accumulator tile as a Python list of these 4 f32 SSA values; values 0,1 belong to
  the thread's row ``g`` ("row a"), values 2,3 to row ``g + 8`` ("row b").
* The S accumulators of key n-tiles ``2k`` and ``2k+1`` are exactly the A fragment of k-step ``k``
  of P·V (after rounding to the input type), so P never goes through shared memory.

Shared memory (dynamic only, rows padded by 8 elements = 16 bytes so that the 8 row addresses of
one ldmatrix 8x8 matrix fall into distinct bank groups)::

    [ K stage 0 ][ K stage 1 ][ V stage 0 ][ V stage 1 ]      each BLOCK_N x (D+8)
                 [ Q tile BLOCK_M x (D+8) ]                  (aliases K stage 1 when BLOCK_N >= 64)
    (mask_tiles only, after all of the above:)  [ bits stage 0 ][ bits stage 1 ]
                                                each BLOCK_M x words int32

Q is only read (into registers, once) before the key loop, whose first prefetch then overwrites
K stage 1; after the loop the same region stages the output tile for 16-byte coalesced stores.
(For BLOCK_N < BLOCK_M the Q tile gets its own region after the V stages.)
Defaults (``fused_config.DEFAULTS``): D = 64 uses BLOCK_N = 64, 36 KiB, <= 128 registers
(4 CTAs/SM); D = 128 uses BLOCK_N = 32, 51 KiB and 168 registers (3 CTAs/SM).  The masked
kernels add 2 x BLOCK_M x ceil(BLOCK_N/32) x 4 bytes of shared memory (1 KiB at D = 64,
0.5 KiB at D = 128) and keep the same occupancy (D = 128: the hint ``MASKED_MIN_BLOCKS_PER_SM``, 167 registers).
The kernel requires scale > 0 (the running max is taken on raw scores and scaled afterwards).

The tensor-core operands per element type (f16 / bf16) and the ldmatrix loads are in mma.py; the
arithmetic and structured control flow (loop state carried by name) in builder.py.
"""

from __future__ import annotations

import math

from mlir import ir
from mlir.dialects import arith, gpu, memref, nvgpu, nvvm, vector

from .. import abi
from .builder import (LN2, LOG2E, add, all_of, band, cf, ci, cx, exp2, f32_type, fcmp, fma, fmax,
                      for_range, i32_type, icmp, if_else, if_then, log2, mul, select, shuffle_xor,
                      smax, smin, sub, to_i32, to_index, tree_reduce, udiv, urem,
                      warp_any)
from .fused_config import CHUNK, FusedForwardConfig
from .mma import mma_operands
from .modules import abi_arg_type, build_in_module, find_or_create_gpu_module

_I32_MIN = -(2**31)
# Lazy rescale (online_softmax_update): the running max moves only when a score would exceed
# 2**RESCALE_SLACK times the current reference (FlashAttention-4's conditional rescaling).
RESCALE_SLACK = 8.0


# ----------------------------------------------------------------------------------------------
# The kernel body
# ----------------------------------------------------------------------------------------------


class _FusedForwardKernel:
    """Emits the body of one ``gpu.func``; call :meth:`emit` inside the entry block."""

    def __init__(self, cfg: FusedForwardConfig, args):
        self.cfg = cfg
        self.D = cfg.head_dim
        self.BN = cfg.block_n
        self.BM = cfg.block_m
        self.MT = cfg.m_tiles
        self.threads = cfg.compute_threads  # the threads that own rows, load and store them
        self.SD = cfg.row_stride
        self.ops = mma_operands(cfg.dtype)
        self.elem = self.ops.elem
        (self.q, self.k, self.v, self.o, self.lse, self.row_tiles, self.segments,
         self.scale) = args[:8]
        self.masked = cfg.mask_tiles
        self.accumulate = cfg.accumulate
        if self.masked:
            self.mask_ptr, self.mask_tiles, self.mask_bits = args[8:11]

    # --- thread geometry ------------------------------------------------------------------------
    def _setup_ids(self):
        self.tid = to_i32(gpu.thread_id(gpu.Dimension.x))
        self.warp = arith.shrui(self.tid, ci(5))
        self.lane = arith.andi(self.tid, ci(31))
        self.g = arith.shrui(self.lane, ci(2))  # row of the lane inside an 8-row group
        self.t = arith.andi(self.lane, ci(3))  # column pair of the lane
        # The grid is (n_tiles, H, B) and CTAs start roughly in blockIdx order (x fastest).
        # Number them in that order and deal the row tiles out tile-major: the first H*B CTAs
        # take tile 0 of every (batch, head), and so on.  With the schedule's heaviest tiles
        # first (order "heavy_first"), a long tile (a global row's full key pass) starts at once
        # in every head instead of behind all the tiles of the heads before it.
        nx, ny, nz = (gpu.grid_dim(d) for d in (gpu.Dimension.x, gpu.Dimension.y, gpu.Dimension.z))
        bx, by, bz = (gpu.block_id(d) for d in (gpu.Dimension.x, gpu.Dimension.y, gpu.Dimension.z))
        linear = add(bx, mul(nx, add(by, mul(ny, bz))))
        heads = mul(ny, nz)
        self.tile = udiv(linear, heads)
        rest = urem(linear, heads)
        self.h = urem(rest, ny)
        self.b = udiv(rest, ny)
        # GQA: kv head = h // (H // Hkv)
        heads_q = memref.dim(self.q, cx(1))
        heads_kv = memref.dim(self.k, cx(1))
        self.hkv = arith.divui(self.h, arith.divui(heads_q, heads_kv))
        # This thread's accumulator rows inside the row tile, two per m16 tile of the warp
        # ("slot" 2*mt + half: rows g and g + 8 of m16 tile mt).
        self.warp_row0 = mul(self.warp, self.cfg.warp_rows)
        self.rows = []
        for mt in range(self.MT):
            first = add(self.warp_row0, add(self.g, 16 * mt))
            self.rows += [first, add(first, 8)]

    def _dynamic_shared_memory(self):
        """The dynamic shared memory as bytes (``self._smem``, in address space ``self._ws``),
        which `_shared_view` carves up; returns both."""
        ws = ir.Attribute.parse("#gpu.address_space<workgroup>")
        dyn = ir.ShapedType.get_dynamic_size()
        raw = gpu.dynamic_shared_memory(
            ir.MemRefType.get([dyn], ir.IntegerType.get_signless(8), memory_space=ws))
        self._smem, self._ws = raw, ws
        return raw, ws

    def _setup_smem(self):
        raw, ws = self._dynamic_shared_memory()
        cfg = self.cfg
        self._setup_kv_smem(raw, ws)
        # Q is only read (into registers) before the key loop and the output is only staged after
        # it, so the Q tile lives in K stage 1, which the loop's first prefetch overwrites.
        self.qs = self._shared_view([self.BM, self.SD], self.elem, cfg.q_offset)
        if self.masked:
            # The bits of a mask tile travel with its K/V rows (same cp.async group, same
            # stage), so they are never waited for separately: [stage, rho * words + w].
            self.bits_s = self._shared_view([cfg.kv_stages, self.BM * cfg.words], i32_type(),
                                            cfg.bits_offset)
        if self.accumulate:
            # Per tile row, the weights of the new and of the existing o ([2, block_m] f32);
            # written after the key loop into a stage no warp reads any more by then.
            self.alpha_s = self._shared_view([2, self.BM], f32_type(), cfg.alpha_offset)

    def _shared_view(self, shape, elem, offset: int):
        """A ``shape`` x ``elem`` view of the dynamic shared memory at byte ``offset``."""
        return memref.view(ir.MemRefType.get(shape, elem, memory_space=self._ws), self._smem,
                           cx(offset), [])

    def _setup_kv_smem(self, raw, ws):
        """The K and V stages: ``[2, BLOCK_N, D + pad]`` each, K stages first."""
        kv_ty = ir.MemRefType.get([2, self.BN, self.SD], self.elem, memory_space=ws)
        self.ks = memref.view(kv_ty, raw, cx(0), [])
        self.vs = memref.view(kv_ty, raw, cx(2 * self.cfg.kv_tile_bytes), [])

    def _load_row_tile(self):
        rt = [memref.load(self.row_tiles, [self.tile, cx(i)])
              for i in range(len(abi.ROW_TILE_FIELDS))]
        self.row0, self.row_step, self.nrows, self.seg_begin, self.seg_end = rt

    def _segment(self, seg):
        """The 9 fields of segment row ``seg`` (i32)."""
        s = to_index(seg)
        return dict(zip(abi.SEGMENT_FIELDS,
                        (memref.load(self.segments, [s, cx(i)]) for i in range(9))))

    # --- global -> shared copies ----------------------------------------------------------------
    def _async_copy_rows(self, dst, dst_prefix, tile_rows, src, src_prefix, global_row):
        """Copy ``tile_rows`` rows of D elements with 16-byte cp.async chunks.

        ``global_row(r) -> (valid, row)``: smem row ``r`` comes from global row ``row`` when
        ``valid``; otherwise it is zero-filled and the source address is clamped to row 0 so
        that nothing outside the tensor is ever addressed.  Consecutive threads take consecutive
        chunks of a row (coalesced).
        """
        chunks_per_row = self.D // CHUNK
        rows_per_pass = self.threads // chunks_per_row
        assert tile_rows % rows_per_pass == 0
        r_first = udiv(self.tid, chunks_per_row)
        col = to_index(mul(urem(self.tid, chunks_per_row), CHUNK))
        for i in range(tile_rows // rows_per_pass):
            r = add(r_first, i * rows_per_pass)
            valid, grow = global_row(r)
            grow = select(valid, grow, 0)
            n_src = select(valid, cx(CHUNK), cx(0))
            nvgpu.device_async_copy(
                dst, list(dst_prefix) + [to_index(r), col],
                src, list(src_prefix) + [to_index(grow), col],
                CHUNK, src_elements=n_src, bypass_l1=True)

    def load_q_tile(self):
        def q_row(r):
            return icmp("slt", r, self.nrows), add(self.row0, mul(self.row_step, r))

        self._async_copy_rows(self.qs, [], self.BM, self.q, [self.b, self.h], q_row)

    def load_kv_tile(self, seg, u0, stage):
        """Gather key/value rows ``col0 + col_step*u`` for ``u in [u0, u0+BLOCK_N)`` into ``stage``."""
        s = self._segment(seg)
        self._load_kv_rows(s["col0"], s["col_step"], s["ncols"], u0, stage)

    def _load_kv_rows(self, col0, col_step, ncols, u0, stage):
        def kv_row(r):
            u = add(u0, r)
            return icmp("slt", u, ncols), add(col0, mul(col_step, u))

        for buf, src in ((self.ks, self.k), (self.vs, self.v)):
            self._async_copy_rows(buf, [stage], self.BN, src, [self.b, self.hkv], kv_row)

    def load_key_tile(self, j, seg, u0, stage):
        """Key tile number ``j`` of the row tile into ``stage``: the segment key tile
        ``(seg, u0)``, or (mask_tiles) once the segments are done, mask tile
        ``mask_begin + j - n_seg_iter`` (keys ``col0 + u``, ``u < ncols``) and its bits."""
        if not self.masked:
            self.load_kv_tile(seg, u0, stage)
            return
        # Only the key sequence differs between the two kinds of key tile: pick it, then run
        # one copy of the K/V gather (two copies would let LLVM hoist both copies' address
        # arithmetic out of the key loop and cost registers).
        is_seg = icmp("slt", j, self.n_seg_iter)
        m = to_index(add(self.mask_begin, sub(j, self.n_seg_iter)))

        def segment_keys():
            s = self._segment(seg)
            return dict(col0=s["col0"], col_step=s["col_step"], ncols=s["ncols"], u0=u0)

        def mask_tile_keys():
            return dict(col0=memref.load(self.mask_tiles, [m, cx(0)]), col_step=ci(1),
                        ncols=memref.load(self.mask_tiles, [m, cx(1)]), u0=ci(0))

        keys = if_else(is_seg, dict.fromkeys(("col0", "col_step", "ncols", "u0"), i32_type()),
                       segment_keys, mask_tile_keys)
        self._load_kv_rows(keys["col0"], keys["col_step"], keys["ncols"], keys["u0"], stage)
        # The tile's bit words are contiguous in mask_bits (identity layout): block_m * words / 4
        # 16-byte chunks (16, 32 or 64), one per thread.  words divides 4, so chunk c starts
        # at row 4c / words, word 0 (the memref's strides do the addressing).
        words = self.cfg.words
        n_chunks = self.BM * words // 4
        assert 4 % words == 0 and n_chunks <= self.threads
        with if_then(band(icmp("sge", j, self.n_seg_iter), icmp("slt", self.tid, n_chunks))):
            nvgpu.device_async_copy(
                self.bits_s, [stage, to_index(mul(self.tid, 4))],
                self.mask_bits, [m, to_index(mul(self.tid, 4 // words)), cx(0)],
                4, bypass_l1=True)

    # --- fragments ------------------------------------------------------------------------------
    def load_q_frags(self):
        """A fragments of Q for this warp's rows, ``[m16 tile][k16 step]`` (kept in registers
        when ``cfg.q_in_registers``; else None, and qk_scores reads them per k16 step)."""
        if not self.cfg.q_in_registers:
            return None
        return [[self._q_frag(mt, kk) for kk in range(self.D // 16)] for mt in range(self.MT)]

    def _q_frag(self, mt, kk, buf=None):
        """The A fragment of m16 tile ``mt``, k16 step ``kk`` of the Q tile (or of ``buf``, a
        tile in the same padded-row layout).  x4 ldmatrix: lanes 8m..8m+7 address matrix m;
        matrices (rows, cols) = (0-7, 0-7), (8-15, 0-7), (0-7, 8-15), (8-15, 8-15)  ->
        registers a0..a3."""
        mi = arith.shrui(self.lane, ci(3))
        row = add(add(self.warp_row0, mul(arith.andi(mi, ci(1)), 8)), arith.andi(self.lane, ci(7)))
        col = mul(arith.shrui(mi, ci(1)), 8)
        return self.ops.a_from_ldmatrix(self.ops.ldmatrix_x4(
            self.qs if buf is None else buf, [], add(row, 16 * mt), add(col, 16 * kk), False))

    def qk_scores(self, q_frags, stage, kbuf=None, abuf=None):
        """S = Q Kᵀ for the current key tile: ``[m16 tile][BLOCK_N/8 n8 tiles]`` of 4 f32
        (``kbuf``: another staged tile in K's layout, e.g. V for the backward's dO Vᵀ; with
        ``q_frags`` None the A fragments are read per k16 step from ``abuf``, default Q's tile).

        K is stored N x K (keys x D) = the "col major" B operand, so no transpose: one x4
        ldmatrix gives B of key tiles n0 (matrices 0,1: d 0-7, 8-15) and n0+8 (matrices 2,3),
        used by every m16 tile of the warp.
        """
        kbuf = self.ks if kbuf is None else kbuf
        mi = arith.shrui(self.lane, ci(3))
        row = add(mul(arith.shrui(mi, ci(1)), 8), arith.andi(self.lane, ci(7)))
        col = mul(arith.andi(mi, ci(1)), 8)
        zero = cf(0.0)
        s = [[[zero] * 4 for _ in range(self.BN // 8)] for _ in range(self.MT)]

        def step(p, kk, a):
            v = self.ops.ldmatrix_x4(kbuf, [stage], add(row, 16 * p), add(col, 16 * kk), False)
            b0, b1 = self.ops.b_pair_from_ldmatrix(v)
            for mt in range(self.MT):
                s[mt][2 * p] = self.ops.mma(a[mt], b0, s[mt][2 * p])
                s[mt][2 * p + 1] = self.ops.mma(a[mt], b1, s[mt][2 * p + 1])

        if q_frags is not None:  # key n16 tiles outermost (the order the 16-row kernel tuned)
            for p in range(self.BN // 16):
                for kk in range(self.D // 16):
                    step(p, kk, [q_frags[mt][kk] for mt in range(self.MT)])
        else:  # Q from shared memory: each k16 step's fragments read once, used for all keys
            for kk in range(self.D // 16):
                a = [self._q_frag(mt, kk, abuf) for mt in range(self.MT)]
                for p in range(self.BN // 16):
                    step(p, kk, a)
        return s

    def pv_accumulate(self, p, o, stage, vbuf=None):
        """O += P V (``vbuf``: another staged tile in V's layout, e.g. K for the backward's
        dS K).  V is stored K x N (keys x D), so ldmatrix.trans gives B: lanes address
        matrices (keys 0-7, d 0-7), (keys 8-15, d 0-7), (keys 0-7, d 8-15), (keys 8-15, d 8-15)."""
        vbuf = self.vs if vbuf is None else vbuf
        mi = arith.shrui(self.lane, ci(3))
        row = add(mul(arith.andi(mi, ci(1)), 8), arith.andi(self.lane, ci(7)))
        col = mul(arith.shrui(mi, ci(1)), 8)
        o = [[list(x) for x in om] for om in o]
        for kk in range(self.BN // 16):
            a = [self.ops.a_from_f32(p[mt][2 * kk] + p[mt][2 * kk + 1]) for mt in range(self.MT)]
            for dp in range(self.D // 16):
                v = self.ops.ldmatrix_x4(vbuf, [stage], add(row, 16 * kk), add(col, 16 * dp),
                                         True)
                b0, b1 = self.ops.b_pair_from_ldmatrix(v)
                for mt in range(self.MT):
                    o[mt][2 * dp] = self.ops.mma(a[mt], b0, o[mt][2 * dp])
                    o[mt][2 * dp + 1] = self.ops.mma(a[mt], b1, o[mt][2 * dp + 1])
        return o

    def sync_row_threads(self):
        """A barrier among the threads that own rows (here the whole CTA)."""
        gpu.barrier()

    def publish_tile(self):
        """Hook between a key tile's cp.async wait and the barrier that publishes it (mma.sync
        reads shared memory through ldmatrix, in the generic proxy: nothing to do)."""

    def scores_ready(self, s_tiles):
        """Hook after the prefetch is issued: S as registers the code below may read (mma.sync
        results already are)."""
        return s_tiles

    # --- masking --------------------------------------------------------------------------------
    def tile_is_full(self, s, u0):
        """design.md §2: no element mask needed for key tile [u0, u0+BLOCK_N) of segment s."""
        u1 = add(u0, self.BN)
        last = sub(s["rho_hi"], 1)
        conds = [
            icmp("eq", s["rho_lo"], 0),
            icmp("eq", s["rho_hi"], self.BM),
            icmp("eq", self.nrows, self.BM),
            icmp("sle", u1, s["ncols"]),
        ]
        for rho in (s["rho_lo"], last):
            lo = add(mul(s["lo_a"], rho), s["lo_b"])
            hi = add(mul(s["hi_a"], rho), s["hi_b"])
            conds += [icmp("sle", lo, u0), icmp("sle", u1, hi)]
        return all_of(conds)

    def apply_mask(self, s_tiles, s, u0):
        """Set S to -inf where tile row rho does not attend to compressed key u."""
        ninf = cf(-math.inf)
        bounds = []  # per row slot
        for rho in self.rows:
            lo = add(mul(s["lo_a"], rho), s["lo_b"])
            hi = smin(add(mul(s["hi_a"], rho), s["hi_b"]), s["ncols"])
            row_ok = band(icmp("sge", rho, s["rho_lo"]), icmp("slt", rho, s["rho_hi"]))
            bounds.append((lo, select(row_ok, hi, _I32_MIN)))
        ubase = add(u0, mul(self.t, 2))
        out = []
        for mt, tiles in enumerate(s_tiles):
            out.append([])
            for j, tile in enumerate(tiles):
                vals = []
                for idx, x in enumerate(tile):
                    lo, hi = bounds[2 * mt + idx // 2]
                    u = add(ubase, 8 * j + (idx % 2))
                    keep = band(icmp("sge", u, lo), icmp("slt", u, hi))
                    vals.append(select(keep, x, ninf))
                out[mt].append(vals)
        return out

    def apply_bits(self, s_tiles, stage):
        """Mask tiles: keep S where the tile's bit says tile row rho attends key u.

        This thread's columns are ``u = 8j + 2t + e`` (n-tile j, e = 0, 1): word ``j // 4``
        (8j + 2t + e stays inside one 32-bit word), bit ``8 (j % 4) + 2t + e``.  Shifting each
        word right by 2t once leaves compile-time bit positions.  Bits of keys >= ncols and rows
        >= nrows are 0, so nothing else needs checking.
        """
        words = self.cfg.words
        ninf = cf(-math.inf)
        shift = mul(self.t, 2)
        row_words = []  # per row slot
        for rho in self.rows:
            base = mul(rho, words)
            row_words.append([arith.shrui(memref.load(self.bits_s, [stage, to_index(add(base, w))]),
                                          shift) for w in range(words)])
        out = []
        for mt, tiles in enumerate(s_tiles):
            out.append([])
            for j, tile in enumerate(tiles):
                vals = []
                for idx, x in enumerate(tile):
                    word = row_words[2 * mt + idx // 2][j // 4]
                    bit = ci(1 << (8 * (j % 4) + idx % 2))
                    vals.append(select(icmp("ne", band(word, bit), 0), x, ninf))
                out[mt].append(vals)
        return out

    # --- softmax --------------------------------------------------------------------------------
    def _quad_reduce(self, x, combine):
        """Combine over the 4 lanes of a quad (they hold the same accumulator row)."""
        width = ci(32)
        for off in (1, 2):
            x = combine(x, shuffle_xor(x, off, width))
        return x

    def online_softmax_update(self, s_tiles, m, l, o, c, prepare_o=None):
        """One key tile of online softmax, per row slot ``2*mt + half``: values 0,1 (half 0,
        row g) and 2,3 (half 1, row g + 8) of m16 tile ``mt``'s accumulators.

        ``m`` is the running max of S*scale*log2(e) (quad-uniform), ``l`` the thread-partial
        running sum (reduced over the quad only at the end).  Returns P (f32), m, l, rescaled O.

        The rescale of O and l is lazy: the reference max ``m`` moves only when some row of the
        warp would see scores above ``2**RESCALE_SLACK`` times its current one (a warp vote, so
        the branch stays uniform); otherwise P = exp2(S*c - m) uses the old, smaller reference
        and may exceed 1 by up to that factor.  The result is the same: O, l and lse are all
        taken against the same reference, and f32 / bf16 hold such P with the same relative
        precision.  It saves the O rescale (D/2 multiplies per row slot) on most key tiles.
        ``prepare_o(o)``, where given, runs before the rescale reads O (the wgmma kernel: wait
        for the P V still accumulating into it).
        """
        cand, grows = [], []
        for slot in range(2 * self.MT):
            mt, half = divmod(slot, 2)
            slots = (2 * half, 2 * half + 1)
            mx = tree_reduce([tile[k] for tile in s_tiles[mt] for k in slots], fmax)
            cand.append(fmax(m[slot], mul(self._quad_reduce(mx, fmax), c)))
            # true when m is -inf and the tile brings this row its first finite score
            grows.append(fcmp("ogt", cand[slot], add(m[slot], cf(RESCALE_SLACK))))

        def rescaled():
            ready = o if prepare_o is None else prepare_o(o)
            new_l, new_o = [], [[list(x) for x in om] for om in ready]
            for slot in range(2 * self.MT):
                mt, half = divmod(slot, 2)
                # a row with no key so far keeps m = -inf: alpha = 0 scales its zeros
                alpha = exp2(sub(m[slot], self._reference(cand[slot])))
                new_l.append(mul(l[slot], alpha))
                for acc in new_o[mt]:
                    for k in (2 * half, 2 * half + 1):
                        acc[k] = mul(acc[k], alpha)
            return cand, new_l, new_o

        m, l, o = if_else(warp_any(tree_reduce(grows, arith.ori)), (m, l, o), rescaled,
                          lambda: (m, l, o))
        p = [[[None] * 4 for _ in tiles] for tiles in s_tiles]
        new_l = []
        for slot in range(2 * self.MT):
            mt, half = divmod(slot, 2)
            slots = (2 * half, 2 * half + 1)
            neg_m = arith.negf(self._reference(m[slot]))
            for j, tile in enumerate(s_tiles[mt]):
                for k in slots:
                    p[mt][j][k] = exp2(fma(tile[k], c, neg_m))
            row_sum = tree_reduce([p[mt][j][k] for j in range(len(s_tiles[mt])) for k in slots],
                                  add)
            new_l.append(add(l[slot], row_sum))
        return p, m, new_l, o

    @staticmethod
    def _reference(m):
        """The exponent reference of a row whose running max is ``m``: 0 while it is -inf (no
        finite score yet), so exp2 of its -inf scores gives 0, never NaN."""
        return select(fcmp("oeq", m, -math.inf), cf(0.0), m)

    # --- epilogue -------------------------------------------------------------------------------
    def write_output(self, m, l, o):
        ln2 = cf(LN2)
        inv, lse = [], []  # per row slot
        for slot in range(2 * self.MT):
            l_tot = self._quad_reduce(l[slot], add)
            nonempty = fcmp("ogt", l_tot, 0.0)
            inv.append(select(nonempty, arith.divf(cf(1.0), l_tot), cf(0.0)))
            lse.append(select(nonempty, mul(add(m[slot], log2(l_tot)), ln2), cf(-math.inf)))

        # Stage the normalised O tile in the Q buffer (= K stage 1, which other warps may still
        # be reading in the last iteration, hence the barrier): each thread writes its 2-element
        # pairs, then 16-byte chunks go to global memory.
        self.sync_row_threads()
        vec2 = ir.VectorType.get([2], self.elem)
        for mt in range(self.MT):
            for j, acc in enumerate(o[mt]):
                col = to_index(add(mul(self.t, 2), 8 * j))
                for slot in (2 * mt, 2 * mt + 1):
                    half = slot % 2
                    pair = [arith.truncf(self.elem, mul(acc[2 * half + e], inv[slot]))
                            for e in range(2)]
                    vector.store(vector.from_elements(vec2, pair), self.qs,
                                 [to_index(self.rows[slot]), col], alignment=4)
        if self.accumulate:
            self._fold_into_existing(lse)
        self.sync_row_threads()

        chunks_per_row = self.D // CHUNK
        rows_per_pass = self.threads // chunks_per_row
        vec8 = ir.VectorType.get([CHUNK], self.elem)
        r_first = udiv(self.tid, chunks_per_row)
        col = to_index(mul(urem(self.tid, chunks_per_row), CHUNK))
        for i in range(self.BM // rows_per_pass):
            r = add(r_first, i * rows_per_pass)
            with if_then(icmp("slt", r, self.nrows)):
                val = vector.load(vec8, self.qs, [to_index(r), col], alignment=16)
                grow = to_index(add(self.row0, mul(self.row_step, r)))
                if self.accumulate:  # o = w_new * (staged o) + w_old * (o in memory)
                    f8 = ir.VectorType.get([CHUNK], f32_type())
                    old = arith.extf(f8, vector.load(vec8, self.o, [self.b, self.h, grow, col],
                                                     alignment=16))
                    a_new, a_old = (
                        vector.broadcast(f8, memref.load(self.alpha_s, [cx(k), to_index(r)]))
                        for k in range(2))
                    val = arith.truncf(vec8, arith.addf(arith.mulf(a_new, arith.extf(f8, val)),
                                                        arith.mulf(a_old, old)))
                vector.store(val, self.o, [self.b, self.h, grow, col], alignment=16)

        if self.accumulate:
            return  # lse was folded and written by _fold_into_existing
        # log-sum-exp: one lane per quad writes its rows.
        for slot, row in enumerate(self.rows):
            with if_then(band(icmp("eq", self.t, 0), icmp("slt", row, self.nrows))):
                grow = to_index(add(self.row0, mul(self.row_step, row)))
                memref.store(lse[slot], self.lse, [self.b, self.h, grow])

    def _fold_into_existing(self, lse):
        """Split-KV: weigh this run (normalised o, staged; ``lse``) against the o / lse another
        launch already wrote for the same rows.  One lane per quad, for its two rows: with
        ``m = max(lse, lse_old)``, ``w = exp(lse - m)``, ``w_old = exp(lse_old - m)``, it puts
        ``w / (w + w_old)`` and ``w_old / (w + w_old)`` into shared memory for the store pass and
        writes ``lse = m + log(w + w_old)`` (this lane alone reads and writes that row's lse).
        Rows both runs leave empty keep weight 0 and lse = -inf.  Done after the accumulators
        are staged, so the reads add no register pressure to the key loop's state."""
        log2e, ln2 = cf(LOG2E), cf(LN2)
        for slot, row in enumerate(self.rows):
            with if_then(band(icmp("eq", self.t, 0), icmp("slt", row, self.nrows))):
                grow = to_index(add(self.row0, mul(self.row_step, row)))
                old = memref.load(self.lse, [self.b, self.h, grow])
                m = fmax(lse[slot], old)
                live = fcmp("ogt", m, -math.inf)
                m_use = select(live, m, cf(0.0))
                w_new = exp2(mul(sub(lse[slot], m_use), log2e))
                w_old = exp2(mul(sub(old, m_use), log2e))
                total = add(w_new, w_old)
                inv_total = select(live, arith.divf(cf(1.0), total), cf(0.0))
                memref.store(mul(w_new, inv_total), self.alpha_s, [cx(0), to_index(row)])
                memref.store(mul(w_old, inv_total), self.alpha_s, [cx(1), to_index(row)])
                memref.store(select(live, add(m, mul(log2(total), ln2)), cf(-math.inf)), self.lse,
                             [self.b, self.h, grow])

    # --- main -----------------------------------------------------------------------------------
    def _count_key_tiles(self):
        """Total key tiles over the tile's segments (an empty segment still costs one tile)."""
        def count(seg, state):
            ncols = memref.load(self.segments, [seg, cx(2)])
            n = smax(udiv(add(ncols, self.BN - 1), self.BN), 1)
            return dict(n=add(state["n"], n))

        return for_range(to_index(self.seg_begin), to_index(self.seg_end), cx(1), count,
                         dict(n=ci(0)))["n"]

    def _setup(self):
        """Ids, shared memory, the row tile; returns the key loop's trip count."""
        self._setup_ids()
        self._setup_smem()
        self._load_row_tile()
        n_iter = self.n_seg_iter = self._count_key_tiles()
        if self.masked:
            # The tile's mask tiles run as key tiles n_seg_iter .. n_iter-1 of the same loop, so
            # the double-buffered prefetch and the online-softmax state carry straight over.
            self.mask_begin = memref.load(self.mask_ptr, [self.tile])
            mask_end = memref.load(self.mask_ptr, [arith.addi(self.tile, cx(1))])
            n_iter = add(self.n_seg_iter, sub(mask_end, self.mask_begin))
        return n_iter

    def _prologue(self, n_iter):
        """The row tile's own operands (`load_row_operands`, group 0) and the first key tile
        into stage 0 (group 1), then wait for group 0 and publish it to every warp (and, where
        the tensor cores read it from shared memory, to their proxy: `publish_tile`)."""
        self.load_row_operands()
        nvvm.cp_async_commit_group()
        with if_then(icmp("sgt", n_iter, 0)):
            self.load_key_tile(ci(0), self.seg_begin, ci(0), cx(0))
        nvvm.cp_async_commit_group()
        nvvm.cp_async_wait_group(1)
        self.publish_tile()
        gpu.barrier()

    def load_row_operands(self):
        """The tiles a row tile reads once (the forward: Q)."""
        self.load_q_tile()

    def emit(self):
        n_iter = self._setup()
        c = mul(self.scale, cf(LOG2E))  # softmax in base 2
        self._prologue(n_iter)
        q_frags = self.load_q_frags()

        # Loop state: the key tile to process (segment row, first compressed key u0), the
        # running max m and partial sum l per row slot, and the O accumulator tiles per m16 tile.
        ninf, zero = cf(-math.inf), cf(0.0)
        init = dict(seg=self.seg_begin, u0=ci(0), m=[ninf] * (2 * self.MT),
                    l=[zero] * (2 * self.MT),
                    o=[[[zero] * 4 for _ in range(self.D // 8)] for _ in range(self.MT)])
        final = for_range(cx(0), to_index(n_iter), cx(1),
                          lambda it, state: self._key_tile(it, state, q_frags, n_iter, c), init)
        nvvm.cp_async_wait_group(0)
        self.write_output(final["m"], final["l"], final["o"])

    def _tile_keys(self, it, seg, u0) -> dict:
        """Key tile ``it`` of the loop at segment row ``seg``, compressed key ``u0``: its
        segment fields (``info``), whether it is a segment tile (``is_seg``, masked kernels;
        else None), ``it`` as i32, and the next tile in (segment, u0) order (``nseg``,
        ``nu0``)."""
        it32 = to_i32(it) if self.masked else None
        is_seg = None
        if self.masked:
            # Past the segments, `seg` = seg_end may be out of the table: read nothing then.
            # The zeros give ncols = 0 (so nseg / nu0 below are harmless and unused) and
            # rho_hi = 0 (never "full").
            is_seg = icmp("slt", it32, self.n_seg_iter)
            info = if_else(is_seg, dict.fromkeys(abi.SEGMENT_FIELDS, i32_type()),
                           lambda: self._segment(seg),
                           lambda: dict.fromkeys(abi.SEGMENT_FIELDS, ci(0)))
        else:
            info = self._segment(seg)
        nxt = add(u0, self.BN)
        same_seg = icmp("slt", nxt, info["ncols"])
        return dict(info=info, is_seg=is_seg, it32=it32, nseg=select(same_seg, seg, add(seg, 1)),
                    nu0=select(same_seg, nxt, 0))

    def _wait_for_tile(self):
        """Wait for this thread's copies of the current tile (the only group in flight), make
        them visible to the tensor cores' proxy where needed, and one barrier makes the tile
        visible to all warps AND proves every warp done with the tiles before it."""
        nvvm.cp_async_wait_group(0)
        self.publish_tile()
        gpu.barrier()

    def _load_next_tile(self, it, n_iter, keys, stage_of):
        """Key tile ``it + 1`` (``keys`` of `_tile_keys`) into stage ``stage_of()``, if there
        is one; one cp.async group either way."""
        with if_then(icmp("slt", add(it, cx(1)), to_index(n_iter))):
            stage = stage_of()
            if self.masked:
                self.load_key_tile(add(keys["it32"], 1), keys["nseg"], keys["nu0"], stage)
            else:
                self.load_kv_tile(keys["nseg"], keys["nu0"], stage)
        nvvm.cp_async_commit_group()

    def _masked_scores(self, s_tiles, keys, u0, stage):
        """S with the masks of key tile ``(keys, u0)`` applied, where it is not full: the
        segment's bounds, or a mask tile's bits in ``stage``."""
        info, is_seg = keys["info"], keys["is_seg"]
        full = self.tile_is_full(info, u0)
        if self.masked:
            full = band(is_seg, full)

        def masked():
            if not self.masked:
                return self.apply_mask(s_tiles, info, u0)
            return if_else(is_seg, s_tiles, lambda: self.apply_mask(s_tiles, info, u0),
                           lambda: self.apply_bits(s_tiles, stage))

        return if_else(full, s_tiles, lambda: s_tiles, masked)

    def _key_tile(self, it, state, q_frags, n_iter, c):
        """One iteration of the key loop (key tile ``it``, in ``stage = it % 2``); returns the
        next loop state."""
        u0 = state["u0"]
        stage = arith.andi(it, cx(1))
        keys = self._tile_keys(it, state["seg"], u0)
        # The prefetch overwrites the previous tile's stage (where it is issued:
        # FusedForwardConfig.early_prefetch).
        self._wait_for_tile()
        prefetch = lambda: self._load_next_tile(it, n_iter, keys,  # noqa: E731
                                                lambda: arith.xori(stage, cx(1)))
        if self.cfg.early_prefetch:
            prefetch()
            s_tiles = self.qk_scores(q_frags, stage)
        else:
            s_tiles = self.qk_scores(q_frags, stage)
            prefetch()
        s_tiles = self._masked_scores(self.scores_ready(s_tiles), keys, u0, stage)
        p, m, l, o = self.online_softmax_update(s_tiles, state["m"], state["l"], state["o"], c)
        o = self.pv_accumulate(p, o, stage)
        return dict(seg=keys["nseg"], u0=keys["nu0"], m=m, l=l, o=o)


# ----------------------------------------------------------------------------------------------
# Public entry point
# ----------------------------------------------------------------------------------------------


def _kernel_class(cfg: FusedForwardConfig):
    if cfg.mma == "wgmma":  # subclasses of the one above
        from .fused_forward_wgmma import WarpSpecializedWgmmaKernel, WgmmaForwardKernel
        return WarpSpecializedWgmmaKernel if cfg.load_warpgroup else WgmmaForwardKernel
    return _FusedForwardKernel


def build_into(module: ir.Module, cfg: FusedForwardConfig) -> ir.Module:
    gm = find_or_create_gpu_module(module)
    # q, k, v may be strided views (e.g. of a fused QKV projection): every stride but the
    # innermost comes from the descriptor (abi.STRIDED_INPUTS), the rows stay contiguous for
    # the 16-byte async copies. The kernel writes o and lse, which are always dense.
    params = abi.fused_kernel_params(cfg.dtype, cfg.mask_tiles)
    fn_type = ir.FunctionType.get([abi_arg_type(p) for p in params], [])
    block = gm.bodyRegion.blocks[0]
    with ir.InsertionPoint(block):
        fn = gpu.GPUFuncOp(fn_type, sym_name=cfg.name, kernel=True,
                           known_block_size=[cfg.num_threads, 1, 1])
        if cfg.min_blocks_per_sm:
            fn.attributes["nvvm.minctasm"] = ir.IntegerAttr.get(i32_type(), cfg.min_blocks_per_sm)
        entry = fn.add_entry_block()
        with ir.InsertionPoint(entry):
            _kernel_class(cfg)(cfg, list(entry.arguments)).emit()
            gpu.return_([])
    return module


def build_fused_forward(module_or_none, *, dtype: str, head_dim: int,
                        block_n: int | None = None,
                        min_blocks_per_sm: int | None = None,
                        mask_tiles: bool = False) -> ir.Module:
    """Emit ``gpu.func @splat_fwd_<dtype>_d<D>`` into ``gpu.module @splat_kernels``.

    ``module_or_none``: an ``ir.Module`` to add to (its gpu.module is reused if present), or
    ``None`` for a new module (in the current MLIR context, or a fresh one if none is active).
    ``block_n`` / ``min_blocks_per_sm`` default to ``fused_config.DEFAULTS[head_dim]``.
    ``mask_tiles=True`` emits ``@splat_fwd_<dtype>_d<D>_masked`` instead, which also runs the
    schedule's remainder mask tiles (three more arguments after ``scale``, see the module
    docstring).  The launch metadata of the same configuration is
    ``fused_config.kernel_launch_info(dtype, head_dim, block_n, mask_tiles)``.
    Returns the module.  The kernel requires ``scale > 0``.
    """
    cfg = FusedForwardConfig(dtype, head_dim, block_n, min_blocks_per_sm, mask_tiles)
    return build_in_module(module_or_none, lambda module: build_into(module, cfg))
