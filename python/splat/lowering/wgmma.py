"""Hopper warpgroup MMA (``wgmma.mma_async``, sm_90a) for the fused kernel, as inline PTX.

Why inline PTX and not ``nvgpu.warpgroup.mma``: the kernel needs A *in registers* (Q fragments
for S = Q Kᵀ, and P straight from the softmax for O += P V), which the nvgpu op cannot take, and
the nvgpu lowering mishandles a K-contiguous B over several k16 steps in MLIR 22.1.8
(docs/toolchain.md).  Writing the instruction ourselves keeps both operands' layouts under
our control and the PTX readable.

Fragments.  For ``m64nNk16`` the warpgroup's 4 warps own rows ``16w .. 16w+15``, and inside a
warp the A fragment (4 x b32 = 8 elements) and every n8 slice of the f32 accumulator have exactly
the m16n8k16 ``mma.sync`` layouts (mma.py): accumulator register ``4i + e`` is the n8 tile
``i``'s value ``e``.  The fused kernel therefore keeps its per-warp softmax and masking code and
only swaps how S and P V are computed.

Shared-memory operands come in two layouts (`INTERLEAVED`, `SWIZZLED_128B`), each a tile of
rows (keys or query rows) by D, 16-byte chunks of 8 elements: where a chunk goes, the
descriptors of the tile as a K-major operand (K and Q in S = Q Kᵀ) and as an MN-major one (V in
O += P V), and how a k16 step advances them.  The no-swizzle ("interleave") layout stores 8x8
core matrices, each 8 rows of 16 contiguous bytes; the 128-byte swizzle stores each row's 64
elements of a D block as one 128-byte line, chunk ``j`` at ``j ^ (row mod 8)``, so that 8 threads
copying one row's line read 128 contiguous bytes of global memory and write one conflict-free
line of shared memory (the interleaved copy reads 8 rows x 16 bytes per 8 threads: twice the
L2 requests).

Asynchrony.  A wgmma reads and writes its accumulator registers after issue; LLVM does not know
that.  Every accumulator therefore goes through the issuing asm and then through the asm that
waits (tied operands), so no other instruction can touch them in between.
"""

from __future__ import annotations

from typing import NamedTuple

from mlir import ir
from mlir.dialects import arith, llvm, memref, vector

from .builder import add, ci, const, f32_type, i32_type, mul

__all__ = ["core_matrix_offset", "smem_address", "matrix_descriptor", "pack_a_fragment",
           "DescriptorSteps", "mma_async", "wait", "commit_empty_group", "fence_proxy_async",
           "TileLayout", "INTERLEAVED", "SWIZZLED_128B"]

CORE_BYTES = 128  # one 8 x 16-byte core matrix
SWIZZLE_ATOM_BYTES = 1024  # 8 rows x 128 bytes: the 128-byte swizzle's repeating pattern


def core_matrix_offset(row, chunk, tile_rows: int):
    """Element offset of 8-element chunk ``chunk`` of row ``row`` in a ``tile_rows``-row tile
    stored as core matrices, chunk-column-major: core (row // 8, chunk) starts at
    ``(chunk * tile_rows/8 + row // 8) * 64`` elements.  Along the rows (M/N or K for V) cores
    are ``CORE_BYTES`` apart; along the chunks, ``tile_rows * 16`` bytes."""
    core = add(mul(chunk, tile_rows // 8), arith.shrui(row, ci(3)))
    return add(mul(core, 64), mul(arith.andi(row, ci(7)), 8))


def _c64(v):
    return const(ir.IntegerType.get_signless(64), v)


def smem_address(buf) -> ir.Value:
    """The shared-window byte address of a workgroup memref's data, as i64."""
    idx = memref.extract_aligned_pointer_as_index(buf)
    return arith.index_cast(ir.IntegerType.get_signless(64), idx)


def matrix_descriptor(address, *, leading_bytes: int, stride_bytes: int,
                      swizzle: int = 0) -> ir.Value:
    """64-bit wgmma shared-memory matrix descriptor, base offset 0: bits 0-13 address >> 4,
    16-29 leading byte offset >> 4, 32-45 stride byte offset >> 4, 62-63 the swizzle mode
    (0 none, 1 128-byte; a swizzled tile starts 1024-byte aligned, so base offset 0 holds)."""
    assert leading_bytes % 16 == 0 and stride_bytes % 16 == 0 and swizzle in (0, 1)
    start = arith.shrui(arith.andi(address, _c64(0x3FFFF)), _c64(4))
    fields = ((leading_bytes >> 4) << 16) | ((stride_bytes >> 4) << 32) | (swizzle << 62)
    return arith.ori(start, _c64(fields))


class TileLayout:
    """A ``rows x D`` tile of 16-byte chunks in shared memory, as wgmma reads it.

    ``offset(row, chunk, rows)``: element offset of chunk ``chunk`` (elements ``8*chunk ..``)
    of tile row ``row``; ``k_major(address, rows)`` / ``k_step(kk, rows)``: the tile as an
    operand whose K is D (K in S = Q Kᵀ, or Q as its A), and the byte offset of k16 step ``kk``;
    ``mn_major(address, rows)`` / ``mn_step(kk)``: the tile as an operand whose K is its rows
    and N is D (V in O += P V); ``row_bytes(rows)``: the byte offset of row ``rows`` (a
    multiple of 8); ``copy_units(slot, r8, threads, rows, chunks)``: per copy pass, the
    (row, chunk) each thread copies, where ``slot`` = thread // 8 and ``r8`` = thread % 8.
    """


class _Interleaved(TileLayout):
    """No swizzle: core matrices chunk-column-major (`core_matrix_offset`); leading byte offset
    = between core matrices along K, stride = along M/N (along N for the MN-major V)."""

    def offset(self, row, chunk, rows: int):
        return core_matrix_offset(row, chunk, rows)

    def k_major(self, address, rows: int):
        return matrix_descriptor(address, leading_bytes=rows * 16, stride_bytes=CORE_BYTES)

    def k_step(self, kk: int, rows: int) -> int:
        return kk * 2 * rows * 16  # two chunk columns

    def mn_major(self, address, rows: int):
        return matrix_descriptor(address, leading_bytes=CORE_BYTES, stride_bytes=rows * 16)

    def mn_step(self, kk: int) -> int:
        return kk * 2 * CORE_BYTES  # 16 rows = two core-matrix rows

    def row_bytes(self, rows: int) -> int:
        return rows // 8 * CORE_BYTES

    def copy_units(self, slot, r8, threads: int, rows: int, chunks: int):
        """8 threads copy one core matrix (8 rows of one chunk): core matrix cm = (row group
        cm // chunks, chunk cm % chunks), a pass takes ``threads / 8`` consecutive ones. Both
        counts are powers of two, so a pass covers whole row groups (the chunk is the same in
        every pass) or part of one (at D = 256 a 128-thread producer covers half)."""
        slots, total = threads // 8, rows // 8 * chunks
        assert total % slots == 0 and (slots % chunks == 0 or chunks % slots == 0)
        if slots >= chunks:
            chunk = arith.remui(slot, ci(chunks))
            r_slot = add(r8, mul(arith.divui(slot, ci(chunks)), 8))
            return [(add(r_slot, 8 * (first // chunks)), chunk)
                    for first in range(0, total, slots)]
        return [(add(r8, 8 * (first // chunks)), add(slot, first % chunks))
                for first in range(0, total, slots)]


class _Swizzled128(TileLayout):
    """128-byte swizzle: D in blocks of 64 elements, block-major; in a block, row ``r`` is the
    128-byte line ``r``, its chunk ``j`` at ``j ^ (r mod 8)``. K-major: 8-row groups 1024 bytes
    apart (stride), K inside a block by the start address (32 bytes a k16 step; the leading
    offset is unused); MN-major: 8-row groups along K 1024 bytes apart (stride), D blocks
    ``rows * 128`` bytes apart (leading)."""

    def offset(self, row, chunk, rows: int):
        block, j = arith.shrui(chunk, ci(3)), arith.andi(chunk, ci(7))
        line = add(mul(block, rows), row)
        return add(mul(line, 64), mul(arith.xori(j, arith.andi(row, ci(7))), 8))

    def k_major(self, address, rows: int):
        return matrix_descriptor(address, leading_bytes=16, stride_bytes=SWIZZLE_ATOM_BYTES,
                                 swizzle=1)

    def k_step(self, kk: int, rows: int) -> int:
        return kk // 4 * rows * 128 + kk % 4 * 32

    def mn_major(self, address, rows: int):
        return matrix_descriptor(address, leading_bytes=rows * 128,
                                 stride_bytes=SWIZZLE_ATOM_BYTES, swizzle=1)

    def mn_step(self, kk: int) -> int:
        return kk * 2 * SWIZZLE_ATOM_BYTES

    def row_bytes(self, rows: int) -> int:
        return rows * 128

    def copy_units(self, slot, r8, threads: int, rows: int, chunks: int):
        """8 threads copy one row's line of a D block (thread ``r8`` its chunk ``r8``); line
        cl = (row cl // blocks, block cl % blocks), so a warp reads whole rows."""
        blocks = chunks // 8
        slots = threads // 8
        assert slots % blocks == 0 and (rows * blocks) % slots == 0
        chunk = add(mul(arith.remui(slot, ci(blocks)), 8), r8)
        r_slot = arith.divui(slot, ci(blocks))
        return [(add(r_slot, first // blocks), chunk) for first in range(0, rows * blocks, slots)]


INTERLEAVED = _Interleaved()
SWIZZLED_128B = _Swizzled128()


def advance(descriptor, byte_offset: int | ir.Value) -> ir.Value:
    """The descriptor of the operand ``byte_offset`` bytes further (a multiple of 16; the address
    field cannot carry into the others while shared memory stays below 256 KiB)."""
    if isinstance(byte_offset, int):
        return descriptor if byte_offset == 0 else arith.addi(descriptor, _c64(byte_offset >> 4))
    off = arith.extui(ir.IntegerType.get_signless(64), byte_offset)
    return arith.addi(descriptor, arith.shrui(off, _c64(4)))


def pack_a_fragment(frag) -> list:
    """An A fragment as 4 packed b32 registers: bf16 fragments already are (mma.MmaBF16);
    f16 ones are ``vector<4x2xf16>`` (mma.MmaF16)."""
    if isinstance(frag, (list, tuple)):
        return list(frag)
    v1 = ir.VectorType.get([1], i32_type())
    return [vector.extract(vector.bitcast(v1, vector.extract(frag, [], [i])), [], [0])
            for i in range(4)]


def _struct(n: int) -> ir.Type:
    return ir.Type.parse("!llvm.struct<(" + ", ".join(["f32"] * n) + ")>")


def _unpack(res, n: int) -> list:
    return [llvm.extractvalue(f32_type(), res, [i]) for i in range(n)]


class DescriptorSteps(NamedTuple):
    """A shared-memory operand of every k16 step as one base descriptor and each step's byte
    offset from it (multiples of 16): the asm adds the offsets itself, so only the base takes
    registers (per-step descriptors kept 2 registers each live across the product: 64 at
    D = 256, which spilled the backward's dK/dV kernel)."""

    base: ir.Value
    offsets: tuple


def _descriptor_steps(d, first: int, steps: int, temp: str) -> tuple[list, list, list]:
    """(asm operands, the PTX computing each step's descriptor, each step's descriptor name)
    of a list of per-step descriptors or a `DescriptorSteps`; operands start at ``$first``."""
    if isinstance(d, DescriptorSteps):
        assert len(d.offsets) == steps and all(o % 16 == 0 for o in d.offsets)
        code = [f"add.s64 {temp}, ${first}, {o >> 4};" if o else f"mov.b64 {temp}, ${first};"
                for o in d.offsets]
        return [d.base], code, [temp] * steps
    assert len(d) == steps
    return list(d), [""] * steps, [f"${first + k}" for k in range(steps)]


def mma_async(acc: list, a_frags, descriptors, *, n: int, ptx_type: str,
              trans_b: bool, accumulate: bool, wait_group: int | None,
              a_in_smem: bool = False) -> list:
    """``acc (64 x n, f32) (+)= sum_k A_k B_k`` over the k16 steps, one warpgroup.

    ``acc``: n/2 f32 per thread (tile-major, as the kernel keeps them); ``a_frags``: 4 b32
    registers per k step, or with ``a_in_smem`` A's shared-memory descriptor per k step (A
    K-contiguous) or a `DescriptorSteps`; ``descriptors``: B's descriptor per k step, or a
    `DescriptorSteps`; ``trans_b``: B is stored N-contiguous (MN-major) instead of
    K-contiguous; ``accumulate=False`` ignores ``acc`` in the first step (scale-d = false).
    Fences the registers first, commits the group, then waits for ``wait_group`` pending groups
    (None: does not wait; call :func:`wait` before reading).
    """
    n_acc = n // 2
    assert len(acc) == n_acc
    steps = (len(descriptors.offsets) if isinstance(descriptors, DescriptorSteps)
             else len(descriptors))
    a_base = 2 * n_acc
    if a_in_smem:
        a_operands, a_code, a_names = _descriptor_steps(a_frags, a_base, steps, "da")
    else:
        assert len(a_frags) == steps
        a_operands = [r for f in a_frags for r in f]
        a_code = [""] * steps
        a_names = ["{" + ", ".join(f"${a_base + 4 * k + j}" for j in range(4)) + "}"
                   for k in range(steps)]
    d_base = a_base + len(a_operands)
    b_operands, b_code, b_names = _descriptor_steps(descriptors, d_base, steps, "db")
    flag = d_base + len(b_operands)
    dst = "{" + ", ".join(f"${i}" for i in range(n_acc)) + "}"
    stepped = any(a_code) or any(b_code)
    lines = ["{", ".reg .pred first, later;"] + ([".reg .b64 da, db;"] if stepped else []) + [
        f"setp.ne.b32 first, ${flag}, 0;", f"setp.eq.b32 later, ${flag}, ${flag};",
        "wgmma.fence.sync.aligned;"]
    for k in range(steps):
        scale_d = "first" if k == 0 else "later"
        # ..., a (desc or regs), b-desc, scale-d, scale-a, scale-b[, trans-a], trans-b
        trans = f"0, {int(trans_b)}" if a_in_smem else f"{int(trans_b)}"
        lines += [c for c in (a_code[k], b_code[k]) if c]
        lines.append(f"wgmma.mma_async.sync.aligned.m64n{n}k16.f32.{ptx_type}.{ptx_type} "
                     f"{dst}, {a_names[k]}, {b_names[k]}, {scale_d}, 1, 1, {trans};")
    lines.append("wgmma.commit_group.sync.aligned;")
    if wait_group is not None:
        lines.append(f"wgmma.wait_group.sync.aligned {wait_group};")
    lines.append("}")
    constraints = ",".join(["=f"] * n_acc + [str(i) for i in range(n_acc)]
                           + ["l" if a_in_smem else "r"] * len(a_operands)
                           + ["l"] * len(b_operands) + ["r"])
    operands = list(acc) + a_operands + b_operands + [ci(1 if accumulate else 0)]
    res = llvm.inline_asm(_struct(n_acc), operands, "\n".join(lines), constraints,
                          has_side_effects=True)
    return _unpack(res, n_acc)


def wait(acc: list, pending: int = 0) -> list:
    """``wgmma.wait_group pending``, with ``acc`` tied through it so that nothing reads the
    accumulators before the tensor cores are done with them."""
    n = len(acc)
    constraints = ",".join(["=f"] * n + [str(i) for i in range(n)])
    res = llvm.inline_asm(_struct(n), list(acc), f"wgmma.wait_group.sync.aligned {pending};",
                          constraints, has_side_effects=True)
    return _unpack(res, n)


def commit_empty_group() -> None:
    """``wgmma.commit_group`` with no wgmma issued since the last one: an empty group, so that
    a later ``wait_group N`` counts the same groups on every path."""
    llvm.inline_asm(None, [], "wgmma.commit_group.sync.aligned;", "", has_side_effects=True)


def fence_proxy_async() -> None:
    """Make this thread's generic-proxy shared-memory writes (cp.async included) visible to the
    async proxy (wgmma operand reads); a barrier after it publishes them to the warpgroup."""
    llvm.inline_asm(None, [], "fence.proxy.async.shared::cta;", "", has_side_effects=True)
