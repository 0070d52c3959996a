"""JAX entry point: ``splat.jax.attention(q, k, v, pattern, scale=None, *, return_lse=False)``.

Eager only (not traceable under ``jax.jit``): the arrays are exchanged with PyTorch through
DLPack, zero-copy, and the call goes through `splat.torch.attention`, so validation, artifact
resolution and the launch are the same code. Chosen over raw pointers because JAX arrays are
immutable: the output must be a buffer that JAX did not allocate, which PyTorch provides, and
DLPack hands it back to JAX without a copy. Needs PyTorch (with CUDA) next to JAX.

Synchronisation: the inputs are waited for (``block_until_ready``) before the launch, and the
PyTorch stream the kernel ran on is synchronised before the result is handed to JAX, which
does not know that stream. So each call is a synchronisation point; batch work inside one call.
"""

from __future__ import annotations

from typing import Any

from .runtime.resolve import DEFAULT_TARGET
from .runtime.validate import SplatInputError

__all__ = ["attention"]


def _modules():
    try:
        import jax  # noqa: PLC0415
        import jax.dlpack  # noqa: PLC0415
    except ImportError as e:  # pragma: no cover
        raise ImportError(f"splat.jax needs JAX ({e})") from None
    try:
        import torch  # noqa: PLC0415
    except ImportError as e:  # pragma: no cover
        raise ImportError(f"splat.jax exchanges arrays with PyTorch through DLPack and needs "
                          f"PyTorch with CUDA installed ({e})") from None
    return jax, torch


def _to_torch(x: Any, name: str, jax, torch):
    if not isinstance(x, jax.Array):
        raise SplatInputError(name, f"expected a jax.Array, got {type(x).__name__}")
    devices = x.devices()
    if len(devices) != 1:
        raise SplatInputError(name, f"is sharded over {len(devices)} devices; pass an array on "
                                    f"one GPU")
    dev = next(iter(devices))
    if dev.platform != "gpu":
        raise SplatInputError(name, f"expected an array on a CUDA GPU, got one on {dev.platform} "
                                    f"({dev})")
    x.block_until_ready()
    return torch.from_dlpack(x)


def attention(q, k, v, pattern=None, scale=None, *, return_lse: bool = False, artifact=None,
              target: str = DEFAULT_TARGET):
    """Same contract as `splat.torch.attention`, over JAX arrays (see the module docstring)."""
    jax, torch = _modules()
    from . import torch as splat_torch  # noqa: PLC0415

    tq, tk, tv = (_to_torch(x, n, jax, torch) for x, n in ((q, "q"), (k, "k"), (v, "v")))
    res = splat_torch.attention(tq, tk, tv, pattern, scale, return_lse=return_lse,
                                artifact=artifact, target=target)
    torch.cuda.current_stream(tq.device).synchronize()
    if return_lse:
        o, lse = res
        return jax.dlpack.from_dlpack(o), jax.dlpack.from_dlpack(lse)
    return jax.dlpack.from_dlpack(res)
