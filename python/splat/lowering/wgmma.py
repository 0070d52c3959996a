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

Shared-memory operands (B) use the no-swizzle ("interleave") layout: 8x8 core matrices, each 8
rows of 16 contiguous bytes (128 B).  ``core_matrix_offset`` places element chunk ``c`` (8
elements) of tile row ``r``; the descriptor's *leading* byte offset is the stride between core
matrices along K and its *stride* byte offset the stride along M/N.

Asynchrony.  A wgmma reads and writes its accumulator registers after issue; LLVM does not know
that.  Every accumulator therefore goes through the issuing asm and then through the asm that
waits (tied operands), so no other instruction can touch them in between.
"""

from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, llvm, memref, vector

from .builder import add, ci, const, f32_type, i32_type, mul

__all__ = ["core_matrix_offset", "smem_address", "matrix_descriptor", "pack_a_fragment",
           "mma_async", "wait", "commit_empty_group", "fence_proxy_async"]

CORE_BYTES = 128  # one 8 x 16-byte core matrix


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


def matrix_descriptor(address, *, leading_bytes: int, stride_bytes: int) -> ir.Value:
    """64-bit wgmma shared-memory matrix descriptor, no swizzle, base offset 0:
    bits 0-13 address >> 4, 16-29 leading byte offset >> 4, 32-45 stride byte offset >> 4."""
    assert leading_bytes % 16 == 0 and stride_bytes % 16 == 0
    start = arith.shrui(arith.andi(address, _c64(0x3FFFF)), _c64(4))
    fields = ((leading_bytes >> 4) << 16) | ((stride_bytes >> 4) << 32)
    return arith.ori(start, _c64(fields))


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


def mma_async(acc: list, a_frags: list, descriptors: list, *, n: int, ptx_type: str,
              trans_b: bool, accumulate: bool, wait_group: int | None,
              a_in_smem: bool = False) -> list:
    """``acc (64 x n, f32) (+)= sum_k A_k B_k`` over ``len(a_frags)`` k16 steps, one warpgroup.

    ``acc``: n/2 f32 per thread (tile-major, as the kernel keeps them); ``a_frags``: 4 b32
    registers per k step, or with ``a_in_smem`` A's shared-memory descriptor per k step (A
    K-contiguous, as core matrices); ``descriptors``: B's descriptor per k step; ``trans_b``: B
    is stored N-contiguous (MN-major) instead of K-contiguous; ``accumulate=False`` ignores
    ``acc`` in the first step (scale-d = false).  Fences the registers first, commits the group,
    then waits for ``wait_group`` pending groups (None: does not wait; call :func:`wait` before
    reading).
    """
    n_acc = n // 2
    assert len(acc) == n_acc and len(a_frags) == len(descriptors)
    steps = len(a_frags)
    a_regs = 1 if a_in_smem else 4  # asm operands per k step's A
    a_base = 2 * n_acc
    d_base = a_base + a_regs * steps
    flag = d_base + steps
    dst = "{" + ", ".join(f"${i}" for i in range(n_acc)) + "}"
    lines = ["{", ".reg .pred first, later;", f"setp.ne.b32 first, ${flag}, 0;",
             f"setp.eq.b32 later, ${flag}, ${flag};", "wgmma.fence.sync.aligned;"]
    for k in range(steps):
        scale_d = "first" if k == 0 else "later"
        if a_in_smem:  # ..., a-desc, b-desc, scale-d, scale-a, scale-b, trans-a, trans-b
            a, trans = f"${a_base + k}", f"0, {int(trans_b)}"
        else:  # ..., {a regs}, b-desc, scale-d, scale-a, scale-b, trans-b
            a = "{" + ", ".join(f"${a_base + 4 * k + j}" for j in range(4)) + "}"
            trans = f"{int(trans_b)}"
        lines.append(f"wgmma.mma_async.sync.aligned.m64n{n}k16.f32.{ptx_type}.{ptx_type} "
                     f"{dst}, {a}, ${d_base + k}, {scale_d}, 1, 1, {trans};")
    lines.append("wgmma.commit_group.sync.aligned;")
    if wait_group is not None:
        lines.append(f"wgmma.wait_group.sync.aligned {wait_group};")
    lines.append("}")
    constraints = ",".join(["=f"] * n_acc + [str(i) for i in range(n_acc)]
                           + ["l" if a_in_smem else "r"] * (a_regs * steps) + ["l"] * steps
                           + ["r"])
    a_operands = list(a_frags) if a_in_smem else [r for f in a_frags for r in f]
    operands = list(acc) + a_operands + list(descriptors) + [ci(1 if accumulate else 0)]
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
