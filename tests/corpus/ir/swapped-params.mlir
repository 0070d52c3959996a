// splat-opt-args: --pass-pipeline=builtin.module(splat-to-ptx)
// Parameter names swapped.
func.func @f(%q: tensor<1x1x8x64xf16>) -> tensor<1x1x8x64xf16> {
  %o = splat.attention %q, %q, %q layout(#splat.dilated<stride = 4, w = 2>) : tensor<1x1x8x64xf16>, tensor<1x1x8x64xf16>, tensor<1x1x8x64xf16> -> tensor<1x1x8x64xf16>
  return %o : tensor<1x1x8x64xf16>
}
