// splat-lower-to-gpu{mma=wgmma} at D = 256: the kernel always has its producer warpgroup (the
// compute-warp build cannot hold 128 accumulators a thread under two CTAs an SM), and asking
// for the compute warps' loads is a located error.
// RUN: %splat-opt %s --pass-pipeline='builtin.module(splat-analyze-regularity, splat-tile-acsr{block-m=128}, splat-lower-to-gpu{mma=wgmma})' | FileCheck %s
// RUN: not %splat-opt %s --pass-pipeline='builtin.module(splat-analyze-regularity, splat-tile-acsr{block-m=128}, splat-lower-to-gpu{mma=wgmma kv-loads=compute})' 2>&1 | FileCheck %s --check-prefix=COMPUTE
// CHECK: gpu.func @splat_fwd_bf16_d256(
// CHECK-SAME: known_block_size = array<i32: 384, 1, 1>
// CHECK-DAG: setmaxnreg.inc.sync.aligned.u32
// CHECK-DAG: wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16
// COMPUTE: d256.mlir:[[# @LINE + 2]]:8: error: splat-lower-to-gpu: K/V loads by the compute warps cannot build the wgmma kernel at head dim 256
func.func @layer(%q: tensor<1x4x512x256xbf16>) -> tensor<1x4x512x256xbf16> {
  %o = splat.attention %q, %q, %q layout(#splat.window<w = 64>) : tensor<1x4x512x256xbf16>, tensor<1x4x512x256xbf16>, tensor<1x4x512x256xbf16> -> tensor<1x4x512x256xbf16>
  return %o : tensor<1x4x512x256xbf16>
}
