// splat-opt-args: --pass-pipeline=builtin.module(splat-to-ptx)
// Parameters at the int64 limit.
func.func @f(%q: tensor<1x1x8x64xf16>) -> tensor<1x1x8x64xf16> {
  %o = splat.attention %q, %q, %q layout(#splat.dilated<w = 9223372036854775807, stride = 9223372036854775807>) : tensor<1x1x8x64xf16>, tensor<1x1x8x64xf16>, tensor<1x1x8x64xf16> -> tensor<1x1x8x64xf16>
  return %o : tensor<1x1x8x64xf16>
}
