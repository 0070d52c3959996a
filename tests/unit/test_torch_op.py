"""The ``splat::attention`` custom op and its handle, on the CPU: registration (`opcheck`), the fake
implementation's shapes and dtypes, the numpy reference kernel against fp64, the handle's checks
and messages, ``torch.compile(fullgraph=True)`` with no graph break and no recompile when values
or the batch size change, and the CUDA implementation's glue against a recording launcher.

Needs PyTorch (skipped without) and the compiler side (the artifacts are compiled here, at small
L). The GPU side is tests/gpu/test_gpu_torch_op.py."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mlir")

import torch._dynamo  # noqa: E402
from torch._dynamo.testing import CompileCounter, CompileCounterWithBackend  # noqa: E402
from torch._dynamo.utils import counters  # noqa: E402

import splat.torch as st  # noqa: E402
from splat import testing as T  # noqa: E402
from splat import torch_op  # noqa: E402
from splat.runtime.validate import SplatInputError  # noqa: E402

pytestmark = pytest.mark.usefixtures("fresh_dynamo")

L = 128
CAUSAL = T.F("causal")
WINDOW = T.F("window", w=16)


@pytest.fixture(scope="module")
def causal():
    pattern, _ = T.build_pattern(CAUSAL, L)
    return st.prepare(pattern, head_dim=64, dtype=torch.bfloat16)


@pytest.fixture(scope="module")
def window_f16():
    pattern, _ = T.build_pattern(WINDOW, L)
    return st.prepare(pattern, head_dim=64, dtype=torch.float16, scale=0.3)


def qkv(B, H=4, Hkv=2, dtype=torch.bfloat16, Lq=L, Lk=L, D=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    mk = lambda h, l: torch.randn(B, h, l, D, generator=g).to(dtype)
    return mk(H, Lq), mk(Hkv, Lk), mk(Hkv, Lk)


# ------------------------------------------------------------------------------ registration


def test_op_is_registered_and_passes_opcheck(causal):
    op = torch.ops.splat.attention.default
    assert torch_op._OP is op
    assert str(op._schema) == ("splat::attention(Tensor q, Tensor k, Tensor v, str handle, "
                               "float scale) -> (Tensor, Tensor)")
    # schema, fake implementation against the CPU kernel, dispatch under AOT tracing
    torch.library.opcheck(op, (*qkv(2), causal.key, causal.scale),
                          test_utils=("test_schema", "test_faketensor",
                                      "test_aot_dispatch_dynamic"))


def test_fake_implementation_shapes_and_dtypes(causal, window_f16):
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        q, k, v = (torch.empty(5, h, L, 64, dtype=torch.bfloat16) for h in (8, 2, 2))
        o, lse = torch.ops.splat.attention(q, k, v, causal.key, causal.scale)
    assert o.shape == q.shape and o.dtype == torch.bfloat16 and o.is_contiguous()
    assert lse.shape == (5, 8, L) and lse.dtype == torch.float32
    q, k, v = (t.to("meta") for t in qkv(3, dtype=torch.float16))
    o, lse = window_f16(q, k, v, return_lse=True)
    assert o.device.type == "meta" and o.shape == q.shape and o.dtype == torch.float16
    assert lse.shape == (3, 4, L) and lse.dtype == torch.float32
    with pytest.raises(SplatInputError, match="k: batch size 2 differs from q's 3"):
        window_f16(q, k[:2], v[:2])


# ------------------------------------------------------------------------------ CPU reference


@pytest.mark.parametrize("fam,heads", [(CAUSAL, (4, 2)), (WINDOW, (4, 4))], ids=["causal-GQA", "window-MHA"])
def test_cpu_reference_matches_fp64(causal, window_f16, fam, heads):
    h = causal if fam is CAUSAL else window_f16
    dtype = torch.bfloat16 if h is causal else torch.float16
    q, k, v = qkv(2, *heads, dtype=dtype, seed=1)
    o, lse = h(q, k, v, return_lse=True)
    ref_o, ref_lse, empty = T.reference_attention_torch(q, k, v, fam, h.scale)
    assert not empty.any()
    assert T.rel_error(o, ref_o) <= (1e-2 if dtype == torch.bfloat16 else 2e-3)
    torch.testing.assert_close(lse.double(), ref_lse, rtol=1e-5, atol=1e-5)
    # the public entry with the handle as its pattern is the same call
    assert torch.equal(st.attention(q, k, v, h), o)
    # a per-call scale overrides the handle's
    o2 = h(q, k, v, scale=0.05)
    assert T.rel_error(o2, T.reference_attention_torch(q, k, v, fam, 0.05)[0]) <= 2e-2


def test_cpu_reference_accepts_strided_views(causal):
    q, k, v = qkv(2, 4, 4)
    qt = q.transpose(1, 2).contiguous().transpose(1, 2)  # same values, not contiguous
    assert not qt.is_contiguous()
    assert torch.equal(causal(qt, k, v), causal(q, k, v))


# ------------------------------------------------------------------------------ the handle


def test_handle_is_an_immutable_hashable_constant(causal):
    pattern, _ = T.build_pattern(CAUSAL, L)
    again = st.prepare(pattern, head_dim=64, dtype="bf16")
    assert again == causal and hash(again) == hash(causal) and again is not causal
    other_scale = st.prepare(pattern, head_dim=64, dtype="bf16", scale=0.5)
    assert other_scale != causal and other_scale.key == causal.key
    assert {causal, again, other_scale} == {causal, other_scale}
    with pytest.raises(AttributeError, match="immutable"):
        causal.scale = 1.0
    assert copy.copy(causal) is causal and copy.deepcopy(causal) is causal
    back = pickle.loads(pickle.dumps(causal))
    assert back == causal and (back.Lq, back.Lk, back.head_dim, back.dtype) == (L, L, 64, "bf16")
    assert repr(causal).startswith(f"AttentionOp(key={causal.key[:12]!r}, dtype=bf16, head_dim=64")
    assert causal.scale == pytest.approx(1 / 8)


def test_handle_from_an_artifact(causal):
    h = st.prepare(artifact=causal.artifact)
    assert h == causal
    assert st.prepare(causal.artifact, Lq=L, head_dim=64, dtype=torch.bfloat16) == causal


@pytest.mark.parametrize("kwargs,arg,match", [
    (dict(dtype="bf16"), "head_dim", "required"),
    (dict(head_dim=64), "dtype", "required"),
    (dict(head_dim=64, dtype="bf16", Lq=96), "Lq", "Lq = 96 but the pattern declares Lq = 128"),
    (dict(head_dim=64, dtype="bf16", Lk=96), "Lk", "Lk = 96 but the pattern declares Lk = 128"),
])
def test_prepare_names_what_is_missing_or_wrong(kwargs, arg, match):
    pattern, _ = T.build_pattern(CAUSAL, L)
    with pytest.raises(SplatInputError, match=match) as ei:
        st.prepare(pattern, **kwargs)
    assert ei.value.arg == arg


@pytest.mark.parametrize("kwargs,arg,match", [
    (dict(dtype=torch.float16), "dtype", "built for bf16"),
    (dict(head_dim=128), "head_dim", "built for head_dim=64"),
    (dict(Lq=256), "Lq", "Lq = 256 but the artifact was built for Lq = 128"),
    (dict(Lk=256), "Lk", "Lk = 256 but the artifact was built for Lk = 128"),
    (dict(scale=-1.0), "scale", "must be > 0"),
])
def test_prepare_checks_the_artifact_against_what_is_given(causal, kwargs, arg, match):
    with pytest.raises(SplatInputError, match=match) as ei:
        st.prepare(artifact=causal.artifact, **kwargs)
    assert ei.value.arg == arg


def test_prepare_without_a_pattern_or_artifact():
    with pytest.raises(SplatInputError, match="pattern: required"):
        st.prepare(head_dim=64, dtype="bf16", Lq=L)


def _bad_calls():
    q, k, v = qkv(2)
    return [
        ((q.float(), k, v), "q", "dtype torch.float32"),
        ((q, k.half(), v), "k", "dtype torch.float16"),
        ((q[0], k, v), "q", "expected 4 dimensions"),
        ((q[..., :32], k, v), "q", "head dim 32"),
        ((q[:, :, :100], k, v), "q", "has L = 100 but the handle was built for Lq = 128"),
        ((q, k[:, :, :100], v[:, :, :100]), "k", "has L = 100"),
        ((q, k[:1], v[:1]), "k", "batch size 1 differs from q's 2"),
        ((q, k, v[:, :1]), "v", "must equal k's shape"),
        ((q[:, :3], k, v), "k", "2 kv heads do not divide q's 3 heads"),
        ((q, k.to("meta"), v.to("meta")), "k", "is on meta but q is on cpu"),
    ]


@pytest.mark.parametrize("i", range(10))
def test_bad_calls_name_the_argument(causal, i):
    args, arg, match = _bad_calls()[i]
    kern = torch_op._kernel(causal.key)
    with pytest.raises(SplatInputError, match=match) as ei:
        kern.check_call(*args)
    assert ei.value.arg == arg
    if not any(t.device.type == "meta" for t in args):  # and through the op (CPU kernel)
        with pytest.raises(SplatInputError, match=match):
            causal(*args)


def test_unknown_handle_key():
    q, k, v = qkv(1)
    torch_op._define_op()
    with pytest.raises(SplatInputError, match="handle: no prepared SPLAT kernel"):
        torch.ops.splat.attention(q, k, v, "0" * 64, 0.1)


# ------------------------------------------------------------------------------ torch.compile


def test_compiled_model_matches_eager_and_fp64_without_graph_break(causal):
    model = T.attention_model(causal, dim=256, heads=4, kv_heads=2).to(torch.bfloat16)
    ref = T.attention_model(lambda q, k, v: T.reference_attention_torch(q, k, v, CAUSAL)[0],
                            dim=256, heads=4, kv_heads=2).double()
    x = torch.randn(3, L, 256, generator=torch.Generator().manual_seed(2))
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    with torch.no_grad():  # forward only: the op has no autograd formula yet (issue 14)
        eager, got, want = model(x.bfloat16()), compiled(x.bfloat16()), ref(x.double())
    assert torch.equal(got, eager)
    assert T.rel_error(got, want) <= 3e-2
    assert not counters["graph_break"]


def test_public_entry_with_a_handle_compiles_in_one_graph(causal):
    cnt = CompileCounterWithBackend("eager")  # records the graphs

    def f(q, k, v):
        o, lse = st.attention(q, k, v, causal, return_lse=True)
        o2 = causal(q, k, v, scale=0.2)  # a per-call scale is a constant of the graph too
        return o.float() * lse.exp()[..., None] + o2

    q, k, v = qkv(3)
    got = torch.compile(f, backend=cnt, fullgraph=True)(q, k, v)
    assert torch.equal(got, f(q, k, v))
    assert cnt.frame_count == 1 and not counters["graph_break"]
    assert [n.args[3:] for n in cnt.graphs[0].graph.nodes if n.target is torch_op._OP] == [
        (causal.key, causal.scale), (causal.key, 0.2)]


def test_inductor_compiles_the_op(causal):
    """Inductor lowers the op as an extern call and fuses what is around it (CPU here)."""
    def f(q, k, v):
        return (causal(q * 2, k, v) + 1).float().sum(dim=-1)

    q, k, v = qkv(3)
    got = torch.compile(f, fullgraph=True)(q, k, v)
    torch.testing.assert_close(got, f(q, k, v), rtol=1e-2, atol=1e-2)


def _count_frames(handle, batches, *, dynamic=None, mark_batch=False, same_values=False):
    cnt = CompileCounter()
    model = T.attention_model(handle, dim=256, heads=4, kv_heads=2).to(torch.bfloat16)
    compiled = torch.compile(model, backend=cnt, fullgraph=True, dynamic=dynamic)
    with torch.no_grad():
        for i, B in enumerate(batches):
            x = torch.randn(B, L, 256, generator=torch.Generator().manual_seed(0 if same_values else i))
            x = x.bfloat16()
            if mark_batch:
                torch._dynamo.mark_dynamic(x, 0)
            torch.testing.assert_close(compiled(x), model(x), rtol=0, atol=0)
    assert not counters["graph_break"]
    return cnt.frame_count


def test_no_recompile_when_values_change(causal):
    assert _count_frames(causal, [3, 3, 3, 3]) == 1


def test_no_recompile_when_the_batch_is_dynamic(causal):
    # batch sizes differ from the head counts (4, 2): torch's duck sizing would otherwise tie
    # B to a head count in the first graph's guards
    assert _count_frames(causal, [3, 5, 6, 7], mark_batch=True) == 1
    torch._dynamo.reset()
    assert _count_frames(causal, [3, 5, 6, 7], dynamic=True) == 1


def test_default_dynamic_recompiles_once_then_never(causal):
    """dynamic=None: the first batch change makes the batch symbolic (torch's automatic dynamic
    shapes, one recompile); after that no batch size recompiles: the op adds no guard on it."""
    assert _count_frames(causal, [3, 5, 6, 7, 9]) == 2


def test_plain_pattern_under_fullgraph_says_to_use_a_handle():
    pattern, _ = T.build_pattern(CAUSAL, L)

    def f(q, k, v):
        return st.attention(q, k, v, pattern)

    with pytest.raises(Exception, match="splat.torch.prepare"):
        torch.compile(f, backend="eager", fullgraph=True)(*qkv(3))
    # the same message where the inputs require grad (the plain call's gradient route)
    with pytest.raises(Exception, match="splat.torch.prepare"):
        torch.compile(f, backend="eager", fullgraph=True)(
            *(t.detach().requires_grad_(True) for t in qkv(3)))


def test_compile_time_errors_name_the_argument(causal):
    q, k, v = qkv(3)
    with pytest.raises(Exception, match="q: has L = 100 but the handle was built for Lq = 128"):
        torch.compile(lambda q, k, v: causal(q, k, v), backend="eager",
                      fullgraph=True)(q[:, :, :100], k, v)


# ------------------------------------------------------------------------------ CUDA glue


class RecordingLauncher:
    """Stands in for `Launcher` (tested on a fake driver in test_runtime.py): records what the
    CUDA implementation hands it."""

    closed = False

    def __init__(self, scratch=None, strided_inputs=False):
        self.calls = []
        self._scratch = scratch or {}
        self.strided_inputs = strided_inputs

    def scratch_shapes(self, s):
        return {n: tuple(getattr(s, d) if isinstance(d, str) else d for d in shape)
                for n, shape in self._scratch.items()}

    def forward_with_scratch(self, *args):
        self.calls.append(args)


@pytest.mark.parametrize("strided_inputs", [False, True], ids=["copied", "in-place"])
@pytest.mark.parametrize("scratch", [None, {"scores": ("B", "H", "Lq", 36)}])
def test_cuda_implementation_uses_torch_memory_and_the_current_stream(causal, monkeypatch,
                                                                      scratch, strided_inputs):
    """The CUDA kernel's body (called directly here, on CPU tensors): outputs and scratch from
    torch, the launcher's `forward_with_scratch` with their pointers, torch's raw stream; a
    strided q in place with its strides where the launcher takes them, else a copy."""
    kern = torch_op._kernel(causal.key)
    rec = RecordingLauncher(scratch, strided_inputs)
    monkeypatch.setattr(kern, "launcher", lambda device: rec)
    monkeypatch.setattr(torch_op, "_raw_stream", lambda device: 0x5151)
    monkeypatch.setattr(kern, "has_scratch", bool(scratch))
    q, k, v = qkv(3)
    qt = q.transpose(1, 2).contiguous().transpose(1, 2)
    o, lse = torch_op._attention_cuda(qt, k, v, causal.key, 0.25)
    assert o.shape == q.shape and o.dtype == q.dtype and o.is_contiguous()
    assert lse.shape == (3, 4, L) and lse.dtype == torch.float32
    ((qp, kp, vp, op, lp, sp, shapes, scale, stream, strides),) = rec.calls
    assert (kp, vp, op, lp) == (k.data_ptr(), v.data_ptr(), o.data_ptr(), lse.data_ptr())
    if strided_inputs:
        assert qp == qt.data_ptr() and strides == (qt.stride(), k.stride(), v.stride())
    else:
        assert qp not in (qt.data_ptr(), 0) and strides is None  # a contiguous copy
    assert tuple(shapes) == (3, 4, 2, L, L, 64) and scale == 0.25 and stream == 0x5151
    assert len(sp) == (1 if scratch else 0) and all(sp)


def test_first_call_while_capturing_is_refused(causal, monkeypatch):
    kern = torch_op._kernel(causal.key)
    monkeypatch.setattr(kern, "launchers", {})
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: True)
    with pytest.raises(SplatInputError, match="handle: first call on cuda:0 while a CUDA graph"):
        kern.launcher(0)


def test_layout_mask_pads_to_the_call_length(causal):
    kern = torch_op._kernel(causal.key)
    m = kern.layout_mask(L + 8)
    assert m.shape == (L, L + 8) and not m[:, L:].any()
    assert np.array_equal(m[:, :L], np.tril(np.ones((L, L), dtype=bool)))
