// splat-lower-to-gpu{mma=wgmma}: the Hopper build of the fused kernel (D = 128 and 256; D = 256 in its own file).
// RUN: %splat-opt %s --split-input-file --verify-diagnostics --pass-pipeline='builtin.module(splat-analyze-regularity, splat-tile-acsr, splat-lower-to-gpu{mma=wgmma})' | FileCheck %s
// kv-loads=producer: a producer warpgroup after the compute ones gathers K/V behind mbarriers.
// RUN: %splat-opt %s --split-input-file --verify-diagnostics --pass-pipeline='builtin.module(splat-analyze-regularity, splat-tile-acsr{block-m=128}, splat-lower-to-gpu{mma=wgmma kv-loads=producer})' | FileCheck %s --check-prefix=PRODUCER
// RUN: not %splat-opt %s --pass-pipeline='builtin.module(splat-analyze-regularity, splat-tile-acsr, splat-lower-to-gpu{mma=mma_sync kv-loads=producer})' 2>&1 | FileCheck %s --check-prefix=SYNC
// RUN: not %splat-opt %s --pass-pipeline='builtin.module(splat-analyze-regularity, splat-tile-acsr, splat-lower-to-gpu{mma=wgmma kv-loads=tma})' 2>&1 | FileCheck %s --check-prefix=BAD
// PRODUCER: gpu.func @splat_fwd_bf16_d128(
// PRODUCER-SAME: known_block_size = array<i32: 384, 1, 1>
// PRODUCER-DAG: mbarrier.try_wait.parity.acquire.cta.shared::cta.b64
// PRODUCER-DAG: setmaxnreg.inc.sync.aligned.u32 224
// PRODUCER-DAG: bar.sync 1, 256;
// SYNC: option 'kv-loads' producer needs mma wgmma (the mma_sync kernel's warps gather their own K/V)
// BAD: option 'kv-loads' must be compute or producer (or auto); got 'tma'

// The same kernel signature as mma.sync's; S and P V are inline wgmma.mma_async, K/V stay in
// shared memory (no ldmatrix.trans for V), published to the async proxy after each cp.async wait.
// CHECK: gpu.func @splat_fwd_bf16_d128(%{{.*}}: memref<?x?x?x?xbf16, strided<[?, ?, ?, 1]>>, %{{.*}}: memref<?x?x?x?xbf16, strided<[?, ?, ?, 1]>>, %{{.*}}: memref<?x?x?x?xbf16, strided<[?, ?, ?, 1]>>, %{{.*}}: memref<?x?x?x?xbf16>, %{{.*}}: memref<?x?x?xf32>, %{{.*}}: memref<?x5xi32>, %{{.*}}: memref<?x9xi32>, %{{.*}}: f32) kernel
// CHECK-DAG: wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16
// CHECK-DAG: wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16
// CHECK-DAG: fence.proxy.async.shared::cta
// CHECK-DAG: wgmma.wait_group.sync.aligned 0
// CHECK-NOT: nvvm.mma.sync
func.func @layer(%q: tensor<1x4x512x128xbf16>) -> tensor<1x4x512x128xbf16> {
  %o = splat.attention %q, %q, %q layout(#splat.window<w = 64>) : tensor<1x4x512x128xbf16>, tensor<1x4x512x128xbf16>, tensor<1x4x512x128xbf16> -> tensor<1x4x512x128xbf16>
  return %o : tensor<1x4x512x128xbf16>
}

// -----

func.func @d64(%q: tensor<1x4x512x64xbf16>) -> tensor<1x4x512x64xbf16> {
  // expected-error @+1 {{splat-lower-to-gpu: mma wgmma supports head dim 128, 256 only (on the H100 it was exact at D = 64 but 0.44-0.72x the mma_sync kernel's speed); use mma_sync}}
  %o = splat.attention %q, %q, %q layout(#splat.window<w = 64>) : tensor<1x4x512x64xbf16>, tensor<1x4x512x64xbf16>, tensor<1x4x512x64xbf16> -> tensor<1x4x512x64xbf16>
  return %o : tensor<1x4x512x64xbf16>
}
