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

from dataclasses import dataclass
from typing import Callable

from .lowering.to_ptx import nvvm_passes_before_binary


@dataclass(frozen=True)
class StageOptions:
    """What the stages' pipelines depend on."""

    chip: str = "sm_90a"
    features: str = "+ptx80"  # sm_90/sm_90a need PTX ISA 8.0 or newer
    opt_level: int = 3
    block_n: int = 0  # compressed keys per key tile; 0: the kernel's tuned value per head dim


@dataclass(frozen=True)
class Stage:
    name: str
    pipeline: Callable[[StageOptions], str]  # comma-separated pipeline elements
    # Transforms only the gpu.module (its result follows from the module's text and the
    # options), so splat.compile may take that result from splat.lowering.ptx_cache instead.
    kernels_only: bool = False


STAGES = (
    Stage("analyze", lambda o: "splat-canonicalize-patterns, splat-analyze-regularity"),
    Stage("tile", lambda o: f"splat-tile-acsr{{block-n={o.block_n}}}"),
    Stage("lower", lambda o: "splat-lower-to-gpu"),
    Stage("nvvm", lambda o: nvvm_passes_before_binary(o.chip, o.features, o.opt_level)
          + ", splat-export-dynamic-smem", kernels_only=True),
    Stage("ptx", lambda o: "gpu-module-to-binary{format=isa}", kernels_only=True),
)


def full_pipeline(options: StageOptions) -> str:
    """Every stage's elements in order: what ``splat-to-ptx`` expands to."""
    return ", ".join(stage.pipeline(options) for stage in STAGES)
