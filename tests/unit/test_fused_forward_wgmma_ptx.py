"""The Hopper (wgmma) variant of the fused kernel builds, lowers to sm_90a PTX and assembles
without spills, for every dtype, head dim, key tile size and kernel variant; the target picks it.

No GPU needed (the GPU suite checks its numbers): PTX from the MLIR bindings, ptxas from the
nvidia-cuda-nvcc wheel.
"""

import re

import numpy as np
import pytest

pytest.importorskip("mlir.ir")

import splat  # noqa: E402
from splat import abi  # noqa: E402
from splat.lowering.fused_forward import (FusedForwardConfig, build_into,  # noqa: E402
                                          kernel_launch_info)
from splat.lowering.modules import build_in_module  # noqa: E402
from splat.lowering.to_ptx import have_ptxas, lower_to_ptx, ptxas_check  # noqa: E402
from splat.stages import StageOptions  # noqa: E402

CONFIGS = [dict(dtype=dt, head_dim=d, block_n=bn, mask_tiles=mt, accumulate=acc)
           for dt in ("bf16", "f16") for d in abi.WGMMA_HEAD_DIMS for bn in (None, 64)
           for mt, acc in ((False, False), (True, False), (False, True))]


def _ptx(**kw) -> str:
    cfg = FusedForwardConfig(kw["dtype"], kw["head_dim"], kw.get("block_n"),
                             mask_tiles=kw.get("mask_tiles", False),
                             accumulate=kw.get("accumulate", False), mma="wgmma")
    return lower_to_ptx(build_in_module(None, lambda m: build_into(m, cfg)))



@pytest.mark.parametrize("kw", CONFIGS, ids=lambda kw: "-".join(map(str, kw.values())))
def test_wgmma_ptx_assembles_without_spills(kw):
    ptx = _ptx(**kw)
    cfg = FusedForwardConfig(kw["dtype"], kw["head_dim"], kw["block_n"], mma="wgmma")
    bn, d, ty = cfg.block_n, kw["head_dim"], kw["dtype"]
    # S = Q K^T: one m64n{BLOCK_N}k16 per k16 step of D, B K-contiguous (no transpose)
    assert len(re.findall(rf"wgmma\.mma_async\.sync\.aligned\.m64n{bn}k16\.f32\.{ty}\.{ty} "
                          r"[^;]*, 0;", ptx)) == d // 16
    # O += P V: one m64n{D}k16 per 16 keys, B (V) D-contiguous: transposed; issued in the key
    # loop for the previous tile and once after it for the last
    assert len(re.findall(rf"wgmma\.mma_async\.sync\.aligned\.m64n{d}k16\.f32\.{ty}\.{ty} "
                          r"[^;]*, 1;", ptx)) == 2 * (bn // 16)
    assert "mma.sync" not in ptx and "ldmatrix.sync.aligned.m8n8.x4.trans" not in ptx
    # S of tile j is waited for with the previous tile's P V still in flight
    for op in ("wgmma.fence.sync.aligned", "wgmma.commit_group.sync.aligned",
               "wgmma.wait_group.sync.aligned 0", "wgmma.wait_group.sync.aligned 1",
               "fence.proxy.async.shared::cta"):
        assert op in ptx
    if not have_ptxas():
        pytest.skip("ptxas not installed")
    (stats,) = ptxas_check(ptx).values()
    assert stats["spill_stores"] == 0 and stats["spill_loads"] == 0 and stats["stack_bytes"] == 0


def test_wgmma_shared_memory_layout():
    """Stages [K0][V0][K1][V1][K2][V2] of BLOCK_N x D elements, the padded output staging tile
    from stage 1, then Q as core matrices (wgmma's A of S = Q Kᵀ), then the masked variant's bits;
    the runtime's independent formula agrees."""
    from splat.runtime.integrity import fused_shared_bytes

    for d in abi.WGMMA_HEAD_DIMS:
        for bn in abi.BLOCK_N_CHOICES:
            for bm in abi.BLOCK_M_CHOICES:
                cfg = FusedForwardConfig("bf16", d, bn, mma="wgmma", block_m=bm)
                assert cfg.kv_tile_bytes == bn * d * 2
                assert cfg.q_offset == 2 * cfg.kv_tile_bytes
                q_end = cfg.q_offset + bm * (d + 8) * 2
                assert cfg.q_core_offset == max(6 * cfg.kv_tile_bytes, q_end)  # 3 stages
                assert cfg.shared_bytes == cfg.q_core_offset + bm * d * 2
                masked = FusedForwardConfig("bf16", d, bn, mask_tiles=True, mma="wgmma",
                                            block_m=bm)
                assert masked.shared_bytes == cfg.shared_bytes + 3 * bm * abi.mask_words(bn) * 4
                for c, m in ((cfg, False), (masked, True)):
                    assert fused_shared_bytes(d, bn, m, "wgmma", bm) == c.shared_bytes
            info = kernel_launch_info("bf16", d, bn, mma="wgmma")
            assert info["shared_bytes"] == FusedForwardConfig("bf16", d, bn,
                                                              mma="wgmma").shared_bytes


def test_wgmma_128_row_tiles_run_two_ctas_per_sm():
    """Two warpgroups share each K/V tile; at 32-key tiles the kernel is capped at 128
    registers a thread (two 256-thread CTAs per SM), elsewhere ptxas chooses."""
    assert FusedForwardConfig("bf16", 128, 32, mma="wgmma", block_m=128).min_blocks_per_sm == 2
    assert FusedForwardConfig("bf16", 128, 64, mma="wgmma", block_m=128).min_blocks_per_sm == 0
    assert FusedForwardConfig("bf16", 128, 32, mma="wgmma").min_blocks_per_sm == 0
    assert FusedForwardConfig("bf16", 128, 32, mma="wgmma", block_m=128).num_threads == 256


def test_target_picks_the_instruction():
    # mma.sync stays sm_90a's default until wgmma beats it on the H100 (abi.WGMMA_BY_DEFAULT)
    assert StageOptions(chip="sm_90a").kernel_mma == "mma_sync"
    assert StageOptions(chip="sm_90a", mma="wgmma").kernel_mma == "wgmma"
    assert StageOptions(chip="sm_90").kernel_mma == "mma_sync"
    assert StageOptions(chip="sm_90a", mma="mma_sync").kernel_mma == "mma_sync"
    with pytest.raises(ValueError, match="wgmma needs chip sm_90a"):
        StageOptions(chip="sm_90", mma="wgmma")
    with pytest.raises(ValueError, match="mma must be one of"):
        StageOptions(mma="hmma")
    with pytest.raises(ValueError, match="mma must be one of"):
        FusedForwardConfig("bf16", 64, mma="hmma")


def test_compile_builds_each_instruction_with_its_own_key():
    mask = np.tril(np.ones((128, 128), dtype=bool))
    wg = splat.compile(mask, head_dim=128, mma="wgmma")
    sync = splat.compile(mask, head_dim=128, mma="mma_sync")
    older = splat.compile(mask, head_dim=128, target="sm_90")
    assert "wgmma.mma_async" in wg.ptx["kernel.ptx"]
    assert "wgmma" not in sync.ptx["kernel.ptx"] and "wgmma" not in older.ptx["kernel.ptx"]
    for art, mma in ((wg, "wgmma"), (sync, "mma_sync")):
        (kernel,) = art.manifest["kernels"]
        assert kernel["mma"] == mma
        info = kernel_launch_info("bf16", 128, mma=mma, block_m=kernel["block_m"],
                                  warp_rows=kernel.get("warp_rows", 16))
        assert kernel["shared_bytes"] == info["shared_bytes"]
        assert art.manifest["options"] == {"mma": mma}
    assert wg.manifest["kernels"][0]["block_m"] == abi.WGMMA_BLOCK_M  # two warpgroups
    assert len({wg.key, sync.key, older.key}) == 3
    with pytest.raises(ValueError, match="mma"):
        splat.compile(mask, head_dim=128, mma="wmma")


def test_wgmma_is_refused_where_it_failed_on_the_gpu():
    """D = 64 gave wrong results on the H100 (abi.WGMMA_HEAD_DIMS): refused, never built."""
    with pytest.raises(ValueError, match="mma wgmma supports head dim 128 only"):
        splat.compile(np.ones((64, 64), dtype=bool), head_dim=64, mma="wgmma")
    with pytest.raises(ValueError, match="mma wgmma supports head dim 128 only"):
        FusedForwardConfig("bf16", 64, mma="wgmma")
    # D = 256 never ran on wgmma: refused without claiming it failed
    with pytest.raises(ValueError, match=r"128 only \(it is not built for D = 256 yet\)"):
        splat.compile(np.ones((64, 64), dtype=bool), head_dim=256, mma="wgmma")
