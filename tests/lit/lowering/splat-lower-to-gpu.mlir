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
// CHECK: gpu.func @splat_fwd_bf16_d64(%{{.*}}: memref<?x?x?x?xbf16, strided<[?, ?, ?, 1]>>, %{{.*}}: memref<?x?x?x?xbf16, strided<[?, ?, ?, 1]>>, %{{.*}}: memref<?x?x?x?xbf16, strided<[?, ?, ?, 1]>>, %{{.*}}: memref<?x?x?x?xbf16>, %{{.*}}: memref<?x?x?xf32>, %{{.*}}: memref<?x5xi32>, %{{.*}}: memref<?x9xi32>, %{{.*}}: f32) kernel
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

// -----

// The decomposed path: three kernels (sddmm, softmax, spmm), one call each; the softmax
// takes dtype and head dim from the sddmm feeding it.
// CHECK: func.func private @splat_sddmm_0({{.*}}) -> tensor<1x4x256x12xf32> attributes {splat.kernel = @splat_kernels::@splat_sddmm_bf16_d64
// CHECK-SAME: splat.scale = 5.000000e-01 : f32
// CHECK: func.func private @splat_softmax_1({{.*}}) -> tensor<1x4x256x12xf32> attributes {splat.kernel = @splat_kernels::@splat_softmax_bf16
// CHECK: func.func private @splat_spmm_2({{.*}}) -> tensor<1x4x256x64xbf16> attributes {splat.kernel = @splat_kernels::@splat_spmm_bf16_d64
// CHECK: %[[S:.*]] = call @splat_sddmm_0(%arg0, %arg1)
// CHECK: %[[P:.*]] = call @splat_softmax_1(%[[S]])
// CHECK: call @splat_spmm_2(%[[P]], %arg1)
// CHECK: gpu.func @splat_sddmm_bf16_d64(%{{.*}}: memref<?x?x?x64xbf16>, %{{.*}}: memref<?x?x?x64xbf16>, %{{.*}}: memref<?x?x?x?xf32>, %{{.*}}: memref<?x?x3xi32>, %{{.*}}: memref<?xi32>, %{{.*}}: f32) kernel
// CHECK: gpu.func @splat_softmax_bf16(
// CHECK: gpu.func @splat_spmm_bf16_d64(
func.func @decomposed(%q: tensor<1x4x256x64xbf16>, %k: tensor<1x2x256x64xbf16>) -> tensor<1x4x256x64xbf16> {
  %s = splat.sddmm %q, %k layout(#splat.window<w = 4>) scale(0.5) : tensor<1x4x256x64xbf16>, tensor<1x2x256x64xbf16> -> tensor<1x4x256x12xf32>
  %p = splat.softmax %s layout(#splat.window<w = 4>) : tensor<1x4x256x12xf32> -> tensor<1x4x256x12xf32>
  %o = splat.spmm %p, %k layout(#splat.window<w = 4>) : tensor<1x4x256x12xf32>, tensor<1x2x256x64xbf16> -> tensor<1x4x256x64xbf16>
  return %o : tensor<1x4x256x64xbf16>
}

// -----

// Split-KV (a strided layout gets a split schedule): the runtime entry carries
// both schedules; the module holds the kernel for the first and its accumulating
// variant, which folds the second schedule's result into the rows' o and lse.
// CHECK: func.func private @splat_attention_0(tensor<1x4x2048x64xf16>
// CHECK-SAME: splat.kernel = @splat_kernels::@splat_fwd_f16_d64
// CHECK-SAME: splat.schedule = #splat.tile_schedule<block_m = 64, block_n = 64
// CHECK-SAME: splat.split_schedule = #splat.tile_schedule<block_m = 64, block_n = 64
// CHECK: gpu.module @splat_kernels
// CHECK-DAG: gpu.func @splat_fwd_f16_d64(
// CHECK-DAG: gpu.func @splat_fwd_f16_d64_acc(
func.func @strided(%q: tensor<1x4x2048x64xf16>) -> tensor<1x4x2048x64xf16> {
  %o = splat.attention %q, %q, %q layout(#splat.strided<local = 32, stride = 32>) : tensor<1x4x2048x64xf16>, tensor<1x4x2048x64xf16>, tensor<1x4x2048x64xf16> -> tensor<1x4x2048x64xf16>
  return %o : tensor<1x4x2048x64xf16>
}
