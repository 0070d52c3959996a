"""32-row warps (``warp_rows=32``): two m16 tiles a warp share every K/V fragment.

The tables do not change (row tiles stay ``block_m`` rows); the kernel's CTA has half the warps,
the manifest records ``warp_rows`` and the thread count, and the runtime refuses any
disagreement. With 16-row warps the kernel's PTX is byte-identical to what it was before the
option existed (the m16-tile loops collapse), which the PTX cache key relies on for nothing but
the benchmarks rely on for comparability.
"""

from __future__ import annotations

import pytest

from splat.runtime import artifact as A
from splat.runtime import integrity as I
from splat.runtime import launcher as L
from splat.runtime.artifact import ArtifactError

pytest.importorskip("mlir")
splat = pytest.importorskip("splat.compiler")
from splat import patterns  # noqa: E402
from splat.lowering.fused_config import FusedForwardConfig  # noqa: E402
from splat.lowering.fused_forward import build_into  # noqa: E402
from splat.lowering.modules import build_in_module  # noqa: E402
from splat.lowering.to_ptx import have_ptxas, lower_to_ptx, ptxas_check  # noqa: E402


@pytest.fixture(scope="module")
def arts():
    pat = patterns.window(40, 700)
    return {"w16": splat.compile(pat), "w32": splat.compile(pat, warp_rows=32),
            "w32_d128": splat.compile(pat, head_dim=128, block_n=64, warp_rows=32),
            "w32_m128": splat.compile(pat, warp_rows=32, block_m=128)}


def test_tables_are_the_same_and_the_cta_halves(arts):
    w16, w32 = arts["w16"], arts["w32"]
    for name, table in w16.tables.items():
        assert (table == w32.tables[name]).all()
    assert w16.kernels[0]["block"] == [128, 1, 1] and w32.kernels[0]["block"] == [64, 1, 1]
    assert w32.kernels[0]["warp_rows"] == 32 and arts["w32_m128"].kernels[0]["block"] == [128, 1, 1]
    assert w16.key != w32.key


@pytest.mark.parametrize("bad", [8, 64, 0, 32.0, True])
def test_other_warp_heights_are_refused(bad):
    with pytest.raises(ValueError, match="warp_rows"):
        splat.compile(patterns.window(4, 100), warp_rows=bad)


def test_wgmma_keeps_16_row_warps():
    with pytest.raises(ValueError, match="warp-rows 16"):
        splat.compile(patterns.window(4, 100), head_dim=128, mma="wgmma", warp_rows=32)


def test_artifacts_pass_every_check_and_tampering_is_refused(arts, tmp_path):
    for name, art in arts.items():
        L.check_artifact(art.copy())
        A.load(A.save(art, tmp_path / name))
    art = arts["w32"].copy()
    art.manifest["kernels"][0]["block"] = [128, 1, 1]  # 16-row warps' threads, 32-row kernel
    with pytest.raises(ArtifactError, match=r"\[64, 1, 1\] for 64-row tiles of 32-row warps"):
        L.check_artifact(art)
    art = arts["w32"].copy()
    art.manifest["kernels"][0]["warp_rows"] = 48
    with pytest.raises(ArtifactError, match="warp_rows 48"):
        L.check_artifact(art)
    art = arts["w32_d128"].copy()  # Q re-read per key tile: its own shared memory, not K1
    k = art.manifest["kernels"][0]
    k["shared_bytes"] = I.fused_shared_bytes(128, k["block_n"], False, "mma_sync", 64, 16)
    with pytest.raises(ArtifactError, match="shared_bytes"):
        L.check_artifact(art)


@pytest.mark.skipif(not have_ptxas(), reason="ptxas not available")
@pytest.mark.parametrize("head_dim, block_n, block_m", [(64, 64, 64), (64, 64, 128),
                                                        (128, 32, 128)])
def test_32_row_warps_assemble_without_spills(head_dim, block_n, block_m):
    for masked in (False, True):
        cfg = FusedForwardConfig("bf16", head_dim, block_n, mask_tiles=masked, block_m=block_m,
                                 warp_rows=32)
        ptx = lower_to_ptx(build_in_module(None, lambda m: build_into(m, cfg)))
        assert "mma.sync.aligned.m16n8k16" in ptx
        k = ptxas_check(ptx)[cfg.name]
        assert k["spill_stores"] == 0 and k["spill_loads"] == 0 and k["registers"] <= 255
