"""The kernel ABI: the one definition the compiler and the runtime share (docs/design.md §2–§4).

Everything a kernel and its launcher must agree on lives here: the schedule tables' columns, the
kernels' names and parameter lists per variant, the launch geometry, and the default softmax
scale. The tiler writes tables with these columns, the kernels read them in this order, the
compiler writes manifests from these parameter lists and the runtime checks artifacts against
them. Plain Python: the runtime imports it on machines without MLIR or numpy-heavy code.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

# ---------------------------------------------------------------------------------- launch shape

GPU_MODULE_NAME = "splat_kernels"  # the gpu.module every kernel is emitted into
DTYPES = ("bf16", "f16")
HEAD_DIMS = (64, 128, 256)
BLOCK_M = 64  # query rows per row tile by default: one CTA of NUM_WARPS warps, 16 rows a warp
NUM_WARPS = 4
NUM_THREADS = 32 * NUM_WARPS
# Row tile heights the fused kernel is built for (each gathered K/V tile serves BLOCK_M rows).
# BLOCK_M is the default variant's; splat.tiling.variants chooses per layout, by measured cost,
# between it and 128-row tiles on 32-row warps (faster on dense tiles, slower where tiles drift
# apart in compressed coordinates; docs/performance.md, 2026-12-07).
BLOCK_M_CHOICES = (64, 128)


# Query rows per warp of the fused kernel: 16 (one m16 MMA tile), or 32 (two m16 tiles sharing
# every K/V fragment, as FlashAttention-2; mma_sync only). The tables do not depend on it.
WARP_ROWS = 16
WARP_ROWS_CHOICES = (16, 32)


def fused_threads(block_m: int, warp_rows: int = WARP_ROWS, load_warpgroup: bool = False) -> int:
    """Threads of the fused kernel's CTA for ``block_m``-row tiles, a warp per ``warp_rows``,
    and with ``load_warpgroup`` (wgmma) the producer warpgroup after them."""
    return 32 * block_m // warp_rows + (WGMMA_PRODUCER_THREADS if load_warpgroup else 0)

BLOCK_N_CHOICES = (32, 64, 128)
# Compressed keys per key tile, tuned per head dim on an H100 (docs/performance.md). The tiler
# cuts schedules with it and the fused kernel is built for it: they must agree. D = 256 takes the
# smallest tile: its output accumulators alone are 128 registers a thread.
DEFAULT_BLOCK_N = {64: 64, 128: 32, 256: 32}
# Rows per warp beyond 16 hold another 16 x D f32 accumulator tile: 128 more registers a thread at
# D = 256, more than a thread has, so 32-row warps stop at this head dim.
MAX_HEAD_DIM_32_ROW_WARPS = 128


def q_fragments_in_registers(head_dim: int, warp_rows: int = WARP_ROWS) -> bool:
    """Whether the mma.sync kernel keeps Q's A fragments in registers through the key loop: not
    where they would take 64 registers a thread (two m16 tiles of D = 128, one of D = 256) beside
    the output accumulators; it then re-reads them from shared memory per k16 step, and the Q
    tile gets its own shared memory (so this decides the kernel's shared-memory layout)."""
    return (warp_rows // 16) * head_dim < 256


def default_block_n(head_dim: int) -> int:
    """DEFAULT_BLOCK_N of ``head_dim``; D = 64's for a head dim the kernels are not built for (the
    tiler still tiles such a layout; the lowering refuses it with a located error)."""
    return DEFAULT_BLOCK_N.get(head_dim, DEFAULT_BLOCK_N[64])


def variant_name(block_m: int, warp_rows: int, mma: str = "mma_sync",
                 load_warpgroup: bool = False) -> str:
    """A fused kernel variant's short name, ``m<block_m>w<warp_rows>`` for mma.sync, then
    ``-wgmma`` and ``-producer`` for the Hopper builds (results, manifests)."""
    name = f"m{block_m}w{warp_rows}"
    if mma != "mma_sync":
        name += f"-{mma}" + ("-producer" if load_warpgroup else "")
    return name


def kernel_variant_name(kernel: dict) -> str:
    """`variant_name` of a manifest's fused kernel entry (fields it lacks: the defaults)."""
    return variant_name(kernel.get("block_m", BLOCK_M), kernel.get("warp_rows", WARP_ROWS),
                        kernel.get("mma", "mma_sync"), bool(kernel.get("load_warpgroup")))


# Tensor-core instruction of the fused kernel: warp-level mma.sync (sm_80 and newer) or Hopper's
# warpgroup wgmma (sm_90a only). Same tables, parameters and grid; shared memory differs.
MMA_KINDS = ("mma_sync", "wgmma")


# Chips with Hopper's warpgroup MMA (wgmma, sm_90a PTX only). With mma "auto" the tiler prices the
# wgmma kernel variants that splat/tiling/cost_model.json lists as measured beside the mma.sync
# ones, per layout (splat.tiling.variants): since 2026-12-08 the producer build at 64-key tiles
# (128-byte swizzled tiles), at D = 128, where it took 0.81x mma.sync's time in geometric mean
# on the calibration masks (docs/performance.md). Asked for (splat.compile(mma="wgmma"),
# splat-to-ptx{mma=wgmma}) it is built for these head dims.
WGMMA_CHIPS = ("sm_90a",)
WGMMA_HEAD_DIMS = (128, 256)
# At D = 256 the O accumulators alone take 128 registers a thread: the compute-warp build (two
# 256-thread CTAs an SM, a 128-register cap) cannot be assembled (ptxas C7602 on the H100,
# 2026-12-07n), while the producer build's compute warpgroups get 232 (setmaxnreg). So wgmma
# at these head dims always has its producer warpgroup.
WGMMA_PRODUCER_ONLY_HEAD_DIMS = (256,)
WGMMA_BLOCK_M = 128
# The wgmma kernel's K/V loads: by a producer warpgroup of WGMMA_PRODUCER_THREADS more threads
# that fills WGMMA_PRODUCER_STAGES[block_n] stages behind mbarriers while the compute
# warpgroups run (warp specialisation, fused_forward_wgmma.py), or (False) by the compute warps
# themselves between two CTA barriers per key tile.  Manifests record it ("load_warpgroup").
# Measured on the H100 (2026-12-07m): exact, 1.02-1.14x the compute-warp loads at 64-key
# tiles, still slower than mma.sync; the default wgmma build (32-key tiles) is unchanged until
# both are timed in one run at that width. splat.compile(kv_loads=...)
# and the passes' kv-loads option choose either build of the wgmma kernel.
WGMMA_LOAD_WARPGROUP = False
KV_LOADS = ("compute", "producer")
WGMMA_PRODUCER_THREADS = 128
WGMMA_PRODUCER_STAGES = {32: 4, 64: 4, 128: 3}


def resolve_kv_loads(kv_loads: str, mma: str, head_dim: int = 0) -> bool:
    """Whether the fused kernel has a producer warpgroup, for option ``kv_loads`` ("auto":
    for wgmma WGMMA_LOAD_WARPGROUP, or always at WGMMA_PRODUCER_ONLY_HEAD_DIMS; never for
    mma_sync)."""
    if kv_loads == "auto":
        return mma == "wgmma" and (WGMMA_LOAD_WARPGROUP
                                   or head_dim in WGMMA_PRODUCER_ONLY_HEAD_DIMS)
    return kv_loads == "producer"


def wgmma_loads_error(head_dim: int, producer: bool) -> str | None:
    """Why the wgmma kernel cannot be built at ``head_dim`` with (``producer``) or without a
    producer warpgroup, or None where it can."""
    if producer or head_dim not in WGMMA_PRODUCER_ONLY_HEAD_DIMS:
        return None
    return (f"K/V loads by the compute warps cannot build the wgmma kernel at head dim "
            f"{head_dim} (its accumulators need more registers than two such CTAs an SM "
            f"leave a thread); use kv_loads 'producer' (or 'auto')")


# The producer publishes tile t - 1 only after it has issued tile t, whose stage the compute
# warps free in iteration t - S + 2: with S = 2 that is iteration t, which waits for tile t - 1
# (deadlock). Three stages are the fewest that flow.
WGMMA_PRODUCER_MIN_STAGES = 3


def wgmma_producer_stages(block_n: int, layout_bytes) -> int:
    """K/V stages of the wgmma kernel with a producer warpgroup: the most, up to
    WGMMA_PRODUCER_STAGES[block_n], whose shared memory ``layout_bytes(stages)`` fits sm_90
    (the Q tile, masked kernels' bits and D = 256 take room from the stages); never fewer than
    WGMMA_PRODUCER_MIN_STAGES: a layout that fits no such count is refused by splat.compile,
    which checks every kernel's shared memory against its target."""
    for stages in range(WGMMA_PRODUCER_STAGES[block_n], WGMMA_PRODUCER_MIN_STAGES, -1):
        if layout_bytes(stages) <= SM90_SHARED_BYTES:
            return stages
    return WGMMA_PRODUCER_MIN_STAGES


# Target chips. Shared memory a CTA may have on each (the opt-in maximum): splat.compile refuses a
# kernel that needs more for its target, the launcher checks the device it runs on.
MAX_SHARED_BYTES = {"sm_80": 166912, "sm_86": 101376, "sm_89": 101376, "sm_90": 232448,
                    "sm_90a": 232448}
SM90_SHARED_BYTES = MAX_SHARED_BYTES["sm_90a"]


def target_runs_on(target: str, cc: tuple) -> bool:
    """Whether PTX built for ``target`` (e.g. 'sm_90a', 'sm_80') runs on a device of compute
    capability ``cc``: sm_XY PTX on X.Y and newer (the driver compiles it), sm_90a on 9.0 only."""
    t = target.lower().removeprefix("sm_")
    arch_specific = t.endswith(("a", "f"))
    digits = t.rstrip("af")
    if not digits.isdigit():
        return True  # unknown spelling: let the JIT decide
    major, minor = int(digits[:-1] or 0), int(digits[-1])
    if arch_specific:
        return tuple(cc) == (major, minor)
    return tuple(cc) >= (major, minor)


def target_for_capability(cc: tuple) -> str | None:
    """The newest target SPLAT builds for that runs on a device of capability ``cc`` (None when
    none does: before sm_80)."""
    runs = [t for t in MAX_SHARED_BYTES if target_runs_on(t, cc)]
    return max(runs, key=lambda t: (int(t[3:].rstrip("a")), t.endswith("a"))) if runs else None


# Why the wgmma kernel refuses a head dim, where the reason is known.
# (benchmarks/results/2026-12-07m-...-compare-builds-wgmma-d64-d256.json: the 128-row producer
# build; the 64-row kernel of 2026-12-07 was wrong at D = 64)
_WGMMA_REFUSED_WHY = {
    64: "on the H100 it was exact at D = 64 but 0.44-0.72x the mma_sync kernel's speed",
}


def wgmma_head_dim_error(head_dim: int) -> str:
    why = _WGMMA_REFUSED_WHY.get(head_dim, f"it is not built for D = {head_dim} yet")
    return (f"mma wgmma supports head dim {', '.join(map(str, WGMMA_HEAD_DIMS))} only ({why}); "
            f"use mma_sync")


def mma_offer(mma: str, chip: str) -> str:
    """The instructions the tiler prices for option ``mma`` on ``chip``: "auto" is both where the
    chip has wgmma (the measured variants decide), else mma_sync."""
    if mma == "auto":
        return "auto" if chip in WGMMA_CHIPS else "mma_sync"
    return mma


# Rows and key columns are int32 in every table and kernel index: the largest Lq and Lk.
MAX_LENGTH = 2**31 - 1


def default_scale(head_dim: int) -> float:
    """The softmax scale applied to ``q·k`` when none is given: ``1/sqrt(D)``."""
    return 1.0 / math.sqrt(head_dim)


# ------------------------------------------------------------------------------- schedule tables
# Column names of the int32 tables (docs/design.md §2); a table is ``[n, len(FIELDS)]``.

ROW_TILE_FIELDS = ("row0", "row_step", "nrows", "seg_begin", "seg_end")
SEGMENT_FIELDS = ("col0", "col_step", "ncols", "rho_lo", "rho_hi", "lo_a", "lo_b", "hi_a", "hi_b")
MASK_TILE_FIELDS = ("col0", "ncols")
# The irregular remainder's tables, passed after ``scale`` to the masked kernel:
# mask_ptr [n_tiles + 1], mask_tiles [n_mask, 2], mask_bits [n_mask, BLOCK_M, words].
MASK_TABLES = ("mask_ptr", "mask_tiles", "mask_bits")
MASK_TABLE_RANKS = {"mask_ptr": 1, "mask_tiles": 2, "mask_bits": 3}
# Split-KV: the second schedule's tables, bound to the accumulating kernel's row_tiles/segments.
SPLIT_TABLES = {"row_tiles": "split_row_tiles", "segments": "split_segments"}
# Columns of every two-dimensional table an artifact may carry (checked at load).
TABLE_COLUMNS = {
    "row_tiles": len(ROW_TILE_FIELDS),
    "segments": len(SEGMENT_FIELDS),
    "mask_tiles": len(MASK_TILE_FIELDS),
    "split_row_tiles": len(ROW_TILE_FIELDS),
    "split_segments": len(SEGMENT_FIELDS),
    "col_tiles": len(ROW_TILE_FIELDS),
    "col_segments": len(SEGMENT_FIELDS),
    "col_mask_tiles": len(MASK_TILE_FIELDS),
    "col_split_tiles": len(ROW_TILE_FIELDS),
    "col_split_segments": len(SEGMENT_FIELDS),
}


def mask_words(block_n: int) -> int:
    """32-bit words per tile row of a mask tile's bits: ``ceil(block_n / 32)``."""
    return -(-block_n // 32)


# ---------------------------------------------------------------------------------- parameters
# A parameter in manifest form: {"name", "kind": "memref" | "f32" | "i32", "rank", "dtype"}.
# With MLIR's default calling convention a rank-R memref is 3 + 2R 64-bit PTX parameters
# (allocated and aligned pointer, offset, sizes, strides); a scalar is one.

# The tensors of an attention call and their ranks: q, k, v, o are B×H×L×D, lse is B×H×Lq;
# a backward call's (`BACKWARD_TENSORS`) add dO and dQ (B×H×Lq×D), dK and dV (B×Hkv×Lk×D), the
# lse gradient dlse and delta = rowsum(dO ∘ O) − dlse (B×H×Lq, f32; written by the dQ kernel).
TENSOR_RANKS = {"q": 4, "k": 4, "v": 4, "o": 4, "lse": 3,
                "do": 4, "dlse": 3, "delta": 3, "dq": 4, "dk": 4, "dv": 4}
# The device pointers of one call, in the order the runtime's launch methods take them.
FORWARD_TENSORS = ("q", "k", "v", "o", "lse")
BACKWARD_TENSORS = ("q", "k", "v", "do", "o", "lse", "dlse", "delta", "dq", "dk", "dv")


# Tensors the fused kernels read through their descriptors' strides, so strided views (e.g. of
# a fused QKV projection) need no copy: the parameter's manifest entry says ``"strides":
# "any"``. The innermost stride must be 1 and the others multiples of INPUT_STRIDE_ALIGN
# elements (rows 16-byte aligned for the async copies), the base pointer 16-byte aligned.
# An artifact without the marker (older compilers) takes contiguous tensors only.
STRIDED_INPUTS = ("q", "k", "v")
INPUT_STRIDE_ALIGN = 8  # elements of a 2-byte dtype: 16 bytes
INPUT_PTR_ALIGN = 16


def memref(name: str, rank: int, dtype: str, any_strides: bool = False) -> dict:
    p = {"name": name, "kind": "memref", "rank": rank, "dtype": dtype}
    if any_strides:
        p["strides"] = "any"
    return p


def scalar(name: str, kind: str = "f32") -> dict:
    return {"name": name, "kind": kind}


def num_ptx_params(params: list[dict]) -> int:
    """How many ``.param`` entries the PTX entry of a kernel with these parameters declares."""
    return sum(3 + 2 * p["rank"] if p["kind"] == "memref" else 1 for p in params)


def fused_kernel_name(dtype: str, head_dim: int, masked: bool = False,
                      accumulate: bool = False) -> str:
    """``splat_fwd_<dtype>_d<D>``, ``_masked`` with mask tiles, ``_acc`` for split-KV's fold."""
    return (f"splat_fwd_{dtype}_d{head_dim}" + ("_masked" if masked else "")
            + ("_acc" if accumulate else ""))


def fused_kernel_params(dtype: str, masked: bool = False) -> list[dict]:
    """The fused kernel's arguments in order (design.md §3); the masked variant takes the
    remainder's tables after ``scale``. The accumulating variant has the plain list."""
    params = [memref(name, TENSOR_RANKS[name], dtype, any_strides=name in STRIDED_INPUTS)
              for name in ("q", "k", "v", "o")]
    params += [memref("lse", TENSOR_RANKS["lse"], "f32"),
               memref("row_tiles", 2, "i32"), memref("segments", 2, "i32"), scalar("scale")]
    if masked:
        params += [memref(name, MASK_TABLE_RANKS[name], "i32") for name in MASK_TABLES]
    return params


def fused_kernel_tables(masked: bool = False) -> list[str]:
    """The schedule tables a fused kernel reads (uploaded once per artifact)."""
    return ["row_tiles", "segments"] + (list(MASK_TABLES) if masked else [])


# ------------------------------------------------------------------------------- backward
# dQ over the forward's row schedule (docs/design.md §6): the forward kernel's key loop with the
# output gradient as a second A operand. lse is the forward's (natural log); dlse is the lse's
# gradient (zeros when the loss does not use lse). The dQ kernel first writes
# delta = rowsum(dO * O) - dlse per query row (f32, B x H x Lq), which the dK/dV kernel, launched
# after it, reads.


# Keys (queries, for the dK/dV kernel) per key tile of the backward kernels, per head dim. 64
# at D = 128 too, unlike the forward's 32: on the H100 (2026-12-07, B = 2, H = 16, L = 4096,
# bf16) it made the backward kernels 3-6 % faster on window, blocked, dilated and dense layouts
# and 4 % slower on strided (benchmarks/results/2026-12-07k-*-bwd-kernels*.json); 255
# registers, no spills.
BACKWARD_DEFAULT_BLOCK_N = {64: 64, 128: 64, 256: 32}


def backward_block_n(head_dim: int) -> int:
    """BACKWARD_DEFAULT_BLOCK_N of ``head_dim`` (the forward's default for one it lacks: the
    tiler still tiles, the lowering refuses the head dim with a located error)."""
    return BACKWARD_DEFAULT_BLOCK_N.get(head_dim, default_block_n(head_dim))


# Head dims the backward kernels are built for (at D = 256 the dQ kernel reads Q's and dO's
# fragments from shared memory and the dK/dV kernel accumulates dV and dK in two walks of its
# schedule: lowering/backward_kernels.py).
BACKWARD_HEAD_DIMS = (64, 128, 256)


# Whether "auto" picks the backward's wgmma build (64-row tiles) on a chip that has it: on the
# H100 (2026-12-08c) it matched fp64 on every backward test case, and its kernels took
# 0.75-0.93x mma.sync's time on window, blocked, dilated and strided at 4K, D = 64 and 128
# (its 128-row tiles were slower than its 64-row ones everywhere; docs/performance.md).
BACKWARD_WGMMA_BY_DEFAULT = True


def backward_mma(requested: str, chip: str | None = None) -> str:
    """The backward kernels' tensor-core instruction for a requested one: ``"wgmma"``
    (sm_90a, every backward head dim: lowering/backward_kernels_wgmma.py) where asked for, or
    for "auto" on a wgmma ``chip`` when BACKWARD_WGMMA_BY_DEFAULT; else ``"mma_sync"``. Both
    builds have one ABI, tables and grid."""
    if requested == "wgmma" or (requested == "auto" and BACKWARD_WGMMA_BY_DEFAULT
                                and chip in WGMMA_CHIPS):
        return "wgmma"
    return "mma_sync"


# Split schedules (split-KV, as the forward's): the second launch of each kernel runs its
# "_acc" variant over the split schedule's tables and adds into the gradients the first wrote.
COL_SPLIT_TABLES = {"row_tiles": "col_split_tiles", "segments": "col_split_segments"}


def _renamed(params: list[dict], names: dict) -> list[dict]:
    return [dict(p, name=names.get(p["name"], p["name"])) for p in params]


def dq_kernel_name(dtype: str, head_dim: int, masked: bool = False,
                   accumulate: bool = False) -> str:
    """``splat_bwd_dq_<dtype>_d<D>``, ``_masked`` with mask tiles, ``_acc`` for the split."""
    return (f"splat_bwd_dq_{dtype}_d{head_dim}" + ("_masked" if masked else "")
            + ("_acc" if accumulate else ""))


def dq_kernel_params(dtype: str, masked: bool = False, accumulate: bool = False) -> list[dict]:
    """The dQ kernel's arguments in order; the masked variant takes the remainder's tables
    after ``scale``, as the forward's does; the accumulating one the split schedule's tables
    (`SPLIT_TABLES`)."""
    if accumulate:
        return _renamed(dq_kernel_params(dtype), SPLIT_TABLES)
    params = [memref(name, 4, dtype, any_strides=True) for name in ("q", "k", "v", "do")]
    params += [memref("o", 4, dtype), memref("lse", 3, "f32"), memref("dlse", 3, "f32"),
               memref("delta", 3, "f32"), memref("dq", 4, dtype),
               memref("row_tiles", 2, "i32"), memref("segments", 2, "i32"), scalar("scale")]
    if masked:
        params += [memref(name, MASK_TABLE_RANKS[name], "i32") for name in MASK_TABLES]
    return params


# dK, dV over the column schedule (the transposed layout's tables, named COL_TABLES here): a CTA
# per (key tile, kv head, batch) sums the query heads of its kv head (no atomics).
COL_TABLES = {"row_tiles": "col_tiles", "segments": "col_segments", "mask_ptr": "col_mask_ptr",
              "mask_tiles": "col_mask_tiles", "mask_bits": "col_mask_bits"}


def dkv_kernel_name(dtype: str, head_dim: int, masked: bool = False,
                    accumulate: bool = False) -> str:
    """``splat_bwd_dkv_<dtype>_d<D>``, ``_masked`` with the column layout's mask tiles,
    ``_acc`` for the column split."""
    return (f"splat_bwd_dkv_{dtype}_d{head_dim}" + ("_masked" if masked else "")
            + ("_acc" if accumulate else ""))


def dkv_kernel_params(dtype: str, masked: bool = False, accumulate: bool = False) -> list[dict]:
    """The dK/dV kernel's arguments in order: the column schedule's tables after the tensors,
    the masked variant's remainder tables after ``scale``; the accumulating variant takes the
    column split's (`COL_SPLIT_TABLES`)."""
    if accumulate:
        return _renamed(dkv_kernel_params(dtype),
                        {COL_TABLES[k]: v for k, v in COL_SPLIT_TABLES.items()})
    params = [memref(name, 4, dtype, any_strides=True) for name in ("q", "k", "v", "do")]
    params += [memref("lse", 3, "f32"), memref("delta", 3, "f32"), memref("dk", 4, dtype),
               memref("dv", 4, dtype), memref(COL_TABLES["row_tiles"], 2, "i32"),
               memref(COL_TABLES["segments"], 2, "i32"), scalar("scale")]
    if masked:
        params += [memref(COL_TABLES[name], MASK_TABLE_RANKS[name], "i32") for name in MASK_TABLES]
    return params


def dq_kernel_tables(masked: bool = False, accumulate: bool = False) -> list[str]:
    """The tables the dQ kernel reads: the backward's row schedule (the forward's tables), or
    its split's."""
    if accumulate:
        return [SPLIT_TABLES[t] for t in fused_kernel_tables()]
    return fused_kernel_tables(masked)


def dkv_kernel_tables(masked: bool = False, accumulate: bool = False) -> list[str]:
    """The tables the dK/dV kernel reads: the column schedule's, or its split's."""
    if accumulate:
        return [COL_SPLIT_TABLES[t] for t in fused_kernel_tables()]
    return [COL_TABLES[t] for t in fused_kernel_tables(masked)]


# Backward artifacts (variant "backward") run both kernels on BLOCK_M-row tiles of NUM_WARPS
# 16-row warps by default; the dK/dV kernel's grid is "col_tiles": one CTA per column tile, kv
# head, batch. The wgmma build also runs 128-row tiles: two warpgroups share every gathered
# K/V (Q/dO) tile, half the gather traffic per row, as the forward's 128-row wgmma tiles.
BACKWARD_BLOCK_M = BLOCK_M
BACKWARD_BLOCK_M_CHOICES = {"mma_sync": (BLOCK_M,), "wgmma": (BLOCK_M, 128)}
# Up to this head dim only: at 256 the masked dK/dV kernel on 128-row tiles spilled (ptxas,
# 80 bytes; 64-row tiles and the unmasked kernel did not).
BACKWARD_128_ROWS_MAX_HEAD_DIM = 128


def backward_block_ms(mma: str, head_dim: int | None = None) -> tuple:
    """The row tile heights of the backward kernels on ``mma`` (at ``head_dim``, if given)."""
    heights = BACKWARD_BLOCK_M_CHOICES[mma]
    if head_dim is not None and head_dim > BACKWARD_128_ROWS_MAX_HEAD_DIM:
        heights = tuple(m for m in heights if m <= BLOCK_M)
    return heights


def backward_block_m_error(block_m: int, mma: str, head_dim: int | None = None) -> str | None:
    """Why the backward kernels on ``mma`` (at ``head_dim``) have no ``block_m``-row tiles
    (None: they do)."""
    choices = backward_block_ms(mma, head_dim)
    if block_m in choices:
        return None
    at = f" at head dim {head_dim}" if head_dim is not None else ""
    return (f"the {mma} backward kernels run {' or '.join(map(str, choices))}-row tiles{at}; "
            f"got block_m {block_m}")


class BackwardKernelABI(NamedTuple):
    """One backward kernel's ABI: its name, parameters and tables (each a function of
    ``masked`` and ``accumulate``; the name and parameters also of the dtype) and its grid."""

    name: Callable
    params: Callable
    tables: Callable
    grid: str


# The compiler's kernels, their manifest entries and the runtime's checks all read this table.
BACKWARD_KERNELS = {
    "dq": BackwardKernelABI(dq_kernel_name, dq_kernel_params, dq_kernel_tables, "row_tiles"),
    "dkv": BackwardKernelABI(dkv_kernel_name, dkv_kernel_params, dkv_kernel_tables, "col_tiles"),
}


DECOMPOSED_KINDS = ("sddmm", "softmax", "spmm")  # launch order, one stream


def decomposed_kernel_names(dtype: str, head_dim: int) -> dict:
    return {"sddmm": f"splat_sddmm_{dtype}_d{head_dim}",
            "softmax": f"splat_softmax_{dtype}",
            "spmm": f"splat_spmm_{dtype}_d{head_dim}"}


def decomposed_kernel_params(dtype: str) -> dict:
    """Per kernel kind, the decomposed path's arguments in order (lowering/decomposed.py)."""
    def scores():
        return memref("scores", 4, "f32")

    def row_pieces():
        return memref("row_pieces", 3, "i32")

    def row_nnz():
        return memref("row_nnz", 1, "i32")

    return {
        "sddmm": [memref("q", 4, dtype), memref("k", 4, dtype), scores(), row_pieces(),
                  row_nnz(), scalar("scale")],
        "softmax": [scores(), memref("lse", 3, "f32"), row_nnz()],
        "spmm": [scores(), memref("v", 4, dtype), memref("o", 4, dtype), row_pieces(),
                 row_nnz()],
    }


DECOMPOSED_TABLES = {"sddmm": ["row_pieces", "row_nnz"], "softmax": ["row_nnz"],
                     "spmm": ["row_pieces", "row_nnz"]}
