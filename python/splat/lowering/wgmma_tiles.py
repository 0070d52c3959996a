"""Shared-memory tiles as wgmma reads them, for the kernels built on the fused forward kernel's
machinery (fused_forward_wgmma.py, backward_kernels_wgmma.py).

`WgmmaTiles` is a mixin placed before a `_FusedForwardKernel` subclass: it gathers rows into
tiles in the wgmma layout (`wgmma.SWIZZLED_128B`, or `wgmma.INTERLEAVED` behind
``SWIZZLE = False``) with cp.async, fences them for the tensor cores' async proxy, moves
descriptors between stages and packs f32 accumulators as A fragments. The kernel supplies
``self.kv_s`` (``[stage][part][rows * D]`` element views of its staged tiles) and
``self.kv_bytes`` (one part's bytes) before any of it is used.
"""

from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, nvgpu

from . import wgmma
from .builder import add, ci, const, cx, icmp, mul, select, to_index
from .fused_config import CHUNK


class WgmmaTiles:
    # The tiles' shared-memory layout (wgmma.TileLayout): the 128-byte swizzle, whose copies
    # read whole 128-byte lines, or (False) interleaved core matrices, whose copies read 16
    # bytes of 8 rows per 8 threads: twice the L2 requests. ncu on the H100 (2026-12-07n,
    # dense, L = 4096, D = 128, producer at 64-key tiles): interleaved 998 us at 94 % of L2
    # throughput, the compute warps waiting on the producer; swizzled 561 us.
    SWIZZLE = True

    @property
    def layout(self) -> wgmma.TileLayout:
        return wgmma.SWIZZLED_128B if self.SWIZZLE else wgmma.INTERLEAVED

    def publish_tile(self):
        """cp.async writes shared memory through the generic proxy and wgmma reads it through
        the async proxy: each thread fences its landed copies before the barrier."""
        wgmma.fence_proxy_async()

    def _stage_descriptor(self, desc0, stage):
        """``desc0`` moved to ``stage`` (an index): a stage is two parts (K and V, or the
        backward's Q and dO), ``2 * kv_bytes`` bytes."""
        i64 = ir.IntegerType.get_signless(64)
        step = const(i64, (2 * self.kv_bytes) >> 4)  # in the address field's 16-byte units
        return arith.addi(desc0, arith.muli(arith.index_cast(i64, stage), step))

    def _copy_tile_rows(self, tile_rows, global_row, copies):
        """Copy ``tile_rows`` rows into shared memory in the tile layout: ``global_row(r)``
        gives (valid, source row) of tile row ``r`` (an invalid row is zero-filled and reads
        row 0); ``copies`` lists ``(dst buffer, dst index prefix, src tensor, src index
        prefix)``. Each 16-byte chunk is one cp.async; which thread takes which chunk is the
        layout's (`TileLayout.copy_units`): 8 threads fill 128 contiguous bytes of shared memory
        (no bank conflict). Interleaved, a warp then reads 64 contiguous bytes of each of 8
        rows (a warp reading 4 whole 128-byte rows instead halves the L2 requests but puts a
        row's chunks, core matrices apart, in one bank group: 2x the store wavefronts, and it
        measured 4 % slower on the H100, 2026-12-07h); swizzled, whole rows."""
        chunks = self.D // CHUNK
        slot, r8 = arith.shrui(self.tid, ci(3)), arith.andi(self.tid, ci(7))
        for r, chunk in self.layout.copy_units(slot, r8, self.threads, tile_rows, chunks):
            col = to_index(mul(chunk, CHUNK))
            valid, grow = global_row(r)
            grow = select(valid, grow, 0)
            n_src = select(valid, cx(CHUNK), cx(0))
            dst = to_index(self.layout.offset(r, chunk, tile_rows))
            for buf, prefix, src, src_prefix in copies:
                nvgpu.device_async_copy(buf, list(prefix) + [dst],
                                        src, list(src_prefix) + [to_index(grow), col],
                                        CHUNK, src_elements=n_src, bypass_l1=True)

    def _load_kv_rows(self, col0, col_step, ncols, u0, stage):
        """Gather key/value rows ``col0 + col_step*u``, ``u in [u0, u0+BLOCK_N)`` (zero past
        ``ncols``) of kv head ``hkv`` into ``stage``'s two parts."""
        def kv_row(r):
            u = add(u0, r)
            return icmp("slt", u, ncols), add(col0, mul(col_step, u))

        prefix = [self.b, self.hkv]
        self._copy_tile_rows(self.BN, kv_row, [(self.kv_s, [stage, cx(0)], self.k, prefix),
                                               (self.kv_s, [stage, cx(1)], self.v, prefix)])

    def pack_a(self, x):
        """``x`` (f32, this warp's one m16 tile of ``[n8 tile][4]``) as wgmma A fragments: 4
        b32 per 16 columns, the K of the product it feeds (P V, or the backward's dS K)."""
        x = x[0]
        return [wgmma.pack_a_fragment(self.ops.a_from_f32(x[2 * kk] + x[2 * kk + 1]))
                for kk in range(len(x) // 2)]

    @staticmethod
    def _tiles(flat, n):
        """Flat accumulators (n/2 a thread) as ``[m16 tile][n8 tile][4]`` (one m16 tile)."""
        return [[flat[4 * j:4 * j + 4] for j in range(n // 8)]]

    @staticmethod
    def _flat(tiles):
        """``[m16 tile][n8 tile][4]`` accumulators as the flat list wgmma's asm takes."""
        return [x for tile in tiles[0] for x in tile]
