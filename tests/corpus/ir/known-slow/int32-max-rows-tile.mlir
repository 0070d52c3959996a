// splat-opt-args: --pass-pipeline=builtin.module(splat-analyze-regularity,splat-tile-acsr)
// Lq = Lk = 2^31 - 1 passes the int32 checks. It used to tile for minutes and take more than
// 7 GB before any error; build_schedule now estimates the tiler's memory first (1.5 KB per
// 64-row tile, ~48 GiB here) and refuses in under a second with a located error where less is
// available. Kept out of the regular corpus run: on a machine with 48 GiB free it would tile.
func.func @f(%q: tensor<1x1x2147483647x64xf16>) -> tensor<1x1x2147483647x64xf16> {
  %o = splat.attention %q, %q, %q layout(#splat.window<w = 2>) : tensor<1x1x2147483647x64xf16>, tensor<1x1x2147483647x64xf16>, tensor<1x1x2147483647x64xf16> -> tensor<1x1x2147483647x64xf16>
  return %o : tensor<1x1x2147483647x64xf16>
}
