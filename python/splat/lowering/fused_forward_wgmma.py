"""The fused forward kernel on Hopper warpgroup MMA (``FusedForwardConfig(mma="wgmma")``, sm_90a).

Same CTA (one warpgroup = 4 warps, a 64-row tile: wgmma's native M), same ABI, tables, key loop,
masking and online softmax as fused_forward.py; only the two matrix products change:

* S = Q Kᵀ: ``wgmma m64n{BLOCK_N}k16`` per k16 step of D, A = the Q fragments in registers
  (loaded once by ldmatrix, as before), B = the K tile read by the tensor cores from shared
  memory (K-contiguous).  It is issued, the next key tile's cp.async prefetch is issued behind
  it, and only then does the warpgroup wait for S.
* O += P V: ``wgmma m64n{D}k16`` per k16 step of the key tile, A = P straight from the softmax
  registers, B = the V tile in shared memory (D-contiguous, i.e. "transposed" B).

So K and V never pass through registers (the mma.sync kernel's ldmatrix traffic, its limit on
dense tiles), and the gather of arbitrary key sequences (``col0 + col_step*u``, zero-filled past
``ncols``, mask tiles) stays the cp.async code it was.  K/V tiles are stored as core matrices
(wgmma.py), stages ordered ``[K0][V0][K1][V1]`` so that the Q tile and the staged output (padded
rows, for ldmatrix and the 16-byte stores) fit in stage 1; split-KV's row weights go to K0.

cp.async writes shared memory through the generic proxy and wgmma reads it through the async
proxy, so every thread fences (``fence.proxy.async``) between its cp.async wait and the barrier.
"""

from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, llvm, memref, nvgpu

from . import wgmma
from .builder import add, ci, const, cx, f32_type, icmp, mul, select, to_index, udiv
from .fused_forward import CHUNK, _FusedForwardKernel

class WgmmaForwardKernel(_FusedForwardKernel):
    """The fused kernel with S and P V on wgmma (see the module docstring)."""

    def __init__(self, cfg, args):
        super().__init__(cfg, args)
        self.ptx_type = cfg.dtype  # "bf16" / "f16" are also the PTX type names
        self.kv_bytes = cfg.kv_tile_bytes

    # --- shared memory --------------------------------------------------------------------------
    def _setup_kv_smem(self, raw, ws):
        """The K and V stages as core matrices, with their stage-0 wgmma descriptors (the Q,
        bits and split-KV views come from the base class at the config's offsets)."""
        # [stage][K=0 / V=1][BLOCK_N * D elements as core matrices]
        kv_ty = ir.MemRefType.get([2, 2, self.BN * self.D], self.elem, memory_space=ws)
        self.kv_s = memref.view(kv_ty, raw, cx(0), [])
        base = wgmma.smem_address(self.kv_s)
        chunk_column = self.BN * 16  # bytes between core matrices along the D chunks
        # leading = between core matrices along the product's K, stride = along its N
        k_lead, k_stride = chunk_column, wgmma.CORE_BYTES  # K: K dim = D, N dim = keys
        v_lead, v_stride = wgmma.CORE_BYTES, chunk_column  # V: K dim = keys, N dim = D
        self.k_desc0 = wgmma.matrix_descriptor(base, leading_bytes=k_lead, stride_bytes=k_stride)
        self.v_desc0 = wgmma.advance(
            wgmma.matrix_descriptor(base, leading_bytes=v_lead, stride_bytes=v_stride),
            self.kv_bytes)

    def _stage_descriptor(self, desc0, stage):
        """``desc0`` moved to ``stage`` (an index, 0 or 1): stages are 2 tiles apart."""
        i64 = ir.IntegerType.get_signless(64)
        step = const(i64, (2 * self.kv_bytes) >> 4)  # in the address field's 16-byte units
        return arith.addi(desc0, arith.muli(arith.index_cast(i64, stage), step))

    def _load_kv_rows(self, col0, col_step, ncols, u0, stage):
        """Gather key/value rows ``col0 + col_step*u``, ``u in [u0, u0+BLOCK_N)`` (zero past
        ``ncols``) into ``stage`` as core matrices.  8 consecutive threads copy one 16-byte chunk
        of 8 consecutive rows: one core matrix, 128 contiguous bytes of shared memory (no bank
        conflict), and a warp reads 64 contiguous bytes of each of 8 rows."""
        chunks = self.D // CHUNK
        rows_per_pass = self.threads // chunks
        assert self.BN % rows_per_pass == 0
        tid = self.tid
        chunk = arith.remui(arith.shrui(tid, ci(3)), ci(chunks))
        r_first = add(arith.andi(tid, ci(7)), mul(udiv(arith.shrui(tid, ci(3)), chunks), 8))
        col = to_index(mul(chunk, CHUNK))
        for i in range(self.BN // rows_per_pass):
            r = add(r_first, i * rows_per_pass)
            u = add(u0, r)
            valid = icmp("slt", u, ncols)
            grow = select(valid, add(col0, mul(col_step, u)), 0)
            n_src = select(valid, cx(CHUNK), cx(0))
            dst = to_index(wgmma.core_matrix_offset(r, chunk, self.BN))
            for kind, src in ((0, self.k), (1, self.v)):
                nvgpu.device_async_copy(
                    self.kv_s, [stage, cx(kind), dst],
                    src, [self.b, self.hkv, to_index(grow), col],
                    CHUNK, src_elements=n_src, bypass_l1=True)

    # --- the two products -----------------------------------------------------------------------
    def load_q_frags(self):
        """The base class's ``[m16 tile][k16 step]``: one m16 tile a warp (warp_rows 16)."""
        return [[wgmma.pack_a_fragment(f) for f in frags] for frags in super().load_q_frags()]

    def publish_tile(self):
        wgmma.fence_proxy_async()

    def qk_scores(self, q_frags, stage):
        """Issue S = Q Kᵀ (not waited for: see scores_ready)."""
        desc = self._stage_descriptor(self.k_desc0, stage)
        step = 2 * self.BN * 16  # one k16 step = two chunk columns of the K tile
        descs = [wgmma.advance(desc, kk * step) for kk in range(self.D // 16)]
        undef = llvm.mlir_undef(f32_type())
        return wgmma.mma_async([undef] * (self.BN // 2), q_frags[0], descs, n=self.BN,
                               ptx_type=self.ptx_type, trans_b=False, accumulate=False,
                               wait_group=None)

    def scores_ready(self, s_flat):
        s = wgmma.wait(s_flat)
        return [[s[4 * j:4 * j + 4] for j in range(self.BN // 8)]]

    def pv_accumulate(self, p, o, stage):
        desc = self._stage_descriptor(self.v_desc0, stage)
        step = 2 * wgmma.CORE_BYTES  # one k16 step = 16 keys = two core-matrix rows
        descs = [wgmma.advance(desc, kk * step) for kk in range(self.BN // 16)]
        p, o = p[0], o[0]  # one m16 tile a warp
        a = [wgmma.pack_a_fragment(self.ops.a_from_f32(p[2 * kk] + p[2 * kk + 1]))
             for kk in range(self.BN // 16)]
        flat = wgmma.mma_async([x for tile in o for x in tile], a, descs, n=self.D,
                               ptx_type=self.ptx_type, trans_b=True, accumulate=True,
                               wait_group=0)
        return [[flat[4 * j:4 * j + 4] for j in range(self.D // 8)]]

