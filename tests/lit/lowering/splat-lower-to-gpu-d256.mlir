// Head dim 256: 32-key tiles, 16-row warps, Q re-read from shared memory (its own region after
// the four K/V stages: (4 * 32 + 64) rows of 264 elements = 101376 bytes); 32-row warps refused.
// RUN: %splat-opt %s --pass-pipeline='builtin.module(splat-analyze-regularity, splat-tile-acsr, splat-lower-to-gpu)' | FileCheck %s
// RUN: %splat-opt %s --pass-pipeline='builtin.module(splat-to-ptx)' | %python -m splat.tools.extract_ptx -o %t.ptx
// RUN: %ptxas -arch=sm_90a %t.ptx -o %t.cubin
// RUN: FileCheck %s --check-prefix=PTX --input-file=%t.ptx
// RUN: not %splat-opt %s --pass-pipeline='builtin.module(splat-analyze-regularity, splat-tile-acsr, splat-lower-to-gpu{warp-rows=32})' 2>&1 | FileCheck %s --check-prefix=BAD
// The backward at D = 256: 32-key tiles in both schedules, the dQ and dK/dV kernels assemble.
// RUN: %splat-opt %s --pass-pipeline='builtin.module(splat-analyze-regularity, splat-tile-acsr{backward})' | FileCheck %s --check-prefix=BWD
// RUN: %splat-opt %s --pass-pipeline='builtin.module(splat-to-ptx{backward})' | %python -m splat.tools.extract_ptx -o %t.bwd.ptx
// RUN: %ptxas -arch=sm_90a %t.bwd.ptx -o %t.bwd.cubin
// RUN: FileCheck %s --check-prefix=BWDPTX --input-file=%t.bwd.ptx

// CHECK: splat.schedule = #splat.tile_schedule<block_m = 64, block_n = 32,
// CHECK: gpu.func @splat_fwd_bf16_d256(
// CHECK-SAME: known_block_size = array<i32: 128, 1, 1>
// BAD: option 'warp-rows' 32 needs head dim <= 128 (a warp's accumulators would not fit its registers); got 256
// PTX: .entry splat_fwd_bf16_d256(
// PTX: .maxntid 128, 1, 1
// PTX: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
// BWD: schedule(<block_m = 64, block_n = 32,
// BWD-SAME: col_schedule = #splat.tile_schedule<block_m = 64, block_n = 32,
// BWDPTX-DAG: .entry splat_bwd_dq_bf16_d256(
// BWDPTX-DAG: .entry splat_bwd_dkv_bf16_d256(
func.func @wide(%q: tensor<1x2x512x256xbf16>) -> tensor<1x2x512x256xbf16> {
  %o = splat.attention %q, %q, %q layout(#splat.window<w = 64>) : tensor<1x2x512x256xbf16>, tensor<1x2x512x256xbf16>, tensor<1x2x512x256xbf16> -> tensor<1x2x512x256xbf16>
  return %o : tensor<1x2x512x256xbf16>
}
