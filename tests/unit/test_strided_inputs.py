"""Strided q, k, v (views of a fused QKV projection) without a copy, on a machine without a GPU:
the ABI marks the fused kernels' q, k, v as read through their strides, the launcher checks
the strides a caller gives, and the torch op passes views in place only where the artifact
and the view allow it. The launches themselves run in tests/gpu/test_gpu_torch_op.py."""

from __future__ import annotations

import pytest

from splat import abi
from splat.runtime.launcher import Launcher

DENSE = ((4 * 96 * 64, 96 * 64, 64, 1),) * 3


def _launcher(strided_inputs: bool) -> Launcher:
    launcher = Launcher.__new__(Launcher)  # the checks need no device
    launcher.strided_inputs = strided_inputs
    return launcher


def test_fused_kernels_read_q_k_v_through_strides_and_write_dense_outputs():
    for masked in (False, True):
        params = {p["name"]: p for p in abi.fused_kernel_params("bf16", masked)}
        assert all(params[n].get("strides") == "any" for n in ("q", "k", "v"))
        assert "strides" not in params["o"] and "strides" not in params["lse"]


def test_launcher_takes_strides_only_from_an_artifact_that_allows_them():
    with pytest.raises(ValueError, match="contiguous q, k, v only"):
        _launcher(False)._checked_strides(DENSE, (16, 32, 48))
    assert _launcher(True)._checked_strides(DENSE, (16, 32, 48)) == DENSE


@pytest.mark.parametrize("strides, ptrs, match", [
    (((64, 64, 64, 2),) + DENSE[1:], (16, 32, 48), "q has strides"),  # innermost not 1
    ((DENSE[0], (8, 8, 12, 1), DENSE[2]), (16, 32, 48), "k has strides"),  # rows misaligned
    ((DENSE[0], DENSE[1], (8, -8, 64, 1)), (16, 32, 48), "v has strides"),
    (DENSE[:2], (16, 32, 48), "one per"),
    (DENSE, (16, 40, 48), "k's pointer 0x28 is not 16-byte aligned"),
])
def test_launcher_refuses_strides_the_kernels_cannot_take(strides, ptrs, match):
    with pytest.raises(ValueError, match=match):
        _launcher(True)._checked_strides(strides, ptrs)


# ------------------------------------------------------------------------------- the torch op

torch = pytest.importorskip("torch")


def _projection(H=4, Hkv=2, L=32, D=64):
    proj = torch.randn(2, L, H + 2 * Hkv, D).to(torch.bfloat16)
    return proj.transpose(1, 2).split([H, Hkv, Hkv], dim=1)


def test_views_of_a_projection_go_in_place_when_the_artifact_allows():
    from splat.torch_op import _kernel_inputs

    q, k, v = _projection()
    out = _kernel_inputs(_launcher(True), q, k, v)
    assert [t.data_ptr() for t in out[:3]] == [q.data_ptr(), k.data_ptr(), v.data_ptr()]
    assert out[3] == tuple(t.stride() for t in (q, k, v))
    copied = _kernel_inputs(_launcher(False), q, k, v)
    assert all(t.is_contiguous() for t in copied[:3]) and copied[3] is None


def test_contiguous_inputs_pass_no_strides_and_unfit_views_are_copied():
    from splat.torch_op import _kernel_inputs

    q, k, v = (torch.randn(2, 4, 32, 64).to(torch.bfloat16) for _ in range(3))
    assert _kernel_inputs(_launcher(True), q, k, v)[3] is None
    odd = torch.randn(2, 4, 32, 65).to(torch.bfloat16)[..., 1:]  # rows not 16-byte aligned
    out = _kernel_inputs(_launcher(True), odd, k, v)
    assert out[0].is_contiguous() and out[3] is None
    assert torch.equal(out[0], odd)


def test_a_size_one_dimension_does_not_block_a_view():
    from splat.torch_op import _kernel_inputs

    q, k, v = (t[:1] for t in _projection())  # batch 1: its stride is never used
    q = q.as_strided(q.shape, (3,) + q.stride()[1:])  # an odd stride on the size-1 batch
    out = _kernel_inputs(_launcher(True), q, k, v)
    assert out[3] is not None and out[3][0][0] == 0
