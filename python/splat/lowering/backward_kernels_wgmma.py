"""The backward's kernels on Hopper warpgroup MMA (``DqConfig(mma="wgmma")``,
``DkvConfig(mma="wgmma")``, sm_90a): backward_kernels.py's dQ and dK/dV kernels with every
product on ``wgmma.mma_async`` instead of mma.sync.

Same ABI, tables and grid, and a 16-row warp per 16 rows: on 64-row tiles the CTA's 4 warps
are one warpgroup, on 128-row tiles (``block_m=128``) two, each with its own 64 rows of every
product. wgmma's accumulator and register-A fragments have, per warp, the mma.sync layouts
(wgmma.py), so the masking, P, dS, Δ and the stores are the mma.sync kernels' code. What
changes is where the operands live: every tile is stored in the wgmma layout
(`WgmmaTiles`, 128-byte swizzled, unpadded) and read by the tensor cores through descriptors,

    dQ:    S  = Q Kᵀ    A = Q tile (smem)      B = K stage, K-major
           dP = dO Vᵀ   A = dO tile (smem)     B = V stage, K-major
           dQ += dS K   A = dS (registers)     B = K stage, MN-major
    dK/dV: Sᵀ  = K Qᵀ    A = K tile (smem)     B = Q stage, K-major
           dPᵀ = V dOᵀ   A = V tile (smem)     B = dO stage, K-major
           dV += Pᵀ dO   A = Pᵀ (registers)    B = dO stage, MN-major
           dK += dSᵀ Q   A = dSᵀ (registers)   B = Q stage, MN-major

so no operand fragment is loaded into registers (the mma.sync kernels' ldmatrix traffic, four
warps each reading the whole staged tile, is gone) and one instruction covers the warpgroup's
64 rows. Per key (query) tile the two score products are issued together; the first is waited
for alone (``wait_group 1``), so P (Pᵀ) is computed while dP (dPᵀ) is still on the tensor
cores; dV's product likewise runs while dSᵀ is computed; every product of the tile has
completed before the next tile's barrier (whose prefetch overwrites the stage).

Shared memory (``DqConfig``/``DkvConfig`` with ``mma="wgmma"``; 1024-byte aligned, each tile
a multiple of 1024 bytes): two stages of two ``BLOCK_N x D`` tiles ``[K0][V0][K1][V1]``
(dK/dV: ``[Q0][dO0][Q1][dO1]``), the two ``BLOCK_M x D`` row tiles (Q, dO or K, V), the dK/dV
kernel's per-stage query values, then two stages of mask bits.
"""

from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, llvm, vector

from . import wgmma
from .backward_kernels import _DkvKernel, _DqKernel
from .builder import add, ci, cx, f32_type, i32_type, icmp, mul, to_index
from .wgmma_tiles import WgmmaTiles


class _WgmmaBackward(WgmmaTiles):
    """The products and shared memory both wgmma backward kernels share (a mixin before the
    mma.sync kernel class)."""

    def __init__(self, cfg, args, names):
        super().__init__(cfg, args, names)
        self.ptx_type = cfg.dtype  # "bf16" / "f16" are also the PTX type names
        self.kv_bytes = self.BN * self.D * 2

    def _setup_smem(self):
        """Replaces the mma.sync kernels' padded layout (the module docstring's layout)."""
        self._dynamic_shared_memory()
        # [stage][part 0 / part 1][BLOCK_N * D elements in the tile layout]
        self.kv_s = self._shared_view([2, 2, self.BN * self.D], self.elem, 0)
        base = wgmma.smem_address(self.kv_s)
        # each part as the B operand of a score product (K-major: its K is D) and of a
        # gradient product (MN-major: its K is the part's BLOCK_N rows, N is D)
        self.part_k_major = [wgmma.advance(self.layout.k_major(base, self.BN), p * self.kv_bytes)
                             for p in (0, 1)]
        self.part_mn_major = [wgmma.advance(self.layout.mn_major(base, self.BN),
                                            p * self.kv_bytes) for p in (0, 1)]
        if self.masked:
            cfg = self.bwd_cfg
            self.bits_s = self._shared_view([2, self.BM * self.cfg.words], i32_type(),
                                            cfg.bits_offset)

    def _row_tile(self, offset: int):
        """A ``BLOCK_M x D`` row tile at byte ``offset`` in the tile layout, and its descriptor
        as a K-major A operand (wgmma's A of the score products): each warpgroup's starts at
        its 64 rows."""
        tile = self._shared_view([self.BM * self.D], self.elem, offset)
        desc = self.layout.k_major(wgmma.smem_address(tile), self.BM)
        if self.BM == 64:
            return tile, desc
        warpgroup = arith.shrui(self.warp, ci(2))
        return tile, wgmma.advance(desc, mul(warpgroup, self.layout.row_bytes(64)))

    def load_q_frags(self):
        """No operand fragments in registers: wgmma reads A from shared memory."""
        return None

    # --- products ---------------------------------------------------------------------------------
    def _scores_issue(self, a_desc, part: int, stage):
        """Issue ``A Bᵀ`` (64 x BLOCK_N, f32) with A the row tile of descriptor ``a_desc`` and B
        ``part`` of ``stage``; not waited for."""
        steps = range(self.D // 16)
        b_descs = wgmma.DescriptorSteps(self._stage_descriptor(self.part_k_major[part], stage),
                                        tuple(self.layout.k_step(kk, self.BN) for kk in steps))
        a_descs = wgmma.DescriptorSteps(a_desc,
                                        tuple(self.layout.k_step(kk, self.BM) for kk in steps))
        undef = llvm.mlir_undef(f32_type())
        return wgmma.mma_async([undef] * (self.BN // 2), a_descs, b_descs, n=self.BN,
                               ptx_type=self.ptx_type, trans_b=False, accumulate=False,
                               wait_group=None, a_in_smem=True)

    def _scores_wait(self, pending, groups_after: int):
        """The score product ``pending`` as ``[m16][n8][4]`` tiles, once at most
        ``groups_after`` newer groups are still in flight."""
        return self._tiles(wgmma.wait(pending, groups_after), self.BN)

    def _gradient_issue(self, x, acc, part: int, stage):
        """Issue ``acc += X B`` (64 x D, f32) with X the f32 tile ``x`` (64 x BLOCK_N, packed
        as A fragments) and B ``part`` of ``stage``; the flat accumulators come back pending."""
        b_descs = wgmma.DescriptorSteps(self._stage_descriptor(self.part_mn_major[part], stage),
                                        tuple(self.layout.mn_step(kk)
                                              for kk in range(self.BN // 16)))
        return wgmma.mma_async(self._flat(acc), self.pack_a(x), b_descs, n=self.D,
                               ptx_type=self.ptx_type, trans_b=True, accumulate=True,
                               wait_group=None)

    def _gradients_wait(self, pending: list):
        """Every product in flight completed; ``pending`` (flat accumulator lists) as
        ``[m16][n8][4]`` tiles, in order."""
        done = wgmma.wait([x for flat in pending for x in flat], 0)
        n = self.D // 2
        return [self._tiles(done[i * n:(i + 1) * n], self.D) for i in range(len(pending))]

    def _acquire(self, it, n_iter, keys, stage):
        """Tile ``it`` landed in ``stage`` (fenced for the async proxy, CTA barrier: every
        product of the previous tile completed before it) and tile ``it + 1`` prefetched into
        the other stage."""
        self._wait_for_tile()
        self._load_next_tile(it, n_iter, keys, lambda: arith.xori(stage, cx(1)))


class WgmmaDqKernel(_WgmmaBackward, _DqKernel):
    """dQ on wgmma: stages ``[K][V]`` (parts 0, 1), the Q and dO tiles after them."""

    K, V = 0, 1

    def _setup_smem(self):
        super()._setup_smem()
        cfg = self.bwd_cfg
        self.q_core, self.q_desc = self._row_tile(cfg.q_offset)
        self.do_core, self.do_desc = self._row_tile(cfg.do_offset)

    def load_row_operands(self):
        """Q and dO: read once, into their tiles (rows past ``nrows`` zero)."""
        prefix = [self.b, self.h]
        self._copy_tile_rows(self.BM, self._tile_row, [(self.q_core, [], self.q, prefix),
                                                       (self.do_core, [], self.do, prefix)])

    def _do_chunk(self, r, col):
        offset = self.layout.offset(r, arith.shrui(col, ci(3)), self.BM)
        return vector.load(ir.VectorType.get([8], self.elem), self.do_core, [to_index(offset)],
                           alignment=16)

    def _key_tile_dq(self, it, state, q_frags, do_frags, rows, n_iter, c):
        neg_lse2, delta = rows
        u0 = state["u0"]
        stage = arith.andi(it, cx(1))
        keys = self._tile_keys(it, state["seg"], u0)
        self._acquire(it, n_iter, keys, stage)
        s = self._scores_issue(self.q_desc, self.K, stage)
        dp = self._scores_issue(self.do_desc, self.V, stage)
        s = self._masked_scores(self._scores_wait(s, 1), keys, u0, stage)
        p = self._probabilities(s, c, neg_lse2)  # while dP is on the tensor cores
        ds = self._score_gradients(p, self._scores_wait(dp, 0), delta)
        (dq,) = self._gradients_wait([self._gradient_issue(ds, state["dq"], self.K, stage)])
        return dict(seg=keys["nseg"], u0=keys["nu0"], dq=dq)


class WgmmaDkvKernel(_WgmmaBackward, _DkvKernel):
    """dK/dV on wgmma: stages ``[Q][dO]`` (parts 0, 1) gathered by the column schedule, the K
    and V tiles after them, then the query values."""

    Q, DO = 0, 1

    def _setup_smem(self):
        super()._setup_smem()
        cfg = self.bwd_cfg
        self.k_core, self.k_desc = self._row_tile(cfg.key_rows_offset)
        self.v_core, self.v_desc = self._row_tile(cfg.key_rows_offset + cfg.row_tile_bytes)
        self.qvals = self._shared_view([2, 2, self.BN], f32_type(), cfg.query_values_offset)

    def load_row_operands(self):
        """The tile's K and V rows (kv head ``kvh``), read for every query tile."""
        prefix = [self.b, self.kvh]
        self._copy_tile_rows(self.BM, self._tile_row, [(self.k_core, [], self.k, prefix),
                                                       (self.v_core, [], self.v, prefix)])

    def _load_kv_rows(self, col0, col_step, ncols, u0, stage):
        """Gather the query tile ``col0 + col_step*u``, ``u in [u0, u0 + BLOCK_N)`` (zero past
        ``ncols``) of query head ``h``: Q rows into part 0 of ``stage``, dO rows into part 1,
        and the queries' lse and Δ."""
        def q_row(r):
            u = add(u0, r)
            return icmp("slt", u, ncols), add(col0, mul(col_step, u))

        prefix = [self.b, self.h]
        self._copy_tile_rows(self.BN, q_row, [(self.kv_s, [stage, cx(self.Q)], self.q, prefix),
                                              (self.kv_s, [stage, cx(self.DO)], self.do, prefix)])
        self._copy_query_values(q_row, stage)

    def _query_tile(self, it, state, frags, n_iter, c, grads):
        u0 = state["u0"]
        stage = arith.andi(it, cx(1))
        keys = self._tile_keys(it, state["seg"], u0)
        self._acquire(it, n_iter, keys, stage)
        with_dk, with_dv = "dk" in grads, "dv" in grads
        s = self._scores_issue(self.k_desc, self.Q, stage)  # Sᵀ = K Qᵀ
        dp = self._scores_issue(self.v_desc, self.DO, stage) if with_dk else None  # dPᵀ = V dOᵀ
        s = self._masked_scores(self._scores_wait(s, int(with_dk)), keys, u0, stage)
        p = [[self._column_probabilities(s, c, stage, 0, j) for j in range(self.BN // 8)]]
        pending, names = [], []
        if with_dv:  # dV += Pᵀ dO runs while dSᵀ is computed
            pending.append(self._gradient_issue(p, state["dv"], self.DO, stage))
            names.append("dv")
        if with_dk:
            dp = self._scores_wait(dp, int(with_dv))
            ds = [[self._column_score_gradients(p[0][j], dp, stage, 0, j)
                   for j in range(self.BN // 8)]]
            pending.append(self._gradient_issue(ds, state["dk"], self.Q, stage))
            names.append("dk")
        out = dict(seg=keys["nseg"], u0=keys["nu0"])
        out.update(zip(names, self._gradients_wait(pending)))
        return out
