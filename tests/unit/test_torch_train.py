"""Training through the torch op (`splat.torch_train`, issue 14) on the CPU: the handle takes the
autograd-enabled ``splat::attention_train`` only when an input requires grad in grad mode, its
gradients (of o, and of lse when a loss uses it) match dense masked attention differentiated
by torch in float64, GQA and Lq != Lk included, a small model trains under torch.compile, and
the CUDA backward refuses with an error that says why.

Needs PyTorch and the compiler side (the artifacts are compiled here, at small L)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mlir")

import splat.torch as st  # noqa: E402
from splat import testing as T  # noqa: E402
from splat import torch_op, torch_train  # noqa: E402

L = 96


def _dense(q, k, v, mask, scale):
    """Masked attention in float64 by plain torch ops: o and the natural lse (-inf rows: o 0)."""
    group = q.shape[1] // k.shape[1]
    k, v = (x.repeat_interleave(group, dim=1) for x in (k, v))
    s = (q @ k.transpose(-1, -2)) * scale
    s = s.masked_fill(~mask, float("-inf"))
    lse = torch.logsumexp(s, dim=-1)
    p = torch.exp(s - torch.where(torch.isfinite(lse), lse, torch.zeros_like(lse))[..., None])
    return p @ v, lse


def _inputs(B, H, Hkv, Lq, Lk, D=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    mk = lambda h, n: torch.randn(B, h, n, D, generator=g).to(torch.bfloat16)  # noqa: E731
    return mk(H, Lq), mk(Hkv, Lk), mk(Hkv, Lk)


def _leafs(*xs):
    return [x.detach().clone().requires_grad_(True) for x in xs]


@pytest.mark.parametrize("case", ["causal-mha", "window-gqa", "irregular-lq-ne-lk"])
@pytest.mark.parametrize("use_lse", [False, True], ids=["o", "o+lse"])
def test_gradients_match_dense_attention_in_fp64(case, use_lse):
    if case == "irregular-lq-ne-lk":
        g = torch.Generator().manual_seed(3)
        mask = torch.rand(80, 112, generator=g) < 0.1
        mask[7] = False  # a row without keys
        h = st.prepare(mask.numpy(), head_dim=64, dtype=torch.bfloat16)
        heads, (Lq, Lk) = (2, 2), mask.shape
    else:
        fam = T.F("causal") if case == "causal-mha" else T.F("window", w=12)
        pattern, _ = T.build_pattern(fam, L)
        h = st.prepare(pattern, head_dim=64, dtype=torch.bfloat16)
        mask = torch.from_numpy(T.mask_numpy(fam, L).copy())
        heads, Lq, Lk = ((2, 2) if case == "causal-mha" else (4, 2)), L, L
    q, k, v = _inputs(2, *heads, Lq, Lk, seed=len(case))
    g = torch.Generator().manual_seed(7)
    w_o = torch.randn(2, heads[0], Lq, 64, generator=g, dtype=torch.float64)
    w_lse = torch.randn(2, heads[0], Lq, generator=g, dtype=torch.float64)

    def loss(o, lse):
        total = (o.double() * w_o).sum()
        if use_lse:
            live = torch.isfinite(lse)
            total = total + (torch.where(live, lse.double(), 0.0) * w_lse).sum()
        return total

    qs, ks, vs = _leafs(q, k, v)
    o, lse = h(qs, ks, vs, return_lse=True)
    loss(o, lse).backward()
    qd, kd, vd = _leafs(q.double(), k.double(), v.double())
    loss(*_dense(qd, kd, vd, mask, h.scale)).backward()
    for got, want, name in ((qs.grad, qd.grad, "dq"), (ks.grad, kd.grad, "dk"),
                            (vs.grad, vd.grad, "dv")):
        assert got.dtype == torch.bfloat16 and got.shape == want.shape, name
        err = (got.double() - want).abs().max() / want.abs().max().clamp_min(1e-30)
        assert err <= 1e-2, f"{name}: relative error {err:.2e}"


def test_inference_keeps_the_plain_op():
    pattern, _ = T.build_pattern(T.F("causal"), L)
    h = st.prepare(pattern, head_dim=64, dtype=torch.bfloat16)
    calls = []
    q, k, v = _inputs(1, 2, 2, L, L)
    real = torch_train.train_op
    try:
        torch_train.train_op = lambda: calls.append(1) or real()
        h(q, k, v)  # no input requires grad
        with torch.no_grad():
            h(*_leafs(q, k, v))  # grad mode off
        assert calls == []
        h(*_leafs(q, k, v))
        assert calls == [1]
    finally:
        torch_train.train_op = real


def test_a_model_trains_under_torch_compile():
    """Two optimiser steps of a compiled block on the CPU: the loss falls, no graph break."""
    fam = T.F("window", w=16)
    pattern, _ = T.build_pattern(fam, L)
    h = st.prepare(pattern, head_dim=64, dtype=torch.bfloat16)
    model = T.attention_model(h, dim=128, heads=2, layers=1).to(torch.bfloat16)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    x = torch.randn(2, L, 128).to(torch.bfloat16)
    target = torch.randn(2, L, 128).to(torch.bfloat16)
    losses = []
    for _ in range(3):
        opt.zero_grad()
        loss = ((compiled(x) - target).float() ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_the_cuda_backward_finds_the_backward_artifact_of_the_handles_layout():
    """The CUDA backward resolves ``variant="backward"`` from the layout the forward artifact
    records: the key a pack of the pattern's backward gets (pack_gpu_artifacts.py --train),
    so a GPU machine without MLIR finds it in $SPLAT_ARTIFACT_DIR."""
    from splat.runtime.resolve import request_key

    pattern, _ = T.build_pattern(T.F("dilated", w=16, stride=3), L)
    h = st.prepare(pattern, head_dim=64, dtype=torch.bfloat16)
    kern = torch_op._kernel(h.key)
    found = torch_train._backward_kernel(kern)
    assert found.artifact.manifest["variant"] == "backward"
    assert found.artifact.key == request_key(pattern, Lq=L, Lk=L, dtype="bf16", head_dim=64,
                                             variant="backward")
    assert torch_train._backward_kernel(kern) is found  # resolved once per handle's kernel


def test_ops_pass_opcheck():
    """Schema, fake against the CPU implementation, AOT dispatch, and (the train op) its
    registered autograd formula."""
    pattern, _ = T.build_pattern(T.F("causal"), L)
    h = st.prepare(pattern, head_dim=64, dtype=torch.bfloat16)
    train = torch_train.train_op()
    assert train is torch.ops.splat.attention_train.default
    assert torch_op._OP is torch.ops.splat.attention.default
    q, k, v = _leafs(*_inputs(1, 2, 2, L, L))
    torch.library.opcheck(train, (q, k, v, h.key, h.scale),
                          test_utils=("test_schema", "test_autograd_registration",
                                      "test_faketensor", "test_aot_dispatch_dynamic"))
    backward = torch.ops.splat.attention_backward.default
    assert "Tensor dlse" in str(backward._schema)
    with torch.no_grad():
        o, lse = h(q, k, v, return_lse=True)
    do = torch.randn_like(o)
    torch.library.opcheck(backward, (q.detach(), k.detach(), v.detach(), o, lse, do,
                                     lse.new_empty((0,)), h.key, h.scale),
                          test_utils=("test_schema", "test_faketensor"))


def test_the_benchmarks_chunked_fp64_backward_matches_the_dense_one():
    """bench_attention.py --backward checks SPLAT's gradients against
    splat.testing.reference_backward_torch (row chunks, so 16K fits): it must equal the dense
    numpy formula (itself checked against finite differences), empty rows included."""
    import numpy as np

    from splat.tiling.backward import reference_backward

    mask = T.mask_numpy(T.F("sparse_rows", w=8), 96)
    assert (~mask.any(1)).any()
    q, k, v, do = (torch.randn(1, 2, 96, 16, dtype=torch.float64) for _ in range(4))
    got = T.reference_backward_torch(q, k, v, do, lambda qi, ki: torch.from_numpy(mask)[qi, ki],
                                     0.3, chunk=40)
    want = reference_backward(*(t.numpy() for t in (q, k, v, do)), mask, 0.3)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.numpy(), w, rtol=1e-10, atol=1e-12)


def test_the_plain_call_keeps_the_gradient_path():
    """``splat.torch.attention(q, k, v, pattern)`` with inputs that require grad goes through a
    handle of the same artifact: its output has a gradient path, and the gradients are the
    handle's (the plain launch alone would return an output autograd cannot see)."""
    pattern, _ = T.build_pattern(T.F("window", w=12), L)
    q, k, v = _leafs(*_inputs(1, 2, 2, L, L, seed=5))
    g = torch.randn(q.shape, generator=torch.Generator().manual_seed(1)).to(q.dtype)
    o, lse = st.attention(q, k, v, pattern, return_lse=True)
    assert o.grad_fn is not None and lse.shape == (1, 2, L)
    got = torch.autograd.grad(o, (q, k, v), g)
    h = st.prepare(pattern, head_dim=64, dtype=torch.bfloat16)
    leaves = _leafs(q, k, v)
    want = torch.autograd.grad(h(*leaves), leaves, g)
    for a, b in zip(got, want):
        assert torch.equal(a, b)
    with pytest.raises(st.SplatInputError, match="^v: shape .* must equal k's shape"):
        st.attention(q, k[:, :, :50].contiguous(), v, pattern)
