"""Head dim 256 on the mma.sync fused kernel (issue 12's head dims).

A 16 x 256 output tile is 128 f32 accumulators a thread, so at D = 256 the kernel re-reads Q's
fragments from shared memory per k16 step (`abi.q_fragments_in_registers`), gives the Q tile its
own shared memory, cuts 32-key tiles, and has 16-row warps only: the variant choice never offers
32-row warps there, an explicit ``warp_rows=32`` is refused by name, and the runtime refuses a
manifest that claims it. The GPU suite (tests/gpu/test_gpu_attention.py) runs D = 256 too. The backward
kernels at D = 256 are checked in test_backward_kernels_ptx.py (two walks of the column schedule
in the dK/dV kernel) and on the GPU by test_gpu_backward.py and test_gpu_train.py.
"""

from __future__ import annotations

import pytest

from splat import abi
from splat import testing as T
from splat.runtime import integrity as I
from splat.runtime import launcher as L
from splat.runtime.artifact import ArtifactError

pytest.importorskip("mlir")
splat = pytest.importorskip("splat.compiler")
from splat import patterns  # noqa: E402
from splat.lowering.to_ptx import have_ptxas, ptxas_check  # noqa: E402


@pytest.fixture(scope="module")
def arts():
    return {"window": splat.compile(patterns.window(40, 700), head_dim=256),
            # split-KV: the plain and the accumulating kernel
            "strided": splat.compile(patterns.strided(64, 64, 2048), head_dim=256, dtype="f16"),
            "tall": splat.compile(patterns.window(40, 700), head_dim=256, block_m=128)}


def test_kernels_take_q_from_shared_memory_and_32_key_tiles(arts):
    art = arts["window"]
    k = art.kernels[0]
    assert k["name"] == "splat_fwd_bf16_d256" and k["block_n"] == abi.DEFAULT_BLOCK_N[256] == 32
    assert not abi.q_fragments_in_registers(256)
    # Q after the four K/V stages, not aliasing K stage 1 as at D = 64 and 128
    row = (256 + 8) * 2
    assert k["shared_bytes"] == 4 * 32 * row + 64 * row == I.fused_shared_bytes(256, 32, False)
    assert art.head_dim == 256
    L.check_artifact(art.copy())


def test_tall_tiles_keep_16_row_warps(arts):
    k = arts["tall"].kernels[0]
    assert k["block_m"] == 128 and k["block"] == [256, 1, 1]
    assert k.get("warp_rows", abi.WARP_ROWS) == 16
    L.check_artifact(arts["tall"].copy())


def test_split_kv_builds_both_kernels(arts):
    names = [k["name"] for k in arts["strided"].kernels]
    assert names == ["splat_fwd_f16_d256", "splat_fwd_f16_d256_acc"]


def test_32_row_warps_are_refused_by_name():
    with pytest.raises(ValueError, match="warp_rows: 32-row warps need head_dim <= 128"):
        splat.compile(patterns.window(4, 100), head_dim=256, warp_rows=32)


def test_a_manifest_claiming_32_row_warps_at_256_is_refused(arts):
    art = arts["window"].copy()
    k = art.manifest["kernels"][0]
    k["warp_rows"], k["block"] = 32, [64, 1, 1]
    with pytest.raises(ArtifactError, match="warp_rows 32 at head dim 256"):
        L.check_artifact(art)


@pytest.mark.skipif(not have_ptxas(), reason="ptxas not installed")
def test_every_kernel_assembles_without_spills(arts):
    """Plain, accumulating, 128-row and masked kernels (the masked one from an irregular mask)."""
    masked = splat.compile(T.irregular_mask(), head_dim=256)
    assert masked.kernels[0]["name"] == "splat_fwd_bf16_d256_masked"
    seen = set()
    for art in [*arts.values(), masked]:
        for text in art.ptx.values():
            for name, k in ptxas_check(text, "sm_90a").items():
                assert k["spill_stores"] == 0 and k["spill_loads"] == 0, (name, k)
                assert k["registers"] <= 255
                seen.add(name)
    assert {"splat_fwd_bf16_d256", "splat_fwd_f16_d256_acc",
            "splat_fwd_bf16_d256_masked"} <= seen
