// splat-opt-args: --pass-pipeline=builtin.module(splat-analyze-regularity,splat-tile-acsr)
// KNOWN ISSUE (not run by the tests; found by scripts/fuzz_ir.py --slow-sizes): Lq = Lk =
// 2^31 - 1 passes the int32 checks, the analysis answers in under a second, and then
// splat-tile-acsr runs for minutes and takes more than 7 GB (killed at 60 s, 7.2 GB) before
// any error. Sizes are to be checked up front (issue 11, "Sizes are checked up front"); this
// lives in python/splat/tiling, not in splat-opt. Lq = 10^8 takes 74 s and 2 GB through
// analyze + tile.
func.func @f(%q: tensor<1x1x2147483647x64xf16>) -> tensor<1x1x2147483647x64xf16> {
  %o = splat.attention %q, %q, %q layout(#splat.window<w = 2>) : tensor<1x1x2147483647x64xf16>, tensor<1x1x2147483647x64xf16>, tensor<1x1x2147483647x64xf16> -> tensor<1x1x2147483647x64xf16>
  return %o : tensor<1x1x2147483647x64xf16>
}
