// Round trip: custom -> custom, and custom -> generic -> custom.
// RUN: %splat-opt %s | %splat-opt | FileCheck %s
// RUN: %splat-opt %s --mlir-print-op-generic | %splat-opt | FileCheck %s
// RUN: %splat-opt %s --mlir-print-op-generic | FileCheck %s --check-prefix=GENERIC

// GENERIC: "splat.attention"
// GENERIC: "splat.sddmm"

// CHECK-LABEL: func.func @patterns
func.func @patterns(%q: tensor<2x16x1024x64xbf16>, %k: tensor<2x4x1024x64xbf16>, %v: tensor<2x4x1024x64xbf16>) {
  // CHECK: layout(#splat.window<w = 128>) scale(1.250000e-01)
  %0 = splat.attention %q, %k, %v layout(#splat.window<w = 128>) scale(0.125)
      : tensor<2x16x1024x64xbf16>, tensor<2x4x1024x64xbf16>, tensor<2x4x1024x64xbf16> -> tensor<2x16x1024x64xbf16>
  // CHECK: layout(#splat.causal)
  %1 = splat.attention %q, %k, %v layout(#splat.causal)
      : tensor<2x16x1024x64xbf16>, tensor<2x4x1024x64xbf16>, tensor<2x4x1024x64xbf16> -> tensor<2x16x1024x64xbf16>
  // CHECK: layout(#splat.causal_window<w = 64>) {zero_empty_rows = false}
  %2 = splat.attention %q, %k, %v layout(#splat.causal_window<w = 64>) {zero_empty_rows = false}
      : tensor<2x16x1024x64xbf16>, tensor<2x4x1024x64xbf16>, tensor<2x4x1024x64xbf16> -> tensor<2x16x1024x64xbf16>
  // CHECK: layout(#splat.dilated<w = 32, stride = 4>)
  %3 = splat.attention %q, %k, %v layout(#splat.dilated<w = 32, stride = 4>)
      : tensor<2x16x1024x64xbf16>, tensor<2x4x1024x64xbf16>, tensor<2x4x1024x64xbf16> -> tensor<2x16x1024x64xbf16>
  // CHECK: layout(#splat.strided<local = 32, stride = 32>)
  %4 = splat.attention %q, %k, %v layout(#splat.strided<local = 32, stride = 32>)
      : tensor<2x16x1024x64xbf16>, tensor<2x4x1024x64xbf16>, tensor<2x4x1024x64xbf16> -> tensor<2x16x1024x64xbf16>
  // CHECK: layout(#splat.fixed<block = 64, summary = 8>)
  %5 = splat.attention %q, %k, %v layout(#splat.fixed<block = 64, summary = 8>)
      : tensor<2x16x1024x64xbf16>, tensor<2x4x1024x64xbf16>, tensor<2x4x1024x64xbf16> -> tensor<2x16x1024x64xbf16>
  // CHECK: layout(#splat.blocked<block = 128>)
  %6 = splat.attention %q, %k, %v layout(#splat.blocked<block = 128>)
      : tensor<2x16x1024x64xbf16>, tensor<2x4x1024x64xbf16>, tensor<2x4x1024x64xbf16> -> tensor<2x16x1024x64xbf16>
  // CHECK: layout(#splat.union<[#splat.window<w = 64>, #splat.global_tokens<[0, 17]>, #splat.random_blocks<block = 64, per_row = 2, seed = 7>]>)
  %7 = splat.attention %q, %k, %v layout(#splat.union<[#splat.window<w = 64>, #splat.global_tokens<[0, 17]>, #splat.random_blocks<block = 64, per_row = 2, seed = 7>]>)
      : tensor<2x16x1024x64xbf16>, tensor<2x4x1024x64xbf16>, tensor<2x4x1024x64xbf16> -> tensor<2x16x1024x64xbf16>
  // CHECK: layout(#splat.intersect<[#splat.window<w = 64>, #splat.causal]>)
  %8 = splat.attention %q, %k, %v layout(#splat.intersect<[#splat.window<w = 64>, #splat.causal]>)
      : tensor<2x16x1024x64xbf16>, tensor<2x4x1024x64xbf16>, tensor<2x4x1024x64xbf16> -> tensor<2x16x1024x64xbf16>
  return
}

// CHECK-LABEL: func.func @acsr
func.func @acsr(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>) -> tensor<1x2x8x16xf16> {
  // CHECK: layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 2 step 1, stride 1, offset(0, 0), count(1, 3)>, #splat.piece<rows 2 to 8 step 2, stride 2, offset(2, 0), count(0, 2)>], remainder = <block 4, blocks[0, 1], masks dense<true> : tensor<1x4x4xi1>>>)
  // CHECK-SAME: schedule(<block_m = 64, block_n = 64, row_tiles = [0, 1, 8, 0, 1], segments = [0, 1, 8, 0, 8, 0, 0, 0, 8]>)
  %0 = splat.attention %q, %k, %k layout(#splat.acsr<lq = 8, lk = 8, pieces = [
          #splat.piece<rows 0 to 2 step 1, stride 1, offset (0, 0), count (1, 3)>,
          #splat.piece<rows 2 to 8 step 2, stride 2, offset (2, 0), count (0, 2)>],
        remainder = #splat.block_remainder<block 4, blocks [0, 1], masks dense<true> : tensor<1x4x4xi1>>>)
      schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 1, 8, 0, 1], segments = [0, 1, 8, 0, 8, 0, 0, 0, 8]>)
      : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return %0 : tensor<1x2x8x16xf16>
}

// CHECK-LABEL: func.func @decomposed
func.func @decomposed(%q: tensor<1x4x64x32xbf16>, %k: tensor<1x2x64x32xbf16>) -> tensor<1x4x64x32xbf16> {
  // CHECK: splat.sddmm %{{.*}}, %{{.*}} layout(#splat.window<w = 4>) scale(5.000000e-01) : tensor<1x4x64x32xbf16>, tensor<1x2x64x32xbf16> -> tensor<1x4x64x9xf32>
  %s = splat.sddmm %q, %k layout(#splat.window<w = 4>) scale(0.5) : tensor<1x4x64x32xbf16>, tensor<1x2x64x32xbf16> -> tensor<1x4x64x9xf32>
  // CHECK: splat.softmax %{{.*}} layout(#splat.window<w = 4>) : tensor<1x4x64x9xf32> -> tensor<1x4x64x9xf32>
  %p = splat.softmax %s layout(#splat.window<w = 4>) : tensor<1x4x64x9xf32> -> tensor<1x4x64x9xf32>
  // CHECK: splat.spmm %{{.*}}, %{{.*}} layout(#splat.window<w = 4>) : tensor<1x4x64x9xf32>, tensor<1x2x64x32xbf16> -> tensor<1x4x64x32xbf16>
  %o = splat.spmm %p, %k layout(#splat.window<w = 4>) : tensor<1x4x64x9xf32>, tensor<1x2x64x32xbf16> -> tensor<1x4x64x32xbf16>
  return %o : tensor<1x4x64x32xbf16>
}

// Dynamic sizes are allowed; the verifier checks what is static.
// CHECK-LABEL: func.func @dynamic
func.func @dynamic(%q: tensor<?x?x?x64xf16>, %k: tensor<?x?x?x64xf16>) -> tensor<?x?x?x64xf16> {
  // CHECK: splat.attention
  %0 = splat.attention %q, %k, %k layout(#splat.window<w = 1>) : tensor<?x?x?x64xf16>, tensor<?x?x?x64xf16>, tensor<?x?x?x64xf16> -> tensor<?x?x?x64xf16>
  return %0 : tensor<?x?x?x64xf16>
}
