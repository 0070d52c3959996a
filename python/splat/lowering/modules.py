"""Where kernel builders put their ``gpu.module`` (an existing module or a new one), and the
MLIR types of their ``abi`` parameters."""

from __future__ import annotations

from typing import Callable

from mlir import ir
from mlir.dialects import gpu

from ..abi import GPU_MODULE_NAME, TABLE_COLUMNS


def build_in_module(module_or_none, build: Callable[[ir.Module], None]) -> ir.Module:
    """Run ``build(module)`` on ``module_or_none`` (in its context), or on a new module in the
    current MLIR context (a fresh context when none is active). Returns the module."""
    if module_or_none is not None:
        with module_or_none.context, ir.Location.unknown():
            build(module_or_none)
        return module_or_none
    try:
        ctx = ir.Context.current
    except ValueError:
        ctx = None
    with (ctx or ir.Context()), ir.Location.unknown():
        module = ir.Module.create()
        build(module)
    return module


def find_or_create_gpu_module(module: ir.Module):
    """``gpu.module @splat_kernels`` of ``module``, created (and the module marked
    ``gpu.container_module``) if missing."""
    for op in module.body.operations:
        if op.operation.name == "gpu.module" and \
                ir.StringAttr(op.attributes["sym_name"]).value == GPU_MODULE_NAME:
            return op
    module.operation.attributes["gpu.container_module"] = ir.UnitAttr.get()
    with ir.InsertionPoint(module.body):
        gm = gpu.GPUModuleOp(GPU_MODULE_NAME)
        gm.bodyRegion.blocks.append()
    return gm


def abi_arg_type(p: dict):
    """The MLIR type of an ``abi`` parameter: a memref with dynamic sizes (a table's column
    count static; strided where the ABI takes any strides: rows contiguous, the other strides
    from the descriptor) or an f32 scalar."""
    if p["kind"] != "memref":
        return ir.F32Type.get()
    dyn = ir.ShapedType.get_dynamic_size()
    elem = {"bf16": ir.BF16Type.get, "f16": ir.F16Type.get, "f32": ir.F32Type.get,
            "i32": lambda: ir.IntegerType.get_signless(32)}[p["dtype"]]()
    shape = [dyn] * p["rank"]
    cols = TABLE_COLUMNS.get(p["name"])
    if cols is not None:
        shape[-1] = cols
    if p.get("strides") == "any":
        layout = ir.StridedLayoutAttr.get(offset=0, strides=[dyn] * (p["rank"] - 1) + [1])
        return ir.MemRefType.get(shape, elem, layout=layout)
    return ir.MemRefType.get(shape, elem)
