"""Kernel emission into a module *operation* (what a pass receives).

The kernel builders take an ``ir.Module``; passes hold the module's
``ir.Operation``. This adapter gives the builders the two things they use
(``.body`` and ``.operation``).
"""

from __future__ import annotations

from types import SimpleNamespace

from mlir import ir

from .. import abi
from ..tiling.decomposed import DecomposedConfig
from . import backward_kernels, decomposed, fused_config, fused_forward, to_ptx


def _as_module(op: ir.Operation) -> SimpleNamespace:
    return SimpleNamespace(body=op.regions[0].blocks[0], operation=op, context=op.context)


def emit_kernel(module_op: ir.Operation, *, dtype: str, head_dim: int, block_n: int,
                mask_tiles: bool = False, accumulate: bool = False, mma: str = "mma_sync",
                block_m: int = abi.BLOCK_M, warp_rows: int = 16,
                load_warpgroup: bool = False) -> None:
    """Adds ``gpu.func @splat_fwd_<dtype>_d<D>[_masked][_acc]`` to ``gpu.module @splat_kernels``."""
    cfg = fused_config.FusedForwardConfig(dtype, head_dim, block_n, mask_tiles=mask_tiles,
                                          accumulate=accumulate, mma=mma, block_m=block_m,
                                          warp_rows=warp_rows, load_warpgroup=load_warpgroup)
    fused_forward.build_into(_as_module(module_op), cfg)


def emit_backward_kernels(module_op: ir.Operation, *, dtype: str, head_dim: int, block_n: int,
                          rows_masked: bool, cols_masked: bool, rows_split: bool = False,
                          cols_split: bool = False, mma: str = "mma_sync",
                          block_m: int = abi.BACKWARD_BLOCK_M) -> None:
    """Adds ``gpu.func @splat_bwd_dq_...`` (over the row schedule, ``_masked`` when it has mask
    tiles) and ``@splat_bwd_dkv_...`` (over the column schedule) to ``@splat_kernels``, and
    their ``_acc`` variants for split schedules, on ``mma`` (mma_sync or wgmma) and
    ``block_m``-row tiles."""
    module = _as_module(module_op)
    bk = backward_kernels
    kw = dict(block_n=block_n, mma=mma, block_m=block_m)
    bk.build_dq_into(module, bk.DqConfig(dtype, head_dim, mask_tiles=rows_masked, **kw))
    if rows_split:
        bk.build_dq_into(module, bk.DqConfig(dtype, head_dim, accumulate=True, **kw))
    bk.build_dkv_into(module, bk.DkvConfig(dtype, head_dim, mask_tiles=cols_masked, **kw))
    if cols_split:
        bk.build_dkv_into(module, bk.DkvConfig(dtype, head_dim, accumulate=True, **kw))


def export_dynamic_shared_memory(module_op: ir.Operation) -> int:
    return to_ptx.patch_dynamic_shared_memory(_as_module(module_op))


def emit_decomposed_kernels(module_op: ir.Operation, *, dtype: str, head_dim: int) -> None:
    """Adds the sddmm, softmax and spmm kernels of the decomposed path."""
    with module_op.context:
        decomposed.build_into(_as_module(module_op),
                              DecomposedConfig(dtype, head_dim, None))

