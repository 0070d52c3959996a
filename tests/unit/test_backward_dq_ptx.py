"""The backward's dQ kernel (`splat.lowering.backward_dq`, issue 14) on a machine without a GPU:
its PTX entry matches the ABI (`abi.dq_kernel_params`), it assembles for sm_90a without
spills, and it issues the three products per key tile (S = Q Kᵀ, dP = dO Vᵀ, dQ += dS K) on
mma.sync. It has not run on a GPU yet (design.md §6)."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("mlir")

from splat import abi  # noqa: E402
from splat.lowering.backward_dq import DqConfig, build_dq_into  # noqa: E402
from splat.lowering.modules import build_in_module  # noqa: E402
from splat.lowering.to_ptx import have_ptxas, lower_to_ptx, ptxas_check  # noqa: E402
from splat.runtime import driver as drv  # noqa: E402

CONFIGS = [(dt, d, masked) for dt in ("bf16", "f16") for d in abi.HEAD_DIMS
           for masked in (False, True)]


@pytest.mark.parametrize("dtype, head_dim, masked", CONFIGS)
def test_dq_kernel_matches_the_abi_and_assembles_without_spills(dtype, head_dim, masked):
    cfg = DqConfig(dtype, head_dim, mask_tiles=masked)
    ptx = lower_to_ptx(build_in_module(None, lambda m: build_dq_into(m, cfg)))
    assert f".entry {abi.dq_kernel_name(dtype, head_dim, masked)}(" in ptx
    drv.check_ptx_abi(ptx, cfg.name, abi.dq_kernel_params(dtype, masked))
    bn = cfg.forward().block_n
    per_product = (bn // 16) * (head_dim // 16) * 2  # m16n8k16 per k16 step and n8 pair
    assert len(re.findall(r"mma\.sync\.aligned\.m16n8k16", ptx)) == 3 * per_product
    assert "ex2.approx" in ptx and "wgmma" not in ptx
    if not have_ptxas():
        pytest.skip("ptxas not installed")
    (stats,) = ptxas_check(ptx).values()
    assert stats["spill_stores"] == 0 and stats["spill_loads"] == 0 and stats["stack_bytes"] == 0


def test_dq_shared_memory_is_the_forwards_plus_a_do_tile():
    for d in abi.HEAD_DIMS:
        for masked in (False, True):
            cfg = DqConfig("bf16", d, mask_tiles=masked)
            fwd = cfg.forward()
            assert cfg.do_offset == fwd.shared_bytes
            assert cfg.shared_bytes == fwd.shared_bytes + fwd.block_m * (d + 8) * 2
            assert cfg.shared_bytes <= 227 * 1024  # the H100's opt-in limit per CTA
