"""PyTorch entry point: ``splat.torch.attention(q, k, v, pattern, scale=None, *, return_lse=False)``.

q: ``(B, H, Lq, D)``, k and v: ``(B, Hkv, Lk, D)`` CUDA tensors, bfloat16 or float16, contiguous,
on one device; GQA when ``Hkv < H`` (``H % Hkv == 0``; query head ``h`` reads kv head
``h // (H // Hkv)``). Returns ``o`` (like q), and with ``return_lse=True`` also the float32
log-sum-exp ``(B, H, Lq)`` (natural log, ``-inf`` for rows with no keys, whose output is 0).

Where the kernel comes from (`splat.runtime.resolve`): ``artifact=`` (an Artifact or a path), or
``splat.compiler.compile(pattern, ...)`` where MLIR is installed (cached in memory and on disk),
or a prebuilt artifact in ``$SPLAT_ARTIFACT_DIR`` found by content key.

For ``torch.compile`` and CUDA graphs, make a handle once per call site and call it (or pass
it as ``pattern``): ``h = prepare(pattern, head_dim=64, dtype=torch.bfloat16)``, then
``h(q, k, v)`` or ``attention(q, k, v, h)`` runs the ``splat::attention`` custom op
(`splat.torch_op`, docs/runtime.md "The torch op"), which Dynamo traces without a graph break.
A plain pattern is resolved on every call, which ``torch.compile`` cannot trace.

Gradients: where grad mode is on and q, k or v requires grad, the call goes through a handle of
the same artifact, whose op carries the autograd formula (`splat.torch_train`: the backward
kernels on CUDA, the fp64 reference on the CPU), so the output always has its gradient path.

Everything is checked before anything is allocated or launched; bad input raises
`splat.runtime.validate.SplatInputError` (a ValueError naming the argument), a missing CUDA
driver `splat.runtime.driver.SplatCudaError`. The kernel runs on
``torch.cuda.current_stream(q.device)``; the output is a fresh tensor, so a failed call writes
nothing. torch is imported on first use only.
"""

from __future__ import annotations

import sys
from typing import Any

from .runtime.launcher import get_launcher
from .runtime.resolve import AUTO_TARGET, resolve_artifact
from .runtime.validate import (SplatInputError, TensorDesc, default_scale, validate_against_artifact,
                               validate_inputs)
from .torch_op import AttentionOp, prepare

__all__ = ["attention", "describe", "prepare", "AttentionOp"]


def _torch():
    try:
        import torch  # noqa: PLC0415
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(f"splat.torch needs PyTorch ({e})") from None
    return torch


def describe(t: Any, name: str) -> TensorDesc:
    """A `TensorDesc` of a torch tensor (raises SplatInputError for non-tensors)."""
    torch = _torch()
    if not isinstance(t, torch.Tensor):
        raise SplatInputError(name, f"expected a torch.Tensor, got {type(t).__name__}")
    dev = t.device
    return TensorDesc(name=name, shape=tuple(t.shape), dtype=str(t.dtype).removeprefix("torch."),
                      device_type=dev.type, device_index=dev.index, contiguous=t.is_contiguous())


def _check_out(t: Any, name: str, shape: tuple, dtype: Any, device: Any) -> None:
    torch = _torch()
    if not isinstance(t, torch.Tensor):
        raise SplatInputError(name, f"expected a torch.Tensor, got {type(t).__name__}")
    if tuple(t.shape) != tuple(shape) or t.dtype != dtype or t.device != device:
        raise SplatInputError(name, f"expected a {tuple(shape)} {dtype} tensor on {device}, got "
                                    f"{tuple(t.shape)} {t.dtype} on {t.device}")
    if not t.is_contiguous():
        raise SplatInputError(name, "is not contiguous")


def _attention(q, k, v, pattern=None, scale=None, *, return_lse=False, artifact=None,
               target: str = AUTO_TARGET, out=None, lse_out=None):
    """`attention`, optionally writing into caller-provided ``out`` / ``lse_out`` (tests poison
    these to check that the kernel writes every element)."""
    torch = _torch()
    shapes, dtype, _ = validate_inputs(describe(q, "q"), describe(k, "k"), describe(v, "v"))
    art = resolve_artifact(pattern, dtype=dtype, head_dim=shapes.D, Lq=shapes.Lq, Lk=shapes.Lk,
                           target=target, artifact=artifact)
    validate_against_artifact(shapes, dtype, art, pattern)
    s = default_scale(scale, shapes.D, art)
    lse_shape = (shapes.B, shapes.H, shapes.Lq)
    if out is not None:
        _check_out(out, "out", tuple(q.shape), q.dtype, q.device)
    if lse_out is not None:
        _check_out(lse_out, "lse_out", lse_shape, torch.float32, q.device)
    device = q.device.index if q.device.index is not None else torch.cuda.current_device()
    with torch.cuda.device(device):
        stream = torch.cuda.current_stream(device)  # also initialises torch's CUDA context
        launcher = get_launcher(art, device)
        launcher.check_shapes(shapes)
        o = torch.empty_like(q) if out is None else out
        lse = torch.empty(lse_shape, dtype=torch.float32, device=q.device) if lse_out is None else lse_out
        launcher.forward(q.data_ptr(), k.data_ptr(), v.data_ptr(), o.data_ptr(), lse.data_ptr(),
                         shapes, s, stream.cuda_stream)
    return (o, lse) if return_lse else o


def attention(q, k, v, pattern=None, scale=None, *, return_lse: bool = False, artifact=None,
              target: str = AUTO_TARGET):
    """Sparse attention of q over (k, v) restricted to `pattern` (see the module docstring).

    `scale` defaults to 1/sqrt(D). `artifact`: an `splat.runtime.Artifact` or a path to one
    (then `pattern` may be None). `target`: the compile target, part of the content key.
    `pattern` may be an `AttentionOp` from `prepare` (then `artifact` and `target` must be left
    out): the call is the handle's ``splat::attention`` op, traceable by ``torch.compile``."""
    if isinstance(pattern, AttentionOp):
        if artifact is not None or target != AUTO_TARGET:
            raise SplatInputError("artifact" if artifact is not None else "target",
                                  "a prepared handle already holds its artifact and target")
        return pattern(q, k, v, scale=scale, return_lse=return_lse)
    torch = sys.modules.get("torch")
    if torch is not None and torch.compiler.is_compiling():
        # Dynamo cannot trace the per-call kernel lookup (locks, files, the driver): break the
        # graph here with a message that says what to do; the call then runs eagerly (and
        # torch.compile(fullgraph=True) stops with this message).
        torch._dynamo.graph_break(msg=_PLAIN_PATTERN_UNDER_COMPILE)
    if torch is not None and torch.is_grad_enabled() and any(
            getattr(t, "requires_grad", False) for t in (q, k, v)):
        # The plain call launches outside autograd: with an input that requires grad it would
        # return an output without a gradient path, silently. It goes through a handle of the
        # same artifact instead, whose op carries the autograd formula (splat.torch_train).
        return _differentiable(q, k, v, pattern, scale, return_lse, artifact, target)
    return _attention(q, k, v, pattern, scale, return_lse=return_lse, artifact=artifact,
                      target=target)


def _differentiable(q, k, v, pattern, scale, return_lse: bool, artifact, target: str):
    """`attention` through a handle of the artifact the plain call would use (checked the same
    way), so that autograd sees the call; a handle per artifact is registered once. The op has
    a CPU implementation (the fp64 reference), so CPU tensors are accepted here."""
    shapes, dtype, _ = validate_inputs(describe(q, "q"), describe(k, "k"), describe(v, "v"),
                                       cuda_only=False)
    art = resolve_artifact(pattern, dtype=dtype, head_dim=shapes.D, Lq=shapes.Lq, Lk=shapes.Lk,
                           target=target, artifact=artifact)
    validate_against_artifact(shapes, dtype, art, pattern)
    return AttentionOp(artifact=art)(q, k, v, scale=scale, return_lse=return_lse)


_PLAIN_PATTERN_UNDER_COMPILE = (
    "splat.torch.attention(q, k, v, pattern) looks its kernel up on every call, which "
    "torch.compile cannot trace: make a handle once with splat.torch.prepare(pattern, "
    "head_dim=..., dtype=...) and pass it as the pattern (or call it: h(q, k, v))")
