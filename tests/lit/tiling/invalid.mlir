// The #splat.tile_schedule verifier (tables in bounds) and splat.attention's checks of a
// schedule against its ACSR layout (keys < lk, rows < lq, row tiles partition [0, lq)).
// RUN: %splat-opt %s --split-input-file --verify-diagnostics

func.func @negative_row0(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  // expected-error @+1 {{tile_schedule row tile #0 has row0 = -1 (must be >= 0)}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [-1, 1, 8, 0, 1], segments = [0, 1, 8, 0, 8, 0, 0, 0, 8]>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %0 : tensor<1x1x8x16xf16>
}

// -----

func.func @no_rows(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  // expected-error @+1 {{tile_schedule row tile #0 has row_step 1 and 0 rows (block_m = 64)}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 1, 0, 0, 1], segments = [0, 1, 8, 0, 8, 0, 0, 0, 8]>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %0 : tensor<1x1x8x16xf16>
}

// -----

func.func @rows_past_int32(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  // expected-error @+1 {{tile_schedule row tile #0 reaches row 2147483710, past the int32 range of the kernel's rows}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [2147483647, 1, 64, 0, 1], segments = [0, 1, 8, 0, 8, 0, 0, 0, 8]>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %0 : tensor<1x1x8x16xf16>
}

// -----

func.func @seg_end_past_table(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  // expected-error @+1 {{tile_schedule row tile #0 names segments 0 .. 2 of 1}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 1, 8, 0, 2], segments = [0, 1, 8, 0, 8, 0, 0, 0, 8]>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %0 : tensor<1x1x8x16xf16>
}

// -----

func.func @seg_begin_negative(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  // expected-error @+1 {{tile_schedule row tile #0 names segments -1 .. 1 of 1}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 1, 8, -1, 1], segments = [0, 1, 8, 0, 8, 0, 0, 0, 8]>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %0 : tensor<1x1x8x16xf16>
}

// -----

func.func @negative_col0(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  // expected-error @+1 {{tile_schedule segment #0 has col0 = -1 and ncols = 8 (need col0 >= 0, ncols >= 1)}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 1, 8, 0, 1], segments = [-1, 1, 8, 0, 8, 0, 0, 0, 8]>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %0 : tensor<1x1x8x16xf16>
}

// -----

func.func @negative_col_step(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  // expected-error @+1 {{tile_schedule segment #0 has col_step -2 (must be >= 1)}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 1, 8, 0, 1], segments = [0, -2, 8, 0, 8, 0, 0, 0, 8]>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %0 : tensor<1x1x8x16xf16>
}

// -----

func.func @no_cols(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  // expected-error @+1 {{tile_schedule segment #0 has col0 = 0 and ncols = 0 (need col0 >= 0, ncols >= 1)}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 1, 8, 0, 1], segments = [0, 1, 0, 0, 8, 0, 0, 0, 0]>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %0 : tensor<1x1x8x16xf16>
}

// -----

func.func @keys_past_int32(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  // expected-error @+1 {{tile_schedule segment #0 reaches key 4294967294, past the int32 range of the kernel's keys}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 1, 8, 0, 1], segments = [0, 2147483647, 3, 0, 8, 0, 0, 0, 3]>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %0 : tensor<1x1x8x16xf16>
}

// -----

func.func @shared_segment(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  // expected-error @+1 {{tile_schedule row tiles #0 and #1 share segment #0: each segment belongs to one row tile}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 1, 4, 0, 1, 4, 1, 4, 0, 1], segments = [0, 1, 8, 0, 8, 0, 0, 0, 8]>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %0 : tensor<1x1x8x16xf16>
}

// -----

func.func @segment_rows(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  // expected-error @+1 {{tile_schedule segment #0 of row tile #0 has rows 0 .. 9, not inside the tile's 8 rows}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 1, 8, 0, 1], segments = [0, 1, 8, 0, 9, 0, 0, 0, 8]>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %0 : tensor<1x1x8x16xf16>
}

// -----

func.func @segment_hi(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  // expected-error @+1 {{tile_schedule segment #0 of row tile #0 has keys [0, 9) at rho = 0, not inside [0, 8)}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 1, 8, 0, 1], segments = [0, 1, 8, 0, 8, 0, 0, 0, 9]>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %0 : tensor<1x1x8x16xf16>
}

// -----

func.func @segment_lo(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  // expected-error @+1 {{tile_schedule segment #0 of row tile #0 has keys [-1, 8) at rho = 0, not inside [0, 8)}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 1, 8, 0, 1], segments = [0, 1, 8, 0, 8, 0, -1, 0, 8]>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %0 : tensor<1x1x8x16xf16>
}

// -----

func.func @segment_slope(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  // expected-error @+1 {{tile_schedule segment #0 of row tile #0 has keys [0, 15) at rho = 7, not inside [0, 8)}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 1, 8, 0, 1], segments = [0, 1, 8, 0, 8, 0, 0, 1, 8]>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %0 : tensor<1x1x8x16xf16>
}

// -----

func.func @mask_ptr_start(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  // expected-error @+1 {{tile_schedule mask_ptr must rise from 0 to the 1 mask tiles; mask_ptr[0] = 1}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 8, block_n = 32, row_tiles = [0, 1, 8, 0, 1], segments = [0, 1, 8, 0, 8, 0, 0, 0, 8], mask_ptr = [1, 1], mask_tiles = [0, 4], mask_bits = [15, 15, 15, 15, 15, 15, 15, 15]>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %0 : tensor<1x1x8x16xf16>
}

// -----

func.func @mask_ptr_end(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  // expected-error @+1 {{tile_schedule mask_ptr must rise from 0 to the 1 mask tiles; mask_ptr[1] = 2}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 8, block_n = 32, row_tiles = [0, 1, 8, 0, 1], segments = [0, 1, 8, 0, 8, 0, 0, 0, 8], mask_ptr = [0, 2], mask_tiles = [0, 4], mask_bits = [15, 15, 15, 15, 15, 15, 15, 15]>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %0 : tensor<1x1x8x16xf16>
}

// -----

func.func @mask_tile_cols(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  // expected-error @+1 {{tile_schedule mask tile #0 has col0 = -4 and ncols = 4 (need col0 >= 0, 1 <= ncols <= block_n = 32)}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 8, block_n = 32, row_tiles = [0, 1, 8, 0, 1], segments = [0, 1, 8, 0, 8, 0, 0, 0, 8], mask_ptr = [0, 1], mask_tiles = [-4, 4], mask_bits = [15, 15, 15, 15, 15, 15, 15, 15]>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %0 : tensor<1x1x8x16xf16>
}

// -----

func.func @mask_tile_wide(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  // expected-error @+1 {{tile_schedule mask tile #0 has col0 = 0 and ncols = 33 (need col0 >= 0, 1 <= ncols <= block_n = 32)}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 8, block_n = 32, row_tiles = [0, 1, 8, 0, 1], segments = [0, 1, 8, 0, 8, 0, 0, 0, 8], mask_ptr = [0, 1], mask_tiles = [0, 33], mask_bits = [15, 15, 15, 15, 15, 15, 15, 15]>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %0 : tensor<1x1x8x16xf16>
}

// -----

func.func @mask_bits_outside(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  // expected-error @+1 {{tile_schedule mask tile #0 of row tile #0 sets bits outside its 8 rows and 3 keys (at rho = 0)}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 8, block_n = 32, row_tiles = [0, 1, 8, 0, 1], segments = [0, 1, 8, 0, 8, 0, 0, 0, 8], mask_ptr = [0, 1], mask_tiles = [0, 3], mask_bits = [15, 15, 15, 15, 15, 15, 15, 15]>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %0 : tensor<1x1x8x16xf16>
}

// -----

func.func @mask_bits_rows(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  // expected-error @+1 {{tile_schedule mask tile #0 of row tile #0 sets bits outside its 4 rows and 4 keys (at rho = 4)}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 8, block_n = 32, row_tiles = [0, 1, 4, 0, 1, 4, 1, 4, 1, 1], segments = [0, 1, 8, 0, 4, 0, 0, 0, 8], mask_ptr = [0, 1, 1], mask_tiles = [0, 4], mask_bits = [15, 15, 15, 15, 15, 15, 15, 15]>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %0 : tensor<1x1x8x16xf16>
}

// -----

func.func @keys_past_lk(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  // expected-error @+1 {{'splat.attention' op schedule segment #0 reaches key 11, past lk = 8}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 1, 8, 0, 1], segments = [4, 1, 8, 0, 8, 0, 0, 0, 8]>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %0 : tensor<1x1x8x16xf16>
}

// -----

func.func @strided_keys_past_lk(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  // expected-error @+1 {{'splat.attention' op schedule segment #0 reaches key 14, past lk = 8}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 1, 8, 0, 1], segments = [0, 2, 8, 0, 8, 0, 0, 0, 4]>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %0 : tensor<1x1x8x16xf16>
}

// -----

func.func @mask_keys_past_lk(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  // expected-error @+1 {{'splat.attention' op schedule mask tile #0 covers keys 6 .. 9, past lk = 8}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 8, block_n = 32, row_tiles = [0, 1, 8, 0, 1], segments = [0, 1, 8, 0, 8, 0, 0, 0, 8], mask_ptr = [0, 1], mask_tiles = [6, 4], mask_bits = [15, 15, 15, 15, 15, 15, 15, 15]>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %0 : tensor<1x1x8x16xf16>
}

// -----

func.func @rows_past_lq(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  // expected-error @+1 {{'splat.attention' op schedule row tile #0 reaches row 8, past lq = 8}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 1, 9, 0, 1], segments = [0, 1, 8, 0, 8, 0, 0, 0, 8]>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %0 : tensor<1x1x8x16xf16>
}

// -----

func.func @strided_rows_past_lq(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  // expected-error @+1 {{'splat.attention' op schedule row tile #1 reaches row 9, past lq = 8}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 2, 4, 0, 1, 1, 2, 5, 1, 1], segments = [0, 1, 8, 0, 4, 0, 0, 0, 8]>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %0 : tensor<1x1x8x16xf16>
}

// -----

func.func @rows_overlap(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  // expected-error @+1 {{'splat.attention' op schedule row tiles #0 and #1 both hold row 4: a row must be written once}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 1, 8, 0, 1, 4, 1, 4, 1, 1], segments = [0, 1, 8, 0, 8, 0, 0, 0, 8]>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %0 : tensor<1x1x8x16xf16>
}

// -----

func.func @rows_gap(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  // expected-error @+1 {{'splat.attention' op schedule leaves row 4 in no row tile: its row tiles must cover [0, 8)}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 1, 4, 0, 1], segments = [0, 1, 8, 0, 4, 0, 0, 0, 8]>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %0 : tensor<1x1x8x16xf16>
}

// -----

func.func @rows_gap_strided(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  // expected-error @+1 {{'splat.attention' op schedule leaves row 1 in no row tile: its row tiles must cover [0, 8)}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 2, 4, 0, 1], segments = [0, 1, 8, 0, 4, 0, 0, 0, 8]>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %0 : tensor<1x1x8x16xf16>
}

// -----

func.func @rows_missing(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  // expected-error @+1 {{'splat.attention' op schedule leaves row 0 in no row tile: its row tiles must cover [0, 8)}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [], segments = [0, 1, 8, 0, 8, 0, 0, 0, 8]>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %0 : tensor<1x1x8x16xf16>
}

// -----

func.func @split_keys_past_lk(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  // expected-error @+1 {{'splat.attention' op split_schedule segment #0 reaches key 8, past lk = 8}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 1, 8, 0, 1], segments = [0, 1, 8, 0, 8, 0, 0, 0, 8]>) split_schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 1, 4, 0, 1], segments = [1, 1, 8, 0, 4, 0, 0, 0, 8]>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %0 : tensor<1x1x8x16xf16>
}

// -----

func.func @split_rows_overlap(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  // expected-error @+1 {{'splat.attention' op split_schedule row tiles #0 and #1 both hold row 2: a row must be written once}}
  %0 = splat.attention %q, %q, %q layout(#splat.acsr<lq = 8, lk = 8, pieces = [#splat.piece<rows 0 to 8 step 1, stride 1, offset (0, 0), count (0, 8)>]>) schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 1, 8, 0, 1], segments = [0, 1, 8, 0, 8, 0, 0, 0, 8]>) split_schedule(#splat.tile_schedule<block_m = 64, block_n = 64, row_tiles = [0, 2, 2, 0, 1, 2, 1, 1, 1, 1], segments = [0, 1, 8, 0, 2, 0, 0, 0, 8, 0, 1, 8, 0, 1, 0, 0, 0, 8]>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %0 : tensor<1x1x8x16xf16>
}
