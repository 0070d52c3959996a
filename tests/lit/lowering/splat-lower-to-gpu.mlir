// RUN: %splat-opt %s --split-input-file --pass-pipeline='builtin.module(splat-analyze-regularity, splat-tile-acsr, splat-lower-to-gpu)' | FileCheck %s

// Each attention becomes a call to a runtime entry naming its kernel, layout
// and schedule; one kernel per (dtype, head dim) serves both calls.
// CHECK: func.func private @splat_attention_0({{.*}}) -> tensor<2x8x1024x64xbf16> attributes {
// CHECK-SAME: splat.kernel = @splat_kernels::@splat_fwd_bf16_d64
// CHECK-SAME: splat.layout = #splat.acsr<lq = 1024, lk = 1024
// CHECK-SAME: splat.scale = 1.250000e-01 : f32
// CHECK-SAME: splat.schedule = #splat.tile_schedule<block_m = 64, block_n = 64
// CHECK: func.func private @splat_attention_1
// CHECK-SAME: splat.kernel = @splat_kernels::@splat_fwd_bf16_d64
// CHECK-SAME: splat.scale = 5.000000e-01 : f32
// CHECK: func.func @two_layers
// CHECK: call @splat_attention_0
// CHECK: call @splat_attention_1
// CHECK-NOT: splat.attention
// CHECK: gpu.module @splat_kernels
// CHECK: gpu.func @splat_fwd_bf16_d64(%{{.*}}: memref<?x?x?x?xbf16>, %{{.*}}: memref<?x?x?x?xbf16>, %{{.*}}: memref<?x?x?x?xbf16>, %{{.*}}: memref<?x?x?x?xbf16>, %{{.*}}: memref<?x?x?xf32>, %{{.*}}: memref<?x5xi32>, %{{.*}}: memref<?x9xi32>, %{{.*}}: f32) kernel
// CHECK-DAG: nvgpu.device_async_copy
// CHECK-DAG: nvgpu.ldmatrix
// CHECK-DAG: nvvm.mma.sync
// CHECK-DAG: nvvm.ex2.approx
// CHECK-NOT: gpu.func
func.func @two_layers(%q: tensor<2x8x1024x64xbf16>, %k: tensor<2x2x1024x64xbf16>) -> tensor<2x8x1024x64xbf16> {
  %o = splat.attention %q, %k, %k layout(#splat.window<w = 128>) : tensor<2x8x1024x64xbf16>, tensor<2x2x1024x64xbf16>, tensor<2x2x1024x64xbf16> -> tensor<2x8x1024x64xbf16>
  %p = splat.attention %o, %k, %k layout(#splat.dilated<w = 32, stride = 2>) scale(0.5) : tensor<2x8x1024x64xbf16>, tensor<2x2x1024x64xbf16>, tensor<2x2x1024x64xbf16> -> tensor<2x8x1024x64xbf16>
  return %p : tensor<2x8x1024x64xbf16>
}

// -----

// An irregular remainder selects the kernel variant that also walks masked key tiles.
// CHECK: func.func private @splat_attention_0(tensor<1x1x8x64xf16>
// CHECK-SAME: splat.kernel = @splat_kernels::@splat_fwd_f16_d64_masked
// CHECK-SAME: mask_ptr = [0, 1]
// CHECK: gpu.func @splat_fwd_f16_d64_masked({{.*}}, %{{.*}}: f32, %{{.*}}: memref<?xi32>, %{{.*}}: memref<?x2xi32>, %{{.*}}: memref<?x?x?xi32>) kernel
func.func @irregular(%q: tensor<1x1x8x64xf16>) -> tensor<1x1x8x64xf16> {
  %o = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [], remainder = #splat.block_remainder<block 4, blocks [1, 1], masks dense<[[[true, true, false, true], [false, false, true, false], [true, false, false, true], [false, true, true, false]]]> : tensor<1x4x4xi1>>>) : tensor<1x1x8x64xf16>, tensor<1x1x8x64xf16>, tensor<1x1x8x64xf16> -> tensor<1x1x8x64xf16>
  return %o : tensor<1x1x8x64xf16>
}
