// One process: the C++ splat dialect is parsed, a Python pass rewrites its
// attribute, and the upstream NVVM pipeline turns a gpu.module into PTX.
// RUN: %splat-opt %s --pass-pipeline='builtin.module(splat-canonicalize-patterns, gpu-lower-to-nvvm-pipeline{cubin-chip=sm_90a cubin-features=+ptx80 cubin-format=isa})' | FileCheck %s
// RUN: %splat-opt %s --pass-pipeline='builtin.module(splat-canonicalize-patterns, gpu-lower-to-nvvm-pipeline{cubin-chip=sm_90a cubin-features=+ptx80 cubin-format=isa})' | %python -m splat.tools.extract_ptx -o %t.ptx
// RUN: %ptxas -arch=sm_90a %t.ptx -o %t.cubin
// RUN: FileCheck %s --check-prefix=PTX --input-file=%t.ptx

// CHECK: splat.attention {{.*}} layout(#splat.union<[#splat.window<w = 8>, #splat.causal]>)
// CHECK: gpu.binary @kernels
// CHECK-SAME: .target sm_90a

// PTX: .version 8.
// PTX: .target sm_90a
// PTX: .entry add_one
// PTX: add.rn.f32

module attributes {gpu.container_module} {
  func.func @attention(%q: tensor<1x2x64x64xf16>, %k: tensor<1x2x64x64xf16>) -> tensor<1x2x64x64xf16> {
    %o = splat.attention %q, %k, %k layout(#splat.union<[#splat.union<[#splat.window<w = 8>]>, #splat.causal]>)
        : tensor<1x2x64x64xf16>, tensor<1x2x64x64xf16>, tensor<1x2x64x64xf16> -> tensor<1x2x64x64xf16>
    return %o : tensor<1x2x64x64xf16>
  }
  gpu.module @kernels {
    gpu.func @add_one(%buf: memref<128xf32>) kernel {
      %i = gpu.thread_id x
      %x = memref.load %buf[%i] : memref<128xf32>
      %one = arith.constant 1.0 : f32
      %y = arith.addf %x, %one : f32
      memref.store %y, %buf[%i] : memref<128xf32>
      gpu.return
    }
  }
}
