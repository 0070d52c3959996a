"""The fused forward kernel (design.md §3) builds, lowers to sm_90a PTX and assembles without spills.

No GPU needed: PTX comes from the MLIR Python bindings, ptxas from the nvidia-cuda-nvcc wheel.
"""

import os
import re
import sys

import pytest

try:
    import splat  # noqa: F401
except ImportError:  # running from a checkout without an installed package
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))

mlir = pytest.importorskip("mlir.ir")

from splat.abi import fused_kernel_name as kernel_name  # noqa: E402

from splat.lowering.fused_config import FusedForwardConfig, kernel_launch_info  # noqa: E402
from splat.lowering.fused_forward import build_fused_forward, build_into  # noqa: E402
from splat.lowering.to_ptx import have_ptxas, lower_to_ptx, ptx_param_count, ptxas_check  # noqa: E402

VARIANTS = [(dt, d) for dt in ("bf16", "f16") for d in (64, 128)]
# (dtype, head_dim, mask_tiles): the plain kernels and the ones that also run mask tiles.
ALL_VARIANTS = [(dt, d, mt) for dt, d in VARIANTS for mt in (False, True)]
MASKED = [(dt, d, True) for dt, d in VARIANTS]



@pytest.fixture(scope="module")
def ptx_by_variant():
    """PTX by (dtype, head_dim, mask_tiles); (dtype, head_dim) is the plain kernel."""
    out = {}
    for dtype, d, mt in ALL_VARIANTS:
        module = build_fused_forward(None, dtype=dtype, head_dim=d, mask_tiles=mt)
        module.operation.verify()
        out[(dtype, d, mt)] = lower_to_ptx(module)
        if not mt:
            out[(dtype, d)] = out[(dtype, d, mt)]
    return out


@pytest.mark.parametrize("dtype,head_dim,mask_tiles", ALL_VARIANTS)
def test_ptx_contents(ptx_by_variant, dtype, head_dim, mask_tiles):
    ptx = ptx_by_variant[(dtype, head_dim, mask_tiles)]
    name = kernel_name(dtype, head_dim, mask_tiles)
    assert re.search(r"^\.target\s+sm_90a", ptx, re.M)
    assert f".entry {name}(" in ptx
    ptx_ty = "bf16" if dtype == "bf16" else "f16"
    assert f"mma.sync.aligned.m16n8k16.row.col.f32.{ptx_ty}.{ptx_ty}.f32" in ptx
    assert "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16" in ptx  # V
    assert "cp.async.cg.shared.global" in ptx  # K/V gather
    # Dynamic shared memory is an extern, 16-byte (or more) aligned array.
    assert re.search(r"\.extern \.shared \.align 1024 \.b8 __dynamic_shmem__\w*\[\]", ptx)
    # exp2/log2 are hardware approximations, no libdevice calls left behind.
    assert "ex2.approx.ftz.f32" in ptx and "lg2.approx.f32" in ptx
    assert "call" not in re.sub(r"//.*", "", ptx).split()
    if mask_tiles:
        # The bits are read from shared memory as 32-bit words (cp.async'd with K/V).
        assert re.search(r"ld\.shared(\.v[24])?\.(b|u)32", ptx)
        assert name.endswith("_masked")
    else:
        assert "_masked" not in ptx


@pytest.mark.parametrize("dtype,head_dim", VARIANTS)
def test_param_count_matches_abi(ptx_by_variant, dtype, head_dim):
    info = kernel_launch_info(dtype, head_dim)
    # q, k, v, o: 4 x (3 + 2*4); lse: 3 + 2*3; two tables: 2 x (3 + 2*2); scale: 1.
    assert info["num_ptx_params"] == 4 * 11 + 9 + 2 * 7 + 1 == 68
    assert ptx_param_count(ptx_by_variant[(dtype, head_dim)], info["name"]) == 68
    assert [p["name"] for p in info["params"]] == [
        "q", "k", "v", "o", "lse", "row_tiles", "segments", "scale"]
    assert info["block"] == [128, 1, 1]
    assert info["shared_bytes"] <= 227 * 1024
    assert info["tables"] == ["row_tiles", "segments"]


@pytest.mark.parametrize("dtype,head_dim", VARIANTS)
def test_masked_param_count_matches_abi(ptx_by_variant, dtype, head_dim):
    info = kernel_launch_info(dtype, head_dim, mask_tiles=True)
    assert info["name"] == f"splat_fwd_{dtype}_d{head_dim}_masked"
    # The plain 68 + mask_ptr (3 + 2*1) + mask_tiles (3 + 2*2) + mask_bits (3 + 2*3).
    assert info["num_ptx_params"] == 68 + 5 + 7 + 9 == 89
    assert ptx_param_count(ptx_by_variant[(dtype, head_dim, True)], info["name"]) == 89
    params = info["params"]
    assert [p["name"] for p in params] == [
        "q", "k", "v", "o", "lse", "row_tiles", "segments", "scale",
        "mask_ptr", "mask_tiles", "mask_bits"]
    assert [(p["kind"], p["rank"], p["dtype"]) for p in params[8:]] == [
        ("memref", 1, "i32"), ("memref", 2, "i32"), ("memref", 3, "i32")]
    assert info["tables"] == ["row_tiles", "segments", "mask_ptr", "mask_tiles", "mask_bits"]
    plain = kernel_launch_info(dtype, head_dim)
    assert info["block_n"] == plain["block_n"]
    # Two stages of BLOCK_M x ceil(BLOCK_N/32) bit words on top of the plain kernel's layout.
    words = -(-info["block_n"] // 32)
    assert info["shared_bytes"] == plain["shared_bytes"] + 2 * 64 * words * 4
    assert info["shared_bytes"] <= 227 * 1024


def test_masked_kernel_signature():
    module = build_fused_forward(None, dtype="bf16", head_dim=64, mask_tiles=True)
    text = str(module)
    assert "gpu.func @splat_fwd_bf16_d64_masked(" in text
    sig = text[text.index("gpu.func @splat_fwd_bf16_d64_masked("):]
    sig = sig[:sig.index(")")]
    assert sig.endswith("f32, %arg8: memref<?xi32>, %arg9: memref<?x2xi32>, "
                        "%arg10: memref<?x?x?xi32>")


@pytest.mark.skipif(not have_ptxas(), reason="ptxas not available")
@pytest.mark.parametrize("dtype,head_dim,mask_tiles", ALL_VARIANTS)
def test_ptxas_assembles_without_spills(ptx_by_variant, dtype, head_dim, mask_tiles,
                                        record_property):
    info = ptxas_check(ptx_by_variant[(dtype, head_dim, mask_tiles)])
    name = kernel_name(dtype, head_dim, mask_tiles)
    assert name in info, info
    k = info[name]
    record_property("registers", k["registers"])
    print(f"{name}: {k['registers']} registers, spill stores {k['spill_stores']} B, "
          f"spill loads {k['spill_loads']} B")
    assert 0 < k["registers"] <= 255
    assert k["spill_stores"] == 0 and k["spill_loads"] == 0
    assert k["stack_bytes"] == 0
    # Occupancy of the defaults (4 CTAs/SM at D=64, 3 at D=128) holds for the masked kernels.
    assert k["registers"] <= (128 if head_dim == 64 else 168)


def test_two_kernels_share_one_gpu_module():
    module = build_fused_forward(None, dtype="f16", head_dim=64)
    build_fused_forward(module, dtype="bf16", head_dim=64)
    text = str(module)
    assert text.count("gpu.module @splat_kernels") == 1
    assert "gpu.func @splat_fwd_f16_d64" in text and "gpu.func @splat_fwd_bf16_d64" in text


def test_plain_and_masked_kernels_share_one_gpu_module():
    module = build_fused_forward(None, dtype="bf16", head_dim=128)
    with module.context, mlir.Location.unknown():
        build_into(module, FusedForwardConfig("bf16", 128, mask_tiles=True))
    module.operation.verify()
    text = str(module)
    assert text.count("gpu.module @splat_kernels") == 1
    assert "gpu.func @splat_fwd_bf16_d128(" in text
    assert "gpu.func @splat_fwd_bf16_d128_masked(" in text
    ptx = lower_to_ptx(module)
    assert ptx_param_count(ptx, "splat_fwd_bf16_d128") == 68
    assert ptx_param_count(ptx, "splat_fwd_bf16_d128_masked") == 89


def test_ptxas_reports_errors():
    if not have_ptxas():
        pytest.skip("ptxas not available")
    with pytest.raises(RuntimeError, match="ptxas"):
        ptxas_check(".version 8.0\n.target sm_90a\n.address_size 64\n.visible .entry x() { bogus; }\n")


def test_rejects_unsupported_configs():
    with pytest.raises(ValueError):
        build_fused_forward(None, dtype="f32", head_dim=64)
    with pytest.raises(ValueError):
        build_fused_forward(None, dtype="bf16", head_dim=96)
