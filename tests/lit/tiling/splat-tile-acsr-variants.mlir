// Kernel variants chosen by cost (splat.tiling.variants, design §3): with block-m=0 the tiler
// prices each variant's schedule with the measured table of cost_model.json and keeps the
// cheapest; the lowering (warp-rows=0) builds the chosen variant's warp shape. Dense 512-row
// blocks at D = 128 go to 128-row tiles on 32-row warps (the variant measured faster on dense
// tiles); a dilated window, whose residue-class tiles 128 rows would walk more keys for, keeps
// 64-row tiles on 16-row warps. (A re-calibrated table may move these two: re-check them then.)
// RUN: %splat-opt %s --split-input-file --pass-pipeline='builtin.module(splat-analyze-regularity, splat-tile-acsr{block-m=0}, splat-lower-to-gpu{warp-rows=0})' | FileCheck %s
// RUN: not %splat-opt %s --split-input-file --pass-pipeline='builtin.module(splat-analyze-regularity, splat-tile-acsr{block-m=-1})' 2>&1 | FileCheck %s --check-prefix=BAD
// The chosen variant's build is recorded on the op (its 'kernel' attribute), which the lowering
// follows where its options are left open; mma=auto also prices the measured wgmma variants:
// the dense blocks go to the wgmma kernel with a producer warpgroup (sm_90a's default), the
// dilated window at D = 64 (where no wgmma kernel is built) keeps mma.sync.
// RUN: %splat-opt %s --split-input-file --pass-pipeline='builtin.module(splat-analyze-regularity, splat-tile-acsr{block-m=0 mma=auto})' | FileCheck %s --check-prefix=TILE
// RUN: not %splat-opt %s --pass-pipeline='builtin.module(splat-analyze-regularity, splat-tile-acsr{block-m=0 mma=hmma})' 2>&1 | FileCheck %s --check-prefix=BADMMA
// TILE: kernel = {kv_loads = "producer", mma = "wgmma", warp_rows = 16 : i64}
// TILE: kernel = {kv_loads = "compute", mma = "mma_sync", warp_rows = 16 : i64}
// BADMMA: mma must be 'auto', 'mma_sync' or 'wgmma', got 'hmma'

// CHECK: func.func private @splat_attention_0({{.*}}splat.schedule = #splat.tile_schedule<block_m = 128, block_n = 32,
// CHECK-LABEL: func.func @blocks
// CHECK: gpu.func @splat_fwd_bf16_d128(
// CHECK-SAME: known_block_size = array<i32: 128, 1, 1>
// BAD: block-m and block-n must be >= 0, got -1 and 0
func.func @blocks(%q: tensor<1x4x4096x128xbf16>) -> tensor<1x4x4096x128xbf16> {
  %o = splat.attention %q, %q, %q layout(#splat.blocked<block = 512>) : tensor<1x4x4096x128xbf16>, tensor<1x4x4096x128xbf16>, tensor<1x4x4096x128xbf16> -> tensor<1x4x4096x128xbf16>
  return %o : tensor<1x4x4096x128xbf16>
}

// -----

// CHECK: func.func private @splat_attention_0({{.*}}splat.schedule = #splat.tile_schedule<block_m = 64, block_n = 64,
// CHECK-LABEL: func.func @dilated
// CHECK: gpu.func @splat_fwd_bf16_d64(
// CHECK-SAME: known_block_size = array<i32: 128, 1, 1>
func.func @dilated(%q: tensor<1x4x4096x64xbf16>) -> tensor<1x4x4096x64xbf16> {
  %o = splat.attention %q, %q, %q layout(#splat.dilated<w = 128, stride = 4>) : tensor<1x4x4096x64xbf16>, tensor<1x4x4096x64xbf16>, tensor<1x4x4096x64xbf16> -> tensor<1x4x4096x64xbf16>
  return %o : tensor<1x4x4096x64xbf16>
}
