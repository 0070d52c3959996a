"""The fused forward kernel on Hopper warpgroup MMA (``FusedForwardConfig(mma="wgmma")``, sm_90a).

Same ABI, tables, masking and online softmax as fused_forward.py; each 4 warps are one
warpgroup owning 64 rows (wgmma's native M), and the default 128-row tiles
(``abi.WGMMA_BLOCK_M``) run two warpgroups on every K/V tile.  The products:

* S = Q Kᵀ: ``wgmma m64n{BLOCK_N}k16`` per k16 step of D with both operands read by the tensor
  cores from shared memory: Q (loaded once, in the tile layout; each warpgroup's descriptor
  starts at its 64 rows) and the K tile (K-contiguous).  Q takes no registers, which is what
  lets two 256-thread CTAs share an SM at 128 registers a thread.
* O += P V: ``wgmma m64n{D}k16`` per k16 step of the key tile, A = P straight from the softmax
  registers, B = the V tile in shared memory (D-contiguous, i.e. "transposed" B).

The key loop is software-pipelined (`emit`): P V of tile j - 1 runs on the tensor cores while
tile j is masked and its softmax computed, so K/V take three stages.  K and V never pass
through registers, and the gather of arbitrary key sequences (``col0 + col_step*u``,
zero-filled past ``ncols``, mask tiles) stays cp.async.  Q, K and V tiles are stored 128-byte
swizzled (``wgmma.SWIZZLED_128B``; ``SWIZZLE = False``: interleaved core matrices; the
gathers and descriptors are wgmma_tiles.py's, shared with the backward), K/V in
stages ``[K0][V0][K1][V1][K2][V2]``; the staged output (padded rows, 16-byte stores)
reuses stage 1 onwards after the loop; split-KV's row weights go to K0.

cp.async writes shared memory through the generic proxy and wgmma reads it through the async
proxy, so every thread fences (``fence.proxy.async``) between its cp.async wait and the barrier.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

from mlir import ir
from mlir.dialects import arith, gpu, llvm, memref, nvgpu, nvvm

from .. import abi
from . import sync, wgmma
from .builder import (LOG2E, add, band, cf, ci, cx, f32_type, for_range, icmp, if_else, if_then,
                      mul, sub, to_i32, to_index)
from .fused_forward import _FusedForwardKernel
from .wgmma_tiles import WgmmaTiles


class WgmmaForwardKernel(WgmmaTiles, _FusedForwardKernel):
    """The fused kernel with S and P V on wgmma (see the module docstring)."""

    def __init__(self, cfg, args):
        super().__init__(cfg, args)
        self.ptx_type = cfg.dtype  # "bf16" / "f16" are also the PTX type names
        self.kv_bytes = cfg.kv_tile_bytes
        self.q_regs = None  # Q's A fragments per k16 step, where a subclass keeps them

    # --- shared memory --------------------------------------------------------------------------
    def _setup_kv_smem(self, raw, ws):
        """The K and V stages in the tile layout, with their stage-0 wgmma descriptors (the Q,
        bits and split-KV views come from the base class at the config's offsets)."""
        # [stage][K=0 / V=1][BLOCK_N * D elements in the tile layout]
        kv_ty = ir.MemRefType.get([self.cfg.kv_stages, 2, self.BN * self.D], self.elem,
                                  memory_space=ws)
        self.kv_s = memref.view(kv_ty, raw, cx(0), [])
        base = wgmma.smem_address(self.kv_s)
        self.k_desc0 = self.layout.k_major(base, self.BN)  # S = Q Kᵀ: K's K dim is D
        self.v_desc0 = wgmma.advance(self.layout.mn_major(base, self.BN), self.kv_bytes)
        # Q in the same layout as K: wgmma's A operand of S = Q Kᵀ straight from shared memory,
        # so Q's fragments take no registers (that buys the second CTA per SM). A warpgroup's
        # descriptor starts at its 64 rows.
        q_ty = ir.MemRefType.get([self.BM * self.D], self.elem, memory_space=ws)
        self.q_core = memref.view(q_ty, raw, cx(self.cfg.q_core_offset), [])
        q_desc = self.layout.k_major(wgmma.smem_address(self.q_core), self.BM)
        warpgroup = arith.shrui(self.warp, ci(2))
        self.q_desc0 = wgmma.advance(q_desc, mul(warpgroup, self.layout.row_bytes(64)))

    def load_q_tile(self):
        """The Q tile into ``q_core`` (core matrices), rows past ``nrows`` zero."""
        def q_row(r):
            return icmp("slt", r, self.nrows), add(self.row0, mul(self.row_step, r))

        self._copy_tile_rows(self.BM, q_row, [(self.q_core, [], self.q, [self.b, self.h])])

    # --- the two products -----------------------------------------------------------------------
    def qk_scores(self, q_frags, stage):
        """Issue S = Q Kᵀ for the K tile in ``stage``, Q from ``q_core`` or, where
        ``self.q_regs`` holds them, from registers (``q_frags`` unused); not waited for
        (`wgmma.wait` before reading S)."""
        desc = self._stage_descriptor(self.k_desc0, stage)
        descs = [wgmma.advance(desc, self.layout.k_step(kk, self.BN)) for kk in range(self.D // 16)]
        undef = llvm.mlir_undef(f32_type())
        if self.q_regs is not None:
            return wgmma.mma_async([undef] * (self.BN // 2), self.q_regs, descs, n=self.BN,
                                   ptx_type=self.ptx_type, trans_b=False, accumulate=False,
                                   wait_group=None)
        q_descs = [wgmma.advance(self.q_desc0, self.layout.k_step(kk, self.BM))
                   for kk in range(self.D // 16)]
        return wgmma.mma_async([undef] * (self.BN // 2), q_descs, descs, n=self.BN,
                               ptx_type=self.ptx_type, trans_b=False, accumulate=False,
                               wait_group=None, a_in_smem=True)

    def load_q_registers(self):
        """This warp's 16 rows of ``q_core`` as wgmma A fragments, one per k16 step (x4
        ldmatrix: a core matrix is an 8x8 ldmatrix matrix; matrices (rows 0-7 / 8-15) x
        (k 0-7 / 8-15) give registers a0..a3, as for mma.sync)."""
        mi = arith.shrui(self.lane, ci(3))
        row = add(add(self.warp_row0, mul(arith.andi(mi, ci(1)), 8)),
                  arith.andi(self.lane, ci(7)))
        half = arith.shrui(mi, ci(1))
        frags = []
        for kk in range(self.D // 16):
            offset = self.layout.offset(row, add(half, 2 * kk), self.BM)
            v = nvgpu.ldmatrix(ir.VectorType.get([4, 2], self.elem), self.q_core,
                               [to_index(offset)], False, 4)
            frags.append(wgmma.pack_a_fragment(self.ops.a_from_ldmatrix(v)))
        return frags

    def pv_issue(self, a, o, stage):
        """Issue O += P V (A = packed P fragments, V in ``stage``) without waiting: the
        accumulators come back pending (`wgmma.wait` before reading them)."""
        desc = self._stage_descriptor(self.v_desc0, stage)
        descs = [wgmma.advance(desc, self.layout.mn_step(kk)) for kk in range(self.BN // 16)]
        flat = wgmma.mma_async(self._flat(o), a, descs, n=self.D,
                               ptx_type=self.ptx_type, trans_b=True, accumulate=True,
                               wait_group=None)
        return self._tiles(flat, self.D)

    def _wait_o(self, o, pending=0):
        return self._tiles(wgmma.wait(self._flat(o), pending), self.D)

    # --- the key loop: P V of tile j - 1 overlaps tile j ------------------------------------------
    def emit(self):
        """The mma.sync kernel's prologue, loop and epilogue, software-pipelined for wgmma.

        Key tile j: wait for its K/V (the only cp.async group in flight), fence and barrier,
        prefetch tile j + 1 into the next of 3 stages, issue S_j = Q K_jᵀ, then issue
        O += P_{j-1} V_{j-1} (an empty group at j = 0), wait for S_j only (wait_group 1), mask,
        and run the softmax of tile j while the tensor cores accumulate P_{j-1} V_{j-1}; O is
        waited for where the lazy rescale needs it and at the end of the iteration. The last
        tile's P V runs after the loop. Stage of tile j: j mod 3; tile j + 1 loads into the
        stage of tile j - 2, whose P V every warp finished before the barrier."""
        n_iter = self._setup()
        c = mul(self.scale, cf(LOG2E))

        # Prologue: Q and the first key tile (one cp.async group each; the loop waits for both).
        self.load_q_tile()
        nvvm.cp_async_commit_group()
        with if_then(icmp("sgt", n_iter, 0)):
            self.load_key_tile(ci(0), self.seg_begin, ci(0), cx(0))
        nvvm.cp_async_commit_group()

        final, o = self._key_loop(n_iter, c)
        nvvm.cp_async_wait_group(0)
        self.write_output(final["m"], final["l"], o)

    def _key_loop(self, n_iter, c, **extra):
        """The pipelined key loop (`_pipelined_tile`) and the last tile's P V after it; ``extra``
        is a subclass's own loop state. Returns the final loop state and O."""
        ninf, zero = cf(-math.inf), cf(0.0)
        init = dict(seg=self.seg_begin, u0=ci(0), m=[ninf] * 2, l=[zero] * 2,
                    o=[[[zero] * 4 for _ in range(self.D // 8)]],
                    a=[[ci(0)] * 4 for _ in range(self.BN // 16)], stage=cx(0), prev=cx(0),
                    **extra)
        final = for_range(cx(0), to_index(n_iter), cx(1),
                          lambda it, state: self._pipelined_tile(it, state, n_iter, c), init)
        o = final["o"]
        o = if_else(icmp("sgt", n_iter, 0), o,
                    lambda: self._wait_o(self.pv_issue(final["a"], o, final["prev"])),
                    lambda: o)
        return final, o

    def _pipelined_tile(self, it, state, n_iter, c):
        u0, stage, prev = state["u0"], state["stage"], state["prev"]
        keys = self._tile_keys(it, state["seg"], u0)
        after = self._advance(state)
        self._acquire_tile(it, n_iter, keys, state, after)

        s_pending = self.qk_scores(None, stage)
        # P V of the previous tile (at j = 0 an empty group, so wait_group 1 below always
        # leaves exactly this group pending). A branch, not a predicated wgmma: predicated, the
        # untouched accumulators make ptxas serialise every wgmma (C7515).
        o = state["o"]
        later = arith.cmpi(arith.CmpIPredicate.ugt, it, cx(0))
        o = if_else(later, o, lambda: self.pv_issue(state["a"], o, prev),
                    lambda: (wgmma.commit_empty_group(), o)[1])
        self._products_issued()
        s_tiles = self._tiles(wgmma.wait(s_pending, 1), self.BN)
        s_tiles = self._masked_scores(s_tiles, keys, u0, stage)
        p, m, l, o = self.online_softmax_update(s_tiles, state["m"], state["l"], o, c,
                                                prepare_o=self._wait_o)
        o = self._wait_o(o)
        self._release_tile(later, prev)
        return dict(seg=keys["nseg"], u0=keys["nu0"], m=m, l=l, o=o, a=self.pack_a(p),
                    prev=stage, **after)

    # Hooks of the key loop: how a tile's K/V arrive and leave, and where the stages go next.
    def _advance(self, state) -> dict:
        """The loop state's stage fields for the next tile: stages cycle 0, 1, 2."""
        stage = state["stage"]
        last = arith.cmpi(arith.CmpIPredicate.eq, stage, cx(self.cfg.kv_stages - 1))
        return dict(stage=arith.select(last, cx(0), arith.addi(stage, cx(1))))

    def _acquire_tile(self, it, n_iter, keys, state, after):
        """Before tile ``it``'s products: wait for its copies (the only group in flight) and a
        CTA barrier, then prefetch tile it + 1 into the next stage."""
        self._wait_for_tile()
        self._load_next_tile(it, n_iter, keys, lambda: after["stage"])

    def _products_issued(self):
        """After S_j and P_{j-1} V_{j-1} are issued (nothing to do here)."""

    def _release_tile(self, later, prev):
        """After P_{j-1} V_{j-1} has completed: stage ``prev`` is read no more (the next
        iteration's barrier says so here)."""


class WarpSpecializedWgmmaKernel(WgmmaForwardKernel):
    """The wgmma kernel with its K/V loads on a producer warpgroup (``cfg.load_warpgroup``).

    The CTA is the compute warpgroups (threads ``0 .. compute_threads - 1``, the rows as in the
    parent class) and one producer warpgroup after them. They meet only at mbarriers (sync.py):

    * producer, key tile t in stage ``t mod S`` (S = ``cfg.kv_stages``): wait until the stage is
      empty, gather the tile (the parent's cp.async gather, run by 128 threads), commit; then
      wait for tile t - 1's group, fence it for the async proxy and arrive on that stage's
      *full* barrier (tile t stays in flight meanwhile);
    * compute warpgroups: wait for the stage's *full* barrier instead of their own copies and a
      CTA barrier, run the parent's pipelined tile (S_j, P_{j-1} V_{j-1}, softmax), and once
      P_{j-1} V_{j-1} has completed (the last read of tile j - 1's stage), one lane a warp
      arrives on that stage's *empty* barrier.

    Tile t can load while tiles t - S + 2 .. t - 1 wait and tile t - S + 1 is computed, so at
    S = 4 a tile has two key tiles' compute time to land. ``setmaxnreg`` moves registers from
    the producer (``PRODUCER_REGISTERS``) to the compute warpgroups (`compute_registers`).
    Q is loaded by the compute threads, which then sync on a named
    barrier (the producer never waits for Q), as they do around the output staging.
    """

    PRODUCER_REGISTERS = 48  # 40 spilled 8 bytes in the masked variant (ptxas)
    ROW_BARRIER = 1  # named barrier id of the compute threads
    # Ping-pong (FlashAttention-3's inter-warpgroup schedule): the compute warpgroups take turns
    # issuing their products, so one's softmax runs while the other's products have the tensor
    # cores; warpgroup w waits on barrier TURN_BARRIER + w, which the other one arrives on.
    # On from PING_PONG_BLOCK_N keys a tile: on the H100 (2026-12-08a, D = 128, swizzled) it
    # made 128-key tiles 3-15 % faster on every benchmark family, and was within ±5 % either
    # way at 64 (a softmax over 64 keys is too short to hide the other warpgroup's products).
    # PING_PONG = True forces it at any width (compare_builds' pp64).
    PING_PONG = False
    PING_PONG_BLOCK_N = 128
    TURN_BARRIER = 2
    # Q's A fragments in registers for the whole key loop (D/4 registers a thread) instead of
    # re-read from shared memory by every S = Q Kᵀ: at 64-key tiles S's operands from shared
    # memory alone take as many cycles as its tensor-core work (Q 2 KiB + K 2 KiB per k16
    # step at 128 B/clock), which registers halve. An experiment (compare_builds' wq64): with
    # interleaved tiles one launch under ncu took 1.11 ms against 0.998 without (2026-12-07n);
    # not yet timed with the swizzled layout, whose kernel leans on shared memory harder.
    Q_IN_REGISTERS = False

    @classmethod
    def compute_registers(cls, cfg) -> int:
        """Registers a compute thread takes from the producer (``setmaxnreg.inc``), or 0 where
        the cap at entry is already the most a thread may have. The CTA holds the cap at entry
        (64K / threads, in steps of 8: 168 for 384 threads) for every thread, and an increase
        waits until the pool has the registers, so the split must fit that pool exactly, not
        64K: 128 x 48 + 256 x 232 = 65536 > 384 x 168 blocked forever on the H100."""
        threads = cfg.num_threads
        entry = (65536 // threads) // 8 * 8
        if entry >= 248:  # one compute warpgroup: nothing to gain
            return 0
        pool = entry * threads - cls.PRODUCER_REGISTERS * abi.WGMMA_PRODUCER_THREADS
        return (pool // cfg.compute_threads) // 8 * 8

    @property
    def _ping_pong(self) -> bool:
        return ((self.PING_PONG or self.BN >= self.PING_PONG_BLOCK_N)
                and self.threads == 256)  # two compute warpgroups

    def _setup_kv_smem(self, raw, ws):
        super()._setup_kv_smem(raw, ws)
        self.mbar_base = sync.shared_u32(raw, self.cfg.mbarrier_offset)

    def _full(self, stage):
        return add(self.mbar_base, mul(to_i32(stage), sync.MBARRIER_BYTES))

    def _empty(self, stage):
        return add(self.mbar_base,
                   mul(add(to_i32(stage), self.cfg.kv_stages), sync.MBARRIER_BYTES))

    def sync_row_threads(self):
        sync.named_barrier(self.ROW_BARRIER, self.threads)

    def _advance(self, state) -> dict:
        """The next stage and its round's parity (it flips on wrapping to stage 0)."""
        after = super()._advance(state)
        last = arith.cmpi(arith.CmpIPredicate.eq, state["stage"], cx(self.cfg.kv_stages - 1))
        after["phase"] = arith.select(last, arith.xori(state["phase"], ci(1)), state["phase"])
        return after

    def emit(self):
        n_iter = self._setup()
        c = mul(self.scale, cf(LOG2E))
        with if_then(icmp("eq", self.tid, 0)):
            for s in range(self.cfg.kv_stages):
                sync.mbarrier_init(self._full(cx(s)), abi.WGMMA_PRODUCER_THREADS)
                sync.mbarrier_init(self._empty(cx(s)), self.threads // 32)
        gpu.barrier()  # the barriers are initialised before anyone uses them
        is_producer = icmp("uge", self.tid, self.threads)
        if_else(is_producer, [], lambda: self._produce(n_iter) or [],
                lambda: self._compute(n_iter, c) or [])

    # --- the producer warpgroup ------------------------------------------------------------------
    def _produce(self, n_iter):
        if self.compute_registers(self.cfg):
            sync.set_max_registers(self.PRODUCER_REGISTERS, increase=False)
        def tile(t, st):
            keys = self._tile_keys(t, st["seg"], st["u0"])
            sync.mbarrier_wait(self._empty(st["stage"]), arith.xori(st["phase"], ci(1)))
            self.load_key_tile(keys["it32"], st["seg"], st["u0"], st["stage"])
            nvvm.cp_async_commit_group()
            with if_then(arith.cmpi(arith.CmpIPredicate.ugt, t, cx(0))):
                self._publish(st["prev"], pending=1)
            return dict(seg=keys["nseg"], u0=keys["nu0"], prev=st["stage"], **self._advance(st))

        init = dict(seg=self.seg_begin, u0=ci(0), stage=cx(0), phase=ci(0), prev=cx(0))
        with self._gathers_by(sub(self.tid, self.threads), abi.WGMMA_PRODUCER_THREADS):
            final = for_range(cx(0), to_index(n_iter), cx(1), tile, init)
        with if_then(icmp("sgt", n_iter, 0)):
            self._publish(final["prev"], pending=0)

    @contextmanager
    def _gathers_by(self, tid, threads: int):
        """Emit the parent's gathers (which deal chunks out by ``self.tid`` over
        ``self.threads``) as if the CTA were ``threads`` threads numbered ``tid``."""
        saved = self.tid, self.threads
        self.tid, self.threads = tid, threads
        try:
            yield
        finally:
            self.tid, self.threads = saved

    def _publish(self, stage, pending):
        """This thread's copies into ``stage`` have landed (all but ``pending`` newer groups):
        fence them for the tensor cores' async proxy and arrive on the stage's full barrier."""
        nvvm.cp_async_wait_group(pending)
        wgmma.fence_proxy_async()
        sync.mbarrier_arrive(self._full(stage))

    # --- the compute warpgroups ------------------------------------------------------------------
    def _compute(self, n_iter, c):
        if self.compute_registers(self.cfg):
            sync.set_max_registers(self.compute_registers(self.cfg), increase=True)
        self.load_q_tile()
        nvvm.cp_async_commit_group()
        nvvm.cp_async_wait_group(0)
        wgmma.fence_proxy_async()
        self.sync_row_threads()
        if self.Q_IN_REGISTERS and self.D <= 128:  # at 256 they would take 64 registers
            self.q_regs = self.load_q_registers()

        self.warpgroup = arith.shrui(self.warp, ci(2))
        if self._ping_pong:  # warpgroup 0 takes the first turn
            with if_then(icmp("eq", self.warpgroup, 1)):
                sync.named_barrier_arrive(self.TURN_BARRIER, 256)
        final, o = self._key_loop(n_iter, c, phase=ci(0))
        self.write_output(final["m"], final["l"], o)

    # --- the parent's key loop, fed by the producer ----------------------------------------------
    def _acquire_tile(self, it, n_iter, keys, state, after):
        """Wait for the producer's full barrier of the tile's stage (and, ping-ponging, for
        this warpgroup's turn); nothing to prefetch."""
        sync.mbarrier_wait(self._full(state["stage"]), state["phase"])
        if self._ping_pong:
            sync.named_barrier(add(self.warpgroup, self.TURN_BARRIER), 256)

    def _products_issued(self):
        if self._ping_pong:  # the other warpgroup's turn
            sync.named_barrier_arrive(sub(self.TURN_BARRIER + 1, self.warpgroup), 256)

    def _release_tile(self, later, prev):
        """P_{j-1} V_{j-1} is complete: tile j - 1's stage may be refilled."""
        with if_then(band(later, icmp("eq", self.lane, 0))):
            sync.mbarrier_arrive(self._empty(prev))
