"""The fused forward kernel's configuration: tile shape, instruction, stages, shared-memory
layout and launch metadata (design.md §3). No MLIR: the compiler's manifest, the lowering pass
and the tests read the same numbers the kernel body (fused_forward.py, fused_forward_wgmma.py)
is built from."""

from __future__ import annotations

from dataclasses import dataclass

from .. import abi
from ..abi import BLOCK_M

# Per head dim defaults, picked by measurement on an H100: block_n (abi.DEFAULT_BLOCK_N, shared
# with the tiler) and the occupancy hint that keeps registers at <= 128 (D=64: 4 CTAs/SM) or
# <= 168 (D=128: 3 CTAs/SM) without spills.  0 = no .minnctapersm hint.
DEFAULTS = {64: {"block_n": abi.DEFAULT_BLOCK_N[64], "min_blocks_per_sm": 4},
            128: {"block_n": abi.DEFAULT_BLOCK_N[128], "min_blocks_per_sm": 0},
            256: {"block_n": abi.DEFAULT_BLOCK_N[256], "min_blocks_per_sm": 0}}
# The masked kernel (mask_tiles=True) at D = 128 and its default BLOCK_N: without a hint ptxas
# takes 195 registers (2 CTAs/SM); capped at 3 CTAs/SM it needs 167 and spills nothing.
MASKED_MIN_BLOCKS_PER_SM = {128: 3}
MMA_KINDS = abi.MMA_KINDS
SMEM_PAD = 8  # elements appended to every shared-memory row (16 bytes)
CHUNK = 8  # elements per 16-byte cp.async / vector chunk


@dataclass(frozen=True)
class FusedForwardConfig:
    dtype: str
    head_dim: int
    block_n: int | None = None  # None: DEFAULTS[head_dim]
    # Occupancy hint (PTX .minnctapersm): caps registers at 64K / (128 * n).  0 = no hint,
    # None = DEFAULTS[head_dim].
    min_blocks_per_sm: int | None = None
    # Also run the schedule's remainder mask tiles (design.md §2, TileSchedule): three more
    # kernel arguments and a "_masked" kernel name.  False keeps the plain kernel unchanged.
    mask_tiles: bool = False
    # Split-KV (splat.tiling.split): fold this run into the o / lse another launch wrote for
    # the same rows (log-sum-exp weights) instead of overwriting them; kernel name "_acc".
    accumulate: bool = False
    # Tensor-core instruction: "mma_sync" (sm_80+, warp-level, operands through ldmatrix) or
    # "wgmma" (sm_90a, warpgroup-level, K/V read from shared memory by the tensor cores;
    # fused_forward_wgmma.py).  Same ABI, tables and launch grid.
    mma: str = "mma_sync"
    # Query rows per row tile (abi.BLOCK_M_CHOICES): the CTA has a warp per ``warp_rows`` rows.
    block_m: int = BLOCK_M
    # Query rows per warp (abi.WARP_ROWS_CHOICES): 16, or 32 as FlashAttention-2 (two m16 tiles a
    # warp share every K/V fragment loaded from shared memory: half the ldmatrix bytes per MMA).
    warp_rows: int = abi.WARP_ROWS
    # wgmma only: K/V gathered by a producer warpgroup behind mbarriers (warp specialisation,
    # fused_forward_wgmma.py); None: abi.resolve_kv_loads("auto", mma, head_dim).
    load_warpgroup: bool | None = None

    def __post_init__(self):
        if self.mma not in MMA_KINDS:
            raise ValueError(f"mma must be one of {MMA_KINDS}, got {self.mma!r}")
        if self.dtype not in abi.DTYPES:
            raise ValueError(f"dtype must be one of {abi.DTYPES}, got {self.dtype!r}")
        if self.head_dim not in abi.HEAD_DIMS:
            raise ValueError(f"head_dim must be one of {abi.HEAD_DIMS}, got {self.head_dim}")
        if self.mma == "wgmma" and self.head_dim not in abi.WGMMA_HEAD_DIMS:
            raise ValueError(abi.wgmma_head_dim_error(self.head_dim))
        if self.block_m not in abi.BLOCK_M_CHOICES:
            raise ValueError(f"block_m must be one of {abi.BLOCK_M_CHOICES}, got {self.block_m}")
        if self.warp_rows not in abi.WARP_ROWS_CHOICES:
            raise ValueError(f"warp_rows must be one of {abi.WARP_ROWS_CHOICES}, "
                             f"got {self.warp_rows}")
        if self.warp_rows > 16 and self.head_dim > abi.MAX_HEAD_DIM_32_ROW_WARPS:
            raise ValueError(f"warp_rows {self.warp_rows} needs head_dim <= "
                             f"{abi.MAX_HEAD_DIM_32_ROW_WARPS} (each m16 tile holds 16 x D f32 "
                             f"accumulators), got {self.head_dim}")
        if self.mma == "wgmma" and self.warp_rows != 16:
            raise ValueError("mma wgmma needs warp_rows 16 (a warpgroup's 4 warps own 16 rows "
                             "each of wgmma's 64)")
        if self.load_warpgroup is None:
            object.__setattr__(self, "load_warpgroup",
                               abi.resolve_kv_loads("auto", self.mma, self.head_dim))
        if self.load_warpgroup and self.mma != "wgmma":
            raise ValueError("load_warpgroup needs mma wgmma")
        loads_error = abi.wgmma_loads_error(self.head_dim, self.load_warpgroup)
        if self.mma == "wgmma" and loads_error:
            raise ValueError(loads_error)
        defaults = dict(DEFAULTS[self.head_dim])
        if (self.mask_tiles and self.head_dim in MASKED_MIN_BLOCKS_PER_SM
                and self.block_n in (None, defaults["block_n"])):
            defaults["min_blocks_per_sm"] = MASKED_MIN_BLOCKS_PER_SM[self.head_dim]
        # The hints are register caps tuned for 64-row (128-thread) CTAs of 16-row warps: keep
        # the same cap per thread for other CTA sizes; 32-row warps hold twice the accumulators
        # and get no cap (ptxas' choice).
        defaults["min_blocks_per_sm"] = defaults["min_blocks_per_sm"] * BLOCK_M // self.block_m
        if self.warp_rows != 16:
            defaults["min_blocks_per_sm"] = 0
        if self.mma == "wgmma":
            # Two 256-thread CTAs per SM fit 128 registers a thread, which 32-key tiles need no
            # more than (Q is read from shared memory: ptxas, no spills); otherwise no cap.
            defaults["min_blocks_per_sm"] = 2 if self.block_m == 128 and self.block_n in (
                None, 32) else 0
            if self.load_warpgroup:
                # A register cap at entry, which setmaxnreg needs to move registers from the
                # producer warpgroup to the compute ones.
                defaults["min_blocks_per_sm"] = 1
        for field in ("block_n", "min_blocks_per_sm"):
            if getattr(self, field) is None:
                object.__setattr__(self, field, defaults[field])
        if self.block_n not in abi.BLOCK_N_CHOICES:
            raise ValueError(f"block_n must be one of {abi.BLOCK_N_CHOICES}, got {self.block_n}")

    @property
    def early_prefetch(self) -> bool:
        """Whether the next key tile's loads are issued before this tile's Q·Kᵀ (they then
        overlap the whole iteration) rather than after it (their address arithmetic then
        overlaps the tensor-core work).  32-row warps run 2 CTAs per SM, too few to hide the
        loads behind other CTAs: early measured 4-7 % faster on dense tiles at D = 128
        (2026-12-07g); 16-row warps run 3-4 CTAs per SM and gained nothing from it."""
        return self.warp_rows > 16 and self.mma == "mma_sync"

    @property
    def kv_stages(self) -> int:
        """K/V (and mask-bit) stages in shared memory: 2 (load tile j + 1 while tile j is used);
        wgmma 3, as its P V of tile j - 1 is still reading V while tile j is computed and
        tile j + 1 loads (fused_forward_wgmma.py); with a producer warpgroup as many as fit,
        3 to abi.WGMMA_PRODUCER_STAGES[block_n]."""
        if self.load_warpgroup:
            return abi.wgmma_producer_stages(self.block_n, self._producer_layout_bytes)
        return 3 if self.mma == "wgmma" else 2

    def _producer_layout_bytes(self, stages: int) -> int:
        """``shared_bytes`` of the producer-warpgroup layout with ``stages`` K/V stages (what
        `abi.wgmma_producer_stages` chooses by; the properties below lay out the chosen one)."""
        q_core = max(2 * stages * self.kv_tile_bytes,
                     self.q_offset + self.block_m * self.row_stride * 2)
        bits = stages * self.bits_stage_bytes if self.mask_tiles else 0
        return q_core + self.block_m * self.head_dim * 2 + bits + 2 * stages * 8

    @property
    def num_threads(self) -> int:
        return abi.fused_threads(self.block_m, self.warp_rows, self.load_warpgroup)

    @property
    def compute_threads(self) -> int:
        """Threads that own query rows (all of them, but for the producer warpgroup)."""
        return abi.fused_threads(self.block_m, self.warp_rows)

    @property
    def m_tiles(self) -> int:
        """m16 accumulator tiles per warp."""
        return self.warp_rows // 16

    @property
    def q_in_registers(self) -> bool:
        """Q's fragments stay in registers for the whole key loop, except where they would take
        64 registers a thread (`abi.q_fragments_in_registers`): then they are re-read from
        shared memory per k16 step of every key tile (FlashAttention-2's choice), and the Q
        tile keeps its own shared memory."""
        return abi.q_fragments_in_registers(self.head_dim, self.warp_rows)

    @property
    def name(self) -> str:
        return abi.fused_kernel_name(self.dtype, self.head_dim, self.mask_tiles, self.accumulate)

    @property
    def words(self) -> int:
        """32-bit words per row of a mask tile's bits (ceil(BLOCK_N / 32))."""
        return abi.mask_words(self.block_n)

    @property
    def row_stride(self) -> int:
        """Elements per shared-memory row (head_dim + padding)."""
        return self.head_dim + SMEM_PAD

    @property
    def kv_tile_bytes(self) -> int:
        """Bytes of one K (or V) tile: BLOCK_N padded rows (mma_sync) or BLOCK_N x D elements
        as core matrices (wgmma)."""
        if self.mma == "wgmma":
            return self.block_n * self.head_dim * 2
        return self.block_n * self.row_stride * 2

    @property
    def q_offset(self) -> int:
        """Byte offset of the Q tile (padded rows, read once into registers): K stage 1 if it
        fits there, else after the V stages.  wgmma stages are [K0][V0][K1][V1], so Q takes
        stage 1 (K1 and V1), which it always fits."""
        if self.mma == "wgmma":
            return 2 * self.kv_tile_bytes
        if self.q_in_registers and self.block_m * self.row_stride * 2 <= self.kv_tile_bytes:
            return self.kv_tile_bytes
        return 4 * self.kv_tile_bytes

    @property
    def alpha_offset(self) -> int:
        """Byte offset of split-KV's per-row weights (written after the key loop): a stage
        that neither the Q tile nor the staged output overlaps (V0, or K0 for wgmma)."""
        return 0 if self.mma == "wgmma" else 2 * self.kv_tile_bytes

    @property
    def q_core_offset(self) -> int:
        """wgmma only: byte offset of the Q tile as core matrices (wgmma's shared-memory A
        operand for S = Q Kᵀ, read through the whole key loop): after K, V and the padded Q /
        output staging area."""
        return max(2 * self.kv_stages * self.kv_tile_bytes,
                   self.q_offset + self.block_m * self.row_stride * 2)

    @property
    def bits_offset(self) -> int:
        """Byte offset of the mask-bits stages (mask_tiles only): after K, V and Q."""
        if self.mma == "wgmma":
            return self.q_core_offset + self.block_m * self.head_dim * 2
        return max(4 * self.kv_tile_bytes, self.q_offset + self.block_m * self.row_stride * 2)

    @property
    def bits_stage_bytes(self) -> int:
        """Bytes of one mask tile's bits: block_m rows x words int32 (a multiple of 16)."""
        return self.block_m * self.words * 4

    @property
    def mbarrier_offset(self) -> int:
        """load_warpgroup only: byte offset of the stages' mbarriers ([full][empty] x stages,
        8 bytes each), after everything else."""
        if self.mask_tiles:
            return self.bits_offset + self.kv_stages * self.bits_stage_bytes
        return self.bits_offset

    @property
    def shared_bytes(self) -> int:
        if self.load_warpgroup:
            return self.mbarrier_offset + 2 * self.kv_stages * 8
        return self.mbarrier_offset


def kernel_launch_info(dtype: str, head_dim: int, block_n: int | None = None,
                       mask_tiles: bool = False, accumulate: bool = False,
                       mma: str = "mma_sync", block_m: int = BLOCK_M,
                       warp_rows: int = abi.WARP_ROWS,
                       load_warpgroup: bool | None = None) -> dict:
    """Launch metadata of ``splat_fwd_<dtype>_d<D>[_masked][_acc]`` (a manifest "kernels" entry, less
    ptx_file)."""
    cfg = FusedForwardConfig(dtype, head_dim, block_n, mask_tiles=mask_tiles, accumulate=accumulate,
                             mma=mma, block_m=block_m, warp_rows=warp_rows,
                             load_warpgroup=load_warpgroup)
    params = abi.fused_kernel_params(dtype, mask_tiles)
    info = {
        "name": cfg.name,
        "block": [cfg.num_threads, 1, 1],
        "shared_bytes": cfg.shared_bytes,
        "params": params,
        "num_ptx_params": abi.num_ptx_params(params),
        "grid": "row_tiles",
        "tables": abi.fused_kernel_tables(mask_tiles),
        "block_m": cfg.block_m,
        "block_n": cfg.block_n,
        "mma": cfg.mma,
    }
    if cfg.warp_rows != abi.WARP_ROWS:  # recorded where not the default (16, as before it existed)
        info["warp_rows"] = cfg.warp_rows
    if cfg.load_warpgroup:
        info["load_warpgroup"] = True
    return info
