"""A numpy model of the fused forward kernel: it walks a :class:`TileSchedule` exactly as the GPU
kernel will, and a dense fp64 reference to check it against.

Per row tile (vectorised over batch and heads): for each segment, key tiles ``[u0, u0+BLOCK_N)``
for ``u0 = 0, BLOCK_N, ...`` below ``ncols``; the element mask (``rho_lo <= rho < rho_hi``,
``lo(rho) <= u < hi(rho)``, ``u < ncols``) is evaluated only on key tiles that are not full by the
section 2 rule; then the tile's remainder mask tiles, always masked by their bits.  Softmax is
online in float32 with base-2 exponentials: scores are scaled by ``scale * log2(e)``, a running
max ``m`` and sum ``l`` are kept per row, the accumulator is rescaled by ``exp2(m_old - m_new)``,
and at the end ``O = acc / l``; rows with ``l == 0`` get ``O = 0`` and ``lse = -inf``
(``lse`` is the natural log-sum-exp of the scaled scores).
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np

from ..abi import default_scale
from .tile_schedule import TileSchedule, key_tile_full

__all__ = ["run_schedule", "reference_attention", "key_tiles", "has_keys"]

_LOG2E = np.float32(math.log2(math.e))
_LN2 = np.float32(math.log(2.0))


def _check_shapes(q, k, v):
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        raise ValueError("q, k, v must be rank 4 (B, H, L, D)")
    B, H, Lq, D = q.shape
    Bk, Hkv, Lk, Dk = k.shape
    if Bk != B or k.shape[:3] != v.shape[:3] or Dk != D:
        raise ValueError(f"incompatible shapes q{q.shape} k{k.shape} v{v.shape}")
    if H % Hkv:
        raise ValueError(f"H={H} is not a multiple of Hkv={Hkv}")
    return B, H, Hkv, Lq, Lk, D


def has_keys(sched: TileSchedule, i: int) -> bool:
    """Does row tile ``i`` have any key tile (a segment or a mask tile)?"""
    _, _, _, sb, se = (int(x) for x in sched.row_tiles[i])
    return sb < se or int(sched.mask_ptr[i]) < int(sched.mask_ptr[i + 1])


def key_tiles(sched: TileSchedule, i: int) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """The key tiles of row tile ``i`` in the kernel's order, each ``(cols, mask)``: the
    ``BLOCK_N`` key indices (clamped inside ``[0, Lk)``, as the kernel clamps its loads) and
    the element mask ``[nrows, BLOCK_N]``, or None for a full tile (section 2's rule): per
    segment, tiles ``[u0, u0 + BLOCK_N)`` below ``ncols``; then the row tile's mask tiles."""
    _, _, nrows, sb, se = (int(x) for x in sched.row_tiles[i])
    BM, BN = sched.block_m, sched.block_n
    ar_n = np.arange(BN, dtype=np.int64)
    rho = np.arange(nrows, dtype=np.int64)[:, None]
    for seg in sched.segments[sb:se].tolist():
        col0, cs, ncols, rl, rh, la, lb, ha, hb = seg
        for u0 in range(0, ncols, BN):
            u = u0 + ar_n
            cols = col0 + cs * np.minimum(u, ncols - 1)  # clamp the loads; masked below
            if key_tile_full(seg, nrows, u0, BM, BN):
                yield cols, None
            else:
                uu = u[None, :]
                yield cols, ((rho >= rl) & (rho < rh) & (uu >= la * rho + lb)
                             & (uu < ha * rho + hb) & (uu < ncols))
    for mt in range(int(sched.mask_ptr[i]), int(sched.mask_ptr[i + 1])):
        col0, ncols = (int(x) for x in sched.mask_tiles[mt])
        mask = sched.mask_tile_bool(mt)[:nrows] & (ar_n < ncols)[None, :]
        yield np.minimum(col0 + ar_n, sched.Lk - 1), mask


def run_schedule(sched: TileSchedule, q, k, v, scale: float | None = None, *,
                 counters: dict | None = None):
    """Attention of ``q [B,H,Lq,D]`` over ``k, v [B,Hkv,Lk,D]`` restricted to the schedule's
    mask, computed tile by tile in float32.  Returns ``(o float32 [B,H,Lq,Dv],
    lse float32 [B,H,Lq])``.  GQA: query head ``h`` reads kv head ``h // (H // Hkv)``.
    ``counters``: if given, a dict that receives ``key_tiles`` and ``masked_key_tiles`` walked
    (per batch and head)."""
    B, H, Hkv, Lq, Lk, D = _check_shapes(q, k, v)
    if (Lq, Lk) != (sched.Lq, sched.Lk):
        raise ValueError(f"schedule is {sched.Lq}x{sched.Lk}, inputs are {Lq}x{Lk}")
    if scale is None:
        scale = default_scale(D)
    kvh = np.arange(H) // (H // Hkv)
    q32 = np.asarray(q, dtype=np.float32)
    k32 = np.asarray(k, dtype=np.float32)[:, kvh]
    v32 = np.asarray(v, dtype=np.float32)[:, kvh]
    Dv = v32.shape[-1]
    c = np.float32(scale) * _LOG2E
    o = np.zeros((B, H, Lq, Dv), dtype=np.float32)
    lse = np.full((B, H, Lq), -np.inf, dtype=np.float32)
    n_kt = n_masked = 0

    for i, (row0, step, nrows, _, _) in enumerate(sched.row_tiles.tolist()):
        rows = row0 + step * np.arange(nrows, dtype=np.int64)
        if not has_keys(sched, i):
            continue  # no keys: o stays 0, lse stays -inf
        qt = q32[:, :, rows, :]
        m = np.full((B, H, nrows), -np.inf, dtype=np.float32)
        l = np.zeros((B, H, nrows), dtype=np.float32)
        acc = np.zeros((B, H, nrows, Dv), dtype=np.float32)

        def step_tile(cols, mask):
            nonlocal m, l, acc, n_kt, n_masked
            n_kt += 1
            n_masked += mask is not None
            s = np.einsum("bhmd,bhnd->bhmn", qt, k32[:, :, cols, :]) * c
            if mask is not None:
                s = np.where(mask, s, np.float32(-np.inf))
            m_new = np.maximum(m, s.max(axis=-1))
            m_use = np.where(m_new == -np.inf, np.float32(0), m_new)
            alpha = np.exp2(m - m_use)
            p = np.exp2(s - m_use[..., None])
            l = l * alpha + p.sum(axis=-1)
            acc = acc * alpha[..., None] + np.einsum("bhmn,bhnd->bhmd", p, v32[:, :, cols, :])
            m = m_new

        for cols, mask in key_tiles(sched, i):
            step_tile(cols, mask)

        ok = l > 0
        l_safe = np.where(ok, l, np.float32(1))
        o[:, :, rows, :] = np.where(ok[..., None], acc / l_safe[..., None], np.float32(0))
        lse[:, :, rows] = np.where(ok, (m + np.log2(l_safe)) * _LN2, np.float32(-np.inf))
    if counters is not None:
        counters["key_tiles"] = n_kt
        counters["masked_key_tiles"] = n_masked
    return o, lse


def reference_attention(q, k, v, mask, scale: float | None = None, *, chunk: int = 1024):
    """Dense fp64 masked attention.  ``mask``: bool ``[Lq, Lk]`` (or broadcastable to
    ``[B, H, Lq, Lk]``).  Rows with no allowed key give ``o = 0`` and ``lse = -inf``.
    Returns ``(o float64 [B,H,Lq,Dv], lse float64 [B,H,Lq])``."""
    B, H, Hkv, Lq, Lk, D = _check_shapes(q, k, v)
    if scale is None:
        scale = default_scale(D)
    kvh = np.arange(H) // (H // Hkv)
    q64 = np.asarray(q, dtype=np.float64)
    k64 = np.asarray(k, dtype=np.float64)[:, kvh]
    v64 = np.asarray(v, dtype=np.float64)[:, kvh]
    mask = np.broadcast_to(np.asarray(mask, dtype=bool), (B, H, Lq, Lk))
    o = np.zeros((B, H, Lq, v64.shape[-1]))
    lse = np.full((B, H, Lq), -np.inf)
    for i0 in range(0, Lq, chunk):
        i1 = min(i0 + chunk, Lq)
        mk = mask[:, :, i0:i1]
        s = np.einsum("bhmd,bhnd->bhmn", q64[:, :, i0:i1], k64) * scale
        s = np.where(mk, s, -np.inf)
        mx = s.max(axis=-1, keepdims=True)
        ok = np.isfinite(mx)
        p = np.exp(s - np.where(ok, mx, 0.0))
        den = p.sum(axis=-1, keepdims=True)
        o[:, :, i0:i1] = np.where(ok, np.einsum("bhmn,bhnd->bhmd", p, v64) / np.where(ok, den, 1.0), 0.0)
        lse[:, :, i0:i1] = np.where(ok[..., 0], (mx + np.log(np.where(ok, den, 1.0)))[..., 0], -np.inf)
    return o, lse
