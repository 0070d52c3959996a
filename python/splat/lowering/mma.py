"""Tensor-core operands (m16n8k16, f32 accumulators) per element type, and ldmatrix loads.

f16 uses ``nvgpu.mma.sync``; bf16 uses ``nvvm.mma.sync`` on i32-packed pairs, because the bf16
``nvgpu.mma.sync`` lowering fails in MLIR 22.1.8 (see docs/toolchain.md).  Both classes take
an x4 ``ldmatrix`` result (``vector<4x2xT>``) and give the A / B fragments in the form their
``mma`` wants; an accumulator (C/D) is always a Python list of 4 f32 SSA values.
"""

from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, llvm, nvgpu, nvvm, vector

from .builder import f32_type, i32_type, to_index

__all__ = ["MmaF16", "MmaBF16", "mma_operands"]


class _Mma:
    elem: ir.Type

    def ldmatrix_x4(self, buf, prefix, row, col, transpose: bool):
        """x4 ``ldmatrix`` of ``buf[*prefix, row, col]`` (``row``, ``col`` i32; ``transpose``
        gives ``.trans``): lanes ``8m .. 8m+7`` address the rows of 8x8 matrix ``m``."""
        return nvgpu.ldmatrix(ir.VectorType.get([4, 2], self.elem), buf,
                              list(prefix) + [to_index(row), to_index(col)], transpose, 4)


class MmaF16(_Mma):
    """f16 fragments as nvgpu vectors: A vector<4x2xf16>, B vector<2x2xf16>, C vector<2x2xf32>."""

    def __init__(self):
        self.elem = ir.F16Type.get()

    def a_from_ldmatrix(self, v):
        return v

    def b_pair_from_ldmatrix(self, v):
        """x4 ldmatrix result (4 regs) -> B fragments of two adjacent n8 tiles (regs 0,1 / 2,3)."""
        return vector.shuffle(v, v, [0, 1]), vector.shuffle(v, v, [2, 3])

    def a_from_f32(self, vals):
        """8 f32 (register order of A) -> A fragment."""
        h = [arith.truncf(self.elem, x) for x in vals]
        return vector.from_elements(ir.VectorType.get([4, 2], self.elem), h)

    def mma(self, a, b, c):
        f32 = f32_type()
        cvec = vector.from_elements(ir.VectorType.get([2, 2], f32), list(c))
        d = nvgpu.mma_sync(ir.VectorType.get([2, 2], f32), a, b, cvec, [16, 8, 16])
        return [vector.extract(d, [], [i, j]) for i in range(2) for j in range(2)]


class MmaBF16(_Mma):
    """bf16 fragments as packed i32 registers for nvvm.mma.sync: A 4 x i32, B 2 x i32."""

    def __init__(self):
        self.elem = ir.BF16Type.get()
        self.shape = ir.Attribute.parse("#nvvm.shape<m = 16, n = 8, k = 16>")
        self.row = ir.Attribute.parse("#nvvm.mma_layout<row>")
        self.col = ir.Attribute.parse("#nvvm.mma_layout<col>")
        self.ptx_type = ir.Attribute.parse("#nvvm.mma_type<bf16>")
        self.res_type = ir.Type.parse("!llvm.struct<(f32, f32, f32, f32)>")

    def _regs(self, v, n):
        """vector<nx2xbf16> -> n packed i32 registers (row by row: 2-D bitcasts do not lower)."""
        return [self._pack(vector.extract(v, [], [i])) for i in range(n)]

    @staticmethod
    def _pack(pair):
        """vector<2xbf16> -> i32."""
        return vector.extract(vector.bitcast(ir.VectorType.get([1], i32_type()), pair), [], [0])

    def a_from_ldmatrix(self, v):
        return self._regs(v, 4)

    def b_pair_from_ldmatrix(self, v):
        r = self._regs(v, 4)
        return r[0:2], r[2:4]

    def a_from_f32(self, vals):
        regs = []
        for i in range(4):
            pair = [arith.truncf(self.elem, vals[2 * i]), arith.truncf(self.elem, vals[2 * i + 1])]
            regs.append(self._pack(vector.from_elements(ir.VectorType.get([2], self.elem), pair)))
        return regs

    def mma(self, a, b, c):
        d = nvvm.mma_sync(
            self.res_type, self.shape, self.row, self.col, list(a), list(b), list(c),
            multiplicand_a_ptx_type=self.ptx_type, multiplicand_b_ptx_type=self.ptx_type,
        )
        return [llvm.extractvalue(f32_type(), d, [i]) for i in range(4)]


def mma_operands(dtype: str) -> _Mma:
    """The operand handling of element type ``dtype`` (``"bf16"`` or ``"f16"``)."""
    return MmaBF16() if dtype == "bf16" else MmaF16()
