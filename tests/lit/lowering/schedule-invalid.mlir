// The lowering reads schedules through the typed attribute view: parameters the fused kernel
// cannot run are located errors on the op.
// RUN: %splat-opt %s --split-input-file --verify-diagnostics --pass-pipeline='builtin.module(splat-lower-to-gpu)' -o /dev/null

func.func @block_m(%q: tensor<1x1x64x64xbf16>) -> tensor<1x1x64x64xbf16> {
  // expected-error @+1 {{splat-lower-to-gpu: the kernel needs tiles of 64 or 128 rows by 32, 64 or 128 keys; the schedule has block_m = 32, block_n = 64}}
  %o = splat.attention %q, %q, %q layout(#splat.acsr<lq = 64, lk = 64, pieces = [#splat.piece<rows 0 to 64 step 1, stride 1, offset (0, 0), count (0, 64)>]>) schedule(#splat.tile_schedule<block_m = 32, block_n = 64, row_tiles = [0, 1, 32, 0, 1, 32, 1, 32, 1, 2], segments = [0, 1, 64, 0, 32, 0, 0, 0, 64, 0, 1, 64, 0, 32, 0, 0, 0, 64]>) : tensor<1x1x64x64xbf16>, tensor<1x1x64x64xbf16>, tensor<1x1x64x64xbf16> -> tensor<1x1x64x64xbf16>
  return %o : tensor<1x1x64x64xbf16>
}

// -----

func.func @split_block_n(%q: tensor<1x1x64x64xbf16>) -> tensor<1x1x64x64xbf16> {
  // expected-error @+1 {{splat-lower-to-gpu: a split schedule must have no mask tiles and the tile shape of the schedule}}
  %o = splat.attention %q, %q, %q layout(#splat.acsr<lq = 64, lk = 64, pieces = [#splat.piece<rows 0 to 64 step 1, stride 1, offset (0, 0), count (0, 64)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 1, 64, 0, 1], segments = [0, 1, 32, 0, 64, 0, 0, 0, 32]>) split_schedule(#splat.tile_schedule<block_m = 64, block_n = 32, row_tiles = [0, 1, 64, 0, 1], segments = [32, 1, 32, 0, 64, 0, 0, 0, 32]>) : tensor<1x1x64x64xbf16>, tensor<1x1x64x64xbf16>, tensor<1x1x64x64xbf16> -> tensor<1x1x64x64xbf16>
  return %o : tensor<1x1x64x64xbf16>
}
