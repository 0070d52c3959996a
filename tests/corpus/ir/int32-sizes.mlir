// splat-opt-args: --pass-pipeline=builtin.module(splat-analyze-regularity,splat-tile-acsr)
// Lq = Lk = 2^31: past the int32 tables; a located error, not a crash.
func.func @f(%q: tensor<1x1x2147483648x64xf16>) -> tensor<1x1x2147483648x64xf16> {
  %o = splat.attention %q, %q, %q layout(#splat.window<w = 4>) : tensor<1x1x2147483648x64xf16>, tensor<1x1x2147483648x64xf16>, tensor<1x1x2147483648x64xf16> -> tensor<1x1x2147483648x64xf16>
  return %o : tensor<1x1x2147483648x64xf16>
}
