// splat-opt-args: --pass-pipeline=builtin.module(splat-to-ptx)
// A negative dimension in a tensor type.
func.func @f(%q: tensor<1x1x-8x64xf16>) -> tensor<1x1x-8x64xf16> {
  %o = splat.attention %q, %q, %q layout(#splat.window<w = 2>) : tensor<1x1x-8x64xf16>, tensor<1x1x-8x64xf16>, tensor<1x1x-8x64xf16> -> tensor<1x1x-8x64xf16>
  return %o : tensor<1x1x-8x64xf16>
}
