"""The backward's dQ kernel (issue 14): ``gpu.func @splat_bwd_dq_<dtype>_d<D>[_masked]``.

It walks the forward's row schedule exactly as the forward kernel does (same CTA, grid, tables,
double-buffered K/V gathers, masks: fused_forward.py's helpers) and, per key tile, computes what
`splat.tiling.backward.run_backward` computes for dQ (docs/design.md §6):

    S  = Q Kᵀ                        (the forward's qk_scores)
    P  = exp2(S·scale·log2 e − lse·log2 e)   from the forward's lse: no online softmax
    dP = dO Vᵀ                       (qk_scores with dO's fragments, V in K's place)
    dS = P ∘ (dP − Δ)                Δ = rowsum(dO ∘ O) per row, an input
    dQ += dS K                       (pv_accumulate with dS, K in V's place)

and stores ``dQ · scale`` for the tile's rows. dO is loaded once beside Q (its own shared
memory after the forward's layout) and both stay in registers as A fragments. Rows without keys
(lse = −inf) have every score masked, so their P is 0 and their dQ 0.

mma.sync only, 64-row tiles on 16-row warps (the forward's default variant). Built and
assembled here (ptxas, no spills); not yet run on a GPU, wired into an artifact or called by
autograd (issue 14's next steps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlir import ir
from mlir.dialects import arith, gpu, memref, nvvm, vector

from .. import abi
from .builder import (LOG2E, add, cf, ci, cx, exp2, f32_type, fcmp, fma, for_range, i32_type,
                      icmp, if_then, mul, select, sub, to_index)
from .fused_forward import FusedForwardConfig, _FusedForwardKernel
from .modules import find_or_create_gpu_module

__all__ = ["DqConfig", "build_dq_into"]


@dataclass(frozen=True)
class DqConfig:
    """The dQ kernel's build options: the forward's, less the variants it does not have."""

    dtype: str
    head_dim: int
    block_n: int | None = None
    mask_tiles: bool = False

    def forward(self) -> FusedForwardConfig:
        """The forward configuration whose layout, tiles and loop this kernel shares."""
        return FusedForwardConfig(self.dtype, self.head_dim, self.block_n,
                                  mask_tiles=self.mask_tiles)

    @property
    def name(self) -> str:
        return abi.dq_kernel_name(self.dtype, self.head_dim, self.mask_tiles)

    @property
    def do_offset(self) -> int:
        """Byte offset of the dO tile (padded rows): after the forward's shared memory."""
        return self.forward().shared_bytes

    @property
    def shared_bytes(self) -> int:
        fwd = self.forward()
        return self.do_offset + fwd.block_m * fwd.row_stride * 2


class _DqKernel(_FusedForwardKernel):
    def __init__(self, cfg: DqConfig, args):
        super().__init__(cfg.forward(), [args[0], args[1], args[2], None, args[4]] + args[7:])
        self.dq_cfg = cfg
        self.do, self.delta, self.dq = args[3], args[5], args[6]

    def _setup_smem(self):
        super()._setup_smem()
        ws = ir.Attribute.parse("#gpu.address_space<workgroup>")
        dyn = ir.ShapedType.get_dynamic_size()
        raw = gpu.dynamic_shared_memory(
            ir.MemRefType.get([dyn], ir.IntegerType.get_signless(8), memory_space=ws))
        do_ty = ir.MemRefType.get([self.BM, self.SD], self.elem, memory_space=ws)
        self.dos = memref.view(do_ty, raw, cx(self.dq_cfg.do_offset), [])

    def _q_row(self, r):
        return icmp("slt", r, self.nrows), add(self.row0, mul(self.row_step, r))

    def _row_values(self):
        """Per row slot: −lse·log2 e (0 where lse = −inf: such a row's scores are all masked)
        and Δ; rows past the tile read row 0 (their results are never stored)."""
        neg_lse2, delta = [], []
        for row in self.rows:
            valid, grow = self._q_row(row)
            idx = [self.b, self.h, to_index(select(valid, grow, 0))]
            lse = memref.load(self.lse, idx)
            live = fcmp("ogt", lse, -math.inf)
            neg_lse2.append(select(live, arith.negf(mul(lse, cf(LOG2E))), cf(0.0)))
            delta.append(memref.load(self.delta, idx))
        return neg_lse2, delta

    def load_row_operands(self):
        """Q and dO: both read once, into registers."""
        self.load_q_tile()
        self._async_copy_rows(self.dos, [], self.BM, self.do, [self.b, self.h], self._q_row)

    def emit(self):
        n_iter = self._setup()
        c = mul(self.scale, cf(LOG2E))
        self._prologue(n_iter)
        q_frags = self.load_q_frags()
        do_frags = [[self._q_frag(mt, kk, self.dos) for kk in range(self.D // 16)]
                    for mt in range(self.MT)]
        neg_lse2, delta = self._row_values()

        zero = cf(0.0)
        init = dict(seg=self.seg_begin, u0=ci(0),
                    dq=[[[zero] * 4 for _ in range(self.D // 8)] for _ in range(self.MT)])
        final = for_range(cx(0), to_index(n_iter), cx(1),
                          lambda it, state: self._dq_tile(it, state, q_frags, do_frags,
                                                          neg_lse2, delta, n_iter, c), init)
        nvvm.cp_async_wait_group(0)
        self._store_dq(final["dq"])

    def _dq_tile(self, it, state, q_frags, do_frags, neg_lse2, delta, n_iter, c):
        u0 = state["u0"]
        stage = arith.andi(it, cx(1))
        keys = self._tile_keys(it, state["seg"], u0)
        self._wait_for_tile()
        self._load_next_tile(it, n_iter, keys, lambda: arith.xori(stage, cx(1)))
        s = self._masked_scores(self.qk_scores(q_frags, stage), keys, u0, stage)
        dp = self.qk_scores(do_frags, stage, kbuf=self.vs)
        ds = []
        for mt in range(self.MT):
            ds.append([])
            for j in range(self.BN // 8):
                vals = []
                for e in range(4):
                    slot = 2 * mt + e // 2
                    p = exp2(fma(s[mt][j][e], c, neg_lse2[slot]))
                    vals.append(mul(p, sub(dp[mt][j][e], delta[slot])))
                ds[mt].append(vals)
        dq = self.pv_accumulate(ds, state["dq"], stage, vbuf=self.ks)
        return dict(seg=keys["nseg"], u0=keys["nu0"], dq=dq)

    def _store_dq(self, dq):
        """``dQ · scale`` in the input dtype, two elements a store, rows of the tile only."""
        vec2 = ir.VectorType.get([2], self.elem)
        for mt in range(self.MT):
            for slot in (2 * mt, 2 * mt + 1):
                half = slot % 2
                valid, grow = self._q_row(self.rows[slot])
                with if_then(valid):
                    for j, acc in enumerate(dq[mt]):
                        pair = [arith.truncf(self.elem, mul(acc[2 * half + e], self.scale))
                                for e in range(2)]
                        col = to_index(add(mul(self.t, 2), 8 * j))
                        vector.store(vector.from_elements(vec2, pair), self.dq,
                                     [self.b, self.h, to_index(grow), col], alignment=4)


def build_dq_into(module: ir.Module, cfg: DqConfig) -> ir.Module:
    """Emit ``gpu.func @splat_bwd_dq_...`` (arguments: ``abi.dq_kernel_params``) into the
    module's ``gpu.module @splat_kernels``."""
    gm = find_or_create_gpu_module(module)
    dyn = ir.ShapedType.get_dynamic_size()
    elem = ir.BF16Type.get() if cfg.dtype == "bf16" else ir.F16Type.get()
    strided = ir.StridedLayoutAttr.get(offset=0, strides=[dyn, dyn, dyn, 1])
    in4 = ir.MemRefType.get([dyn] * 4, elem, layout=strided)
    rows_f32 = ir.MemRefType.get([dyn] * 3, f32_type())
    arg_types = [in4, in4, in4, in4, rows_f32, rows_f32, ir.MemRefType.get([dyn] * 4, elem),
                 ir.MemRefType.get([dyn, len(abi.ROW_TILE_FIELDS)], i32_type()),
                 ir.MemRefType.get([dyn, len(abi.SEGMENT_FIELDS)], i32_type()), f32_type()]
    if cfg.mask_tiles:
        arg_types += [ir.MemRefType.get([dyn], i32_type()),
                      ir.MemRefType.get([dyn, len(abi.MASK_TILE_FIELDS)], i32_type()),
                      ir.MemRefType.get([dyn] * 3, i32_type())]
    fwd = cfg.forward()
    with ir.InsertionPoint(gm.bodyRegion.blocks[0]):
        fn = gpu.GPUFuncOp(ir.FunctionType.get(arg_types, []), sym_name=cfg.name, kernel=True,
                           known_block_size=[fwd.num_threads, 1, 1])
        entry = fn.add_entry_block()
        with ir.InsertionPoint(entry):
            _DqKernel(cfg, list(entry.arguments)).emit()
            gpu.return_([])
    return module
