"""Training through the torch op (issue 14): ``splat::attention_train`` with an autograd
formula, and ``splat::attention_backward``.

Why a second op: an autograd formula on ``splat::attention`` itself would put Python autograd
wrappers on every inference call (~30 µs on the H100 host, docs/runtime.md). So `AttentionOp`
calls ``splat::attention_train`` only when grad mode is on and an input requires grad; it runs
the same forward implementations, saves q, k, v, o and lse, and its backward calls
``splat::attention_backward(q, k, v, o, lse, do, dlse_or_empty, handle, scale)``:

- CUDA: the backward artifact of the handle's layout (``variant="backward"``: dQ over the row
  schedule, dK/dV over the column schedule; docs/design.md §6), resolved on the first backward
  call like any artifact (compiled where MLIR is, else prebuilt in ``$SPLAT_ARTIFACT_DIR``
  under the request key of the layout the forward artifact records), then launched on torch's
  current stream with torch-allocated outputs (the dQ kernel computes Δ = rowsum(dO ∘ O) − dlse
  itself, into a buffer the dK/dV kernel reads).
- CPU: the dense fp64 reference over the layout the artifact records
  (`splat.tiling.backward.reference_backward`), rounded to the inputs' dtype: models that call
  the op train on machines without a GPU.

The gradient of lse, when a loss uses it, enters as ``dS += P * dlse``: on CUDA through
``Δ = rowsum(dO ∘ O) - dlse`` (``dS = P ∘ (dP - Δ)``; zeros when the loss does not use lse).
"""

from __future__ import annotations

import threading
from typing import Any

from . import torch_op

__all__ = ["TRAIN_OP_NAME", "BACKWARD_OP_NAME", "train_op"]

TRAIN_OP_NAME = "splat::attention_train"
BACKWARD_OP_NAME = "splat::attention_backward"
_BACKWARD_SCHEMA = ("(Tensor q, Tensor k, Tensor v, Tensor o, Tensor lse, Tensor do, "
                    "Tensor dlse, str handle, float scale) -> (Tensor, Tensor, Tensor)")

_lock = threading.Lock()
_TRAIN: Any = None
_LIB: Any = None


def _backward_cpu(q, k, v, o, lse, do, dlse, handle: str, scale: float):
    """The dense fp64 reference over the artifact's layout (``dlse`` empty: no lse gradient)."""
    import torch  # noqa: PLC0415

    from .tiling.backward import reference_backward  # noqa: PLC0415  (numpy only)

    kern = torch_op._kernel(handle)
    _, _, _, Lk = kern.check_call(q, k, v)
    host = [t.detach().double().numpy() for t in (q, k, v, do)]
    g_lse = dlse.detach().double().numpy() if dlse.numel() else None
    grads = reference_backward(*host, kern.layout_mask(Lk), scale, dlse=g_lse)
    return tuple(torch.from_numpy(g).to(t.dtype) for g, t in zip(grads, (q, k, v)))


def _backward_kernel(kern) -> "torch_op._Kernel":
    """The backward artifact's kernel entry for the forward handle's kernel `kern`, resolved
    once (`splat.runtime.prepared.resolve_backward`)."""
    if kern.backward is None:
        from .runtime.prepared import resolve_backward  # noqa: PLC0415

        kern.backward = torch_op._register_kernel(resolve_backward(kern.artifact))
    return kern.backward


def _backward_cuda(q, k, v, o, lse, do, dlse, handle: str, scale: float):
    """dQ, dK, dV from the backward kernels on torch's current stream (no synchronisation)."""
    import torch  # noqa: PLC0415

    from .runtime.launcher import Shapes  # noqa: PLC0415

    kern = torch_op._kernel(handle)
    B, H, Hkv, Lk = kern.check_call(q, k, v)
    Lq, device = q.shape[2], q.device.index
    launcher = _backward_kernel(kern).launcher(device)
    q, k, v, strides = torch_op._kernel_inputs(launcher, q, k, v)
    do = do.to(q.dtype).contiguous()
    o = o.contiguous()
    lse = lse.float().contiguous()
    dlse = dlse.float().contiguous() if dlse.numel() else torch.zeros_like(lse)
    delta = torch.empty_like(lse)  # rowsum(dO ∘ O) − dlse, written by the dQ kernel
    dq = torch.empty_like(q, memory_format=torch.contiguous_format)
    dk = torch.empty(k.shape, dtype=k.dtype, device=k.device)
    dv = torch.empty(v.shape, dtype=v.dtype, device=v.device)
    ptrs = [t.data_ptr() for t in (q, k, v, do, o, lse, dlse, delta, dq, dk, dv)]
    launcher.backward(ptrs, Shapes(B, H, Hkv, Lq, Lk, kern.D), scale,
                      torch_op._raw_stream(device), strides)
    return dq, dk, dv


def _backward_fake(q, k, v, o, lse, do, dlse, handle: str, scale: float):
    return q.new_empty(q.shape), k.new_empty(k.shape), v.new_empty(v.shape)


def _setup_context(ctx, inputs, output):
    q, k, v, handle, scale = inputs
    o, lse = output
    ctx.save_for_backward(q, k, v, o, lse)
    ctx.handle, ctx.scale = handle, scale


def _backward(ctx, grad_o, grad_lse):
    import torch  # noqa: PLC0415

    q, k, v, o, lse = ctx.saved_tensors
    if grad_o is None:
        grad_o = torch.zeros_like(o)
    dlse = grad_lse if grad_lse is not None else lse.new_empty((0,))
    dq, dk, dv = torch.ops.splat.attention_backward.default(
        q, k, v, o, lse, grad_o.contiguous(), dlse, ctx.handle, ctx.scale)
    return dq, dk, dv, None, None


def train_op():
    """``splat::attention_train`` (defined once per process, with ``splat::attention``'s
    implementations and the autograd formula above)."""
    global _TRAIN, _LIB
    if _TRAIN is not None:
        return _TRAIN
    import torch  # noqa: PLC0415

    torch_op._define_op()
    with _lock:
        if _TRAIN is None:
            lib = torch.library.Library("splat", "FRAGMENT")
            name = TRAIN_OP_NAME.split("::")[1]
            lib.define(name + torch_op._SCHEMA)
            lib.impl(name, torch_op._attention_cuda, "CUDA")
            lib.impl(name, torch_op._attention_cpu_reference, "CPU")
            torch.library.register_fake(TRAIN_OP_NAME, torch_op._attention_fake, lib=lib)
            bname = BACKWARD_OP_NAME.split("::")[1]
            lib.define(bname + _BACKWARD_SCHEMA)
            lib.impl(bname, _backward_cuda, "CUDA")
            lib.impl(bname, _backward_cpu, "CPU")
            torch.library.register_fake(BACKWARD_OP_NAME, _backward_fake, lib=lib)
            torch.library.register_autograd(TRAIN_OP_NAME, _backward,
                                            setup_context=_setup_context, lib=lib)
            _LIB = lib
            _TRAIN = torch.ops.splat.attention_train.default
    return _TRAIN
