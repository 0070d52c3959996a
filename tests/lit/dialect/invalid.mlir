// Every verifier of the splat dialect, each with a located diagnostic.
// RUN: %splat-opt %s --split-input-file --verify-diagnostics

func.func @case0(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'window' parameter 'w' must be >= 0, got -1}}
  %0 = splat.attention %q, %k, %v layout(#splat.window<w = -1>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case1(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'causal_window' parameter 'w' must be >= 0, got -2}}
  %0 = splat.attention %q, %k, %v layout(#splat.causal_window<w = -2>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case2(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'dilated' parameter 'w' must be >= 0, got -1}}
  %0 = splat.attention %q, %k, %v layout(#splat.dilated<w = -1, stride = 2>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case3(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'dilated' parameter 'stride' must be >= 1, got 0}}
  %0 = splat.attention %q, %k, %v layout(#splat.dilated<w = 4, stride = 0>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case4(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'strided' parameter 'local' must be >= 1, got 0}}
  %0 = splat.attention %q, %k, %v layout(#splat.strided<local = 0, stride = 4>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case5(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'strided' parameter 'stride' must be >= 1, got 0}}
  %0 = splat.attention %q, %k, %v layout(#splat.strided<local = 4, stride = 0>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case6(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'fixed' parameter 'block' must be >= 1, got 0}}
  %0 = splat.attention %q, %k, %v layout(#splat.fixed<block = 0, summary = 0>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case7(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'fixed' parameter 'summary' must be >= 0, got -1}}
  %0 = splat.attention %q, %k, %v layout(#splat.fixed<block = 4, summary = -1>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case8(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'fixed' parameter 'summary' (5) must not exceed 'block' (4)}}
  %0 = splat.attention %q, %k, %v layout(#splat.fixed<block = 4, summary = 5>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case9(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'blocked' parameter 'block' must be >= 1, got 0}}
  %0 = splat.attention %q, %k, %v layout(#splat.blocked<block = 0>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case10(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+2 {{expected integer value}}
  // expected-error @+1 {{failed to parse Splat_GlobalTokensAttr parameter 'indices'}}
  %0 = splat.attention %q, %k, %v layout(#splat.global_tokens<[]>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case11(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'global_tokens' parameter 'indices' must be >= 0, got -3}}
  %0 = splat.attention %q, %k, %v layout(#splat.global_tokens<[1, -3]>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case12(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'random_blocks' parameter 'block' must be >= 1, got 0}}
  %0 = splat.attention %q, %k, %v layout(#splat.random_blocks<block = 0, per_row = 1, seed = 0>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case13(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'random_blocks' parameter 'per_row' must be >= 0, got -1}}
  %0 = splat.attention %q, %k, %v layout(#splat.random_blocks<block = 4, per_row = -1, seed = 0>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case14(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'random_blocks' parameter 'seed' must be >= 0, got -1}}
  %0 = splat.attention %q, %k, %v layout(#splat.random_blocks<block = 4, per_row = 1, seed = -1>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case15(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'union' needs at least one member}}
  %0 = splat.attention %q, %k, %v layout(#splat.union<[]>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case16(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'union' members must be splat patterns, got 3 : i64}}
  %0 = splat.attention %q, %k, %v layout(#splat.union<[#splat.causal, 3]>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case17(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'intersect' needs at least one member}}
  %0 = splat.attention %q, %k, %v layout(#splat.intersect<[]>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case18(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'intersect' members must be splat patterns, got "x"}}
  %0 = splat.attention %q, %k, %v layout(#splat.intersect<["x"]>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case19(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+2 {{'piece' parameter 'r0' must be >= 0, got -1}}
  // expected-error @+1 {{failed to parse Splat_ACSRAttr parameter 'pieces'}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows -1 to 8 step 1, stride 1, offset (0, 0), count (0, 1)>]>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case20(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+2 {{piece rows 4 to 4 are empty: r1 must be > r0}}
  // expected-error @+1 {{failed to parse Splat_ACSRAttr parameter 'pieces'}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 4 to 4 step 1, stride 1, offset (0, 0), count (0, 1)>]>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case21(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+2 {{'piece' parameter 'step' must be >= 1, got 0}}
  // expected-error @+1 {{failed to parse Splat_ACSRAttr parameter 'pieces'}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 0, stride 1, offset (0, 0), count (0, 1)>]>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case22(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+2 {{'piece' parameter 'stride' must be >= 1, got 0}}
  // expected-error @+1 {{failed to parse Splat_ACSRAttr parameter 'pieces'}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 0, offset (0, 0), count (0, 1)>]>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case23(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+2 {{piece count (-1*t + 3) is negative at row t = 7}}
  // expected-error @+1 {{failed to parse Splat_ACSRAttr parameter 'pieces'}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (-1, 3)>]>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case24(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'acsr' parameter 'lq' must be >= 1, got 0}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 0, lk = 8, pieces = []>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case25(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'acsr' parameter 'lk' must be >= 1, got 0}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 8, lk = 0, pieces = []>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case26(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{acsr pieces must be #splat.piece, got #splat.causal}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.causal]>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case27(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{piece #0 rows end at 9, past lq = 8}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 9 step 1, stride 1, offset (0, 0), count (0, 1)>]>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case28(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{piece #1 row t = 7 has keys 7 .. 8 outside [0, 8)}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 0)>, #splat.piece<rows 0 to 8 step 1, stride 1, offset (1, 0), count (0, 2)>]>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case29(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{piece #0 row t = 0 has keys -2 .. 2 outside [0, 8)}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (1, -2), count (0, 5)>]>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case30(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+2 {{'block_remainder' parameter 'block' must be >= 1, got 0}}
  // expected-error @+1 {{failed to parse Splat_ACSRAttr parameter 'remainder'}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 8, lk = 8, pieces = [], remainder = #splat.block_remainder<block 0, blocks [0, 0]>>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case31(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+2 {{block_remainder blocks must be (row, col) pairs, got 3 values}}
  // expected-error @+1 {{failed to parse Splat_ACSRAttr parameter 'remainder'}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 8, lk = 8, pieces = [], remainder = #splat.block_remainder<block 4, blocks [0, 0, 1]>>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case32(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+2 {{'block_remainder' parameter 'blocks' must be >= 0, got -1}}
  // expected-error @+1 {{failed to parse Splat_ACSRAttr parameter 'remainder'}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 8, lk = 8, pieces = [], remainder = #splat.block_remainder<block 4, blocks [0, -1]>>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case33(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+2 {{block_remainder masks must be tensor<1x4x4xi1>, got 'tensor<1x4x2xi1>'}}
  // expected-error @+1 {{failed to parse Splat_ACSRAttr parameter 'remainder'}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 8, lk = 8, pieces = [], remainder = #splat.block_remainder<block 4, blocks [0, 0], masks dense<true> : tensor<1x4x2xi1>>>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case34(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{remainder block (2, 0) lies outside the 8x8 mask}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 8, lk = 8, pieces = [], remainder = #splat.block_remainder<block 4, blocks [2, 0]>>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case35(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'tile_schedule' parameter 'block_m' must be >= 1, got 0}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 0, block_n = 64, row_tiles = [], segments = []>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case36(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'tile_schedule' parameter 'block_n' must be >= 1, got 0}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 0, row_tiles = [], segments = []>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case37(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{tile_schedule row_tiles must hold 5 and segments 9 values per entry}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 1], segments = []>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case38(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{tile_schedule row tile #0 has row_step 1 and 65 rows (block_m = 64)}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 1, 65, 0, 0], segments = []>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case39(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{tile_schedule row tile #0 names segments 0 .. 2 of 1}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 1, 8, 0, 2], segments = [0, 1, 8, 0, 8, 0, 0, 0, 8]>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case40(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{tile_schedule segment #0 has col_step 0 (must be >= 1)}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 1, 8, 0, 1], segments = [0, 0, 8, 0, 8, 0, 0, 0, 8]>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case41(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{tile_schedule needs all of mask_ptr, mask_tiles and mask_bits, or none}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 1, 8, 0, 0], segments = [], mask_ptr = [0, 1]>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case42(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{tile_schedule mask tables have inconsistent sizes: 2 pointers for 1 row tiles, 1 mask tiles, 1 bit words (expected 128)}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 1, 8, 0, 0], segments = [], mask_ptr = [0, 1], mask_tiles = [0, 8], mask_bits = [1]>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case43(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xbf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'splat.attention' op q, k, v and o must share one element type}}
  %0 = splat.attention %q, %k, %v layout(#splat.causal) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xbf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case44(%q: tensor<1x2x8x16xf16>, %k: tensor<2x2x8x16xf16>, %v: tensor<2x2x8x16xf16>) {
  // expected-error @+1 {{'splat.attention' op batch mismatch: q has 1 but k has 2}}
  %0 = splat.attention %q, %k, %v layout(#splat.causal) : tensor<1x2x8x16xf16>, tensor<2x2x8x16xf16>, tensor<2x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case45(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x32xf16>, %v: tensor<1x2x8x32xf16>) {
  // expected-error @+1 {{'splat.attention' op head dim mismatch: q has 16 but k has 32}}
  %0 = splat.attention %q, %k, %v layout(#splat.causal) : tensor<1x2x8x16xf16>, tensor<1x2x8x32xf16>, tensor<1x2x8x32xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case46(%q: tensor<1x2x8x16xf16>, %k: tensor<1x3x8x16xf16>, %v: tensor<1x3x8x16xf16>) {
  // expected-error @+1 {{'splat.attention' op query heads (2) must be a multiple of key/value heads (3)}}
  %0 = splat.attention %q, %k, %v layout(#splat.causal) : tensor<1x2x8x16xf16>, tensor<1x3x8x16xf16>, tensor<1x3x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case47(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x9x16xf16>) {
  // expected-error @+1 {{'splat.attention' op key/value shape mismatch: k has 8 but v has 9}}
  %0 = splat.attention %q, %k, %v layout(#splat.causal) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x9x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case48(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'splat.attention' op output shape mismatch: q has 8 but o has 4}}
  %0 = splat.attention %q, %k, %v layout(#splat.causal) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x4x16xf16>
  return
}

// -----

func.func @case49(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'splat.attention' op a tile schedule needs an ACSR layout; run splat-analyze-regularity first}}
  %0 = splat.attention %q, %k, %v layout(#splat.causal) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [], segments = []>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case50(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'splat.attention' op scale must be a positive finite number}}
  %0 = splat.attention %q, %k, %v layout(#splat.causal) scale(-1.0) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case51(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x16x16xf16>, %v: tensor<1x2x16x16xf16>) {
  // expected-error @+1 {{'splat.attention' op layout is 8x8 but the attention is 8x16}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) : tensor<1x2x8x16xf16>, tensor<1x2x16x16xf16>, tensor<1x2x16x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case52(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'splat.attention' op attribute 'layout' failed to satisfy constraint: ACSR layout or splat pattern attribute}}
  %0 = splat.attention %q, %k, %v layout(3 : i64) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case53(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xbf16>) {
  // expected-error @+1 {{'splat.sddmm' op q and k must share one element type}}
  %0 = splat.sddmm %q, %k layout(#splat.causal) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xbf16> -> tensor<1x2x8x4xf32>
  return
}

// -----

func.func @case54(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'splat.sddmm' op score shape mismatch: scores has 7 but q has 8}}
  %0 = splat.sddmm %q, %k layout(#splat.causal) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x7x4xf32>
  return
}

// -----

func.func @case55(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'splat.sddmm' op compressed score dimension must be >= 1}}
  %0 = splat.sddmm %q, %k layout(#splat.causal) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x0xf32>
  return
}

// -----

func.func @case56(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'splat.sddmm' op scale must be a positive finite number}}
  %0 = splat.sddmm %q, %k layout(#splat.causal) scale(0.0) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x4xf32>
  return
}

// -----

func.func @case57(%s: tensor<1x2x8x4xf32>) {
  // expected-error @+1 {{'splat.softmax' op shape mismatch: scores has 4 but result has 5}}
  %0 = splat.softmax %s layout(#splat.causal) : tensor<1x2x8x4xf32> -> tensor<1x2x8x5xf32>
  return
}

// -----

func.func @case58(%s: tensor<1x2x7x4xf32>) {
  // expected-error @+1 {{'splat.softmax' op layout is 8x8 but the attention is 7x}}
  %0 = splat.softmax %s layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) : tensor<1x2x7x4xf32> -> tensor<1x2x7x4xf32>
  return
}

// -----

func.func @case59(%s: tensor<1x2x8x4xf32>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'splat.spmm' op v and o must share one element type}}
  %0 = splat.spmm %s, %v layout(#splat.causal) : tensor<1x2x8x4xf32>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xbf16>
  return
}

// -----

func.func @case60(%s: tensor<1x2x8x4xf32>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'splat.spmm' op output shape mismatch: probs has 8 but o has 9}}
  %0 = splat.spmm %s, %v layout(#splat.causal) : tensor<1x2x8x4xf32>, tensor<1x2x8x16xf16> -> tensor<1x2x9x16xf16>
  return
}

// -----

func.func @case61(%s: tensor<1x2x8x4xf32>, %v: tensor<1x3x8x16xf16>) {
  // expected-error @+1 {{'splat.spmm' op query heads (2) must be a multiple of key/value heads (3)}}
  %0 = splat.spmm %s, %v layout(#splat.causal) : tensor<1x2x8x4xf32>, tensor<1x3x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case62(%s: tensor<1x2x8x4xf32>, %v: tensor<1x2x16x16xf16>) {
  // expected-error @+1 {{'splat.spmm' op layout is 8x8 but the attention is 8x16}}
  %0 = splat.spmm %s, %v layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) : tensor<1x2x8x4xf32>, tensor<1x2x16x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @case63(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'splat.attention' op a split schedule needs a schedule}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 8, lk = 8, pieces = []>) split_schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [], segments = []>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @schedule_plans_count(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  // expected-error @+1 {{tile_schedule has 2 plans for 1 row tiles}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 1, 8, 0, 1], segments = [0, 1, 8, 0, 8, 0, 0, 0, 8], plans = [0, 1]>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %0 : tensor<1x1x8x16xf16>
}

// -----

func.func @schedule_plan_kind(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  // expected-error @+1 {{tile_schedule plan 2 is neither 0 (affine) nor 1 (blocks)}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 1, 8, 0, 1], segments = [0, 1, 8, 0, 8, 0, 0, 0, 8], plans = [2]>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %0 : tensor<1x1x8x16xf16>
}

// -----

// Layout checks (issue 11): disjoint pieces, exact bounds, a clean remainder, bounded nesting.

func.func @acsr_overlap_intervals(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{acsr pieces #0 and #1 overlap at (row, col) = (4, 2): pieces must be disjoint}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 4)>, #splat.piece<rows 4 to 8 step 1, stride 1, offset (0, 2), count (0, 2)>]>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @acsr_overlap_strides(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{acsr pieces #0 and #2 overlap at (row, col) = (2, 6): pieces must be disjoint}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 2, offset (0, 0), count (0, 4)>, #splat.piece<rows 0 to 8 step 1, stride 2, offset (0, 1), count (0, 3)>, #splat.piece<rows 2 to 3 step 1, stride 3, offset (0, 3), count (0, 2)>]>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @acsr_overlap_row_steps(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{acsr pieces #0 and #1 overlap at (row, col) = (3, 1): pieces must be disjoint}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 1 to 8 step 2, stride 1, offset (1, 0), count (0, 1)>, #splat.piece<rows 0 to 8 step 1, stride 2, offset (0, 1), count (0, 2)>]>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @acsr_stride_overflow(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{piece #0 row t = 0 has keys 0 .. 18446744073709551616 outside [0, 8)}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 1 step 1, stride 2305843009213693952, offset (0, 0), count (0, 9)>]>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @acsr_count_overflow(%q: tensor<1x2x9223372036854775807x16xf16>) {
  // expected-error @+1 {{piece #0 row t = 9223372036854775806 has keys 0 .. (past 2^127) outside [0, 9223372036854775807)}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 9223372036854775807, lk = 9223372036854775807, pieces = [#splat.piece<rows 0 to 9223372036854775807 step 1, stride 4, offset (0, 0), count (9223372036854775807, 1)>]>) : tensor<1x2x9223372036854775807x16xf16>, tensor<1x2x9223372036854775807x16xf16>, tensor<1x2x9223372036854775807x16xf16> -> tensor<1x2x9223372036854775807x16xf16>
  return
}

// -----

func.func @remainder_unsorted(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{remainder blocks must be sorted and unique: block #1 (0, 0) follows (1, 0)}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 8, lk = 8, pieces = [], remainder = #splat.block_remainder<block 4, blocks [1, 0, 0, 0]>>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @remainder_duplicate(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{remainder blocks must be sorted and unique: block #1 (0, 1) follows (0, 1)}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 8, lk = 8, pieces = [], remainder = #splat.block_remainder<block 4, blocks [0, 1, 0, 1]>>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @remainder_unclipped(%q: tensor<1x2x6x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{remainder block (1, 0) allows (row, col) = (6, 0) outside the 6x8 mask: edge blocks must be clipped}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 6, lk = 8, pieces = [], remainder = #splat.block_remainder<block 4, blocks [1, 0]>>) : tensor<1x2x6x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x6x16xf16>
  return
}

// -----

func.func @remainder_overlaps_piece(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{remainder block (1, 1) overlaps piece #0 at (row, col) = (4, 5)}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 7 step 1, stride 1, offset (1, 1), count (0, 1)>], remainder = #splat.block_remainder<block 4, blocks [1, 1], masks dense<true> : tensor<1x4x4xi1>>>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @remainder_mask_overlaps_piece(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{remainder block (1, 1) overlaps piece #0 at (row, col) = (5, 6)}}
  %0 = splat.attention %q, %k, %v layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 7 step 1, stride 1, offset (1, 1), count (0, 1)>], remainder = #splat.block_remainder<block 4, blocks [1, 1], masks dense<[[[false, false, false, false], [false, false, true, false], [false, false, false, false], [false, false, false, false]]]> : tensor<1x4x4xi1>>>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}

// -----

func.func @union_too_deep(%q: tensor<1x2x8x16xf16>, %k: tensor<1x2x8x16xf16>, %v: tensor<1x2x8x16xf16>) {
  // expected-error @+1 {{'union' nests pattern attributes more than 256 levels deep}}
  %0 = splat.attention %q, %k, %v layout(#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.union<[#splat.causal]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>]>) : tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16>, tensor<1x2x8x16xf16> -> tensor<1x2x8x16xf16>
  return
}
