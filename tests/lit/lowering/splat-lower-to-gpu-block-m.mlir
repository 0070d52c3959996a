// 128-row tiles: the tiler cuts them (block-m=128) and the lowering builds the kernel for the
// schedule's height, a warp per 16 rows (256 threads), with 128-row Q and mask-bit buffers.
// RUN: %splat-opt %s --pass-pipeline='builtin.module(splat-analyze-regularity, splat-tile-acsr{block-m=128}, splat-lower-to-gpu{warp-rows=16})' | FileCheck %s
// RUN: %splat-opt %s --pass-pipeline='builtin.module(splat-to-ptx{block-m=128})' | %python -m splat.tools.extract_ptx -o %t.ptx
// RUN: FileCheck %s --check-prefix=PTX --input-file=%t.ptx
// 32-row warps (warp-rows=32): the same tables, half the warps.
// RUN: %splat-opt %s --pass-pipeline='builtin.module(splat-analyze-regularity, splat-tile-acsr{block-m=128}, splat-lower-to-gpu{warp-rows=32})' | FileCheck %s --check-prefix=W32
// RUN: not %splat-opt %s --pass-pipeline='builtin.module(splat-analyze-regularity, splat-tile-acsr, splat-lower-to-gpu{warp-rows=24})' 2>&1 | FileCheck %s --check-prefix=BAD

// CHECK: splat.schedule = #splat.tile_schedule<block_m = 128, block_n = 64, row_tiles = [{{[0-9]+}}, 1, 128,
// CHECK: gpu.func @splat_fwd_bf16_d64(
// CHECK-SAME: known_block_size = array<i32: 256, 1, 1>
// W32: gpu.func @splat_fwd_bf16_d64(
// W32-SAME: known_block_size = array<i32: 128, 1, 1>
// BAD: option 'warp-rows' must be 16 or 32 (or 0: the kernel variant's); got 24
// PTX: .entry splat_fwd_bf16_d64(
// PTX: .maxntid 256, 1, 1
func.func @tall(%q: tensor<1x4x1024x64xbf16>) -> tensor<1x4x1024x64xbf16> {
  %o = splat.attention %q, %q, %q layout(#splat.window<w = 128>) : tensor<1x4x1024x64xbf16>, tensor<1x4x1024x64xbf16>, tensor<1x4x1024x64xbf16> -> tensor<1x4x1024x64xbf16>
  return %o : tensor<1x4x1024x64xbf16>
}
