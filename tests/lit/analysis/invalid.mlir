// RUN: %splat-opt %s --split-input-file --verify-diagnostics --pass-pipeline='builtin.module(splat-analyze-regularity)' -o /dev/null

func.func @dynamic(%q: tensor<1x1x?x64xf16>) -> tensor<1x1x?x64xf16> {
  // expected-error @+1 {{splat-analyze-regularity: needs static query and key lengths to analyse its layout}}
  %o = splat.attention %q, %q, %q layout(#splat.causal) : tensor<1x1x?x64xf16>, tensor<1x1x?x64xf16>, tensor<1x1x?x64xf16> -> tensor<1x1x?x64xf16>
  return %o : tensor<1x1x?x64xf16>
}

// -----

func.func @global_out_of_range(%q: tensor<1x1x8x64xf16>) -> tensor<1x1x8x64xf16> {
  // expected-error @+1 {{cannot analyse #splat.global_tokens<[9]> for 8x8}}
  %o = splat.attention %q, %q, %q layout(#splat.global_tokens<[9]>) : tensor<1x1x8x64xf16>, tensor<1x1x8x64xf16>, tensor<1x1x8x64xf16> -> tensor<1x1x8x64xf16>
  return %o : tensor<1x1x8x64xf16>
}
