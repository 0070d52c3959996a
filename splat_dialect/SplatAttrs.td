//===- SplatAttrs.td - pattern and layout attributes --------*- tablegen -*-===//

#ifndef SPLAT_ATTRS_TD
#define SPLAT_ATTRS_TD

include "SplatBase.td"
include "mlir/IR/BuiltinAttributeInterfaces.td"

// Tag interface: every un-analysed pattern attribute implements it, so ops
// can accept "any pattern" and unions can nest them.
def Splat_PatternAttrInterface : AttrInterface<"PatternAttrInterface"> {
  let cppNamespace = "::mlir::splat";
  let description = [{
    An attention pattern that has not been analysed into an ACSR layout yet.
  }];
}

class Splat_Attr<string name, string mnemonicName, list<Trait> traits = []>
    : AttrDef<Splat_Dialect, name, traits> {
  let mnemonic = mnemonicName;
}

class Splat_PatternAttr<string name, string mnemonicName>
    : Splat_Attr<name, mnemonicName, [Splat_PatternAttrInterface]>;

//===----------------------------------------------------------------------===//
// Pattern attributes
//===----------------------------------------------------------------------===//

def Splat_WindowAttr : Splat_PatternAttr<"Window", "window"> {
  let summary = "sliding window: |q - k| <= w";
  let parameters = (ins "int64_t":$w);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def Splat_CausalAttr : Splat_PatternAttr<"Causal", "causal"> {
  let summary = "causal: k <= q";
}

def Splat_CausalWindowAttr : Splat_PatternAttr<"CausalWindow", "causal_window"> {
  let summary = "causal sliding window: 0 <= q - k <= w";
  let parameters = (ins "int64_t":$w);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def Splat_DilatedAttr : Splat_PatternAttr<"Dilated", "dilated"> {
  let summary = "dilated window: |q - k| <= w * stride and stride divides q - k";
  let parameters = (ins "int64_t":$w, "int64_t":$stride);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def Splat_StridedAttr : Splat_PatternAttr<"Strided", "strided"> {
  let summary = "Sparse Transformer 'strided': causal, q - k < local or stride divides q - k";
  let parameters = (ins "int64_t":$local, "int64_t":$stride);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def Splat_FixedAttr : Splat_PatternAttr<"Fixed", "fixed"> {
  let summary = "Sparse Transformer 'fixed': causal, same block or a summary column";
  let description = [{
    Row `q` sees key `k <= q` when `k` is in the same `block` as `q`, or when
    `k mod block >= block - summary` (the last `summary` keys of each block).
  }];
  let parameters = (ins "int64_t":$block, "int64_t":$summary);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def Splat_BlockedAttr : Splat_PatternAttr<"Blocked", "blocked"> {
  let summary = "block diagonal: q / block == k / block";
  let parameters = (ins "int64_t":$block);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def Splat_GlobalTokensAttr : Splat_PatternAttr<"GlobalTokens", "global_tokens"> {
  let summary = "global tokens: the listed rows see every key, every row sees the listed keys";
  let parameters = (ins ArrayRefParameter<"int64_t">:$indices);
  let assemblyFormat = "`<` `[` $indices `]` `>`";
  let genVerifyDecl = 1;
}

def Splat_RandomBlocksAttr : Splat_PatternAttr<"RandomBlocks", "random_blocks"> {
  let summary = "random blocks: each row block sees `per_row` key blocks drawn with `seed`";
  let parameters = (ins "int64_t":$block, "int64_t":$per_row, "int64_t":$seed);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def Splat_UnionAttr : Splat_PatternAttr<"Union", "union"> {
  let summary = "union of patterns (a key is allowed if any member allows it)";
  let description = [{
    `#splat.union<[#splat.window<w = 4>, #splat.causal]>`. Members are pattern
    attributes and may nest; the parser accepts at most 256 levels of
    `#splat.union` / `#splat.intersect` nesting (a deeper input is a located
    parse error, not a stack overflow).
  }];
  let parameters = (ins "::mlir::ArrayAttr":$members);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
}

def Splat_IntersectAttr : Splat_PatternAttr<"Intersect", "intersect"> {
  let summary = "intersection of patterns (a key is allowed if every member allows it)";
  let description = [{
    `#splat.intersect<[#splat.window<w = 4>, #splat.causal]>`. Members are pattern
    attributes and may nest; the parser accepts at most 256 levels of
    `#splat.union` / `#splat.intersect` nesting (a deeper input is a located
    parse error, not a stack overflow).
  }];
  let parameters = (ins "::mlir::ArrayAttr":$members);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
}

//===----------------------------------------------------------------------===//
// The ACSR layout
//===----------------------------------------------------------------------===//

def Splat_PieceAttr : Splat_Attr<"Piece", "piece"> {
  let summary = "one affine piece of an ACSR layout";
  let description = [{
    Rows `i = r0 + step * t` for `t = 0 .. ceil((r1 - r0) / step) - 1`. Row
    `t` holds the keys `offset(t) + stride * j`, `0 <= j < count(t)`, with
    `offset(t) = off_a * t + off_b` and `count(t) = cnt_a * t + cnt_b`:

    ```mlir
    #splat.piece<rows 64 to 960 step 1, stride 1, offset (1, 0), count (0, 129)>
    ```

    The affine maps use the piece-local row index `t` so that a piece made of
    one residue class of rows still has integer coefficients.
  }];
  let parameters = (ins "int64_t":$r0, "int64_t":$r1, "int64_t":$step,
                        "int64_t":$stride, "int64_t":$off_a, "int64_t":$off_b,
                        "int64_t":$cnt_a, "int64_t":$cnt_b);
  let assemblyFormat = [{
    `<` `rows` $r0 `to` $r1 `step` $step `,` `stride` $stride `,`
        `offset` `(` $off_a `,` $off_b `)` `,` `count` `(` $cnt_a `,` $cnt_b `)` `>`
  }];
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// Number of rows of the piece.
    int64_t getNumRows() const;
  }];
}

def Splat_BlockRemainderAttr : Splat_Attr<"BlockRemainder", "block_remainder"> {
  let summary = "irregular leftovers of an ACSR layout, as a block list";
  let description = [{
    `blocks` holds `(row_block, col_block)` pairs flattened; `masks`, when
    present, is an `i1` tensor `n x block x block` of the allowed elements in
    each block (absent: every listed block is fully allowed).

    ```mlir
    #splat.block_remainder<block 64, blocks [0, 3, 1, 5]>
    ```
  }];
  let parameters = (ins "int64_t":$block, ArrayRefParameter<"int64_t">:$blocks,
                        OptionalParameter<"::mlir::DenseElementsAttr">:$masks);
  let assemblyFormat = [{
    `<` `block` $block `,` `blocks` `[` $blocks `]` (`,` `masks` $masks^)? `>`
  }];
  let genVerifyDecl = 1;
}

def Splat_ACSRAttr : Splat_Attr<"ACSR", "acsr"> {
  let summary = "affine compressed sparse row layout of an attention mask";
  let description = [{
    An `lq x lk` mask as a disjoint union of `#splat.piece`s plus an optional
    `#splat.block_remainder`:

    ```mlir
    #splat.acsr<lq = 1024, lk = 1024, pieces = [#splat.piece<...>, ...]>
    ```

    The verifier checks what `splat.analysis.ACSR.validate()` checks, with
    every bound computed exactly (128-bit, no int64 wrap-around): piece rows
    end by `lq`; every key of a row that holds keys lies in `[0, lk)`; the
    pieces are pairwise disjoint (no key is allowed twice in a row); the
    remainder blocks lie inside the mask, are sorted and unique by
    `(row_block, col_block)`, allow no element outside `lq x lk` (edge blocks
    are clipped) and allow no element a piece holds. Nothing costs per key or
    per row of a piece: a sweep by first row tests the bounding boxes of the
    pieces live at once, and a pair whose boxes meet is decided exactly on its
    shared rows, in O(1) for stride-1 pairs and pairs of one stride (a
    congruence), row by row only for pairs of different strides. The
    remainder check is linear in its blocks and mask elements.
  }];
  let parameters = (ins "int64_t":$lq, "int64_t":$lk, "::mlir::ArrayAttr":$pieces,
                        OptionalParameter<"BlockRemainderAttr">:$remainder);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def Splat_TileScheduleAttr : Splat_Attr<"TileSchedule", "tile_schedule"> {
  let summary = "tile schedule of an ACSR layout (compressed-coordinate tiles)";
  let description = [{
    Produced by `splat-tile-acsr`. `row_tiles` holds `(row0, row_step, nrows,
    seg_begin, seg_end)` per query tile and `segments` holds `(col0,
    col_step, ncols, rho_lo, rho_hi, lo_a, lo_b, hi_a, hi_b)` per dense
    compressed-key problem (see docs/design.md). The irregular remainder, if
    any, is a list of explicitly masked key tiles: row tile `i` owns mask
    tiles `mask_ptr[i] .. mask_ptr[i+1]-1`, each `(col0, ncols)` in
    `mask_tiles` with `block_m x ceil(block_n/32)` words of bits in
    `mask_bits`. `plans`, when present, says which plan the tiler chose for
    each row tile (0: affine segments, 1: key blocks); the kernel does not
    read it. All are flattened `i32` arrays.

    The verifier checks the tables' bounds: `row0 >= 0`, `row_step >= 1`,
    `1 <= nrows <= block_m`, rows within int32; segment ranges inside the
    segment table, each segment owned by one row tile, `col0 >= 0`,
    `col_step >= 1`, `ncols >= 1`, `0 <= rho_lo < rho_hi <= nrows` and
    `0 <= lo <= hi <= ncols` on the segment's rows; `mask_ptr` rising from 0 to
    the number of mask tiles, mask tiles with `col0 >= 0` and
    `1 <= ncols <= block_n`, and no mask bit outside a tile's rows and keys.
    On a `splat.attention`, the op checks a schedule against its ACSR layout:
    every key `< lk`, every row `< lq`, no row in two row tiles, and the
    `schedule`'s row tiles cover `[0, lq)` (a `split_schedule` covers some rows).
  }];
  let parameters = (ins "int64_t":$block_m, "int64_t":$block_n,
                        "::mlir::DenseI32ArrayAttr":$row_tiles,
                        "::mlir::DenseI32ArrayAttr":$segments,
                        OptionalParameter<"::mlir::DenseI32ArrayAttr">:$mask_ptr,
                        OptionalParameter<"::mlir::DenseI32ArrayAttr">:$mask_tiles,
                        OptionalParameter<"::mlir::DenseI32ArrayAttr">:$mask_bits,
                        OptionalParameter<"::mlir::DenseI32ArrayAttr">:$plans);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

#endif // SPLAT_ATTRS_TD
