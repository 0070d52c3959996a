"""PTX generation: ``splat-export-dynamic-smem`` and the ``splat-to-ptx`` pipeline.

``splat-to-ptx`` is the whole compiler as one pipeline element: the stages of
``splat.stages.STAGES`` (analyse -> tile -> lower -> upstream NVVM lowering ->
patch -> PTX), the same table ``splat.compile`` runs. The upstream
``gpu-lower-to-nvvm-pipeline`` is split before ``gpu-module-to-binary`` so that
the dynamic shared-memory global can be made ``external`` and aligned first
(otherwise it is a 1-byte static array that may overlap other shared buffers;
docs/toolchain.md).
"""

from __future__ import annotations

from mlir import ir

from ..lowering.emit import export_dynamic_shared_memory
from ..stages import StageOptions, full_pipeline
from .registry import PassOption, SplatPass, SplatPipeline, failures_at, register_pass


@register_pass
class ExportDynamicSharedMemory(SplatPass):
    argument = "splat-export-dynamic-smem"
    summary = "Give the dynamic shared-memory global external linkage and 128-byte alignment"

    def run(self, op: ir.Operation) -> None:
        with failures_at(op):
            export_dynamic_shared_memory(op)


@register_pass
class ToPTX(SplatPipeline):
    argument = "splat-to-ptx"
    summary = "analyse, tile, lower to gpu/nvvm and serialise splat.attention to PTX"
    options_spec = (
        PassOption("chip", str, "sm_90a", "NVVM target chip: sm_80, sm_86, sm_89, sm_90 or "
                   "sm_90a"),
        PassOption("features", str, "+ptx80", "PTX features (+ptx80 or newer for sm_90a)"),
        PassOption("opt-level", int, 3, "LLVM optimisation level"),
        PassOption("block-n", int, 0, "compressed keys per key tile (0: tuned per head dim)"),
        PassOption("block-m", int, 64, "query rows per row tile: 64 or 128; 0: the kernel "
                   "variant whose schedule the cost model prices lowest"),
        PassOption("warp-rows", int, 16, "query rows per warp of the fused kernel: 16 or 32; 0: "
                   "the kernel variant's for the tile height"),
        PassOption("plan", str, "auto", "row tile plans: 'auto' (by cost), 'affine' or 'blocks'"),
        PassOption("mma", str, "auto", "fused kernel's tensor-core instruction: 'auto' (with "
                   "block-m=0 the kernel variant priced lowest among the chip's instructions; "
                   "else mma_sync), 'mma_sync' or 'wgmma'"),
        PassOption("kv-loads", str, "auto", "who gathers K/V for the wgmma kernel: 'auto' "
                   "(the chosen variant's, else abi.resolve_kv_loads), 'compute' or 'producer'"),
        PassOption("backward", bool, False, "build the backward kernels (dQ, dK/dV) instead of "
                   "the forward's: 64-row tiles (block-m=64), mma_sync"),
    )

    @classmethod
    def from_options(cls, values: dict[str, str]) -> "ToPTX":
        pipeline = super().from_options(values)
        pipeline.stage_options()  # a bad chip, feature or level fails here, as a pipeline error
        return pipeline

    def stage_options(self) -> StageOptions:
        o = self.options
        return StageOptions(chip=o["chip"], features=o["features"], opt_level=o["opt-level"],
                            block_n=o["block-n"], block_m=o["block-m"], plan=o["plan"],
                            mma=o["mma"], warp_rows=o["warp-rows"], kv_loads=o["kv-loads"],
                            backward=o["backward"])

    def expand(self) -> str:
        return full_pipeline(self.stage_options())
