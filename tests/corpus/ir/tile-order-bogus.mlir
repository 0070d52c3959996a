// splat-opt-args: --pass-pipeline=builtin.module(splat-analyze-regularity,splat-tile-acsr{tile-order=bogus})
// A bad pass option is located at the op it applies to (it was at 0:0).
func.func @f(%q: tensor<1x1x8x64xf16>) -> tensor<1x1x8x64xf16> {
  %o = splat.attention %q, %q, %q layout(#splat.window<w = 2>) : tensor<1x1x8x64xf16>, tensor<1x1x8x64xf16>, tensor<1x1x8x64xf16> -> tensor<1x1x8x64xf16>
  return %o : tensor<1x1x8x64xf16>
}
