"""The backward's kernels (issue 14, `splat.lowering.backward_kernels`, and their wgmma build,
`backward_kernels_wgmma`) on a machine without a GPU: dQ over the row schedule and dK/dV over
the column schedule. Each PTX entry matches its ABI (`abi.dq_kernel_params`,
`abi.dkv_kernel_params`), assembles for sm_90a without spills, and issues its products per key
tile on its instruction (dQ: S, dP, dQ; dK/dV: Sᵀ, dPᵀ, dV, dK; at D = 256 dV and dK in two
walks, Sᵀ in each). The GPU suite runs them (tests/gpu/test_gpu_backward.py,
test_gpu_train.py)."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("mlir")

from splat import abi  # noqa: E402
from splat.lowering.backward_kernels import (DkvConfig, DqConfig, build_dkv_into,  # noqa: E402
                                             build_dq_into)
from splat.lowering.modules import build_in_module  # noqa: E402
from splat.lowering.to_ptx import have_ptxas, lower_to_ptx, ptxas_check  # noqa: E402
from splat.runtime import driver as drv  # noqa: E402


def _dkv_products(cfg) -> tuple[int, int]:
    """Per query tile and walk of the schedule, (score products, gradient products): Sᵀ, then
    dV's product and (for dK) dPᵀ and dK's: 4 in one walk, 2 + 3 in the two walks of D = 256
    (`DkvConfig.passes`)."""
    return (sum(1 + ("dk" in grads) for grads in cfg.passes),
            sum(("dv" in grads) + ("dk" in grads) for grads in cfg.passes))


# kind: (config class, builder, ABI parameters, kernel name, (score, gradient) products per
# key tile: a score product's K is D, a gradient product's the tile's BLOCK_N)
KINDS = {
    "dq": (DqConfig, build_dq_into, abi.dq_kernel_params, abi.dq_kernel_name,
           lambda cfg: (2, 1)),
    "dkv": (DkvConfig, build_dkv_into, abi.dkv_kernel_params, abi.dkv_kernel_name,
            _dkv_products),
}
# (masked, accumulate): the plain kernel, its remainder variant, its split variant
VARIANTS = ((False, False), (True, False), (False, True))
CONFIGS = [(kind, dt, d, masked, acc, mma, 64) for kind in KINDS for dt in ("bf16", "f16")
           for d in abi.BACKWARD_HEAD_DIMS for masked, acc in VARIANTS for mma in abi.MMA_KINDS]
# the wgmma build's 128-row tiles (two warpgroups), bf16: the layout does not depend on the type
CONFIGS += [(kind, "bf16", d, masked, acc, "wgmma", 128) for kind in KINDS
            for d in abi.BACKWARD_HEAD_DIMS if 128 in abi.backward_block_ms("wgmma", d)
            for masked, acc in VARIANTS]


@pytest.mark.parametrize("kind, dtype, head_dim, masked, accumulate, mma, block_m", CONFIGS)
def test_kernel_matches_its_abi_and_assembles_without_spills(kind, dtype, head_dim, masked,
                                                             accumulate, mma, block_m):
    config, build, params, name, products = KINDS[kind]
    cfg = config(dtype, head_dim, mask_tiles=masked, accumulate=accumulate, mma=mma,
                 block_m=block_m)
    ptx = lower_to_ptx(build_in_module(None, lambda m: build(m, cfg)))
    assert cfg.name == name(dtype, head_dim, masked, accumulate) and f".entry {cfg.name}(" in ptx
    drv.check_ptx_abi(ptx, cfg.name, params(dtype, masked, accumulate))
    bn = cfg.forward().block_n
    scores, gradients = products(cfg)
    if mma == "mma_sync":
        per_product = (bn // 16) * (head_dim // 16) * 2  # m16n8k16 per k16 step and n8 pair
        assert len(re.findall(r"mma\.sync\.aligned\.m16n8k16", ptx)) == \
            (scores + gradients) * per_product
        assert "wgmma" not in ptx
    else:  # one warpgroup instruction per k16 step: 64 x BLOCK_N scores, 64 x D gradients
        ty = dtype
        wg = rf"wgmma\.mma_async\.sync\.aligned\.m64n{{}}k16\.f32\.{ty}\.{ty} "
        shapes = {bn: scores * head_dim // 16}
        shapes[head_dim] = shapes.get(head_dim, 0) + gradients * bn // 16
        for n, count in shapes.items():
            assert len(re.findall(wg.format(n), ptx)) == count, n
        assert "mma.sync" not in ptx and "ldmatrix" not in ptx
        assert "fence.proxy.async.shared::cta" in ptx
    assert "ex2.approx" in ptx
    assert f".maxntid {2 * block_m}, 1, 1" in ptx  # a 16-row warp per 16 rows
    if not have_ptxas():
        pytest.skip("ptxas not installed")
    (stats,) = ptxas_check(ptx).values()
    assert stats["spill_stores"] == 0 and stats["spill_loads"] == 0 and stats["stack_bytes"] == 0


def test_shared_memory_extends_the_forwards_layout():
    for d in abi.BACKWARD_HEAD_DIMS:
        for masked in (False, True):
            dq = DqConfig("bf16", d, mask_tiles=masked)
            fwd = dq.forward()
            row_tile = fwd.block_m * (d + 8) * 2
            assert dq.do_offset == fwd.shared_bytes
            assert dq.shared_bytes == fwd.shared_bytes + row_tile
            dkv = DkvConfig("bf16", d, mask_tiles=masked)
            assert dkv.query_values_offset == fwd.shared_bytes
            assert dkv.key_rows_offset == fwd.shared_bytes + 2 * 2 * fwd.block_n * 4
            assert dkv.shared_bytes == dkv.key_rows_offset + 2 * row_tile
            for cfg in (dq, dkv):
                assert cfg.shared_bytes <= 227 * 1024  # the H100's opt-in limit per CTA


def test_dkv_takes_the_column_schedules_tables():
    names = [p["name"] for p in abi.dkv_kernel_params("bf16", masked=True)]
    assert names[8:10] == ["col_tiles", "col_segments"]
    assert names[-3:] == ["col_mask_ptr", "col_mask_tiles", "col_mask_bits"]


def test_head_dims_without_backward_kernels_are_refused():
    for config in (DqConfig, DkvConfig):
        with pytest.raises(ValueError, match="backward kernels are built for head dims"):
            config("bf16", 32)
