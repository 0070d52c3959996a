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

from splat.lowering.fused_forward import (  # noqa: E402
    build_fused_forward, kernel_launch_info, kernel_name)
from splat.lowering.to_ptx import find_ptxas, lower_to_ptx, ptx_param_count, ptxas_check  # noqa: E402

VARIANTS = [(dt, d) for dt in ("bf16", "f16") for d in (64, 128)]


def _have_ptxas():
    try:
        find_ptxas()
        return True
    except FileNotFoundError:
        return False


@pytest.fixture(scope="module")
def ptx_by_variant():
    out = {}
    for dtype, d in VARIANTS:
        module = build_fused_forward(None, dtype=dtype, head_dim=d)
        module.operation.verify()
        out[(dtype, d)] = lower_to_ptx(module)
    return out


@pytest.mark.parametrize("dtype,head_dim", VARIANTS)
def test_ptx_contents(ptx_by_variant, dtype, head_dim):
    ptx = ptx_by_variant[(dtype, head_dim)]
    name = kernel_name(dtype, head_dim)
    assert re.search(r"^\.target\s+sm_90a", ptx, re.M)
    assert f".entry {name}(" in ptx
    ptx_ty = "bf16" if dtype == "bf16" else "f16"
    assert f"mma.sync.aligned.m16n8k16.row.col.f32.{ptx_ty}.{ptx_ty}.f32" in ptx
    assert "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16" in ptx  # V
    assert "cp.async.cg.shared.global" in ptx  # K/V gather
    # Dynamic shared memory is an extern, 16-byte (or more) aligned array.
    assert re.search(r"\.extern \.shared \.align (16|32|64|128) \.b8 __dynamic_shmem__\w*\[\]", ptx)
    # exp2/log2 are hardware approximations, no libdevice calls left behind.
    assert "ex2.approx.ftz.f32" in ptx and "lg2.approx.f32" in ptx
    assert "call" not in re.sub(r"//.*", "", ptx).split()


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


@pytest.mark.skipif(not _have_ptxas(), reason="ptxas not available")
@pytest.mark.parametrize("dtype,head_dim", VARIANTS)
def test_ptxas_assembles_without_spills(ptx_by_variant, dtype, head_dim, record_property):
    info = ptxas_check(ptx_by_variant[(dtype, head_dim)])
    name = kernel_name(dtype, head_dim)
    assert name in info, info
    k = info[name]
    record_property("registers", k["registers"])
    print(f"{name}: {k['registers']} registers, spill stores {k['spill_stores']} B, "
          f"spill loads {k['spill_loads']} B")
    assert 0 < k["registers"] <= 255
    assert k["spill_stores"] == 0 and k["spill_loads"] == 0
    assert k["stack_bytes"] == 0


def test_two_kernels_share_one_gpu_module():
    module = build_fused_forward(None, dtype="f16", head_dim=64)
    build_fused_forward(module, dtype="bf16", head_dim=64)
    text = str(module)
    assert text.count("gpu.module @splat_kernels") == 1
    assert "gpu.func @splat_fwd_f16_d64" in text and "gpu.func @splat_fwd_bf16_d64" in text


def test_ptxas_reports_errors():
    if not _have_ptxas():
        pytest.skip("ptxas not available")
    with pytest.raises(RuntimeError, match="ptxas"):
        ptxas_check(".version 8.0\n.target sm_90a\n.address_size 64\n.visible .entry x() { bogus; }\n")


def test_rejects_unsupported_configs():
    with pytest.raises(ValueError):
        build_fused_forward(None, dtype="f32", head_dim=64)
    with pytest.raises(ValueError):
        build_fused_forward(None, dtype="bf16", head_dim=96)
