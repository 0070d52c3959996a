// RUN: %splat-opt %s --split-input-file --pass-pipeline='builtin.module(splat-analyze-regularity, splat-tile-acsr{block-n=64 tile-order=rows})' | FileCheck %s
// RUN: %splat-opt %s --split-input-file --pass-pipeline='builtin.module(splat-analyze-regularity, splat-tile-acsr{block-n=64 split-kv=false})' | FileCheck %s --check-prefix=ONE
// RUN: %splat-opt %s --split-input-file --pass-pipeline='builtin.module(splat-analyze-regularity, splat-tile-acsr{block-n=64})' | FileCheck %s --check-prefix=HEAVY

// Window w=64 on 256 rows: one row tile of 64 rows per block, one segment
// each (the three pieces coalesce), keys walked in compressed coordinates.
// By default (tile-order=heavy-first) the tiles with the most key tiles come
// first, so that the GPU starts the longest work first.
// HEAVY-LABEL: func.func @window
// HEAVY: row_tiles = [64, 1, 64, 0, 1, 128, 1, 64, 1, 2, 0, 1, 64, 2, 3, 192, 1, 64, 3, 4]
// CHECK-LABEL: func.func @window
// CHECK: schedule(<block_m = 64, block_n = 64, row_tiles = [0, 1, 64, 0, 1, 64, 1, 64, 1, 2, 128, 1, 64, 2, 3, 192, 1, 64, 3, 4]
// CHECK-SAME: segments = [0, 1, 128, 0, 64, 0, 0, 1, 65, 0, 1, 192, 0, 64, 1, 0, 1, 129,
func.func @window(%q: tensor<1x2x256x64xbf16>) -> tensor<1x2x256x64xbf16> {
  %o = splat.attention %q, %q, %q layout(#splat.window<w = 64>) : tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16>, tensor<1x2x256x64xbf16> -> tensor<1x2x256x64xbf16>
  return %o : tensor<1x2x256x64xbf16>
}

// -----

// Dilated stride 4: rows are grouped by residue class (row_step 4) so that each
// tile walks keys col0 + 4*u: a dilated window becomes 4 dense windowed problems.
// CHECK-LABEL: func.func @dilated
// CHECK: row_tiles = [{{.*}}64, 4, 64, {{[0-9]+}}, {{[0-9]+}}, 65, 4, 64, {{[0-9]+}}, {{[0-9]+}}, 66, 4, 64,
// CHECK-SAME: segments = [{{([0-9-]+, )*}}0, 4, 96, 0, 64, 1, 0, 1, 33,
func.func @dilated(%q: tensor<1x2x1024x64xbf16>) -> tensor<1x2x1024x64xbf16> {
  %o = splat.attention %q, %q, %q layout(#splat.dilated<w = 16, stride = 4>) : tensor<1x2x1024x64xbf16>, tensor<1x2x1024x64xbf16>, tensor<1x2x1024x64xbf16> -> tensor<1x2x1024x64xbf16>
  return %o : tensor<1x2x1024x64xbf16>
}

// -----

// An irregular remainder (scattered bits in block (1, 1)) becomes explicitly
// masked key tiles: mask_ptr (per row tile), mask_tiles (col0, ncols), mask_bits.
// CHECK-LABEL: func.func @irregular
// CHECK: row_tiles = [0, 1, 8, 0, 0], segments = [], mask_ptr = [0, 1], mask_tiles = [4, 4], mask_bits = [0, 0, 0, 0, 0, 0, 0, 0, 11, 0, 4, 0, 9, 0, 6, 0,
func.func @irregular(%q: tensor<1x1x8x64xf16>) -> tensor<1x1x8x64xf16> {
  %o = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [], remainder = #splat.block_remainder<block 4, blocks [1, 1], masks dense<[[[true, true, false, true], [false, false, true, false], [true, false, false, true], [false, true, true, false]]]> : tensor<1x4x4xi1>>>) : tensor<1x1x8x64xf16>, tensor<1x1x8x64xf16>, tensor<1x1x8x64xf16> -> tensor<1x1x8x64xf16>
  return %o : tensor<1x1x8x64xf16>
}

// -----

// Sparse Transformer strided (local 32, stride 32): the window wants consecutive
// rows, the strided keys rows of one residue class. split-kv gives the window
// pieces a schedule of consecutive rows and the strided keys one of residue
// classes (row tiles of row_step 32 walking keys col0 + 32*u); the kernel runs on
// both and a merge combines them per row. With split-kv=false: one schedule.
// CHECK-LABEL: func.func @strided
// CHECK: schedule(<block_m = 64, block_n = 64, row_tiles = [0, 1, 64, 0, 2, 64, 1, 64,
// CHECK-SAME: split_schedule(<block_m = 64, block_n = 64, row_tiles = [64, 1, 31, 0, 1, 95, 32, 61,
// CHECK-SAME: segments = [0, 1, 31, 0, 31, 1, 0, 1, 1, 31, 32, 61,
// ONE-NOT: split_schedule
func.func @strided(%q: tensor<1x2x2048x64xbf16>) -> tensor<1x2x2048x64xbf16> {
  %o = splat.attention %q, %q, %q layout(#splat.strided<local = 32, stride = 32>) : tensor<1x2x2048x64xbf16>, tensor<1x2x2048x64xbf16>, tensor<1x2x2048x64xbf16> -> tensor<1x2x2048x64xbf16>
  return %o : tensor<1x2x2048x64xbf16>
}
