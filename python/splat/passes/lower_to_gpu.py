"""splat-lower-to-gpu: tiled splat.attention -> gpu.module kernel + runtime call.

Each tiled ``splat.attention`` becomes a call to a private host function
``@splat_attention_<n>`` that names its kernel (``splat.kernel``), layout,
schedule and scale: the host program now calls into SPLAT's runtime, which
launches the kernel of ``gpu.module @splat_kernels`` over the schedule. One
kernel serves every layout with the same element type and head dim (the
schedule is a run-time table), so the module holds one ``gpu.func`` per
(dtype, D).
"""

from __future__ import annotations

import math
import re

from mlir import ir
from mlir.dialects import func

from ..lowering import fused_forward
from ..lowering.emit import emit_kernel
from .registry import PassError, PassOption, SplatPass, register_pass, walk_ops

_DTYPES = {"bf16": "bf16", "f16": "f16"}
SUPPORTED_HEAD_DIMS = (64, 128)


def kernel_dtype(op: ir.Operation) -> str:
    element = str(ir.RankedTensorType(op.operands[0].type).element_type)
    if element not in _DTYPES:
        raise PassError(f"the fused kernel supports bf16 and f16 inputs, got {element}", op)
    return _DTYPES[element]


def kernel_head_dim(op: ir.Operation) -> int:
    head_dim = ir.RankedTensorType(op.operands[0].type).shape[3]
    if head_dim not in SUPPORTED_HEAD_DIMS:
        shown = "dynamic" if ir.ShapedType.is_dynamic_size(head_dim) else head_dim
        raise PassError(f"the fused kernel supports head dim 64 or 128, got {shown}", op)
    return head_dim


@register_pass
class LowerToGPU(SplatPass):
    argument = "splat-lower-to-gpu"
    summary = "Lower tiled splat.attention to a gpu.module kernel and a runtime call"
    def run(self, op: ir.Operation) -> None:
        targets = walk_ops(op, lambda o: o.name == "splat.attention")
        emitted: dict[tuple[str, int, bool], int] = {}
        for n, target in enumerate(targets):
            if "schedule" not in target.attributes:
                raise PassError("has no tile schedule: run splat-tile-acsr before "
                                "splat-lower-to-gpu", target)
            if not ir.BoolAttr(target.attributes["zero_empty_rows"]).value:
                raise PassError("zero_empty_rows = false is not supported by the fused kernel",
                                target)
            dtype, head_dim = kernel_dtype(target), kernel_head_dim(target)
            schedule = str(target.attributes["schedule"])
            block_n = int(re.search(r"block_n = (\d+)", schedule).group(1))
            if "block_m = 64," not in schedule or block_n not in (32, 64, 128):
                raise PassError(f"the kernel needs 64-row tiles of 32, 64 or 128 keys; the "
                                f"schedule has {schedule[:60]}...", target)
            # Layouts with an irregular remainder get the kernel variant that also walks the
            # schedule's explicitly masked key tiles; the plain kernel stays lean.
            masked = "mask_ptr" in schedule
            variant = (dtype, head_dim, masked)
            if variant in emitted and emitted[variant] != block_n:
                raise PassError(f"every {dtype} D={head_dim} attention of a module must use one "
                                f"key tile size; this one uses {block_n}", target)
            if variant not in emitted:
                emit_kernel(op, dtype=dtype, head_dim=head_dim, block_n=block_n,
                            mask_tiles=masked)
                emitted[variant] = block_n
            self._replace_with_call(target, n,
                                    fused_forward.kernel_name(dtype, head_dim, masked), head_dim)

    @staticmethod
    def _replace_with_call(target: ir.Operation, n: int, kernel: str,
                           head_dim: int) -> None:
        attrs = target.attributes
        scale = (ir.FloatAttr(attrs["scale"]) if "scale" in attrs
                 else ir.FloatAttr.get_f32(1.0 / math.sqrt(head_dim)))
        name = f"splat_attention_{n}"
        fn_type = ir.FunctionType.get([v.type for v in target.operands],
                                      [r.type for r in target.results])
        # Declared right before the function that calls it.
        caller = target.parent
        while caller.parent is not None and caller.parent.name != "builtin.module":
            caller = caller.parent
        with ir.InsertionPoint(caller), target.location:
            decl = func.FuncOp(name, fn_type, visibility="private")
            decl.attributes["splat.kernel"] = ir.SymbolRefAttr.get(
                [fused_forward.GPU_MODULE_NAME, kernel])
            decl.attributes["splat.layout"] = attrs["layout"]
            decl.attributes["splat.schedule"] = attrs["schedule"]
            decl.attributes["splat.scale"] = scale
        with ir.InsertionPoint(target), target.location:
            call = func.CallOp(decl, list(target.operands))
        for old, new in zip(target.results, call.results):
            old.replace_all_uses_with(new)
        target.erase()
