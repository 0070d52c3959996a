"""Input validation for the framework entry points, on plain descriptors.

The PyTorch and JAX entry points turn their arrays into `TensorDesc` (shape, dtype name, device,
contiguity) and call `validate_inputs` / `validate_against_artifact` before anything is
allocated or launched, so the checks (and their messages) are testable without any framework.
Every error is a `SplatInputError` (a `ValueError`) whose ``arg`` names the offending argument.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from .. import abi
from .artifact import Artifact
from .launcher import Shapes, check_artifact

SUPPORTED_DTYPES = ("bf16", "f16")

_DTYPE_ALIASES = {
    "bf16": "bf16", "bfloat16": "bf16", "torch.bfloat16": "bf16",
    "f16": "f16", "fp16": "f16", "float16": "f16", "half": "f16", "torch.float16": "f16",
    "f32": "f32", "fp32": "f32", "float32": "f32", "torch.float32": "f32",
    "f64": "f64", "float64": "f64", "torch.float64": "f64",
}


class SplatInputError(ValueError):
    """Bad input to an entry point; ``arg`` is the argument's name (q, k, v, pattern, ...)."""

    def __init__(self, arg: str, message: str):
        self.arg = arg
        super().__init__(f"{arg}: {message}")


def normalize_dtype(dtype: Any) -> str:
    """'bfloat16', 'torch.bfloat16', 'bf16' → 'bf16'; 'float16'/'half'/'fp16' → 'f16'.

    Unknown names are returned as given (lower-cased), so messages can show them."""
    s = str(dtype).strip().lower()
    return _DTYPE_ALIASES.get(s, s)


@dataclasses.dataclass(frozen=True)
class TensorDesc:
    """What validation needs to know about one array."""

    name: str
    shape: tuple
    dtype: str  # any spelling; normalised on use
    device_type: str  # 'cuda', 'cpu', ...
    device_index: int | None = None
    contiguous: bool = True

    @property
    def device(self) -> str:
        return self.device_type if self.device_index is None else f"{self.device_type}:{self.device_index}"


def check_qkv_shapes(q_shape, k_shape, v_shape, head_dim: int | None = None,
                     built_by: str = "the artifact") -> tuple:
    """``(B, H, Lq, D, Hkv, Lk)`` of q ``(B, H, Lq, D)``, k and v ``(B, Hkv, Lk, D)``, or a
    SplatInputError naming the argument that disagrees (with ``head_dim``: first the one whose
    head dim is not the one ``built_by`` was built for). Sizes are only compared, never
    converted, so a symbolic batch size (torch.compile's fake tensors) stays symbolic."""
    for name, shape in (("q", q_shape), ("k", k_shape), ("v", v_shape)):
        if len(shape) != 4:
            raise SplatInputError(name, f"expected 4 dimensions (B, H, L, D), got shape "
                                        f"{tuple(shape)}")
        if head_dim is not None and shape[3] != head_dim:
            raise SplatInputError(name, f"head dim {shape[3]} but {built_by} was built for "
                                        f"head_dim={head_dim}")
    B, H, Lq, D = q_shape
    Bk, Hkv, Lk, Dk = k_shape
    if Bk != B:
        raise SplatInputError("k", f"batch size {Bk} differs from q's {B} (shape "
                                   f"{tuple(k_shape)} vs q {tuple(q_shape)})")
    if Dk != D:
        raise SplatInputError("k", f"head dim {Dk} differs from q's head dim {D}")
    if tuple(v_shape) != tuple(k_shape):
        raise SplatInputError("v", f"shape {tuple(v_shape)} must equal k's shape {tuple(k_shape)}")
    if Hkv < 1 or H % Hkv != 0:
        raise SplatInputError("k", f"{Hkv} kv heads do not divide q's {H} heads (GQA needs H to be "
                                   f"a multiple of Hkv)")
    return B, H, Lq, D, Hkv, Lk


def validate_inputs(q: TensorDesc, k: TensorDesc, v: TensorDesc, *,
                    cuda_only: bool = True) -> tuple:
    """Check q, k, v on their own and against each other (on a CUDA device, unless
    ``cuda_only`` is False: a call that runs through an op with a CPU implementation).

    Returns ``(Shapes(B, H, Hkv, Lq, Lk, D), dtype, device_index)``."""
    for t in (q, k, v):
        if cuda_only and t.device_type != "cuda":
            raise SplatInputError(t.name, f"expected a CUDA tensor, got one on device {t.device!r}")
    check_qkv_shapes(q.shape, k.shape, v.shape)
    for t in (q, k, v):
        dt = normalize_dtype(t.dtype)
        if dt not in SUPPORTED_DTYPES:
            raise SplatInputError(t.name, f"dtype {t.dtype} is not supported (bfloat16 or float16)")
        if not t.contiguous:
            raise SplatInputError(t.name, "is not contiguous; call .contiguous() first")
    for t in (k, v):
        if t.device != q.device:
            raise SplatInputError(t.name, f"is on {t.device} but q is on {q.device}; all tensors "
                                          f"must be on the same device")
        if normalize_dtype(t.dtype) != normalize_dtype(q.dtype):
            raise SplatInputError(t.name, f"dtype {t.dtype} differs from q's dtype {q.dtype}")
    B, H, Lq, D = (int(x) for x in q.shape)
    Hkv, Lk = int(k.shape[1]), int(k.shape[2])
    if D < 1 or Lq < 1 or Lk < 1:
        raise SplatInputError("q", f"empty sequence or head dimension: q {tuple(q.shape)}, "
                                   f"k {tuple(k.shape)}")
    return Shapes(B, H, Hkv, Lq, Lk, D), normalize_dtype(q.dtype), q.device_index


def pattern_lengths(pattern: Any) -> tuple:
    """(Lq, Lk) a pattern/ACSR object declares, each None when unknown."""
    out = []
    for names in (("Lq", "lq", "n_rows"), ("Lk", "lk", "n_cols")):
        val = None
        for n in names:
            x = getattr(pattern, n, None)
            if isinstance(x, int) and not isinstance(x, bool):
                val = x
                break
        out.append(val)
    if out == [None, None]:
        shape = getattr(pattern, "shape", None)
        if isinstance(shape, tuple) and len(shape) == 2 and all(isinstance(s, int) for s in shape):
            out = list(shape)
    return tuple(out)


def validate_against_artifact(shapes: Shapes, dtype: str, artifact: Artifact,
                              pattern: Any = None) -> None:
    """Check the inputs against what the artifact (and the pattern) were built for."""
    adt = normalize_dtype(artifact.dtype)
    if adt != normalize_dtype(dtype):
        raise SplatInputError("q", f"dtype {dtype} but the artifact was built for {artifact.dtype}")
    if shapes.D != artifact.head_dim:
        raise SplatInputError("q", f"head dim {shapes.D} but the artifact was built for head_dim="
                                   f"{artifact.head_dim}")
    fixed = artifact.shapes or {}
    for f, arg in (("Lq", "q"), ("Lk", "k")):
        want = fixed.get(f)
        got = getattr(shapes, f)
        if want is not None and int(want) != got:
            raise SplatInputError("pattern", f"the artifact was built for {f} = {want}, but {arg} "
                                             f"has L = {got}")
    for f, arg in (("B", "q"), ("H", "q"), ("Hkv", "k")):
        want = fixed.get(f)
        if want is not None and int(want) != getattr(shapes, f):
            raise SplatInputError(arg, f"the artifact was built for {f} = {want}, got "
                                       f"{getattr(shapes, f)}")
    if pattern is not None and not isinstance(pattern, (Artifact, str)):
        plq, plk = pattern_lengths(pattern)
        if plq is not None and plq != shapes.Lq:
            raise SplatInputError("pattern", f"pattern has Lq = {plq} but q has L = {shapes.Lq}")
        if plk is not None and plk != shapes.Lk:
            raise SplatInputError("pattern", f"pattern has Lk = {plk} but k has L = {shapes.Lk}")
    plan = check_artifact(artifact)
    if plan.tile_Lq is not None and plan.tile_Lq != shapes.Lq:
        raise SplatInputError("pattern", f"the artifact's schedule covers Lq = {plan.tile_Lq} query "
                                         f"rows but q has L = {shapes.Lq}")
    if shapes.Lk < plan.min_Lk:
        raise SplatInputError("pattern", f"the artifact's schedule reads key {plan.min_Lk - 1} but "
                                         f"k has L = {shapes.Lk}")


_F32_MAX = 3.4028234663852886e38


def default_scale(scale: Any, head_dim: int, artifact: Artifact | None = None) -> float:
    """`scale` as a finite float; None → the artifact's scale if it has one, else 1/sqrt(D)."""
    if scale is None:
        s = (artifact.manifest.get("scale") if artifact is not None else None)
        scale = s if s is not None else abi.default_scale(head_dim)
    try:
        f = float(scale)
    except (TypeError, ValueError):
        raise SplatInputError("scale", f"must be a real number, got {scale!r}") from None
    if not math.isfinite(f):
        raise SplatInputError("scale", f"must be finite, got {f}")
    # The kernels take the running max on raw scores and scale afterwards (so scale > 0), and
    # receive it as f32.
    if not 0.0 < f <= _F32_MAX:
        raise SplatInputError("scale", f"must be > 0 and fit f32, got {f}")
    return f
