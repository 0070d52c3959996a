// A parameter past int64.
func.func @f(%q: tensor<1x1x8x64xf16>) -> tensor<1x1x8x64xf16> {
  %o = splat.attention %q, %q, %q layout(#splat.window<w = 99999999999999999999999999999>) : tensor<1x1x8x64xf16>, tensor<1x1x8x64xf16>, tensor<1x1x8x64xf16> -> tensor<1x1x8x64xf16>
  return %o : tensor<1x1x8x64xf16>
}
