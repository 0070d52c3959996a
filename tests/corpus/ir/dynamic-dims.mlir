// splat-opt-args: --pass-pipeline=builtin.module(splat-to-ptx)
// Dynamic lengths: the analysis needs static ones (a located error).
func.func @f(%q: tensor<1x1x?x64xf16>) -> tensor<1x1x?x64xf16> {
  %o = splat.attention %q, %q, %q layout(#splat.window<w = 2>) : tensor<1x1x?x64xf16>, tensor<1x1x?x64xf16>, tensor<1x1x?x64xf16> -> tensor<1x1x?x64xf16>
  return %o : tensor<1x1x?x64xf16>
}
