// RUN: %splat-opt %s --pass-pipeline='builtin.module(splat-analyze-regularity, splat-tile-acsr, splat-lower-to-gpu)' | FileCheck %s

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
