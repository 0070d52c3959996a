"""The backward pass over ACSR schedules (issue 14): the column schedule and a numpy model.

Attention's gradients split by what they sum over:

- ``dQ[i] = scale * sum_j dS[i, j] K[j]`` sums over a query row's keys: it walks the forward's
  *row* schedule (row tiles, their key tiles), as the forward does;
- ``dK[j] = scale * sum_i dS[i, j] Q[i]`` and ``dV[j] = sum_i P[i, j] dO[i]`` sum over a key's
  queries: they walk a *column* schedule, the schedule of the transposed layout, whose "rows"
  are keys and whose "key tiles" are sequences of queries.

with ``P = exp(scale * Q Kᵀ - lse)`` recomputed from the forward's log-sum-exp, ``Δ[i] =
rowsum(dO[i] * O[i])`` and ``dS = P * (dO Vᵀ - Δ)``. Each output element is written by one tile
of one schedule, so no atomics are needed (deterministic). GQA: a kv head's dK and dV sum the
query heads that share it.

`transpose_layout` gives the column layout exactly: the transposed mask, analysed (the
analysis reconstructs its input exactly, checked); `column_schedule` tiles it with the
forward's tiler. `run_backward` walks both schedules tile by tile in float32, as GPU kernels
will (the key-tile enumeration is the forward executor's, `executor.key_tiles`), and
`reference_backward` is the dense fp64 formula to check it against.
"""

from __future__ import annotations

import numpy as np

from ..abi import default_scale
from ..analysis import acsr_from_mask
from ..analysis.acsr import ACSR
from .executor import _check_shapes, has_keys, key_tiles
from .tile_schedule import TileSchedule

__all__ = ["transpose_layout", "column_schedule", "column_schedules", "run_backward",
           "reference_backward"]


def transpose_layout(acsr: ACSR) -> ACSR:
    """The ACSR of the transposed mask (``Lk x Lq``), exact. Builds the transposed mask
    (``Lq * Lk`` bytes) from the layout's row chunks and analyses it."""
    mask_t = np.zeros((acsr.Lk, acsr.Lq), dtype=bool)
    for i0, chunk in acsr.iter_mask_chunks():
        mask_t[:, i0:i0 + chunk.shape[0]] = chunk.T
    return acsr_from_mask(mask_t)


def column_schedule(acsr: ACSR, block_m: int = 64, block_n: int = 64, *,
                    order: str = "heavy_first") -> TileSchedule:
    """The schedule of the transposed layout: row tiles of ``block_m`` keys, each walking
    ``block_n``-query tiles (its "key tiles"); unsplit."""
    return column_schedules(acsr, block_m, block_n, order=order, split_kv=False)[0]


def column_schedules(acsr: ACSR, block_m: int = 64, block_n: int = 64, *,
                     order: str = "heavy_first", plan: str = "auto", split_kv: bool = True
                     ) -> tuple[TileSchedule, TileSchedule | None]:
    """``(schedule, split)`` of the transposed layout, split as the forward's schedules are
    (`splat.tiling.variants.tile_layout`: a second schedule where the cost model prices two
    launches below one; the dK/dV kernel's accumulating variant runs it)."""
    from .variants import tile_layout  # noqa: PLC0415  (variants imports the cost model)

    return tile_layout(transpose_layout(acsr), block_m, block_n, order=order, plan=plan,
                       split_kv=split_kv)


def _check_grad_inputs(q, k, v, o, lse, do):
    B, H, Hkv, Lq, Lk, D = _check_shapes(q, k, v)
    if np.shape(o) != (B, H, Lq, v.shape[-1]) or np.shape(do) != np.shape(o):
        raise ValueError(f"o and do must be {(B, H, Lq, v.shape[-1])}, got {np.shape(o)} and "
                         f"{np.shape(do)}")
    if np.shape(lse) != (B, H, Lq):
        raise ValueError(f"lse must be {(B, H, Lq)}, got {np.shape(lse)}")
    return B, H, Hkv, Lq, Lk, D


def _probabilities(s, lse_rows, mask):
    """``exp(s - lse)`` where the mask allows (rows without keys have lse = -inf: P = 0)."""
    lse_use = np.where(np.isfinite(lse_rows), lse_rows, np.float32(0))
    p = np.exp(s - lse_use)
    live = np.isfinite(lse_rows)
    if mask is not None:
        live = live & mask
    return np.where(live, p, np.float32(0))


def _schedules(s) -> list[TileSchedule]:
    """A schedule, or a schedule and its split (None where there is none), as a list."""
    return [s] if isinstance(s, TileSchedule) else [x for x in s if x is not None]


def _tiles(schedules):
    """(schedule, tile index, row tile) over every tile of every schedule."""
    for sched in schedules:
        for i, tile in enumerate(sched.row_tiles.tolist()):
            yield sched, i, tile


def run_backward(rows, cols, q, k, v, o, lse, do,
                 scale: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(dq, dk, dv)`` in float32 of attention over the layout of ``rows`` (the forward's
    schedule) and ``cols`` (`column_schedule` of the same layout), given the forward's ``o``
    and natural-log ``lse`` and the output gradient ``do``. q, o, do: ``[B, H, Lq, D]``;
    k, v: ``[B, Hkv, Lk, D]``; GQA sums dk, dv over the query heads of a kv head.
    ``rows`` and ``cols`` may each be a ``(schedule, split)`` pair (`tile_layout`,
    `column_schedules`): the split's tiles add into the same gradients, as the kernels'
    accumulating launches do."""
    B, H, Hkv, Lq, Lk, D = _check_grad_inputs(q, k, v, o, lse, do)
    row_scheds, col_scheds = _schedules(rows), _schedules(cols)
    if any((r.Lq, r.Lk) != (Lq, Lk) for r in row_scheds) or \
            any((c.Lq, c.Lk) != (Lk, Lq) for c in col_scheds):
        shapes = lambda ss: ", ".join(f"{x.Lq}x{x.Lk}" for x in ss)  # noqa: E731
        raise ValueError(f"schedules are {shapes(row_scheds)} and {shapes(col_scheds)}, the "
                         f"inputs need {Lq}x{Lk} and its transpose")
    scale = np.float32(default_scale(D) if scale is None else scale)
    kvh = np.arange(H) // (H // Hkv)
    f32 = lambda x: np.asarray(x, dtype=np.float32)  # noqa: E731
    q32, o32, do32, lse32 = f32(q), f32(o), f32(do), f32(lse)
    k32, v32 = f32(k)[:, kvh], f32(v)[:, kvh]  # per query head
    delta = (do32 * o32).sum(axis=-1)  # [B, H, Lq]

    dq = np.zeros_like(q32)
    for sched, i, (row0, step, nrows, _, _) in _tiles(row_scheds):
        if not has_keys(sched, i):
            continue
        r = row0 + step * np.arange(nrows, dtype=np.int64)
        for c, mask in key_tiles(sched, i):
            s = np.einsum("bhmd,bhnd->bhmn", q32[:, :, r], k32[:, :, c]) * scale
            p = _probabilities(s, lse32[:, :, r, None], mask)
            dp = np.einsum("bhmd,bhnd->bhmn", do32[:, :, r], v32[:, :, c])
            ds = p * (dp - delta[:, :, r, None])
            dq[:, :, r] += np.einsum("bhmn,bhnd->bhmd", ds, k32[:, :, c]) * scale

    dk = np.zeros((B, H, Lk, D), dtype=np.float32)  # per query head, summed below
    dv = np.zeros((B, H, Lk, v32.shape[-1]), dtype=np.float32)
    for sched, j, (key0, step, nkeys, _, _) in _tiles(col_scheds):
        if not has_keys(sched, j):
            continue
        kk = key0 + step * np.arange(nkeys, dtype=np.int64)
        for qi, mask in key_tiles(sched, j):  # mask: [keys, queries]
            s_t = np.einsum("bhnd,bhmd->bhnm", k32[:, :, kk], q32[:, :, qi]) * scale
            p_t = _probabilities(s_t, lse32[:, :, None, qi], mask)
            dv[:, :, kk] += np.einsum("bhnm,bhmd->bhnd", p_t, do32[:, :, qi])
            dp_t = np.einsum("bhnd,bhmd->bhnm", v32[:, :, kk], do32[:, :, qi])
            ds_t = p_t * (dp_t - delta[:, :, None, qi])
            dk[:, :, kk] += np.einsum("bhnm,bhmd->bhnd", ds_t, q32[:, :, qi]) * scale
    group = H // Hkv
    return (dq, dk.reshape(B, Hkv, group, Lk, D).sum(axis=2),
            dv.reshape(B, Hkv, group, Lk, -1).sum(axis=2))


def reference_backward(q, k, v, do, mask, scale: float | None = None, dlse=None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense fp64 ``(dq, dk, dv)`` of masked attention (``mask``: bool ``[Lq, Lk]``) for the
    output gradient ``do`` and, if given, the gradient ``dlse`` ``[B, H, Lq]`` of the natural
    log-sum-exp (d lse / d S = P, so it adds ``P * dlse`` to dS); rows without keys contribute
    nothing."""
    B, H, Hkv, Lq, Lk, D = _check_shapes(q, k, v)
    scale = default_scale(D) if scale is None else scale
    kvh = np.arange(H) // (H // Hkv)
    q64, do64 = np.asarray(q, np.float64), np.asarray(do, np.float64)
    k64, v64 = np.asarray(k, np.float64)[:, kvh], np.asarray(v, np.float64)[:, kvh]
    mask = np.asarray(mask, dtype=bool)
    s = np.where(mask, np.einsum("bhmd,bhnd->bhmn", q64, k64) * scale, -np.inf)
    mx = s.max(axis=-1, keepdims=True)
    live = np.isfinite(mx)
    p = np.exp(s - np.where(live, mx, 0.0))
    p = np.where(live, p / np.where(live, p.sum(axis=-1, keepdims=True), 1.0), 0.0)
    o = np.einsum("bhmn,bhnd->bhmd", p, v64)
    dp = np.einsum("bhmd,bhnd->bhmn", do64, v64)
    row = (do64 * o).sum(axis=-1, keepdims=True)
    if dlse is not None:
        row = row - np.asarray(dlse, np.float64)[..., None]
    ds = p * (dp - row)
    dq = np.einsum("bhmn,bhnd->bhmd", ds, k64) * scale
    dk = np.einsum("bhmn,bhmd->bhnd", ds, q64) * scale
    dv = np.einsum("bhmn,bhmd->bhnd", p, do64)
    group = H // Hkv
    return (dq, dk.reshape(B, Hkv, group, Lk, D).sum(axis=2),
            dv.reshape(B, Hkv, group, Lk, -1).sum(axis=2))
