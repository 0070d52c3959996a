"""The backward's kernels (issue 14), on the forward kernel's loop (docs/design.md §6).

``@splat_bwd_dq_<dtype>_d<D>[_masked]`` walks the forward's row schedule exactly as the forward
kernel does (same CTA, grid, tables, double-buffered K/V gathers, masks: fused_forward.py's
helpers) and, per key tile, computes what `splat.tiling.backward.run_backward` computes for dQ:

    S  = Q Kᵀ                        (the forward's qk_scores)
    P  = exp2(S·scale·log2 e − lse·log2 e)   from the forward's lse: no online softmax
    dP = dO Vᵀ                       (qk_scores with dO's fragments, V in K's place)
    dS = P ∘ (dP − Δ)                Δ = rowsum(dO ∘ O) − dlse per row
    dQ += dS K                       (pv_accumulate with dS, K in V's place)

and stores ``dQ · scale`` for the tile's rows. dO is loaded once beside Q and both stay in
registers as A fragments. Before the loop it computes its rows' Δ (from dO in shared memory, O
and the lse gradient dlse from global memory) and writes it to ``delta``, where the dK/dV
kernel, launched after it, reads it: no separate pass over O. Rows without keys (lse = −inf)
have every score masked: P = 0.

``@splat_bwd_dkv_<dtype>_d<D>[_masked]`` walks the *column* schedule (the transposed layout's
tables, `splat.tiling.backward.column_schedule`): a CTA per (key tile, kv head, batch), whose
"row tile" is ``BLOCK_M`` keys and whose "key tiles" are ``BLOCK_N`` queries gathered by the
column segments (and mask tiles) into the forward's K and V stages. For each query head of the
kv head (GQA: summed in registers, so no atomics) and query tile:

    Sᵀ  = K Qᵀ,   Pᵀ = exp2(Sᵀ·scale·log2 e − lse[q]·log2 e)   per query column
    dV += Pᵀ dO,  dPᵀ = V dOᵀ,  dSᵀ = Pᵀ ∘ (dPᵀ − Δ[q]),  dK += dSᵀ Q

and stores ``dK · scale`` and dV for the tile's keys. A query tile's lse (base 2) and Δ travel
with its rows (shared memory, per stage). K's and V's fragments stay in registers at D = 64 and
are re-read from shared memory per tile at D = 128 and 256.

At D = 256 one 16 x D f32 accumulator tile is 128 registers a thread, so the dK/dV kernel walks
its column schedule twice, dV in the first walk and dK in the second (`DkvConfig.passes`: S is
recomputed, five products a query tile instead of four), and the dQ kernel reads Q's and dO's
fragments from shared memory per k16 step instead of holding them (the forward's choice at
that head dim). Same ABI, tables and launches at every head dim.

This module's kernels run mma.sync on 64-row tiles of 16-row warps (the forward's default
variant); ``mma="wgmma"`` builds backward_kernels_wgmma.py's subclasses instead (the same ABI,
also on 128-row tiles). A backward artifact (``splat.compile(variant="backward")``) holds both
kernels, built by splat-lower-to-gpu for an op that splat-tile-acsr{backward} tiled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from mlir import ir
from mlir.dialects import arith, gpu, memref, nvgpu, nvvm, vector

from .. import abi
from .builder import (LOG2E, add, cf, ci, cx, exp2, f32_type, fcmp, fma, for_range,
                      icmp, if_then, mul, select, shuffle_xor, sub, to_index, udiv, urem)
from .fused_config import FusedForwardConfig
from .fused_forward import _FusedForwardKernel
from .modules import abi_arg_type, find_or_create_gpu_module

_F32_MAX = 3.4028234663852886e38
# dK and dV accumulated in one walk hold two 16 x D f32 tiles a warp: D registers a thread, 256
# (all of them) at D = 256; above this head dim the dK/dV kernel walks its schedule twice.
_ONE_WALK_MAX_HEAD_DIM = 128

__all__ = ["DqConfig", "DkvConfig", "build_dq_into", "build_dkv_into", "launch_info"]


# ------------------------------------------------------------------------------ configurations


@dataclass(frozen=True)
class _BackwardConfig:
    kind: ClassVar[str]  # the kernel's entry in abi.BACKWARD_KERNELS
    dtype: str
    head_dim: int
    block_n: int | None = None
    mask_tiles: bool = False
    # split-KV's second launch: over the split schedule's tables, adding into the gradients the
    # first launch wrote (no mask tiles, as the forward's accumulating variant)
    accumulate: bool = False
    # tensor-core instruction (abi.MMA_KINDS): "mma_sync" (this module's kernels) or "wgmma"
    # (sm_90a, backward_kernels_wgmma.py; the same ABI, tables and grid)
    mma: str = "mma_sync"
    # rows (queries for dQ, keys for dK/dV) per row tile: abi.backward_block_ms(mma, head_dim)
    block_m: int = abi.BACKWARD_BLOCK_M

    def __post_init__(self):
        if self.mma not in abi.MMA_KINDS:
            raise ValueError(f"mma must be one of {abi.MMA_KINDS}, got {self.mma!r}")
        block_m_error = abi.backward_block_m_error(self.block_m, self.mma, self.head_dim)
        if block_m_error:
            raise ValueError(block_m_error)
        if self.accumulate and self.mask_tiles:
            raise ValueError("an accumulating backward kernel has no mask tiles")
        if self.head_dim not in abi.BACKWARD_HEAD_DIMS:
            raise ValueError(f"the backward kernels are built for head dims "
                             f"{abi.BACKWARD_HEAD_DIMS}, got {self.head_dim}")
        if self.block_n is None:  # the backward's own default, not the forward's
            object.__setattr__(self, "block_n", abi.backward_block_n(self.head_dim))

    @property
    def kernel_abi(self) -> abi.BackwardKernelABI:
        return abi.BACKWARD_KERNELS[self.kind]

    @property
    def name(self) -> str:
        return self.kernel_abi.name(self.dtype, self.head_dim, self.mask_tiles, self.accumulate)

    def params(self) -> list[dict]:
        return self.kernel_abi.params(self.dtype, self.mask_tiles, self.accumulate)

    def tables(self) -> list[str]:
        """The schedule tables the kernel reads, its grid's tile table first."""
        return self.kernel_abi.tables(self.mask_tiles, self.accumulate)

    def forward(self) -> FusedForwardConfig:
        """The forward configuration whose tiles, loop and (mma_sync) layout the kernel shares:
        the mma_sync kernel's of ``block_m`` rows on 16-row warps, whichever the instruction
        (its geometry is wgmma's too: a warpgroup per 64 rows)."""
        return FusedForwardConfig(self.dtype, self.head_dim, self.block_n,
                                  mask_tiles=self.mask_tiles, block_m=self.block_m)

    @property
    def wgmma(self) -> bool:
        return self.mma == "wgmma"

    @property
    def row_tile_bytes(self) -> int:
        """One ``BLOCK_M``-row tile: padded rows (mma_sync, Q's layout) or ``BLOCK_M x D`` in
        the wgmma tile layout."""
        fwd = self.forward()
        return fwd.block_m * (self.head_dim if self.wgmma else fwd.row_stride) * 2

    @property
    def stages_bytes(self) -> int:
        """wgmma: the two stages of two ``BLOCK_N x D`` tiles each (K and V for dQ, the gathered
        Q and dO rows for dK/dV) that start its shared memory."""
        return 2 * 2 * self.forward().block_n * self.head_dim * 2

    @property
    def bits_bytes(self) -> int:
        """wgmma: the two stages of mask bits (mask tiles only), at the end of its layout."""
        return 2 * self.forward().bits_stage_bytes if self.mask_tiles else 0


class DqConfig(_BackwardConfig):
    """dQ: the forward's shared memory, then the dO tile; wgmma: the K/V stages, the Q and dO
    tiles, the mask bits."""

    kind = "dq"

    @property
    def q_offset(self) -> int:
        """wgmma only (mma_sync keeps the forward's Q offset)."""
        return self.stages_bytes

    @property
    def do_offset(self) -> int:
        if self.wgmma:
            return self.q_offset + self.row_tile_bytes
        return self.forward().shared_bytes

    @property
    def bits_offset(self) -> int:
        """wgmma only (mma_sync keeps the forward's)."""
        return self.do_offset + self.row_tile_bytes

    @property
    def shared_bytes(self) -> int:
        if self.wgmma:
            return self.bits_offset + self.bits_bytes
        return self.do_offset + self.row_tile_bytes


class DkvConfig(_BackwardConfig):
    """dK/dV: the forward's shared memory (its K/V stages hold the gathered Q and dO rows), the
    per-stage query values ``[2 stages][lse2, delta][BLOCK_N]`` f32, the tile's K and V rows;
    wgmma: the Q/dO stages, the K and V tiles, the query values, the mask bits."""

    kind = "dkv"

    @property
    def frags_in_registers(self) -> bool:
        """mma_sync: K's and V's A fragments held for the whole loop (D = 64), or re-read per
        tile; wgmma reads them from shared memory (descriptors)."""
        return self.head_dim <= 64 and not self.wgmma

    @property
    def passes(self) -> tuple[tuple[str, ...], ...]:
        """The gradients each walk of the column schedule accumulates: both at once, or at
        D = 256 (where one 16 x D f32 accumulator tile is 128 registers a thread) dV in one walk
        and dK in a second (S recomputed: five products a query tile instead of four)."""
        if self.head_dim > _ONE_WALK_MAX_HEAD_DIM:
            return ("dv",), ("dk",)
        return (("dk", "dv"),)

    @property
    def query_values_bytes(self) -> int:
        return 2 * 2 * self.forward().block_n * 4

    @property
    def query_values_offset(self) -> int:
        if self.wgmma:
            return self.key_rows_offset + 2 * self.row_tile_bytes
        return self.forward().shared_bytes

    @property
    def key_rows_offset(self) -> int:
        if self.wgmma:
            return self.stages_bytes
        return self.query_values_offset + self.query_values_bytes

    @property
    def bits_offset(self) -> int:
        """wgmma only (mma_sync keeps the forward's)."""
        return self.query_values_offset + self.query_values_bytes

    @property
    def shared_bytes(self) -> int:
        if self.wgmma:
            return self.bits_offset + self.bits_bytes
        return self.key_rows_offset + 2 * self.row_tile_bytes


# ------------------------------------------------------------------------------ kernels


class _BackwardKernel(_FusedForwardKernel):
    """The forward kernel's machinery with the backward's arguments, bound by name
    (``abi.dq_kernel_params`` / ``abi.dkv_kernel_params``: q, k, v, do, ..., the outputs,
    the tables, scale, ...)."""

    outputs_named: tuple = ()

    def __init__(self, cfg: _BackwardConfig, args, names: list[str]):
        arg = dict(zip(names, args))
        # the schedule's tables, scale and the remainder's tables, as the forward kernel takes them
        tables = args[names.index(cfg.tables()[0]):]
        super().__init__(cfg.forward(), [arg["q"], arg["k"], arg["v"], None, arg["lse"]]
                         + tables)
        self.bwd_cfg = cfg
        self.arg = arg
        self.do, self.delta = arg["do"], arg["delta"]
        self.outputs = [arg[n] for n in self.outputs_named]

    def _tile_row(self, r):
        """(valid, global row) of row ``r`` of the row tile (queries for dQ, keys for dK/dV)."""
        return icmp("slt", r, self.nrows), add(self.row0, mul(self.row_step, r))

    def _store(self, out, head, acc, scale):
        """``acc`` (times ``scale``, if given) in the input dtype for the tile's rows, into
        ``out[b, head]``, two elements a store; the accumulating variant adds it to what is
        there (each element is one thread's: no race)."""
        vec2 = ir.VectorType.get([2], self.elem)
        f2 = ir.VectorType.get([2], f32_type())
        for mt in range(self.MT):
            for slot in (2 * mt, 2 * mt + 1):
                half = slot % 2
                valid, row = self._tile_row(self.rows[slot])
                with if_then(valid):
                    for j, a in enumerate(acc[mt]):
                        vals = [a[2 * half + e] for e in range(2)]
                        if scale is not None:
                            vals = [mul(x, scale) for x in vals]
                        col = to_index(add(mul(self.t, 2), 8 * j))
                        idx = [self.b, head, to_index(row), col]
                        if self.bwd_cfg.accumulate:
                            old = arith.extf(f2, vector.load(vec2, out, idx, alignment=4))
                            vals = [add(vector.extract(old, [], [e]), vals[e]) for e in range(2)]
                        vector.store(vector.from_elements(vec2, [arith.truncf(self.elem, x)
                                                                 for x in vals]),
                                     out, idx, alignment=4)

    def _zeros(self):
        zero = cf(0.0)
        return [[[zero] * 4 for _ in range(self.D // 8)] for _ in range(self.MT)]


class _DqKernel(_BackwardKernel):
    outputs_named = ("dq",)

    def _setup_smem(self):
        super()._setup_smem()
        self.dos = self._shared_view([self.BM, self.SD], self.elem, self.bwd_cfg.do_offset)

    def load_row_operands(self):
        """Q and dO: both read once, into registers."""
        self.load_q_tile()
        self._async_copy_rows(self.dos, [], self.BM, self.do, [self.b, self.h], self._tile_row)

    def _row_values(self):
        """Per row slot: −lse·log2 e (0 where lse = −inf: such a row's scores are all masked)
        and Δ; rows past the tile read row 0 (their results are never stored)."""
        neg_lse2, delta = [], []
        for row in self.rows:
            valid, grow = self._tile_row(row)
            idx = [self.b, self.h, to_index(select(valid, grow, 0))]
            lse = memref.load(self.lse, idx)
            live = fcmp("ogt", lse, -math.inf)
            neg_lse2.append(select(live, arith.negf(mul(lse, cf(LOG2E))), cf(0.0)))
            delta.append(memref.load(self.delta, idx))
        return neg_lse2, delta

    def _write_delta(self):
        """Δ = rowsum(dO ∘ O) − dlse of the tile's rows into ``delta`` (read back below and
        by the dK/dV kernel, launched after this one): two threads a row, each half of D, dO
        from shared memory (loaded by the prologue), O from global memory, f32 sums."""
        half = self.D // 2
        vec8 = ir.VectorType.get([8], self.elem)
        f8 = ir.VectorType.get([8], f32_type())
        r, part = udiv(self.tid, 2), urem(self.tid, 2)
        valid, row = self._tile_row(r)
        row = to_index(select(valid, row, 0))
        acc = arith.constant(f8, ir.DenseElementsAttr.get_splat(f8, ir.FloatAttr.get_f32(0.0)))
        for i in range(half // 8):
            col = add(mul(part, half), 8 * i)
            o = vector.load(vec8, self.arg["o"], [self.b, self.h, row, to_index(col)],
                            alignment=16)
            acc = vector.fma(arith.extf(f8, o), arith.extf(f8, self._do_chunk(r, col)), acc)
        total = vector.reduction(f32_type(), vector.CombiningKind.ADD, acc)
        total = arith.addf(total, shuffle_xor(total, 1))
        with if_then(arith.andi(valid, icmp("eq", part, 0))):
            idx = [self.b, self.h, row]
            memref.store(sub(total, memref.load(self.arg["dlse"], idx)), self.delta, idx)
        gpu.barrier()  # the CTA's Δ stores are visible to its threads past the barrier

    def _do_chunk(self, r, col):
        """Elements ``col .. col + 7`` of row ``r`` of the dO tile in shared memory."""
        return vector.load(ir.VectorType.get([8], self.elem), self.dos, [to_index(r),
                                                                         to_index(col)],
                           alignment=16)

    def emit(self):
        n_iter = self._setup()
        c = mul(self.scale, cf(LOG2E))
        self._prologue(n_iter)
        if not self.bwd_cfg.accumulate:  # the split's launch reads the first launch's Δ
            self._write_delta()
        q_frags = self.load_q_frags()  # None at D = 256: read per k16 step, as dO's below
        do_frags = None
        if q_frags is not None:
            do_frags = [[self._q_frag(mt, kk, self.dos) for kk in range(self.D // 16)]
                        for mt in range(self.MT)]
        rows = self._row_values()
        init = dict(seg=self.seg_begin, u0=ci(0), dq=self._zeros())
        final = for_range(cx(0), to_index(n_iter), cx(1),
                          lambda it, state: self._key_tile_dq(it, state, q_frags, do_frags,
                                                              rows, n_iter, c), init)
        nvvm.cp_async_wait_group(0)
        self._store(self.outputs[0], self.h, final["dq"], self.scale)

    def _key_tile_dq(self, it, state, q_frags, do_frags, rows, n_iter, c):
        neg_lse2, delta = rows
        u0 = state["u0"]
        stage = arith.andi(it, cx(1))
        keys = self._tile_keys(it, state["seg"], u0)
        self._wait_for_tile()
        self._load_next_tile(it, n_iter, keys, lambda: arith.xori(stage, cx(1)))
        s = self._masked_scores(self.qk_scores(q_frags, stage), keys, u0, stage)
        dp = self.qk_scores(do_frags, stage, kbuf=self.vs, abuf=self.dos)
        ds = self._score_gradients(self._probabilities(s, c, neg_lse2), dp, delta)
        dq = self.pv_accumulate(ds, state["dq"], stage, vbuf=self.ks)
        return dict(seg=keys["nseg"], u0=keys["nu0"], dq=dq)

    def _probabilities(self, s, c, neg_lse2):
        """P = exp2(S·c − lse·log2 e) from the rows' saved lse (`_row_values`)."""
        return [[[exp2(fma(s[mt][j][e], c, neg_lse2[2 * mt + e // 2])) for e in range(4)]
                 for j in range(self.BN // 8)] for mt in range(self.MT)]

    def _score_gradients(self, p, dp, delta):
        """dS = P ∘ (dP − Δ) with the rows' Δ."""
        return [[[mul(p[mt][j][e], sub(dp[mt][j][e], delta[2 * mt + e // 2])) for e in range(4)]
                 for j in range(self.BN // 8)] for mt in range(self.MT)]


class _DkvKernel(_BackwardKernel):
    outputs_named = ("dk", "dv")

    def _setup_ids(self):
        """The grid is (key tiles, Hkv, B): the y index is the kv head, and the query heads of
        its group are walked by the head loop (`self.h` is set per head there)."""
        super()._setup_ids()
        self.kvh = self.h
        self.group = arith.divui(memref.dim(self.q, cx(1)), memref.dim(self.k, cx(1)))

    def _setup_smem(self):
        super()._setup_smem()
        cfg = self.bwd_cfg
        self.qvals = self._shared_view([2, 2, self.BN], f32_type(), cfg.query_values_offset)
        self.k_rows = self._shared_view([self.BM, self.SD], self.elem, cfg.key_rows_offset)
        self.v_rows = self._shared_view([self.BM, self.SD], self.elem,
                                        cfg.key_rows_offset + cfg.row_tile_bytes)

    def load_row_operands(self):
        """The tile's K and V rows (kv head ``kvh``), read for every query tile."""
        for buf, src in ((self.k_rows, self.k), (self.v_rows, self.v)):
            self._async_copy_rows(buf, [], self.BM, src, [self.b, self.kvh], self._tile_row)

    def _load_kv_rows(self, col0, col_step, ncols, u0, stage):
        """Gather the query tile ``col0 + col_step*u``, ``u in [u0, u0 + BLOCK_N)`` (zero past
        ``ncols``) of query head ``h``: Q rows into K's stage, dO rows into V's, and per query
        its lse in base 2 (0 for a query without keys, whose scores are all masked) and Δ."""
        def q_row(r):
            u = add(u0, r)
            return icmp("slt", u, ncols), add(col0, mul(col_step, u))

        for buf, src in ((self.ks, self.q), (self.vs, self.do)):
            self._async_copy_rows(buf, [stage], self.BN, src, [self.b, self.h], q_row)
        self._copy_query_values(q_row, stage)

    def _copy_query_values(self, q_row, stage):
        """The query tile's lse and Δ (``q_row(u)``: valid, query of tile column ``u``) into
        ``stage`` of ``qvals``: they travel with the rows, by 4-byte async copies in the same
        group (a plain load would stall its warp a global-memory latency per tile); queries
        past the sequence read zeros (their scores are masked)."""
        with if_then(icmp("slt", self.tid, self.BN)):
            valid, qi = q_row(self.tid)
            idx = [self.b, self.h, to_index(select(valid, qi, 0))]
            n_src = select(valid, cx(1), cx(0))
            for field, src in ((0, self.lse), (1, self.delta)):
                nvgpu.device_async_copy(self.qvals, [stage, cx(field), to_index(self.tid)], src,
                                        idx, 1, src_elements=n_src, bypass_l1=False)

    def emit(self):
        n_iter = self._setup()
        c = mul(self.scale, cf(LOG2E))
        self.load_row_operands()
        nvvm.cp_async_commit_group()
        nvvm.cp_async_wait_group(0)
        self.publish_tile()
        gpu.barrier()
        frags = None, None
        if self.bwd_cfg.frags_in_registers:
            frags = tuple([[self._q_frag(mt, kk, buf) for kk in range(self.D // 16)]
                           for mt in range(self.MT)] for buf in (self.k_rows, self.v_rows))
        dk, dv = self.outputs
        for grads in self.bwd_cfg.passes:
            final = for_range(cx(0), self.group, cx(1),
                              lambda g, state: self._query_head(g, state, frags, n_iter, c,
                                                                grads),
                              {name: self._zeros() for name in grads})
            if "dk" in grads:
                self._store(dk, self.kvh, final["dk"], self.scale)
            if "dv" in grads:
                self._store(dv, self.kvh, final["dv"], None)

    def _query_head(self, g, state, frags, n_iter, c, grads):
        """All query tiles of query head ``kvh * group + g``, added into the gradients
        ``grads`` ("dk", "dv") of ``state``."""
        self.h = arith.addi(arith.muli(self.kvh, self.group), g)
        with if_then(icmp("sgt", n_iter, 0)):
            self.load_key_tile(ci(0), self.seg_begin, ci(0), cx(0))
        nvvm.cp_async_commit_group()
        init = dict(seg=self.seg_begin, u0=ci(0), **{name: state[name] for name in grads})
        out = for_range(cx(0), to_index(n_iter), cx(1),
                        lambda it, st: self._query_tile(it, st, frags, n_iter, c, grads), init)
        # every warp done with the stages before the next head (or walk) loads into them
        nvvm.cp_async_wait_group(0)
        gpu.barrier()
        return {name: out[name] for name in grads}

    def _query_tile(self, it, state, frags, n_iter, c, grads):
        u0 = state["u0"]
        stage = arith.andi(it, cx(1))
        keys = self._tile_keys(it, state["seg"], u0)
        self._wait_for_tile()
        self._load_next_tile(it, n_iter, keys, lambda: arith.xori(stage, cx(1)))
        k_frags, v_frags = frags
        s = self._masked_scores(self.qk_scores(k_frags, stage, abuf=self.k_rows), keys, u0,
                                stage)
        with_dk = "dk" in grads
        dp = self.qk_scores(v_frags, stage, kbuf=self.vs, abuf=self.v_rows) if with_dk else None
        # P and dS a column pair at a time (both orders of the whole tiles spilled at D = 128)
        p, ds = [], []
        for mt in range(self.MT):
            p.append([])
            ds.append([])
            for j in range(self.BN // 8):
                p[mt].append(self._column_probabilities(s, c, stage, mt, j))
                if with_dk:
                    ds[mt].append(self._column_score_gradients(p[mt][j], dp, stage, mt, j))
        out = dict(seg=keys["nseg"], u0=keys["nu0"])
        if "dv" in grads:
            out["dv"] = self.pv_accumulate(p, state["dv"], stage, vbuf=self.vs)
        if with_dk:
            out["dk"] = self.pv_accumulate(ds, state["dk"], stage, vbuf=self.ks)
        return out

    def _query_columns(self, j):
        """This thread's two query columns (indices into ``qvals``) of n8 tile ``j``."""
        return [to_index(add(add(mul(self.t, 2), 8 * j), e)) for e in range(2)]

    def _column_probabilities(self, s, c, stage, mt, j):
        """Pᵀ = exp2(Sᵀ·c − lse[q]·log2 e) of n8 tile ``j`` of m16 tile ``mt`` (per query
        column q, lse from ``stage`` of ``qvals``). A query without keys has lse = −inf and
        every score masked (−inf): −lse·log2 e is clamped to the largest float so that
        S·c − lse·log2 e stays −inf, P = 0."""
        lse = [memref.load(self.qvals, [stage, cx(0), x]) for x in self._query_columns(j)]
        neg_lse2 = [arith.minimumf(arith.negf(mul(x, cf(LOG2E))), cf(_F32_MAX)) for x in lse]
        return [exp2(fma(s[mt][j][e], c, neg_lse2[e % 2])) for e in range(4)]

    def _column_score_gradients(self, p_tile, dp, stage, mt, j):
        """dSᵀ = Pᵀ ∘ (dPᵀ − Δ[q]) of n8 tile ``j`` of m16 tile ``mt`` (its Pᵀ: ``p_tile``),
        Δ from ``stage`` of ``qvals``."""
        delta = [memref.load(self.qvals, [stage, cx(1), x]) for x in self._query_columns(j)]
        return [mul(p_tile[e], sub(dp[mt][j][e], delta[e % 2])) for e in range(4)]


# ------------------------------------------------------------------------------ entry points


def _kernel_class(cfg: _BackwardConfig) -> type:
    if cfg.wgmma:  # subclasses of this module's kernels
        from .backward_kernels_wgmma import WgmmaDkvKernel, WgmmaDqKernel
        return {"dq": WgmmaDqKernel, "dkv": WgmmaDkvKernel}[cfg.kind]
    return {"dq": _DqKernel, "dkv": _DkvKernel}[cfg.kind]


def _build(module: ir.Module, cfg: _BackwardConfig):
    gm = find_or_create_gpu_module(module)
    params = cfg.params()
    with ir.InsertionPoint(gm.bodyRegion.blocks[0]):
        fn = gpu.GPUFuncOp(ir.FunctionType.get([abi_arg_type(p) for p in params], []),
                           sym_name=cfg.name, kernel=True,
                           known_block_size=[cfg.forward().num_threads, 1, 1])
        entry = fn.add_entry_block()
        with ir.InsertionPoint(entry):
            _kernel_class(cfg)(cfg, list(entry.arguments),
                               [p["name"] for p in params]).emit()
            gpu.return_([])
    return module


def build_dq_into(module: ir.Module, cfg: DqConfig) -> ir.Module:
    """Emit ``gpu.func @splat_bwd_dq_...`` (arguments: ``abi.dq_kernel_params``) into the
    module's ``gpu.module @splat_kernels``."""
    return _build(module, cfg)


def build_dkv_into(module: ir.Module, cfg: DkvConfig) -> ir.Module:
    """Emit ``gpu.func @splat_bwd_dkv_...`` (arguments: ``abi.dkv_kernel_params``)."""
    return _build(module, cfg)


_CONFIGS = {"dq": DqConfig, "dkv": DkvConfig}


def launch_info(kind: str, dtype: str, head_dim: int, block_n: int, masked: bool,
                accumulate: bool = False, mma: str = "mma_sync",
                block_m: int = abi.BACKWARD_BLOCK_M) -> dict:
    """A backward artifact's manifest entry (less ptx_file) for the ``"dq"`` or ``"dkv"``
    kernel: dQ on grid ``row_tiles`` (row tile, query head, batch), dK/dV on grid
    ``col_tiles`` (column tile, kv head, batch); ``accumulate``: the variant over the split
    schedule's tables; ``mma``, ``block_m``: the kernels' instruction and row tile height
    (the manifest records both)."""
    if kind not in _CONFIGS:
        raise ValueError(f"kind must be 'dq' or 'dkv', got {kind!r}")
    cfg = _CONFIGS[kind](dtype, head_dim, block_n, mask_tiles=masked, accumulate=accumulate,
                         mma=mma, block_m=block_m)
    fwd, params, tables = cfg.forward(), cfg.params(), cfg.tables()
    return {"name": cfg.name, "block": [fwd.num_threads, 1, 1], "shared_bytes": cfg.shared_bytes,
            "params": params, "num_ptx_params": abi.num_ptx_params(params),
            "grid": cfg.kernel_abi.grid, "tile_table": tables[0], "tables": tables,
            "block_m": fwd.block_m, "block_n": fwd.block_n, "mma": cfg.mma}
