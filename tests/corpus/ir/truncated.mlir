// Truncated mid-attribute.
func.func @f(%q: tensor<1x1x8x64xf16>) -> tensor<1x1x8x64xf16> {
  %o = splat.attention %q, %q, %q layout(#splat.dilated<w = 4, stride = 2>)