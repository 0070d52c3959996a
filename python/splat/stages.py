"""The compiler's stages, in order: the one table behind ``splat.compile`` and ``splat-to-ptx``.

    analyze  pattern layouts -> exact #splat.acsr (splat-canonicalize-patterns,
             splat-analyze-regularity; a layout that is already an ACSR is kept)
    tile     splat-tile-acsr        -> #splat.tile_schedule on each splat.attention
    lower    splat-lower-to-gpu     -> gpu.module kernels + runtime calls
    nvvm     upstream gpu-lower-to-nvvm-pipeline up to serialisation, then
             splat-export-dynamic-smem (docs/toolchain.md says why)
    ptx      gpu-module-to-binary   -> PTX

``splat.compile`` runs the stages one by one (so it can dump the IR after each);
``splat-to-ptx`` expands to all of them in one pipeline.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Callable

from . import abi
from .lowering.to_ptx import nvvm_passes_before_binary
from .tiling.schedule import PLANS

# Closed lists of what the kernels are built and checked for. Anything else is refused here,
# before it reaches LLVM: an unknown chip aborts the process inside LLVM, and a value with
# pipeline syntax in it would rewrite the pipeline it is spliced into.
# sm_80 (A100), sm_86 (A10, RTX 30xx) and sm_89 (L4, L40, RTX 40xx) get the mma.sync kernels;
# sm_90a also the Hopper-only wgmma build. PTX for sm_XY runs on any GPU of capability >= X.Y
# (the driver compiles it), sm_90a PTX on 9.0 only.
CHIPS = ("sm_80", "sm_86", "sm_89", "sm_90", "sm_90a")
PTX_FEATURES = tuple(f"+ptx8{minor}" for minor in range(9))  # PTX ISA 8.0-8.8 (CUDA 12.x ptxas)
OPT_LEVELS = (0, 1, 2, 3)


def check_option(name: str, value, allowed: tuple):
    """``value`` if it is one of ``allowed``, else a ValueError naming ``name``. Integers may be
    any integral type (numpy ints included, bools not) and come back as ``int``; a float that
    equals an allowed int is refused rather than passed on to the bindings."""
    if isinstance(allowed[0], int) and not isinstance(value, bool) and \
            hasattr(type(value), "__index__"):
        value = operator.index(value)
    if type(value) is not type(allowed[0]) or value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(str, allowed))}; got {value!r}")
    return value


@dataclass(frozen=True)
class StageOptions:
    """What the stages' pipelines depend on; every field is checked against a closed list."""

    chip: str = "sm_90a"
    features: str = "+ptx80"  # sm_90/sm_90a need PTX ISA 8.0 or newer
    opt_level: int = 3
    block_n: int = 0  # compressed keys per key tile; 0: the kernel's tuned value per head dim
    # query rows per row tile (abi.BLOCK_M_CHOICES); 0: the kernel variant priced lowest
    block_m: int = abi.BLOCK_M
    # query rows per warp of the fused kernel (mma_sync: 16 or 32); 0: the variant's for the
    # schedule's tile height (splat.tiling.variants)
    warp_rows: int = abi.WARP_ROWS
    # row tile plans: "auto" picks the affine or the blocks plan per tile by cost; "affine" and
    # "blocks" force one (tests, benchmarks and the cost-model calibration)
    plan: str = "auto"
    # the fused kernel's tensor-core instruction: "auto" (with block_m 0, the kernel variant the
    # tiler prices lowest among the chip's instructions, abi.mma_offer; else mma_sync),
    # "mma_sync" or "wgmma" (sm_90a only)
    mma: str = "auto"
    # who gathers K/V for the wgmma kernel: "compute" (its own warps, between CTA barriers),
    # "producer" (a producer warpgroup behind mbarriers), "auto" (the chosen variant's, else
    # abi.resolve_kv_loads)
    kv_loads: str = "auto"
    # tile for the backward kernels (splat-tile-acsr{backward}): the lowering then emits the dQ
    # and dK/dV kernels instead of the forward's
    backward: bool = False

    def __post_init__(self):
        check_option("chip", self.chip, CHIPS)
        check_option("features", self.features, PTX_FEATURES)
        check_option("opt-level", self.opt_level, OPT_LEVELS)
        check_option("block-n", self.block_n, (0,) + abi.BLOCK_N_CHOICES)
        check_option("block-m", self.block_m, (0,) + abi.BLOCK_M_CHOICES)
        check_option("warp-rows", self.warp_rows, (0,) + abi.WARP_ROWS_CHOICES)
        check_option("plan", self.plan, PLANS)
        check_option("mma", self.mma, ("auto",) + abi.MMA_KINDS)
        check_option("kv-loads", self.kv_loads, ("auto",) + abi.KV_LOADS)
        check_option("backward", self.backward, (False, True))
        wgmma_chip = self.chip in abi.WGMMA_CHIPS
        if self.kv_loads == "producer" and (self.mma == "mma_sync" or not wgmma_chip):
            raise ValueError("kv-loads producer needs mma wgmma")
        if self.backward and (self.warp_rows != abi.WARP_ROWS or self.kv_loads == "producer"):
            raise ValueError(f"backward kernels run {abi.WARP_ROWS}-row warps, without a "
                             f"producer warpgroup")
        block_m_error = self.backward and abi.backward_block_m_error(self.block_m,
                                                                     self.lower_mma)
        if block_m_error:
            raise ValueError(block_m_error)
        if self.mma == "wgmma" and not wgmma_chip:
            raise ValueError(f"mma wgmma needs chip sm_90a; got chip {self.chip}")
        if self.mma == "wgmma" and self.warp_rows not in (0, abi.WARP_ROWS):
            raise ValueError(f"mma wgmma needs warp-rows {abi.WARP_ROWS}; got {self.warp_rows}")

    @property
    def lower_mma(self) -> str:
        """The instruction splat-lower-to-gpu is asked for: the backward's (`abi.backward_mma`),
        or the forward's option as given ("auto": the tiler's choice)."""
        return abi.backward_mma(self.mma, self.chip) if self.backward else self.mma

    @property
    def tile_mma(self) -> str:
        """The instructions whose kernel variants the tiler prices (block-m 0)."""
        if self.backward:
            return "mma_sync"
        if self.kv_loads == "producer":  # a wgmma build
            return "wgmma"
        return abi.mma_offer(self.mma, self.chip)


@dataclass(frozen=True)
class Stage:
    name: str
    pipeline: Callable[[StageOptions], str]  # comma-separated pipeline elements
    # Transforms only the gpu.module (its result follows from the module's text and the
    # options), so splat.compile may take that result from splat.lowering.ptx_cache instead.
    kernels_only: bool = False


STAGES = (
    Stage("analyze", lambda o: "splat-canonicalize-patterns, splat-analyze-regularity"),
    Stage("tile", lambda o: f"splat-tile-acsr{{block-m={o.block_m} block-n={o.block_n} "
                                f"plan={o.plan} mma={o.tile_mma} kv-loads={o.kv_loads}"
                                + (" backward=true}" if o.backward else "}")),
    Stage("lower", lambda o: f"splat-lower-to-gpu{{mma={o.lower_mma} "
                             f"warp-rows={o.warp_rows} kv-loads={o.kv_loads}}}"),
    Stage("nvvm", lambda o: nvvm_passes_before_binary(o.chip, o.features, o.opt_level)
          + ", splat-export-dynamic-smem", kernels_only=True),
    Stage("ptx", lambda o: "gpu-module-to-binary{format=isa}", kernels_only=True),
)


def full_pipeline(options: StageOptions) -> str:
    """Every stage's elements in order: what ``splat-to-ptx`` expands to."""
    return ", ".join(stage.pipeline(options) for stage in STAGES)
