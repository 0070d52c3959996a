// RUN: %splat-opt %s --split-input-file --verify-diagnostics --pass-pipeline='builtin.module(splat-analyze-regularity, splat-tile-acsr, splat-lower-to-gpu)' -o /dev/null

func.func @head_dim(%q: tensor<1x1x64x32xbf16>) -> tensor<1x1x64x32xbf16> {
  // expected-error @+1 {{splat-lower-to-gpu: the GPU kernels support head dim 64, 128 or 256, got 32}}
  %o = splat.attention %q, %q, %q layout(#splat.causal) : tensor<1x1x64x32xbf16>, tensor<1x1x64x32xbf16>, tensor<1x1x64x32xbf16> -> tensor<1x1x64x32xbf16>
  return %o : tensor<1x1x64x32xbf16>
}

// -----

func.func @dtype(%q: tensor<1x1x64x64xf32>) -> tensor<1x1x64x64xf32> {
  // expected-error @+1 {{splat-lower-to-gpu: the GPU kernels support bf16 and f16 inputs, got f32}}
  %o = splat.attention %q, %q, %q layout(#splat.causal) : tensor<1x1x64x64xf32>, tensor<1x1x64x64xf32>, tensor<1x1x64x64xf32> -> tensor<1x1x64x64xf32>
  return %o : tensor<1x1x64x64xf32>
}

// -----

func.func @nan_rows(%q: tensor<1x1x64x64xf16>) -> tensor<1x1x64x64xf16> {
  // expected-error @+1 {{zero_empty_rows = false is not supported by the fused kernel}}
  %o = splat.attention %q, %q, %q layout(#splat.causal) {zero_empty_rows = false} : tensor<1x1x64x64xf16>, tensor<1x1x64x64xf16>, tensor<1x1x64x64xf16> -> tensor<1x1x64x64xf16>
  return %o : tensor<1x1x64x64xf16>
}

// -----

func.func @lonely_softmax(%s: tensor<1x1x64x8xf32>) -> tensor<1x1x64x8xf32> {
  // expected-error @+1 {{splat.softmax does not know Lk by itself: its scores must come from a splat.sddmm}}
  %p = splat.softmax %s layout(#splat.window<w = 2>) : tensor<1x1x64x8xf32> -> tensor<1x1x64x8xf32>
  return %p : tensor<1x1x64x8xf32>
}
