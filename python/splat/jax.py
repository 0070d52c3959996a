"""JAX entry point: ``splat.jax.attention(q, k, v, pattern, scale=None, *, return_lse=False)``.

q: ``(B, H, Lq, D)``, k and v: ``(B, Hkv, Lk, D)`` arrays on a CUDA GPU, bfloat16 or float16;
GQA when ``Hkv < H``. Returns ``o`` (like q), and with ``return_lse=True`` also the float32
log-sum-exp ``(B, H, Lq)`` (natural log, ``-inf`` for rows with no keys, whose output is 0).

The call is the ``splat_attention`` primitive (`splat.jax_op`): usable eagerly, under
``jax.jit`` and under ``jax.vmap``, lowered to the artifact's kernels as XLA custom calls that
run on XLA's stream (no PyTorch, no host synchronisation). For a call site inside a model, make
a handle once, ``h = prepare(pattern, head_dim=64, dtype="bf16")``, and call ``h(q, k, v)`` (or
pass it as ``pattern``); a plain pattern is resolved to its artifact each time the function is
traced. Where the kernel comes from (`splat.runtime.resolve`): ``artifact=``, or
``splat.compiler.compile`` where MLIR is installed, or ``$SPLAT_ARTIFACT_DIR``.

Bad input raises `splat.runtime.validate.SplatInputError` (a ValueError naming the argument),
at trace time. Forward only (no ``jax.grad`` until the backward lands).
"""

from __future__ import annotations

from .jax_op import JaxAttention, check_arrays, prepare
from .runtime.resolve import AUTO_TARGET
from .runtime.validate import SplatInputError

__all__ = ["attention", "prepare", "JaxAttention"]


def attention(q, k, v, pattern=None, scale=None, *, return_lse: bool = False, artifact=None,
              target: str = AUTO_TARGET):
    """Same contract as `splat.torch.attention`, over JAX arrays (see the module docstring)."""
    if isinstance(pattern, JaxAttention):
        if artifact is not None:
            raise SplatInputError("artifact", "a prepared handle already holds its artifact")
        h = pattern if scale is None else prepare(artifact=pattern.artifact, scale=scale)
        return h(q, k, v, return_lse=return_lse)
    check_arrays(q=q, k=k, v=v)
    shape, k_shape = q.shape, k.shape
    for name, s in (("q", shape), ("k", k_shape)):
        if len(s) != 4:
            raise SplatInputError(name, f"expected 4 dimensions (B, H, L, D), got {tuple(s)}")
    h = prepare(pattern, head_dim=shape[3], dtype=str(q.dtype), Lq=shape[2], Lk=k_shape[2],
                scale=scale, artifact=artifact, target=target)
    return h(q, k, v, return_lse=return_lse)
