// The whole compiler in one splat-opt invocation: pattern IR -> PTX.
// RUN: %splat-opt %s --pass-pipeline='builtin.module(splat-to-ptx{chip=sm_90a})' | FileCheck %s
// RUN: %splat-opt %s --pass-pipeline='builtin.module(splat-to-ptx{mma=wgmma})' | %python -m splat.tools.extract_ptx -o %t.ptx
// RUN: %ptxas -arch=sm_90a -v %t.ptx -o %t.cubin 2>&1 | FileCheck %s --check-prefix=PTXAS
// RUN: FileCheck %s --check-prefix=PTX --input-file=%t.ptx
// The mma.sync kernel: sm_90 (no wgmma) and, for now, sm_90a's default while the cost table lists no measured wgmma variant (abi.mma_offer).
// RUN: %splat-opt %s --pass-pipeline='builtin.module(splat-to-ptx{chip=sm_90})' | %python -m splat.tools.extract_ptx -o %t.sm90.ptx
// RUN: FileCheck %s --check-prefix=SYNC --input-file=%t.sm90.ptx
// RUN: %splat-opt %s --pass-pipeline='builtin.module(splat-to-ptx)' | %python -m splat.tools.extract_ptx -o %t.sync.ptx
// RUN: FileCheck %s --check-prefix=SYNC --input-file=%t.sync.ptx
// Ampere (sm_80): the same mma.sync kernel, assembled for that chip; wgmma is refused there.
// RUN: %splat-opt %s --pass-pipeline='builtin.module(splat-to-ptx{chip=sm_80})' | %python -m splat.tools.extract_ptx -o %t.sm80.ptx
// RUN: FileCheck %s --check-prefix=SYNC --input-file=%t.sm80.ptx
// RUN: %ptxas -arch=sm_80 -v %t.sm80.ptx -o %t.sm80.cubin 2>&1 | FileCheck %s --check-prefix=PTXAS80
// RUN: not %splat-opt %s --pass-pipeline='builtin.module(splat-to-ptx{chip=sm_80 mma=wgmma})' 2>&1 | FileCheck %s --check-prefix=NOWGMMA

// CHECK: call @splat_attention_0
// CHECK: gpu.binary @splat_kernels
// PTX: .target sm_90a
// PTX: .extern .shared .align 1024 .b8 __dynamic_shmem__
// PTX: .entry splat_fwd_f16_d128(
// wgmma (sm_90a): S = Q K^T on m64n32k16 (BLOCK_N = 32 at D = 128) with Q and K both read
// from shared memory (two descriptors: no ldmatrix), O += P V on m64n128k16
// PTX-DAG: wgmma.mma_async.sync.aligned.m64n32k16.f32.f16.f16 {{.*}}, %rd{{[0-9]+}}, %rd{{[0-9]+}}, {{.*}}, 1, 1, 0, 0;
// PTX-DAG: wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16
// PTX-DAG: fence.proxy.async.shared::cta
// PTX-DAG: cp.async
// PTX-DAG: ex2.approx
// PTX-NOT: mma.sync
// PTX-NOT: ldmatrix
// SYNC: .entry splat_fwd_f16_d128(
// SYNC-DAG: mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32
// SYNC-DAG: ldmatrix.sync.aligned.m8n8.x4.trans
// SYNC-NOT: wgmma
// PTXAS80: Compiling entry function 'splat_fwd_f16_d128' for 'sm_80'
// NOWGMMA: mma wgmma needs chip sm_90a; got chip sm_80
// PTXAS: Compiling entry function 'splat_fwd_f16_d128' for 'sm_90a'
// PTXAS: 0 bytes spill stores, 0 bytes spill loads
func.func @f(%q: tensor<1x4x512x128xf16>) -> tensor<1x4x512x128xf16> {
  %o = splat.attention %q, %q, %q layout(#splat.union<[#splat.causal_window<w = 64>, #splat.global_tokens<[0, 1]>]>) : tensor<1x4x512x128xf16>, tensor<1x4x512x128xf16>, tensor<1x4x512x128xf16> -> tensor<1x4x512x128xf16>
  return %o : tensor<1x4x512x128xf16>
}
