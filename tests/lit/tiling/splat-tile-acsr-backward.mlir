// splat-tile-acsr{backward}: the row schedule on 64-row tiles, unsplit (the dQ kernel's), and
// col_schedule, the transposed layout's (the dK/dV kernel's: its rows are keys). Lq != Lk: a
// causal window of 256 queries over 320 keys transposes to 320 "rows" of query sequences.
// splat-lower-to-gpu then builds the two backward kernels and names both on the call.
// RUN: %splat-opt %s --pass-pipeline='builtin.module(splat-analyze-regularity, splat-tile-acsr{backward})' | FileCheck %s
// RUN: %splat-opt %s --pass-pipeline='builtin.module(splat-analyze-regularity, splat-tile-acsr{backward}, splat-lower-to-gpu)' | FileCheck %s --check-prefix=LOWER
// RUN: %splat-opt %s --pass-pipeline='builtin.module(splat-to-ptx{backward})' | %python -m splat.tools.extract_ptx -o %t.ptx
// RUN: FileCheck %s --check-prefix=PTX --input-file=%t.ptx
// RUN: not %splat-opt %s --pass-pipeline='builtin.module(splat-analyze-regularity, splat-tile-acsr{backward block-m=32})' 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: %splat-opt %s --pass-pipeline='builtin.module(splat-analyze-regularity, splat-tile-acsr{backward block-m=128}, splat-lower-to-gpu{mma=wgmma})' | FileCheck %s --check-prefix=WG128
// RUN: not %splat-opt %s --pass-pipeline='builtin.module(splat-analyze-regularity, splat-tile-acsr{backward block-m=128}, splat-lower-to-gpu)' 2>&1 | FileCheck %s --check-prefix=BAD128
// RUN: %splat-opt %s --pass-pipeline='builtin.module(splat-to-ptx{backward mma=wgmma})' | %python -m splat.tools.extract_ptx -o %t.wgmma.ptx
// RUN: FileCheck %s --check-prefix=WGMMA --input-file=%t.wgmma.ptx
// RUN: not %splat-opt %s --pass-pipeline='builtin.module(splat-to-ptx{backward kv-loads=producer})' 2>&1 | FileCheck %s --check-prefix=BADPIPE
// RUN: not %splat-opt %s --pass-pipeline='builtin.module(splat-analyze-regularity, splat-tile-acsr{backward}, splat-lower-to-gpu{warp-rows=32})' 2>&1 | FileCheck %s --check-prefix=BADLOWER

// The column tiles cover the 320 keys, the last 64 (keys 256..319, which no query sees) with no
// segments: the kernel writes their dK, dV as zeros.
// CHECK: splat.attention {{.*}} schedule(<block_m = 64, block_n = 64, row_tiles = [64, 1, 64,
// CHECK-SAME: {col_schedule = #splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 1, 64, 0, 1, 64, 1, 64, 1, 2, 128, 1, 64, 2, 3, 192, 1, 64, 3, 4, 256, 1, 64, 4, 4]
// LOWER: func.func private @splat_attention_backward_0(
// LOWER-SAME: splat.dkv_kernel = @splat_kernels::@splat_bwd_dkv_bf16_d64
// LOWER-SAME: splat.kernel = @splat_kernels::@splat_bwd_dq_bf16_d64
// LOWER: gpu.func @splat_bwd_dq_bf16_d64(
// LOWER-SAME: known_block_size = array<i32: 128, 1, 1>
// LOWER: gpu.func @splat_bwd_dkv_bf16_d64(
// LOWER-NOT: gpu.func @splat_fwd
// PTX-DAG: .entry splat_bwd_dq_bf16_d64(
// PTX-DAG: .entry splat_bwd_dkv_bf16_d64(
// BAD: the backward kernels run 64 or 128-row tiles; got block-m=32
// 128-row tiles are the wgmma build's: two warpgroups a CTA.
// WG128: splat.schedule = #splat.tile_schedule<block_m = 128, block_n = 64,
// WG128: gpu.func @splat_bwd_dq_bf16_d64(
// WG128-SAME: known_block_size = array<i32: 256, 1, 1>
// WG128: gpu.func @splat_bwd_dkv_bf16_d64(
// WG128-SAME: known_block_size = array<i32: 256, 1, 1>
// BAD128: error: splat-lower-to-gpu: the mma_sync backward kernels need 64-row tiles of 32, 64 or 128 keys, one shape in every schedule; the row schedule{{.}}s is 128 x 64
// The wgmma build (mma=wgmma, sm_90a): the same two entries, every product a warpgroup MMA.
// WGMMA: .entry splat_bwd_dq_bf16_d64(
// WGMMA: wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16
// WGMMA: .entry splat_bwd_dkv_bf16_d64(
// WGMMA: wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16
// WGMMA-NOT: mma.sync
// BADPIPE: backward kernels run 16-row warps, without a producer warpgroup
// BADLOWER: splat-tile-acsr-backward.mlir:{{[0-9]+}}:{{[0-9]+}}: error: splat-lower-to-gpu: the backward kernels run 16-row warps without a producer warpgroup; got warp-rows=32 kv-loads=auto
func.func @cross(%q: tensor<1x4x256x64xbf16>, %kv: tensor<1x4x320x64xbf16>) -> tensor<1x4x256x64xbf16> {
  %o = splat.attention %q, %kv, %kv layout(#splat.causal_window<w = 64>) : tensor<1x4x256x64xbf16>, tensor<1x4x320x64xbf16>, tensor<1x4x320x64xbf16> -> tensor<1x4x256x64xbf16>
  return %o : tensor<1x4x256x64xbf16>
}
